"""Scoring a reader's window: signals in, ranked picks with a "why" out.

Two stages keep a large window cheap: every candidate gets the LR logit (one matrix-vector
product), then a shortlist (best logits, followed papers, BM25 profile hits within the
window) gets kNN max-similarity and the blend. The trained model is cached per (database,
reader, reader revision, votes, signals, vector index state), and with it the picks of each
window it scored (keyed by the shared Window object, i.e. the store revision), so the page
after a feedback click is scored by a freshly trained model and every other view is a lookup.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import cached_property
from datetime import date, datetime, timedelta, timezone

import numpy as np

from paperwire.recommend import model as mdl
from paperwire.recommend import window as _window
from paperwire.recommend.lexical import profile_terms
from paperwire.recommend.window import Window, window_of
from paperwire.recommend.window import members as _members
from paperwire.recommend.window import positions as _positions
from paperwire.store import feedback as sql
from paperwire.store import library as lib_store
from paperwire.store.meta import database_file

MIN_POSITIVES = 3     # below this the feed is follows + trending (cold start)
MAX_POSITIVES = 1000  # newest signals used for training
WEAK_NEGATIVES = 300  # at least; one per positive beyond that, at most MAX_NEGATIVES
MAX_NEGATIVES = 1000
PROFILE_PAPERS = 100  # newest positives whose words make the BM25 profile query
LEX_HITS = 300        # profile-query hits that join the shortlist
FOLLOW_HITS = 300     # newest papers per follow kind that join the shortlist
SHORTLIST = 400
WINDOW_DAYS = {"day": 1, "week": 7, "month": 30, "all": None}
NEGATIVE_POOL_DAYS = 90
PUBLISHED_SLACK_DAYS = 7  # the lexical index dates papers by publication, the window by listing
FOLLOW_BOOST = {"author": 1.0, "category": 0.5, "keyword": 0.5}
NEAR_ENOUGH = 0.35  # cosine above which "similar to <saved paper>" is worth saying

_CACHE: OrderedDict = OrderedDict()
_CACHE_SIZE = 256
_LOCK = threading.Lock()


@dataclass
class Signals:
    saved: list[int]
    upvoted: list[int]
    more: list[int]
    dismissed: list[int]
    follows: list[dict]

    @cached_property
    def positives(self) -> list[int]:
        seen: dict[int, None] = {}
        for r in self.saved + self.upvoted + self.more:
            seen.setdefault(r, None)
        return list(seen)[-MAX_POSITIVES:]

    @cached_property
    def excluded(self) -> set[int]:
        return set(self.saved) | set(self.upvoted) | set(self.more) | set(self.dismissed)

    @cached_property
    def _saved_set(self) -> set[int]:
        return set(self.saved)

    @cached_property
    def more_set(self) -> set[int]:
        return set(self.more)

    def kind_of(self, rowid: int) -> str:
        if rowid in self._saved_set:
            return "saved"
        if rowid in self.more_set:
            return "asked for more like"
        return "upvoted"


@dataclass
class Pick:
    rowid: int
    score: float
    why: str
    why_papers: list[dict] = field(default_factory=list)  # [{"paper_id", "title"}]


@dataclass
class Trained:
    linear: mdl.Linear | None
    terms: list[str]      # the reader's distinctive words (the BM25 profile query, per window)
    # (since, until, need) -> (the Window they were scored on, picks): a reload of the same
    # page is a lookup. Everything the picks depend on is in the model's key (reader revision,
    # votes, signals, index state) or is the Window object itself (store revision), compared
    # by identity; the entry holds the Window, so its id cannot be reused meanwhile.
    picks: dict = field(default_factory=dict)


def signals(conn, user_id: int) -> Signals:
    """Everything the model learns from, read in one go."""
    return Signals(saved=lib_store.saved_rowids(conn, user_id), upvoted=sql.upvoted_rowids(conn, user_id),
                   more=sql.feedback_rowids(conn, user_id, "more_like_this"),
                   dismissed=sql.feedback_rowids(conn, user_id, "not_interested"),
                   follows=sql.list_follows(conn, user_id))


def window_bounds(conn, window: str, *, today: date | None = None) -> tuple[str | None, str | None]:
    """``(since, until)`` of a For-you window, ending at the newest listed day (an archive
    or a paused harvester still shows its last days, as the feed does)."""
    if window not in WINDOW_DAYS:
        raise ValueError(f"window must be one of {', '.join(WINDOW_DAYS)}, not {window[:20]!r}")
    days = WINDOW_DAYS[window]
    if days is None:
        return None, None
    latest = sql.latest_feed_date(conn)
    end = date.fromisoformat(latest) if latest else (today or datetime.now(timezone.utc).date())
    if today is not None and today < end:
        end = today
    return (end - timedelta(days=days - 1)).isoformat(), end.isoformat()


def vector_index(conn):
    """The shared vector index of the model search uses, or None (no embeddings yet)."""
    from paperwire.store.search import get_state

    name = get_state(conn, "model")
    if not name:
        return None
    try:
        from paperwire.index.vectors import shared_index

        idx = shared_index(conn, name)
    except Exception:  # an unbuilt or broken index must not break the page
        return None
    return idx if len(idx) else None


def _cached(key, build):
    with _LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    value = build()
    with _LOCK:
        _CACHE[key] = value
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return value


def clear_cache(*, windows: bool = True) -> None:
    """Forget every trained model, and the shared windows unless ``windows=False``."""
    with _LOCK:
        _CACHE.clear()
    if windows:
        _window.clear()


def trained(conn, user_id: int, sig: Signals, idx) -> Trained:
    """The reader's model, trained at most once per (reader revision, votes, index state)."""
    # The signals themselves are part of the key (not only the revision): a deleted account's
    # row id can be reused by a new one, whose model must never be the old reader's.
    key = (database_file(conn) or f":memory:{id(conn)}", user_id, lib_store.user_rev(conn, user_id),
           sql.vote_state(conn, user_id), hash((tuple(sig.positives), tuple(sig.dismissed))), getattr(idx, "model", None), getattr(idx, "seq", 0), len(idx) if idx else 0)
    return _cached(key, lambda: _train(conn, user_id, sig, idx))


