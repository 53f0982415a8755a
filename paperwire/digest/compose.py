"""Choosing the papers of one digest.

Sections, in order: trending top N, personal picks (papers similar to what the
subscriber's account upvoted or saved), followed authors, followed categories,
saved searches. A paper appears once per digest and goes to a subscriber at most
once ever: candidates already in ``digest_sent_papers`` are dropped. An empty
result means no mail.

Similar papers and saved searches use the search area
(``paperwire.index.search.similar`` / ``search``) when it is installed and
answers; otherwise plain SQL stands in (shared authors/categories, LIKE), so a
digest never fails because an index is missing.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime

from paperwire import rank
from paperwire.digest.periods import WINDOW_DAYS, window_since
from paperwire.model import normalize_title
from paperwire.settings import Settings
from paperwire.store import digest as sql
from paperwire.store.papers import get_papers_by_rowid

log = logging.getLogger("paperwire.digest")

PICKS_PER_DIGEST = 5
PER_FOLLOW_SECTION = 10
PER_QUERY = 5
SEEDS = 10  # newest upvotes/saves used for personal picks
TRENDING_POOL = 200  # trending candidates fetched once per run and shared by all subscribers


@dataclass
class Section:
    key: str  # trending | picks | authors | categories | search
    title: str
    papers: list[dict]


@dataclass
class Digest:
    subscription: dict
    period: str
    sections: list[Section] = field(default_factory=list)

    @property
    def paper_rowids(self) -> list[int]:
        return [p["id"] for s in self.sections for p in s.papers]

    @property
    def empty(self) -> bool:
        return not any(s.papers for s in self.sections)


class ComposeCache:
    """Per-run memo: trending lists and similar() answers are shared across subscribers."""

    def __init__(self) -> None:
        self.trending: dict[tuple[str, str], list[dict]] = {}
        self.similar: dict[int, list[dict]] = {}
        self.search_fn = _optional("search")
        self.similar_fn = _optional("similar")
        self.notes: set[str] = set()
        self._indexed: bool | None = None

    def search_indexed(self, conn: sqlite3.Connection) -> bool:
        """Whether the search area's lexical index holds anything (then trust its empty answers)."""
        if self._indexed is None:
            try:
                from paperwire.store.search import count_indexed
            except ImportError:  # search area not installed
                self._indexed = False
            else:
                self._indexed = count_indexed(conn) > 0
        return self._indexed


def _optional(name: str):
    try:
        from paperwire.index import search as index_search  # type: ignore
    except Exception:  # not built yet, or its optional deps are missing
        return None
    return getattr(index_search, name, None)


def compose_digest(conn: sqlite3.Connection, settings: Settings, sub: dict, *, period: str,
                   now: datetime, cache: ComposeCache | None = None) -> Digest:
    """The digest ``sub`` would get for ``period`` (reads only; records nothing)."""
    cache = cache or ComposeCache()
    freq = sub["frequency"]
    since = window_since(freq, now, settings.digest_timezone)
    raw: list[tuple[str, str, list[dict], int]] = []  # key, title, candidates, how many to keep
    if sub["top_n"]:
        raw.append(("trending", "Trending", _trending(conn, cache, freq, since, now), sub["top_n"]))
    user_id = sub.get("user_id") or sql.user_id_for_email(conn, sub["email"])
    if user_id:
        sub = _with_follows(conn, sub, user_id)
    if sub["personal"] and user_id:
        raw.append(("picks", "Picked for you", _picks(conn, cache, user_id, since), PICKS_PER_DIGEST))
    if sub["authors"]:
        norms = [normalize_title(a) for a in sub["authors"]]
        raw.append(("authors", "From authors you follow",
                    sql.recent_by_authors(conn, norms, since, PER_FOLLOW_SECTION * 3), PER_FOLLOW_SECTION))
    if sub["categories"]:
        raw.append(("categories", "In " + ", ".join(sub["categories"]),
                    sql.recent_by_categories(conn, sub["categories"], since, PER_FOLLOW_SECTION * 3),
                    PER_FOLLOW_SECTION))
    for q in sub["queries"]:
        raw.append(("search", f"Matching \u201c{q}\u201d", _search(conn, cache, q, since), PER_QUERY))

    seen = sql.already_sent(conn, sub["id"], list({p["id"] for _, _, ps, _ in raw for p in ps}))
    if user_id:
        # "Not interested" hides a paper from every feed of that reader, the digest included.
        from paperwire.recommend import dismissed

        seen |= dismissed(conn, user_id)
    digest = Digest(sub, period)
    for key, title, candidates, keep in raw:
        chosen = []
        for p in candidates:
            if p["id"] in seen or p.get("hidden"):
                continue
            seen.add(p["id"])
            chosen.append(p)
            if len(chosen) >= keep:
                break
        if chosen:
            digest.sections.append(Section(key, title, chosen))
    if freq == "weekly" and digest.sections:
        _add_rising(conn, cache, digest)
    return digest


