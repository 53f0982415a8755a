"""Trending: votes with time decay; the SQL ranking equals the documented formula."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from paperwire.ingest import import_records
from paperwire.model import PaperRecord
from paperwire.rank import trending, trending_score

NOW = datetime(2024, 3, 20, 12, 0, tzinfo=timezone.utc)


def at(hours_ago: float) -> str:
    return (NOW - timedelta(hours=hours_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def add(conn, n, hours_ago, votes, **kw):
    rec = PaperRecord(title=f"Paper {n}", abstract="text", source="hf-daily", arxiv_id=f"2403.{n:05d}",
                      listed_at=at(hours_ago), upvotes=votes, **kw)
    import_records(conn, [rec])


def test_decay_orders_by_votes_per_age(conn):
    add(conn, 1, hours_ago=2, votes=5)     # fresh, some votes
    add(conn, 2, hours_ago=30, votes=40)   # a day old, many votes
    add(conn, 3, hours_ago=100, votes=60)  # four days old
    add(conn, 4, hours_ago=1, votes=0)     # brand new, no votes
    ranked = trending(conn, now=NOW)
    got = [p["paper_id"] for p in ranked]
    expected = sorted(
        [("2403.00001", 5, 2), ("2403.00002", 40, 30), ("2403.00003", 60, 100), ("2403.00004", 0, 1)],
        key=lambda t: -trending_score(t[1], t[2]),
    )
    assert got == [e[0] for e in expected]
    for p, (_, v, h) in zip(ranked, expected):
        assert abs(p["score"] - trending_score(v, h)) <= 1e-6 * trending_score(v, h)  # julianday precision
        assert p["votes"] == v


def test_local_votes_count_and_hidden_and_window(conn):
    add(conn, 1, hours_ago=5, votes=1)
    add(conn, 2, hours_ago=5, votes=1)
    add(conn, 3, hours_ago=24 * 30, votes=999)  # outside the 7-day window
    conn.execute("UPDATE papers SET local_upvotes = 3 WHERE paper_id = '2403.00002'")
    assert [p["paper_id"] for p in trending(conn, now=NOW)] == ["2403.00002", "2403.00001"]
    conn.execute("UPDATE papers SET hidden = 1 WHERE paper_id = '2403.00002'")
    assert [p["paper_id"] for p in trending(conn, now=NOW)] == ["2403.00001"]
    month = trending(conn, now=NOW, since="2024-02-01", until="2024-02-29")
    assert [p["paper_id"] for p in month] == ["2403.00003"]


def test_pagination(conn):
    for i in range(1, 26):
        add(conn, i, hours_ago=i, votes=i * 2)
    page1 = trending(conn, now=NOW, limit=10)
    page2 = trending(conn, now=NOW, limit=10, offset=10)
    assert len(page1) == 10 and len(page2) == 10
    assert not {p["paper_id"] for p in page1} & {p["paper_id"] for p in page2}
    assert page1[-1]["score"] >= page2[0]["score"]
