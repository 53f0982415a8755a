"""A reader's "For you" feed: feedback, follows, the per-reader model and its private feed.

Every write runs in one transaction with a bump of the reader's revision (``user_revs``),
which keys the cached model (``engine.trained``): the next page view after a click is
ranked by a model that knows about the click. Web, CLI and the digest call only this module.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import sqlite3
from dataclasses import dataclass

from paperwire.model import normalize_title
from paperwire.recommend import engine
from paperwire.recommend.engine import WINDOW_DAYS, Pick, least_sure, signals, window_bounds
from paperwire.store import feedback as sql
from paperwire.store import library as lib_store
from paperwire.store.db import transaction
from paperwire.store.papers import get_paper, get_papers_by_rowid

__all__ = ["RecommendError", "dismissed", "dismissed_in_order", "not_interested", "more_like_this", "follow", "follows", "recommend", "to_rate",
           "new_feed_token", "revoke_feed_token", "user_for_feed_token", "WINDOW_DAYS", "Pick", "window_bounds",
           "signals", "least_sure", "dismissed", "picks_since", "export_data", "topic_choices", "category_name"]

_CATEGORY = re.compile(r"^[a-z][a-z-]*(\.[A-Za-z-]{1,12})?$")
MAX_FOLLOW = 200


class RecommendError(ValueError):
    """Bad input (unknown paper, bad category, ...); the message is for people."""


@dataclass
class ForYou:
    picks: list[dict]   # paper dicts with "score", "why", "why_papers"
    info: dict


def _paper(conn: sqlite3.Connection, ident: str | int) -> dict:
    if isinstance(ident, int):
        p = get_papers_by_rowid(conn, [ident]).get(ident)
    else:
        ident = (ident or "").strip()[:300]
        p = get_paper(conn, ident) if ident else None
    if p is None:
        raise RecommendError(f"no paper {str(ident)[:100]!r}")
    return p


def _feedback(conn, user_id: int, ident, kind: str, undo: bool) -> bool:
    rowid = _paper(conn, ident)["id"]
    with transaction(conn):
        changed = sql.delete_feedback(conn, user_id, rowid, kind) if undo else sql.insert_feedback(conn, user_id, rowid, kind)
        if changed:
            lib_store.bump_user_rev(conn, user_id)
    return changed


def not_interested(conn: sqlite3.Connection, user_id: int, ident: str | int, *, undo: bool = False) -> bool:
    """Mark a paper "not interested" (a negative signal; hidden from this reader's For-you
    feed, digest picks and Atom feed), or undo that. True when something changed."""
    return _feedback(conn, user_id, ident, "not_interested", undo)


def more_like_this(conn: sqlite3.Connection, user_id: int, ident: str | int, *, undo: bool = False) -> bool:
    """"More like this": a positive signal that weighs twice a save."""
    return _feedback(conn, user_id, ident, "more_like_this", undo)


def dismissed(conn: sqlite3.Connection, user_id: int) -> set[int]:
    """Row ids the reader marked not interested."""
    return set(sql.feedback_rowids(conn, user_id, "not_interested"))


def dismissed_in_order(conn: sqlite3.Connection, user_id: int) -> list[int]:
    """Row ids the reader marked not interested, oldest first (the hidden-papers list)."""
    return sql.feedback_rowids(conn, user_id, "not_interested")


def _follow_key(conn, kind: str, value: str) -> tuple[str, str]:
    value = (value or "").strip()
    if not value or len(value) > MAX_FOLLOW:
        raise RecommendError(f"a {kind} to follow must be 1-{MAX_FOLLOW} characters")
    if kind == "category":
        if not _CATEGORY.match(value):
            raise RecommendError(f"{value[:40]!r} is not an arXiv category (like cs.CL or hep-th)")
        return value, category_name(value)
    if kind == "author":
        norm = normalize_title(value)
        if not norm:
            raise RecommendError("an author name needs letters")
        return norm, sql.author_label(conn, norm) or value
    if kind == "keyword":
        return " ".join(value.lower().split()), value
    raise RecommendError(f"unknown follow kind {kind!r}: use category, author or keyword")


def follow(conn: sqlite3.Connection, user_id: int, kind: str, value: str, *, undo: bool = False) -> bool:
    """Follow (or with ``undo`` unfollow) a category, an author or a keyword."""
    key, label = _follow_key(conn, kind, value)
    with transaction(conn):
        changed = sql.delete_follow(conn, user_id, kind, key) if undo else sql.insert_follow(conn, user_id, kind, key, label)
        if changed:
            lib_store.bump_user_rev(conn, user_id)
    return changed


def follows(conn: sqlite3.Connection, user_id: int) -> list[dict]:
    """The reader's follows: ``[{"kind", "value", "label", "created_at"}]``."""
    return sql.list_follows(conn, user_id)


def is_following(conn: sqlite3.Connection, user_id: int, kind: str, value: str) -> bool:
    try:
        key, _ = _follow_key(conn, kind, value)
    except RecommendError:
        return False
    return any(f["kind"] == kind and f["value"] == key for f in sql.list_follows(conn, user_id))


def recommend(conn: sqlite3.Connection, user_id: int, *, window: str = "week", limit: int = 30,
              offset: int = 0, sig: engine.Signals | None = None) -> ForYou:
    """The reader's picks for a window (day, week, month or all), best first. Never a
    paper in the library, upvoted, or marked not interested; each carries ``why``."""
    if window not in WINDOW_DAYS:
        raise RecommendError(f"window must be one of {', '.join(WINDOW_DAYS)}")
    limit = max(0, min(int(limit), 500))
    picks, info = engine.rank_window(conn, user_id, window=window, limit=limit, offset=max(0, int(offset)), sig=sig)
    papers = get_papers_by_rowid(conn, [p.rowid for p in picks])
    out = []
    for p in picks:
        paper = papers.get(p.rowid)
        if paper is None or paper.get("hidden"):
            continue
        out.append({**paper, "score": round(p.score, 4), "why": p.why, "why_papers": p.why_papers})
    info["cold"] = info["mode"] == "cold"
    return ForYou(out, info)


