"""Benchmark: compose and send N digests (default 10,000) to a local aiosmtpd server.

    python bench/digest_send.py [--subscribers 10000] [--papers 400]

One reused SMTP connection, the real ledger (3 commits per message), no rate limit.
The SMTP server runs in a separate process and only counts messages, so the numbers
are the sender's. Prints JSON: compose and delivery rates, peak RSS of the sender.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import resource
import socket
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(port: int, counter, ready) -> None:
    from aiosmtpd.controller import Controller

    class Counting:
        async def handle_DATA(self, server, session, envelope):
            with counter.get_lock():
                counter.value += 1
            return "250 OK"

    ctl = Controller(Counting(), hostname="127.0.0.1", port=port)
    ctl.start()
    ready.set()
    try:
        while True:
            time.sleep(3600)
    finally:
        ctl.stop()


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--subscribers", type=int, default=10_000)
    ap.add_argument("--papers", type=int, default=400)
    args = ap.parse_args()

    from paperwire.digest import send as digest_send
    from paperwire.digest.send import RunReport
    from paperwire.ingest import import_records
    from paperwire.model import PaperRecord
    from paperwire.settings import Settings
    from paperwire.store import digest as sql
    from paperwire.store.db import connect, transaction

    port = _free_port()
    counter, ready = mp.Value("i", 0), mp.Event()
    server = mp.Process(target=_serve, args=(port, counter, ready), daemon=True)
    server.start()
    ready.wait(30)

    tmp = Path(tempfile.mkdtemp(prefix="pw-bench-digest-"))
    settings = Settings(db_path=tmp / "bench.db", smtp_host="127.0.0.1", smtp_port=port, secret_key="bench",
                        base_url="https://papers.example", mail_from="paperwire <digest@papers.example>",
                        mail_rate_per_minute=0, digest_timezone="UTC")
    conn = connect(settings.db_path)
    now = datetime.now(timezone.utc)
    cats = ["cs.CL", "cs.LG", "cs.CV", "cs.AI", "stat.ML", "cs.IR", "cs.RO", "q-bio.NC", "math.OC", "physics.comp-ph"]
    recs = []
    for i in range(args.papers):
        recs.append(PaperRecord(
            title=f"Benchmark paper {i}: scaling {cats[i % 10]} models with <b>markup</b>",
            abstract=("We study a problem at length & propose a method; results improve. " * 6).strip(),
            source="bench", arxiv_id=f"2611.{i + 1:05d}", authors=[f"Author {i % 97}", f"Coauthor {i % 31}"],
            categories=[cats[i % 10], cats[(i + 3) % 10]],
            published=(now - timedelta(hours=i % 60)).strftime("%Y-%m-%dT%H:%M:%SZ"), upvotes=(i * 7) % 50))
    import_records(conn, recs)
    ts = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    with transaction(conn):
        for i in range(args.subscribers):
            sql.insert_subscription(conn, {
                "email": f"reader{i}@example.org", "frequency": "daily", "status": "active", "top_n": 10,
                "personal": False, "authors": [f"Author {i % 97}"] if i % 5 == 0 else [],
                "categories": [cats[i % 10]] if i % 3 == 0 else [], "queries": ["scaling models"] if i % 10 == 0 else [],
                "nonce": f"n{i}", "source": "bench", "created_at": ts, "updated_at": ts, "confirmed_at": ts})
    rss_before = _rss_mib()

    report = RunReport()
    t0 = time.perf_counter()
    digest_send.compose_period(conn, settings, "daily", now=now, report=report)
    t1 = time.perf_counter()
    sizes = conn.execute("SELECT AVG(LENGTH(message)), AVG(json_array_length(papers)) FROM digest_sends").fetchone()
    digest_send.deliver_due(conn, settings, "digest", report=report)
    t2 = time.perf_counter()
    deadline = time.monotonic() + 30
    while counter.value < report.sent and time.monotonic() < deadline:
        time.sleep(0.05)
    out = {
        "subscribers": args.subscribers, "papers": args.papers,
        "composed": report.composed, "sent": report.sent, "received_by_server": counter.value,
        "failed": len(report.failed), "empty": report.empty,
        "compose_s": round(t1 - t0, 2), "deliver_s": round(t2 - t1, 2), "total_s": round(t2 - t0, 2),
        "compose_per_s": round(report.composed / (t1 - t0), 1),
        "deliver_msgs_per_s": round(report.sent / (t2 - t1), 1),
        "end_to_end_msgs_per_s": round(report.sent / (t2 - t0), 1),
        "avg_message_kib": round(sizes[0] / 1024, 1), "avg_papers_per_digest": round(sizes[1], 1),
        "peak_rss_mib": round(_rss_mib(), 1), "rss_before_run_mib": round(rss_before, 1),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, no GPU, Python {platform.python_version()}",
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }
    print(json.dumps(out, indent=2))
    server.terminate()
    conn.close()
    if report.sent != args.subscribers or counter.value != report.sent:
        sys.exit(1)


if __name__ == "__main__":
    main()