def _train(conn, user_id: int, sig: Signals, idx) -> Trained:
    pos_ids = sig.positives
    briefs = sql.paper_texts(conn, pos_ids[-PROFILE_PAPERS:])
    bad = sql.paper_texts(conn, sig.dismissed[-PROFILE_PAPERS:])
    terms = profile_terms(briefs, exclude=bad) if len(pos_ids) >= 2 else []
    if idx is None or len(pos_ids) < MIN_POSITIVES:
        return Trained(None, terms)
    month = window_of(conn, *window_bounds(conn, "month"), idx)
    found, pos = _vectors_of(idx, month, pos_ids)
    if len(found) < MIN_POSITIVES:
        return Trained(None, terms)
    more = np.fromiter(sig.more_set, np.int64, len(sig.more_set))
    weights = np.where(np.isin(found, more), 2.0, 1.0).astype(np.float32)
    rng = np.random.default_rng(user_id)  # the same reader gets the same negatives: stable pages
    # Weak negatives: random unrated papers of the last 30 listed days (what the reader
    # scrolled past), else of the whole index when the store is small.
    excl = np.fromiter(sig.excluded, np.int64, len(sig.excluded))
    want = min(max(WEAK_NEGATIVES, len(found)), MAX_NEGATIVES)
    if len(month.ids) - len(excl) >= want:
        pool = np.flatnonzero(~_members(month.ids, excl))
        neg = month.vecs[np.sort(rng.choice(pool, size=want, replace=False))]
    else:
        pool = np.setdiff1d(idx.rowids(), excl)
        _, neg = idx.vectors_for(rng.choice(pool, size=min(want, len(pool)), replace=False) if len(pool) else pool)
    _, strong = idx.vectors_for(sig.dismissed[-MAX_POSITIVES:])
    if not len(neg) and not len(strong):
        return Trained(None, terms)
    linear = mdl.train(pos, weights, neg, strong_neg=strong, pos_ids=found)
    return Trained(linear, terms)


