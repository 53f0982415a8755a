"""The trending query on PostgreSQL: the stored reference time (m0602) against the per-row parse.

    cd bench && PYTHONPATH=../tests python pg_trending_query.py [--corpus 100k] [--runs 300] [--engine postgresql|sqlite]

One throwaway cluster, one store: the synthetic snapshot of bench/pg_vs_sqlite.py (20,000
papers a month, ~700 a day) imported with the product's importer. Then, interleaved run by run
on one connection, the product's trending statement (``store.papers.trending_rows``, which
reads ``rank_jd``) and the same statement with the score computed as before m0602,
``julianday(COALESCE(listed_at, published, first_seen))`` per row, for a day's and a week's
window of the newest papers. Wall time per statement on loopback (the client does the same
work for both), and the server backend's CPU (utime + stime from /proc) over all runs.
Both must return the same ids in the same order. ``--engine sqlite`` runs the same A/B on a
SQLite file (there ``rank_jd`` is a virtual column, kept in the feed index) with this
process's own CPU.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from pg_bench_support import machine, proc_cpu, start_cluster  # noqa: E402

OLD_REFERENCE = "julianday(COALESCE(listed_at, published, first_seen))"  # before m0602


def product_statement() -> str:
    """The statement ``store.papers.trending_rows`` runs, caught by a stand-in connection."""
    from paperwire.store import papers

    seen = []

    class Recorder:
        def execute(self, sql, params=()):
            seen.append(sql)
            return self

        def fetchall(self):
            return []

    papers.trending_rows(Recorder(), now="2024-01-01T00:00:00Z", offset_hours=2.0, gravity=1.5,
                         since="2024-01-01", until="2024-01-01", limit=1, skip=0)
    assert "rank_jd" in seen[0], "the product statement no longer reads rank_jd"
    return seen[0]


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round((len(xs) - 1) * p)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default="100k")
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--engine", choices=("postgresql", "sqlite"), default="postgresql")
    args = ap.parse_args()
    import tempfile

    from paperwire.store import papers
    from paperwire.store.db import connect
    from paperwire.sources import import_files

    cluster = start_cluster() if args.engine == "postgresql" else None
    scratch = tempfile.TemporaryDirectory()
    try:
        url = cluster.create_database() if cluster else str(Path(scratch.name) / "trending.db")
        snap = HERE / "out" / f"synth-{args.corpus}.jsonl"
        if not snap.exists():
            from synth_snapshot import write_snapshot

            write_snapshot(int(args.corpus.rstrip("k")) * 1000, snap)
        conn = connect(url)
        import_files(conn, [snap], progress=False)
        conn.execute("VACUUM ANALYZE papers" if cluster else "ANALYZE")  # as autovacuum would have
        newest = conn.execute("SELECT MAX(feed_date) FROM papers").fetchone()[0]
        if cluster:
            backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
            server_cpu = lambda: proc_cpu(backend)  # noqa: E731
        else:
            server_cpu = time.process_time
        last = date.fromisoformat(newest)
        now = datetime(last.year, last.month, last.day, 18, tzinfo=timezone.utc)
        base = {"now_jd": papers._julian_day(now.isoformat()), "offset": 2.0, "gravity": 1.5,
                "until": newest, "limit": 30, "skip": 0}
        new = product_statement()
        statements = {"new": new, "old": new.replace("rank_jd", OLD_REFERENCE)}
        out = {"engine": args.engine, "machine": machine(), "command": " ".join(["python bench/pg_trending_query.py", *sys.argv[1:]]),
               "papers": conn.execute("SELECT COUNT(*) FROM papers").fetchone()[0], "windows": {}}
        for label, days in (("day", 1), ("week", 7)):
            params = dict(base, since=(last - timedelta(days=days - 1)).isoformat())
            rows_in = conn.execute("SELECT COUNT(*) FROM papers WHERE hidden=0 AND feed_date >= :since AND "
                                   "feed_date <= :until", params).fetchone()[0]
            walls = {"old": [], "new": []}
            cpu = {"old": 0.0, "new": 0.0}
            answers = {}
            for i in range(args.runs + 5):
                for kind in (("old", "new") if i % 2 else ("new", "old")):
                    sql = statements[kind]
                    c0, t0 = server_cpu(), time.perf_counter()
                    rows = conn.execute(sql, params).fetchall()
                    wall, used = time.perf_counter() - t0, server_cpu() - c0
                    if i >= 5:  # the first runs warm the plan cache and the buffers
                        walls[kind].append(1000 * wall)
                        cpu[kind] += used
                    answers[kind] = [r["id"] for r in rows]
            assert answers["old"] == answers["new"], "the two scores rank differently"
            out["windows"][label] = {
                "papers_in_window": rows_in,
                **{k: {"p50_ms": round(pct(v, 0.5), 3), "p99_ms": round(pct(v, 0.99), 3),
                       "server_cpu_ms": round(1000 * cpu[k] / args.runs, 3)} for k, v in walls.items()},
            }
            out["windows"][label]["server_cpu_ratio_old_over_new"] = round(cpu["old"] / max(cpu["new"], 1e-9), 2)
        conn.close()
        print(json.dumps(out, indent=1))
    finally:
        if cluster:
            cluster.stop()
        scratch.cleanup()


if __name__ == "__main__":
    main()