def picks_since(conn: sqlite3.Connection, user_id: int, since: str, *, limit: int = 20) -> list[dict]:
    """The model's picks listed since ``since`` (the digest's "Picked for you"), or [] while
    the reader has too few signals for a model (the digest then uses its own fallback)."""
    picks, info = engine.rank_window(conn, user_id, limit=limit, bounds=(since, None))
    if info["mode"] != "model":
        return []
    papers = get_papers_by_rowid(conn, [p.rowid for p in picks])
    return [{**papers[p.rowid], "why": p.why} for p in picks if p.rowid in papers and not papers[p.rowid].get("hidden")]


def to_rate(conn: sqlite3.Connection, user_id: int, n: int = 10) -> list[dict]:
    """"Rate these 10 to tune your feed": the papers the model is least sure of."""
    ids = least_sure(conn, user_id, n)
    papers = get_papers_by_rowid(conn, ids)
    return [papers[i] for i in ids if i in papers]


# ---------------------------------------------------------------- private Atom feed

def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_feed_token(conn: sqlite3.Connection, user_id: int) -> str:
    """A fresh secret for the reader's private For-you Atom URL; any older one stops working."""
    token = secrets.token_urlsafe(32)
    with transaction(conn):
        sql.delete_feed_tokens(conn, user_id)
        sql.insert_feed_token(conn, user_id, _hash(token))
    return token


def revoke_feed_token(conn: sqlite3.Connection, user_id: int) -> bool:
    """Stop the private feed URL from working."""
    with transaction(conn):
        return sql.delete_feed_tokens(conn, user_id) > 0


def has_feed_token(conn: sqlite3.Connection, user_id: int) -> bool:
    return sql.has_feed_token(conn, user_id)


def user_for_feed_token(conn: sqlite3.Connection, token: str) -> int | None:
    """The reader a feed URL's token belongs to (None: unknown or revoked)."""
    if not token or len(token) > 200:
        return None
    return sql.feed_token_user(conn, _hash(token))


# ---------------------------------------------------------------- topics and data

# Names of the arXiv categories the topic picker offers (the store's biggest first).
CATEGORY_NAMES = {
    "cs.AI": "Artificial Intelligence", "cs.CL": "Computation and Language", "cs.CV": "Computer Vision",
    "cs.LG": "Machine Learning", "cs.IR": "Information Retrieval", "cs.RO": "Robotics", "cs.CR": "Cryptography and Security",
    "cs.DS": "Data Structures and Algorithms", "cs.SE": "Software Engineering", "cs.DC": "Distributed Computing",
    "cs.NE": "Neural and Evolutionary Computing", "cs.HC": "Human-Computer Interaction", "cs.IT": "Information Theory",
    "cs.NI": "Networking", "cs.PL": "Programming Languages", "cs.DB": "Databases", "cs.CC": "Computational Complexity",
    "cs.LO": "Logic in Computer Science", "cs.GT": "Game Theory", "cs.SI": "Social and Information Networks",
    "stat.ML": "Machine Learning (Statistics)", "math.OC": "Optimization and Control", "math.PR": "Probability",
    "math.CO": "Combinatorics", "math.AG": "Algebraic Geometry", "math.NT": "Number Theory", "math.AP": "Analysis of PDEs",
    "math-ph": "Mathematical Physics", "math.MP": "Mathematical Physics", "quant-ph": "Quantum Physics",
    "hep-th": "High Energy Physics - Theory", "hep-ph": "High Energy Physics - Phenomenology",
    "hep-ex": "High Energy Physics - Experiment", "hep-lat": "High Energy Physics - Lattice",
    "gr-qc": "General Relativity and Quantum Cosmology", "astro-ph": "Astrophysics", "nucl-th": "Nuclear Theory",
    "cond-mat.mes-hall": "Mesoscale and Nanoscale Physics", "cond-mat.str-el": "Strongly Correlated Electrons",
    "cond-mat.stat-mech": "Statistical Mechanics", "cond-mat.mtrl-sci": "Materials Science",
    "cond-mat.supr-con": "Superconductivity", "cond-mat.soft": "Soft Condensed Matter", "physics.optics": "Optics",
    "eess.IV": "Image and Video Processing", "eess.SP": "Signal Processing", "eess.AS": "Audio and Speech Processing",
    "q-bio.NC": "Neurons and Cognition", "q-bio.QM": "Quantitative Methods", "econ.EM": "Econometrics",
}


def category_name(cat: str) -> str:
    """``"Computation and Language (cs.CL)"``, or the code where its name is not known."""
    name = CATEGORY_NAMES.get(cat)
    return f"{name} ({cat})" if name else cat


def topic_choices(conn: sqlite3.Connection, limit: int = 40) -> list[dict]:
    """Categories to pick from: the store's biggest, with names and paper counts."""
    return [{"category": c, "name": category_name(c), "papers": n} for c, n in sql.category_counts(conn, limit)]


def export_data(conn: sqlite3.Connection, user_id: int) -> dict:
    """The reader's feedback and follows (for "download my data")."""
    return {"feedback": sql.feedback_rows(conn, user_id), "follows": sql.list_follows(conn, user_id),
            "for_you_feed": {"active": sql.has_feed_token(conn, user_id)}}