def _vectors_of(idx, win: Window, rowids: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """``idx.vectors_for(rowids)`` (found rowids and their vectors, in the given order),
    taking those in the window from its matrix: one binary search and one gather instead of
    the index's lookup per paper (~1 ms for 1,000 positives). The window was gathered from
    this same index state (its cache key), so the vectors are the same."""
    r = np.fromiter(rowids, np.int64, len(rowids))
    if win.vecs is None or not len(r) or not len(win.ids):
        return idx.vectors_for(rowids)
    at = np.minimum(np.searchsorted(win.ids, r), len(win.ids) - 1)
    inwin = win.ids[at] == r
    if inwin.all():
        return r, win.vecs[at]
    rest = np.flatnonzero(~inwin)
    rest_found, rest_vecs = idx.vectors_for(r[rest].tolist())
    ok = inwin.copy()
    ok[rest[np.isin(r[rest], rest_found)]] = True  # rowids are unique: found keeps their order
    slot = np.cumsum(ok) - 1
    out = np.empty((int(ok.sum()), win.vecs.shape[1]), np.float32)
    out[slot[inwin]] = win.vecs[at[inwin]]
    out[slot[ok & ~inwin]] = rest_vecs
    return r[ok], out


def _lexical(conn, terms: list[str], since: str | None, until: str | None) -> dict[int, float]:
    """BM25 of the profile words over the window's papers. The date filter matters: over the
    whole store the best 300 hits of a 1M-paper index held ~11 of the month's papers (the
    rest were dropped as outside the window), with it all 300 are candidates, and tantivy
    answers in a third of the time (1.9 vs 5.8 ms, F3 profile). The index's date is the
    published one, a few days before the listing: the range starts a week early and the
    window's own membership test does the rest."""
    if not terms:
        return {}
    try:
        from paperwire.index.lexical import lexical_search
        from paperwire.index.query import parse_query

        pq = parse_query(" ".join(terms), max_chars=4000)
        if since:
            pq.date_from = (date.fromisoformat(since) - timedelta(days=PUBLISHED_SLACK_DAYS)).isoformat()
        if until:
            pq.date_to = (date.fromisoformat(until) + timedelta(days=1)).isoformat()
        return dict(lexical_search(conn, pq, limit=LEX_HITS))
    except Exception:  # no lexical index yet: the embedding parts still rank
        return {}


def _follow_matches(conn, sig: Signals, since, until, win: Window) -> dict[int, tuple[str, str]]:
    cats = [f["value"] for f in sig.follows if f["kind"] == "category"]
    authors = [f["value"] for f in sig.follows if f["kind"] == "author"]
    # Authors: the name index is selective. Categories: from the window's shared map.
    out = sql.followed_rowids(conn, [], authors, since, until, FOLLOW_HITS) if authors else {}
    if cats:
        by_cat = win.by_category(conn)
        for c in cats:
            for r in by_cat.get(c, [])[:FOLLOW_HITS]:
                out.setdefault(r, ("category", c))
    for f in sig.follows:
        if f["kind"] != "keyword":
            continue
        try:
            from paperwire.index.search import search

            res = search(conn, f["value"], mode="lexical", limit=200, with_snippets=False, with_title_html=False,
                         **({"after": since} if since else {}))
            for h in res.hits:
                out.setdefault(h.rowid, ("keyword", f["value"]))
        except Exception:
            continue
    return out


def _follow_label(sig: Signals, kind: str, value: str) -> str:
    for f in sig.follows:
        if f["kind"] == kind and f["value"] == value:
            return f["label"] or value
    return value


def rank_window(conn, user_id: int, *, window: str = "week", limit: int = 30, offset: int = 0,
                sig: Signals | None = None, bounds: tuple[str | None, str | None] | None = None
                ) -> tuple[list[Pick], dict]:
    """The reader's picks in a window (or explicit ``bounds`` ``(since, until)``), best first,
    and facts about how they were made (``{"mode": "model" | "cold", "positives": n, ...}``)."""
    sig = sig or signals(conn, user_id)
    since, until = bounds if bounds is not None else window_bounds(conn, window)
    idx = vector_index(conn)
    win = window_of(conn, since, until, idx)
    excl = np.fromiter(sig.excluded, np.int64, len(sig.excluded))
    keep = ~_members(win.ids, excl)
    total = int(keep.sum())
    tr = trained(conn, user_id, sig, idx)
    info = {"mode": "model" if tr.linear is not None else "cold", "positives": len(sig.positives),
            "total": total, "window": window, "since": since, "until": until}
    need = offset + limit
    if not total or need <= 0:
        return [], info
    if tr.linear is not None and win.vecs is not None:
        hit = tr.picks.get((since, until, need))
        if hit is not None and hit[0] is win:
            picks = hit[1]
        else:
            picks = _model_picks(conn, sig, tr, win, keep, _follow_matches(conn, sig, since, until, win),
                                 _lexical(conn, tr.terms, since, until), need)
            if len(tr.picks) >= 8:
                tr.picks.clear()
            tr.picks[(since, until, need)] = (win, picks)
    else:
        follows = _follow_matches(conn, sig, since, until, win)
        picks = _cold_picks(conn, sig, tr, idx, win.ids[keep].tolist(), follows, since, until, need)
    return picks[offset:need], info


def _model_picks(conn, sig, tr: Trained, win: Window, keep: np.ndarray, follows, lex_hits: dict[int, float],
                 need) -> list[Pick]:
    found, vecs = win.ids, win.vecs
    n_short = min(max(SHORTLIST, 4 * need), int(keep.sum()))
    # The best logits: an int8 pass over the window, the rows near the cut rescored in float32.
    top = win.top_logits(tr.linear.w, keep, n_short)
    # The shortlist as window positions, all in numpy: best logits, followed papers, profile hits.
    extra = np.concatenate([_positions(found, list(follows)), _positions(found, list(lex_hits))])
    pos = np.unique(np.concatenate([top, extra[keep[extra]]]))
    ids = found[pos]
    sub = vecs[pos] if len(pos) else np.zeros((0, vecs.shape[1] if vecs.ndim == 2 else 0), np.float32)
    lex = _spread(ids, lex_hits, lex_hits.values())
    near, arg = tr.linear.nearest(sub)
    score = mdl.blend_scores(tr.linear, sub, lex, near=near) if len(ids) else np.zeros(0)
    if follows:
        score = score + _spread(ids, follows, (FOLLOW_BOOST.get(kind, 0.0) for kind, _ in follows.values()))
    order = np.argsort(-score, kind="stable")[:need]
    brief = sql.paper_brief(conn, [int(tr.linear.pos_ids[arg[i]]) for i in order]) if len(order) else {}
    out = []
    for i in order:
        r = int(ids[i])
        near_id = int(tr.linear.pos_ids[arg[i]])
        if near[i] >= NEAR_ENOUGH and near_id in brief:
            b = brief[near_id]
            why = f"Similar to \u201c{b['title']}\u201d, which you {sig.kind_of(near_id)}"
            papers = [b]
        elif r in follows:
            kind, value = follows[r]
            why, papers = _follow_why(sig, kind, value), []
        elif r in lex_hits and tr.terms:
            why, papers = "Uses words from your saved papers: " + ", ".join(tr.terms[:4]), []
        else:
            b = brief.get(near_id)
            why = f"Closest to \u201c{b['title']}\u201d, which you {sig.kind_of(near_id)}" if b else "Picked by your model"
            papers = [b] if b else []
        out.append(Pick(r, float(score[i]), why, papers))
    return out


def _spread(sorted_ids: np.ndarray, keys, values) -> np.ndarray:
    """``values`` (one per rowid in ``keys``) laid over ``sorted_ids`` (ascending), 0.0 where
    a rowid has none: a binary search instead of a dict lookup per shortlist row."""
    out = np.zeros(len(sorted_ids))
    if len(keys) and len(sorted_ids):
        k = np.fromiter(keys, np.int64, len(keys))
        v = np.fromiter(values, np.float64, len(keys))
        at = np.minimum(np.searchsorted(sorted_ids, k), len(sorted_ids) - 1)
        hit = sorted_ids[at] == k
        out[at[hit]] = v[hit]
    return out


def _follow_why(sig: Signals, kind: str, value: str) -> str:
    label = _follow_label(sig, kind, value)
    return {"author": f"By {label}, whom you follow", "category": f"In {label}, which you follow",
            "keyword": f"Matches \u201c{label}\u201d, which you follow"}.get(kind, "You follow this")


def _cold_picks(conn, sig, tr: Trained, idx, cands, follows, since, until, need) -> list[Pick]:
    """Few signals: followed papers and trending, blended; any positives' neighbours first."""
    from paperwire import rank

    cand_set = set(cands)
    trend = rank.trending(conn, now=_trend_now(until), since=since or "0000-01-01", until=until or "9999-12-31",
                          limit=max(200, 3 * need))
    tscore = {p["id"]: 1.0 / (10 + j) for j, p in enumerate(trend)}
    scores: dict[int, float] = {}
    why: dict[int, tuple[str, list[dict]]] = {}
    for r, (kind, value) in follows.items():
        if r in cand_set:
            scores[r] = 1.0 + FOLLOW_BOOST.get(kind, 0.0) + tscore.get(r, 0.0)
            why[r] = (_follow_why(sig, kind, value), [])
    if idx is not None and sig.positives:
        found, pos = idx.vectors_for(sig.positives)
        if len(found):
            brief = sql.paper_brief(conn, found.tolist())
            for j, r in enumerate(found):
                ids, sims = idx.search(pos[j], k=20, exclude=sig.excluded)
                for n_id, s in zip(ids.tolist(), sims.tolist()):
                    if n_id in cand_set and s >= NEAR_ENOUGH and s + 1.5 > scores.get(n_id, 0.0):
                        scores[n_id] = 1.5 + s
                        b = brief.get(int(r))
                        why[n_id] = (f"Similar to \u201c{b['title']}\u201d, which you {sig.kind_of(int(r))}", [b])
    for r, s in tscore.items():
        if r in cand_set and r not in scores:
            scores[r] = s
            why[r] = ("Trending now", [])
    if len(scores) < need:
        for r in cands:  # a quiet window: newest first after everything that has a reason
            if r not in scores:
                scores[r] = 0.0
                why[r] = ("New in this window", [])
            if len(scores) >= need:
                break
    order = sorted(scores, key=lambda r: (-scores[r], -r))[:need]
    return [Pick(r, float(scores[r]), why[r][0], why[r][1]) for r in order]


def _trend_now(until: str | None) -> datetime:
    now = datetime.now(timezone.utc)
    if until:
        end = datetime.fromisoformat(until).replace(tzinfo=timezone.utc) + timedelta(days=1)
        return min(end, now) if end < now else now
    return now


def least_sure(conn, user_id: int, n: int = 10, sig: Signals | None = None) -> list[int]:
    """"Rate these to tune your feed": the month's papers whose LR logit is nearest the
    decision boundary (the model is least sure of), or, before there is a model, trending
    papers from distinct categories."""
    sig = sig or signals(conn, user_id)
    since, until = window_bounds(conn, "month")
    excluded = sig.excluded
    idx = vector_index(conn)
    tr = trained(conn, user_id, sig, idx)
    win = window_of(conn, since, until, idx)
    if tr.linear is not None and win.vecs is not None and len(win.ids):
        excl = np.fromiter(excluded, np.int64, len(excluded))
        margin = np.where(np.isin(win.ids, excl), np.inf, np.abs(tr.linear.linear(win.vecs)))
        order = np.argsort(margin, kind="stable")[:n]
        return [int(win.ids[i]) for i in order if np.isfinite(margin[i])]
    from paperwire import rank

    trend = rank.trending(conn, now=_trend_now(until), since=since or "0000-01-01", until=until or "9999-12-31", limit=200)
    out, cats = [], set()
    for p in trend:
        if p["id"] in excluded or p.get("primary_category") in cats:
            continue
        cats.add(p.get("primary_category"))
        out.append(p["id"])
        if len(out) >= n:
            break
    for p in trend:  # fewer categories than places: fill with the next trending papers
        if len(out) >= n:
            break
        if p["id"] not in excluded and p["id"] not in out:
            out.append(p["id"])
    return out
