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
# What the site's search boxes accept: more than the engine's limit, so a pasted paragraph
# reaches the server, which cuts it at a word boundary and says so (a browser's own
# maxlength would cut it mid-word, silently).
QUERY_INPUT_CHARS = 2000
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
    total_exact: bool = True          # False: ``total`` is a lower bound
    suggestion: str | None = None     # "did you mean ..."
    corrected_from: str | None = None  # results are for ``query``, corrected from this
    no_match: bool = False
    cut_from: str | None = None       # the query as typed, when it was cut to the limit

    @property
    def page_notes(self) -> list[str]:
        """Notes the search page shows as plain text (it renders the spelling and no-match
        states itself, with links)."""
        own = ("showing results for ", "did you mean ", "no paper matches ")
        return [n for n in self.notes if not n.startswith(own)]

    @property
    def total_text(self) -> str:
        """The total for people, saying which kind it is: "1,234 results (exact)", "1 result
        (exact)", or "1,000+ results (at least 1,000)" when it is a lower bound."""
        if self.total_exact:
            return f"{self.total:,} result{'' if self.total == 1 else 's'} (exact)"
        return f"{self.total:,}+ results (at least {self.total:,})"


def cut_query(query: str, limit: int = MAX_QUERY_CHARS) -> str:
    """``query`` cut to at most ``limit`` characters at a word boundary (the site does this
    for long queries; the API refuses them, as Hugging Face's does). A quote left open by
    the cut is dropped so the rest does not turn into a phrase."""
    if len(query) <= limit:
        return query
    cut = query[: limit + 1]
    sp = cut.rfind(" ")
    cut = (cut[:sp] if sp > 0 else query[:limit]).rstrip()
    if cut.count('"') % 2:
        i = cut.rfind('"')
        cut = cut[:i] + " " + cut[i + 1 :]
    return " ".join(cut.split())


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
               sort: str = "relevance", filters: dict | None = None, cut_long: bool = True) -> Results:
    """Run a search; raises SearchInputError with a message for people. Queries over
    ``MAX_QUERY_CHARS`` are cut at a word boundary with a note (``cut_long=False``: refused;
    the API validates the length itself and keeps Hugging Face's 4xx)."""
    query = (query or "").strip()
    filters = filters or {}
    if not query and not filters:
        raise SearchInputError("Type something to search for.")
    cut_from = None
    if len(query) > MAX_QUERY_CHARS:
        if not cut_long:
            raise SearchInputError(f"Queries are limited to {MAX_QUERY_CHARS} characters (this one has {len(query)}).")
        cut_from, query = query, cut_query(query)
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
        from paperwire.web.textfmt import source_snippet
        from markupsafe import escape

        # The LaTeX source, cut: the snippet filter renders it (rendering here too would do it twice).
        return Results(query, [Result(p, str(escape(source_snippet(p["abstract"])))) for p in papers], total,
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
    notes = [str(n) for n in notes]
    if cut_from is not None:
        notes.insert(0, f"the query was cut to {len(query)} characters (the limit is {MAX_QUERY_CHARS})")
    shown = res.query if getattr(res, "corrected_from", None) else query
    return Results(shown, hits, int(res.total), res.mode, notes,
                   total_exact=bool(getattr(res, "total_exact", True)), suggestion=getattr(res, "suggestion", None),
                   corrected_from=getattr(res, "corrected_from", None), no_match=bool(getattr(res, "no_match", False)),
                   cut_from=cut_from)


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
