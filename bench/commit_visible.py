"""From commit on node A to visible on node B: p50/p99 over N votes (issue 13).

Starts a throwaway PostgreSQL cluster (tests/pg_support.py), loads the demo corpus, starts
two real ``paperwire serve`` nodes with separate cache folders (tests/multinode_support.py),
then for each of N votes: POST the upvote to node A, and poll node B's ``/api/papers/{id}``
every ``--poll-ms`` until it shows the new count. The time is from A's answer (the commit
is done before A answers) to B's first answer with the new count, so it includes one poll
interval of granularity at most. The same for new papers: a record imported by a separate
process (``paperwire import``), until node B's search finds it (tantivy replica caught up
through LISTEN/NOTIFY).

    cd bench && PYTHONPATH=../tests python commit_visible.py --votes 200 --papers 20
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from multinode_support import base_env, cli, load_demo, start_nodes, user_with_token  # noqa: E402
from pg_support import PgCluster, pg_bin_dir  # noqa: E402


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--votes", type=int, default=200)
    ap.add_argument("--papers", type=int, default=20)
    ap.add_argument("--poll-ms", type=float, default=2.0)
    args = ap.parse_args()
    cluster = PgCluster(pg_bin_dir()).start()
    folder = Path(tempfile.mkdtemp(prefix="pw-visible-"))
    nodes = []
    try:
        db = cluster.create_database()
        env = base_env(PAPERWIRE_INDEX_DIR=str(folder / "loader"))
        load_demo(db, env)
        token = user_with_token(db, env)
        nodes = start_nodes(db, folder, env)
        a, b = nodes
        ids = [p["paper"]["id"] for p in a.client.get("/api/daily_papers", params={"limit": 100}).json()]
        auth = {"Authorization": f"Bearer {token}"}
        poll = args.poll_ms / 1000
        vote_ms = []
        for i in range(args.votes):
            pid = ids[i % len(ids)]
            up = (i // len(ids)) % 2 == 0  # up on the first pass over the papers, undo on the next
            r = a.client.post(f"/api/v1/papers/{pid}/upvote", json={"up": up}, headers=auth)
            r.raise_for_status()
            want = r.json()["upvotes"]
            t0 = time.perf_counter()
            while b.client.get(f"/api/papers/{pid}").json()["upvotes"] != want:
                if time.perf_counter() - t0 > 10:
                    raise SystemExit(f"vote {i} not visible on B after 10 s")
                time.sleep(poll)
            vote_ms.append((time.perf_counter() - t0) * 1000)
        paper_ms = []
        for i in range(args.papers):
            rec = folder / f"new{i}.jsonl"
            word = f"zqx{i:04d}wobble"
            rec.write_text(json.dumps({"id": f"2612.{90000 + i}", "title": f"A {word} estimator for sparse graphs",
                                       "abstract": "We study sparse graphs. " * 5, "authors": "Ada Lovelace",
                                       "categories": "cs.LG", "update_date": "2026-12-01",
                                       "versions": [{"version": "v1", "created": "Tue, 1 Dec 2026 10:00:00 GMT"}]})
                           + "\n")
            cli(db, "import", str(rec), env=env)  # returns after the commit
            t0 = time.perf_counter()
            while not b.client.get("/api/papers/search", params={"q": word}).json():
                if time.perf_counter() - t0 > 10:
                    raise SystemExit(f"paper {i} not searchable on B after 10 s")
                time.sleep(poll)
            paper_ms.append((time.perf_counter() - t0) * 1000)
        out = {
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "votes": len(vote_ms), "vote_p50_ms": round(statistics.median(vote_ms), 1),
            "vote_p99_ms": round(pct(vote_ms, 99), 1), "vote_max_ms": round(max(vote_ms), 1),
            "papers": len(paper_ms), "paper_search_p50_ms": round(statistics.median(paper_ms), 1) if paper_ms else None,
            "paper_search_p99_ms": round(pct(paper_ms, 99), 1) if paper_ms else None,
            "poll_ms": args.poll_ms,
        }
        print(json.dumps(out, indent=2))
    finally:
        for n in nodes:
            n.stop()
        cluster.stop()


if __name__ == "__main__":
    main()