def _add_rising(conn, cache: ComposeCache, digest: Digest) -> None:
    """The topic map's "rising topics" chart (a PNG the mail embeds) as a paper-less last section."""
    if not hasattr(cache, "rising"):
        from paperwire.topics.trends import digest_rising

        cache.rising = digest_rising(conn)  # once per run, shared by every subscriber
    if cache.rising:
        week, rows, png = cache.rising
        section = Section("rising", f"Rising topics, week of {week:%b %d, %Y}", [])
        section.week = week.isoformat()  # the chart's URL pins the week the mail describes
        section.image = png  # embedded (cid:), so it shows where remote images are blocked
        section.topics = [r["label"] for r in rows]
        digest.sections.append(section)


def _with_follows(conn, sub: dict, user_id: int) -> dict:
    """The subscription with the account's follows (Follow buttons, For-you topics) added to
    its authors, categories and searches: the digest and the site share one set of follows."""
    from paperwire.recommend import follows

    fl = follows(conn, user_id)
    if not fl:
        return sub

    def merged(own, kind):
        return list(dict.fromkeys(list(own) + [f["label"] or f["value"] for f in fl if f["kind"] == kind]))

    cats = list(dict.fromkeys(list(sub["categories"]) + [f["value"] for f in fl if f["kind"] == "category"]))
    return {**sub, "authors": merged(sub["authors"], "author"), "categories": cats,
            "queries": merged(sub["queries"], "keyword")}


def _trending(conn, cache: ComposeCache, freq: str, since: str, now: datetime) -> list[dict]:
    key = (freq, since)
    if key not in cache.trending:
        cache.trending[key] = rank.trending(conn, now=now, window_days=WINDOW_DAYS[freq], since=since,
                                            limit=TRENDING_POOL)
    return cache.trending[key]


def _picks(conn, cache: ComposeCache, user_id: int, since: str) -> list[dict]:
    # The reader's For-you model (paperwire.recommend) when it has enough signals; the
    # neighbours-of-recent-upvotes heuristic below while it does not.
    try:
        from paperwire.recommend import picks_since

        picked = picks_since(conn, user_id, since, limit=PICKS_PER_DIGEST * 4)
        if picked:
            return picked
    except Exception as exc:  # a model problem must never stop a digest
        cache.notes.add(f"For-you model unavailable ({type(exc).__name__}: {exc}); used similar papers")
    seeds = sql.user_seed_papers(conn, user_id, SEEDS)
    if not seeds:
        return []
    scored: dict[int, float] = {}
    if cache.similar_fn is not None:
        seed_papers = get_papers_by_rowid(conn, seeds)
        for rowid in seeds:
            if rowid not in cache.similar:
                cache.similar[rowid] = _similar(conn, cache, seed_papers.get(rowid))
            for rank_pos, p in enumerate(cache.similar[rowid]):
                if p["id"] not in seeds and p["feed_date"] >= since:
                    scored[p["id"]] = scored.get(p["id"], 0.0) + 1.0 / (rank_pos + 1)
    if scored:
        papers = get_papers_by_rowid(conn, list(scored))
        return [papers[i] for i in sorted(scored, key=lambda i: (-scored[i], -i)) if i in papers]
    return sql.related_fallback(conn, seeds, since, PICKS_PER_DIGEST * 4)


def _similar(conn, cache: ComposeCache, paper: dict | None) -> list[dict]:
    if paper is None:
        return []
    try:
        # 20 = the neighbour list the search area precomputes; more would make it
        # fall back to live vector scans for every seed.
        hits = cache.similar_fn(conn, paper["paper_id"], limit=20)
        rowids = [h.rowid for h in hits]
    except Exception as exc:  # the index may be unbuilt or its model unavailable
        cache.notes.add(f"similar papers unavailable ({type(exc).__name__}: {exc}); used shared authors/categories")
        cache.similar_fn = None
        return []
    papers = get_papers_by_rowid(conn, rowids)
    return [papers[r] for r in rowids if r in papers]


def _search(conn, cache: ComposeCache, query: str, since: str) -> list[dict]:
    if cache.search_fn is not None:
        try:
            # Lexical: "new papers matching my words", best matches first. Hybrid would load an
            # embedding model (~250 MB, seconds) into the sender for little gain here. Only
            # papers with every word of the saved search count, as in the text match below: a
            # ranked search also lists papers that match some of the words.
            res = cache.search_fn(conn, query, mode="lexical", limit=50, after=since)
            from paperwire.index.coverage import papers_with_every_word
            from paperwire.index.query import parse_query

            rowids = papers_with_every_word(conn, parse_query(res.query).words, [h.rowid for h in res.hits])
            papers = get_papers_by_rowid(conn, rowids)
            found = [papers[r] for r in rowids if r in papers and papers[r]["feed_date"] >= since]
            if found or cache.search_indexed(conn):
                return found
            # No hits from an index that was never built: the text match below still finds them.
        except Exception as exc:
            cache.notes.add(f"search unavailable for {query!r} ({type(exc).__name__}); used a plain text match")
    words = [w for w in query.replace('"', " ").split() if w.upper() not in ("AND", "OR", "NOT")]
    return sql.recent_matching(conn, words[:8], since, PER_QUERY * 3)
