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


def build_query(q: str, *, author: str = "", category: str = "", year_from: str = "", year_to: str = "") -> str:
    """Fold the search form's filter fields into the query syntax the engine parses."""
    parts = [q.strip()] if q and q.strip() else []
    if author.strip():
        parts.append("author:" + _quote(author.strip()))
    if category.strip():
        parts.append("cat:" + _quote(category.strip()))
    yf, yt = year_from.strip(), year_to.strip()
    if yf and yt:
        parts.append(f"year:{yf}-{yt}")
    elif yf:
        parts.append(f"after:{yf}")
    elif yt:
        parts.append(f"before:{int(yt) + 1}" if yt.isdigit() else f"before:{yt}")
    return " ".join(parts)


def _quote(v: str) -> str:
    v = v.replace('"', "")
    return f'"{v}"' if any(c.isspace() for c in v) else v


def run_search(conn, query: str, *, mode: str = "hybrid", limit: int = 20, offset: int = 0,
               sort: str = "relevance") -> Results:
    """Run a search; raises SearchInputError with a message for people."""
    query = (query or "").strip()
    if not query:
        raise SearchInputError("Type something to search for.")
    if len(query) > MAX_QUERY_CHARS:
        raise SearchInputError(f"Queries are limited to {MAX_QUERY_CHARS} characters (this one has {len(query)}).")
    if mode not in MODES:
        raise SearchInputError(f"mode must be one of {', '.join(MODES)}")
    if sort not in SORTS:
        raise SearchInputError(f"sort must be one of {', '.join(SORTS)}")
    mod = _search_module()
    if mod is None:
        terms = [t for t in _split(query) if t]
        papers, total = feed.like_search(conn, terms, limit=limit, offset=offset)
        from paperwire.web.textfmt import plain_snippet
        from markupsafe import escape

        return Results(query, [Result(p, str(escape(plain_snippet(p["abstract"])))) for p in papers], total,
                       "substring", ["the search index is not installed: substring match on title and abstract"])
    try:
        res = mod.search(conn, query, mode=mode, limit=limit, offset=offset, sort=sort)
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
