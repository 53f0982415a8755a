"""The store's hot paths on SQLite, on PostgreSQL through paperwire's dialect layer, and on
PostgreSQL through SQLAlchemy Core: the measurement behind the choice in store/dialect.py.

    python bench/store_engines.py [N_PAPERS] [--pg URL]

Without ``--pg`` it starts a throwaway cluster (tests/pg_support.py; Debian's postgresql
binaries). It imports N synthetic snapshot records (bench/synth_snapshot.py) into a fresh
SQLite file and a fresh PostgreSQL database (records/s each), then times, per call on an
open connection: search metadata reads (``get_papers_by_rowid`` of 20 random papers, what a
search results page reads), a feed page (50 papers by date) and a trending page (50 by
score), and a pool checkout + return. The SQLAlchemy variant runs the very SQL the dialect
layer sends (``text()`` with the same parameters, rows decoded the same way), on SQLAlchemy's
own pool over the same psycopg driver. SQLAlchemy is only needed here: pip install sqlalchemy.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "bench")]

from paperwire import feed  # noqa: E402
from paperwire.sources import import_files  # noqa: E402
from paperwire.store import dialect, papers  # noqa: E402
from paperwire.store.db import connect  # noqa: E402

# Set from the corpus: the newest feed day (feed page) and the week before it (trending).
SINCE = UNTIL = WEEK = NOW = ""


def per_call_us(fn, seconds: float = 1.5) -> float:
    """Median of 5 rounds of mean microseconds per call."""
    fn()
    rounds = []
    for _ in range(5):
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds / 5:
            fn()
            n += 1
        rounds.append((time.perf_counter() - t0) / n * 1e6)
    return sorted(rounds)[2]


def timed_import(target: str, src: Path) -> float:
    conn = connect(target)
    t0 = time.perf_counter()
    report = import_files(conn, [src], progress=False, parallel=False, bulk=False)
    wall = time.perf_counter() - t0
    conn.close()
    return report.added / wall


def sqlalchemy_paths(url: str, ids_pick):
    """The same three reads through SQLAlchemy Core (text SQL, QueuePool, psycopg)."""
    import sqlalchemy as sa

    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1), pool_size=4)
    conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    by_id = sa.text("SELECT * FROM papers WHERE id IN :ids").bindparams(sa.bindparam("ids", expanding=True))
    date_page = sa.text("SELECT * FROM papers WHERE hidden=0 AND feed_date >= :s AND feed_date <= :u "
                        "ORDER BY feed_date DESC, published DESC, id DESC LIMIT :l OFFSET :o")
    trend = sa.text(
        "SELECT *, (upvotes + local_upvotes) AS votes, (upvotes + local_upvotes + 1.0) / "
        "pow(max((julianday(:now) - julianday(COALESCE(listed_at, published, first_seen))) * 24.0, 0.0)"
        " + :offset, :gravity) AS score FROM papers WHERE hidden = 0 AND feed_date >= :since "
        "AND feed_date <= :until ORDER BY score DESC, id DESC LIMIT :limit OFFSET :skip")

    def decode(rows):
        out = []
        for r in rows:
            d = dict(r._mapping)
            d["authors"], d["categories"] = json.loads(d["authors"]), json.loads(d["categories"])
            out.append(d)
        return out

    def reads():
        return {d["id"]: d for d in decode(conn.execute(by_id, {"ids": ids_pick()}))}

    def page():
        return decode(conn.execute(date_page, {"s": SINCE, "u": UNTIL, "l": 50, "o": 0}))

    def trending():
        return decode(conn.execute(trend, {"now": NOW[:19] + "Z", "offset": feed.rank.OFFSET_HOURS,
                                           "gravity": feed.rank.GRAVITY, "since": WEEK,
                                           "until": UNTIL, "limit": 50, "skip": 0}))

    def checkout():
        with engine.connect() as c:
            c.exec_driver_sql("SELECT 1")

    return {"search metadata (20 by id)": reads, "feed page (50 by date)": page,
            "trending page (50)": trending, "pool checkout + SELECT 1": checkout}, engine


def store_paths(target: str, ids_pick):
    conn = connect(target)

    def checkout():
        c = connect(target, migrate_schema=False)
        c.execute("SELECT 1").fetchone()
        c.close()

    return {
        "search metadata (20 by id)": lambda: papers.get_papers_by_rowid(conn, ids_pick()),
        "feed page (50 by date)": lambda: feed.papers_between(conn, SINCE, UNTIL, limit=50),
        "trending page (50)": lambda: feed.rank.trending(conn, now=datetime.fromisoformat(NOW), since=WEEK,
                                                         until=UNTIL, limit=50),
        "pool checkout + SELECT 1": checkout,
    }, conn


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("n", type=int, nargs="?", default=20000)
    ap.add_argument("--pg", help="an empty PostgreSQL database URL (default: a throwaway cluster)")
    args = ap.parse_args()
    from synth_snapshot import write_snapshot

    work = Path(tempfile.mkdtemp(prefix="pw-engines-"))
    cluster = None
    if args.pg:
        url = args.pg
    else:
        from pg_support import PgCluster, pg_bin_dir

        cluster = PgCluster(pg_bin_dir()).start()
        url = cluster.create_database()
    try:
        src = write_snapshot(args.n, work / "synth.jsonl")
        sqlite_path = str(work / "p.db")
        rates = {"sqlite": timed_import(sqlite_path, src), "postgresql": timed_import(url, src)}
        global SINCE, UNTIL, WEEK, NOW
        c = connect(sqlite_path)
        UNTIL = SINCE = c.execute("SELECT MAX(feed_date) FROM papers").fetchone()[0]
        day = datetime.fromisoformat(UNTIL + "T12:00:00+00:00")
        WEEK, NOW = (day - timedelta(days=6)).strftime("%Y-%m-%d"), day.isoformat()
        per_day = c.execute("SELECT COUNT(*) FROM papers WHERE feed_date = ?", (UNTIL,)).fetchone()[0]
        c.close()
        print(f"newest feed day {UNTIL}: {per_day} papers")
        rng = random.Random(1)
        ids = list(range(1, args.n + 1))

        def ids_pick():
            return rng.sample(ids, 20)

        results: dict[str, dict[str, float]] = {}
        for name, (paths, handle) in (("sqlite", store_paths(sqlite_path, ids_pick)),
                                      ("pg: dialect layer", store_paths(url, ids_pick)),
                                      ("pg: SQLAlchemy Core", sqlalchemy_paths(url, ids_pick))):
            results[name] = {k: per_call_us(fn) for k, fn in paths.items()}
            handle.close() if hasattr(handle, "close") else handle.dispose()
        print(f"papers: {args.n}; import records/s: sqlite {rates['sqlite']:,.0f}, "
              f"postgresql {rates['postgresql']:,.0f}")
        names = list(results)
        print("| path | " + " | ".join(names) + " | SQLAlchemy / dialect |")
        print("|---|" + "---|" * (len(names) + 1))
        for path in results[names[0]]:
            row = [results[n][path] for n in names]
            print(f"| {path} | " + " | ".join(f"{v:,.0f} µs" for v in row) + f" | {row[2] / row[1]:.2f}x |")
    finally:
        dialect.close_pools()
        if cluster:
            cluster.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
