"""The result set of a search: which candidates may be shown (hidden flags, the
"nothing matches" threshold) and how many there are (totals).

A query's result set is every lexical match plus, in hybrid mode, those of the nearest
papers by meaning whose cosine reaches the embedder's no-match threshold (see
:func:`paperwire.index.search.search`). It does not depend on the sort or the page, so
neither does the total: exact when every lexical match is in hand or counted, else a
lower bound.
"""

from __future__ import annotations

import sqlite3
import threading
from typing import Sequence

from paperwire.index.query import ParsedQuery, fts_expression
from paperwire.store import search as sql
from paperwire.store.accounts import cache_revs
from paperwire.store.meta import database_file

# Best cosine below which a query with no lexical match has no results, by embedder name
# prefix. MiniLM's was calibrated on SciFact train claims and our own gibberish and
# off-topic queries (bench/search_nomatch.py, docs/search.md). The fake test embedder has
# none: its hashed bags of words give gibberish cosines as high as real queries'.
NO_MATCH_COSINE = {"minilm": 0.33}


def no_match_cosine(emb) -> float | None:
    """The best-cosine threshold below which a query without lexical matches has no
    results, for this embedder (None: never empty by similarity). An embedder may carry
    its own ``no_match_cosine``; MiniLM's is calibrated in docs/search.md."""
    own = getattr(emb, "no_match_cosine", None)
    if own is not None:
        return float(own)
    name = getattr(emb, "name", "") or ""
    for prefix, value in NO_MATCH_COSINE.items():
        if name.startswith(prefix):
            return value
    return None


class _Flags:
    """Hidden papers and ``{rowid: (hidden, date, votes)}``, remembered per database and
    store revisions.

    Every search drops hidden candidates; date and vote sorts also need each candidate's
    date and votes. Both change only with a write that bumps ``meta.rev`` or ``meta.web_rev``
    (imports, votes, hides: the same pair that keys the web page cache), so a memo keyed on
    the pair is never stale: the revisions are read before the rows. Hidden papers are few
    and come from a partial index in one query, so first pages by relevance (most searches)
    skip the per-candidate read: ~200 random B-tree lookups, ~0.3 ms at 100k papers."""

    MAX_ENTRIES = 250_000  # ~25 MB of per-paper entries; then they start over

    def __init__(self):
        self._lock = threading.Lock()
        self._key: tuple | None = None
        self._hidden: frozenset[int] | None = None
        self._data: dict[int, tuple] = {}

    def _current(self, conn: sqlite3.Connection) -> tuple[tuple, frozenset[int] | None, dict[int, tuple]]:
        key = (database_file(conn) or id(conn), cache_revs(conn))
        with self._lock:
            if key != self._key or len(self._data) > self.MAX_ENTRIES:
                self._key, self._hidden, self._data = key, None, {}
            return key, self._hidden, self._data

    def hidden(self, conn: sqlite3.Connection) -> frozenset[int]:
        """Rowids of the hidden papers."""
        key, hidden, _ = self._current(conn)
        if hidden is None:
            hidden = sql.hidden_rowids(conn)
            with self._lock:
                # Another thread may have moved the key on (a hide committed meanwhile):
                # then this set may be older than that revision and must not be kept for it.
                if self._key == key:
                    self._hidden = hidden
        return hidden

    def meta(self, conn: sqlite3.Connection, rowids: Sequence[int]) -> dict[int, tuple]:
        """``{rowid: (hidden, date, votes)}`` of the papers that exist among ``rowids``."""
        _, _, data = self._current(conn)
        out = {r: data[r] for r in rowids if r in data}
        missing = [r for r in rowids if r not in out]
        if missing:
            fresh = sql.paper_meta(conn, missing)
            out.update(fresh)
            data.update(fresh)  # a dict replaced meanwhile is simply dropped with its key
        return out


def count_results(conn, pq: ParsedQuery, lex, lex_asked: int, near: list[int], hidden, fast, *,
                  cap: int) -> tuple[int, bool]:
    """(size of the result set, exact?): visible lexical matches plus the nearest papers by
    meaning that are not among them. Exact when every lexical match is in hand or counted
    (up to ``cap``); else a lower bound."""
    lexset = {r for r, _ in lex}
    if len(lex) < lex_asked:
        n_lex, members = len(lexset - hidden), lexset
        exact = len(lexset) < cap
        n_lex = min(n_lex, cap)
    else:
        n, members = lexical_count(conn, pq, fast, cap), None
        if n is None:
            return len(lexset.union(near) - hidden), False
        exact = n < cap
        outside = [r for r in near if r not in lexset]
        hid = [r for r in hidden]
        try:
            got = lexical_members(conn, pq, outside + hid, fast)
        except Exception:  # noqa: BLE001 - a count must never fail a search
            got = None
        if got is None:
            return max(n, len(lexset.union(near))), False
        members = lexset | got
        n_lex = max(0, min(n, cap) - len(got.intersection(hid)))
    extra = sum(1 for r in dict.fromkeys(near) if r not in members and r not in hidden)
    return n_lex + extra, exact


def lexical_count(conn, pq: ParsedQuery, fast, cap: int) -> int | None:
    """Papers matching the query lexically, counted up to ``cap`` (None: cannot count)."""
    if fast is not None and (pq.words or pq.phrases):
        from paperwire.index.lexical import fast_filters

        return min(cap, fast.count(pq.words, **fast_filters(pq)))
    expr = fts_expression(pq)
    if not expr:
        return None
    try:
        if pq.date_from or pq.date_to:
            return sql.lexical_count_dated(conn, expr, cap, pq.date_from, pq.date_to)
        return sql.lexical_count(conn, expr, cap)
    except sqlite3.OperationalError:
        return None


def lexical_members(conn, pq: ParsedQuery, rowids: list[int], fast) -> set[int] | None:
    """Which of ``rowids`` match the query lexically (None: cannot tell)."""
    if not rowids:
        return set()
    if fast is not None and (pq.words or pq.phrases):
        from paperwire.index.lexical import fast_filters

        return fast.members(pq.words, rowids, **fast_filters(pq))
    expr = fts_expression(pq)
    if not expr:
        return None
    try:
        return sql.lexical_members(conn, expr, rowids, published_from=pq.date_from, published_to=pq.date_to)
    except sqlite3.OperationalError:
        return None
