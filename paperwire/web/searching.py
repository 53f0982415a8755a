"""The site's door to :mod:`paperwire.index.search` (hybrid search, similar papers).

When the search module is not importable (a build without it), search falls
back to a plain substring match and similar papers are empty; the page says so.
"""

from __future__ import annotations

import logging
import shlex
from dataclasses import dataclass, field

from paperwire.store import feed

log = logging.getLogger(__name__)
MAX_QUERY_CHARS = 250
MODES = ("hybrid", "lexical", "semantic")
SORTS = ("relevance", "date", "votes")


class SearchInputError(ValueError):
    """Bad search input; the message is for people (HTML) and API clients (422)."""


@dataclass
class Result:
    paper: dict
    snippet: str  # HTML-safe, may hold <mark>
    score: float | None = None


@dataclass
class Results:
    query: str
    hits: list[Result] = field(default_factory=list)
    total: int = 0
    mode: str = "hybrid"
    notes: list[str] = field(default_factory=list)


def _search_module():
    try:
        from paperwire.index import search as mod
    except ImportError:
        return None
    return mod


def form_filters(*, author: str = "", category: str = "", year_from: str = "", year_to: str = "") -> dict:
    """The search form's filter fields as keyword filters for ``search()``."""
    f: dict = {}
    if author.strip():
        f["author"] = author.strip()[:100]
    if category.strip():
        f["category"] = category.strip()[:40]
    yf, yt = year_from.strip()[:10], year_to.strip()[:10]
    if yf and yt:
        f["year"] = f"{yf}-{yt}"
    elif yf:
        f["after"] = yf
    elif yt:
        f["before"] = str(int(yt) + 1) if yt.isdigit() else yt
    return f


def describe(query: str, filters: dict) -> str:
    """The query plus its filters in query syntax, for headings and feed links."""
    parts = [query.strip()] if query.strip() else []
    for k, v in filters.items():
        key = {"category": "cat"}.get(k, k)
        parts.append(f'{key}:"{v}"' if " " in v else f"{key}:{v}")
    return " ".join(parts)


def run_search(conn, query: str, *, mode: str = "hybrid", limit: int = 20, offset: int = 0,
               sort: str = "relevance", filters: dict | None = None) -> Results:
    """Run a search; raises SearchInputError with a message for people."""
    query = (query or "").strip()
    filters = filters or {}
    if not query and not filters:
        raise SearchInputError("Type something to search for.")
    if len(query) > MAX_QUERY_CHARS:
        raise SearchInputError(f"Queries are limited to {MAX_QUERY_CHARS} characters (this one has {len(query)}).")
    if not query:
        # Filters only: the engine wants them in the query text then.
        query, filters = describe("", filters), {}
    if mode not in MODES:
        raise SearchInputError(f"mode must be one of {', '.join(MODES)}")
    if sort not in SORTS:
        raise SearchInputError(f"sort must be one of {', '.join(SORTS)}")
    mod = _search_module()
    if mod is None:
        terms = [t for t in _split(describe(query, filters)) if t]
        papers, total = feed.like_search(conn, terms, limit=limit, offset=offset)
        from paperwire.web.textfmt import plain_snippet
        from markupsafe import escape

        return Results(query, [Result(p, str(escape(plain_snippet(p["abstract"])))) for p in papers], total,
                       "substring", ["the search index is not installed: substring match on title and abstract"])
    try:
        # The site shows titles plain (snippets carry the highlights): skip highlighting them.
        res = mod.search(conn, query, mode=mode, limit=limit, offset=offset, sort=sort, with_title_html=False,
                         **filters)
    except mod.QueryError as exc:
        raise SearchInputError(str(exc)) from None
    hits = []
    for h in res.hits:
        p = dict(h.paper) if h.paper else {}
        if not p or p.get("hidden"):
            continue
        p.setdefault("votes", (p.get("upvotes") or 0) + (p.get("local_upvotes") or 0))
        hits.append(Result(p, h.snippet or "", h.score))
    notes = res.notes if isinstance(res.notes, list) else ([res.notes] if res.notes else [])
    return Results(query, hits, int(res.total), res.mode, [str(n) for n in notes])


def _split(query: str) -> list[str]:
    try:
        return shlex.split(query)
    except ValueError:
        return query.split()


def similar_papers(conn, paper_id: str, *, limit: int = 8) -> list[dict]:
    """Papers like this one (empty when search is not installed or not indexed yet)."""
    mod = _search_module()
    if mod is None:
        return []
    try:
        hits = mod.similar(conn, paper_id, limit=limit)
    except KeyError:
        return []
    except Exception:  # noqa: BLE001 - a broken index must not take the paper page down
        log.exception("similar papers failed for %s", paper_id)
        return []
    out = []
    for h in hits:
        p = dict(h.paper) if h.paper else None
        if not p or p.get("hidden") or p.get("paper_id") == paper_id:
            continue
        p.setdefault("votes", (p.get("upvotes") or 0) + (p.get("local_upvotes") or 0))
        p["similarity"] = h.score
        out.append(p)
    return out[:limit]
