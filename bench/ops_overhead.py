"""What the ops middleware (web/ops.py: request counter, latency histogram, route template)
costs per request, on the cheapest answers the site has: page-cache hits.

The app is driven in-process through ASGI (no sockets, no HTTP parsing), so the difference
between the variants is the middleware itself:

* ``without``: ``create_app`` with ``paperwire.web.ops.install`` replaced by a no-op;
* ``with``: the shipped app, metrics in memory (one server process);
* ``multiprocess``: the shipped app with ``PROMETHEUS_MULTIPROC_DIR`` set, as under
  ``paperwire serve --workers N`` (samples written to memory-mapped files).

"without" and one variant share an interpreter (multiprocess mode is chosen when
prometheus-client is first imported, so each mode gets its own) and the same database;
blocks of requests alternate between them; best and median block reported.

    python bench/ops_overhead.py [--requests 2000] [--blocks 20]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PATHS = ["/", "/api/daily_papers", "/trending", "/papers/2401.99999"]


def _child(mode: str, n: int, blocks: int) -> None:
    """In a fresh interpreter: two apps on one database, one without the ops middleware and
    one with it (in ``mode``: memory or multiprocess files); blocks of ``n`` cache hits
    through each, interleaved; prints the µs per request of every block."""
    import asyncio

    sys.path.insert(0, str(ROOT / "tests"))
    from web_support import demo_db, settings_for

    import paperwire.web.ops as ops
    from paperwire.web.app import create_app

    settings = settings_for(demo_db(Path(tempfile.mkdtemp(prefix="pw-ops-bench-"))))
    shipped = ops.install
    ops.install = lambda app, st: None
    apps = {"without": create_app(settings)}
    ops.install = shipped
    apps[mode] = create_app(settings)

    async def call(app, path: str) -> int:
        status = 0

        async def receive():
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
                 "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"",
                 "headers": [(b"host", b"bench")], "client": ("127.0.0.1", 5000), "server": ("bench", 80)}
        await app(scope, receive, send)
        return status

    async def run() -> dict:
        out: dict[str, list[float]] = {name: [] for name in apps}
        for app in apps.values():
            for p in PATHS:  # fill the caches
                assert await call(app, p) == 200, p
        for _ in range(blocks):
            for name, app in apps.items():
                t0 = time.perf_counter()
                for i in range(n):
                    await call(app, PATHS[i % len(PATHS)])
                out[name].append((time.perf_counter() - t0) / n * 1e6)
        return out

    out = asyncio.run(run())
    # The middleware's own bookkeeping per request (template, counter, histogram), without the
    # rest of the stack: steadier than the difference of two noisy totals on a busy machine.
    node = apps[mode].middleware_stack
    while node is not None and not isinstance(node, ops.OpsMiddleware):
        node = getattr(node, "app", None)
    scope = {"type": "http", "method": "GET", "path": "/", "headers": []}
    reps = 100_000
    t0 = time.perf_counter()
    for _ in range(reps):
        node._record(scope, 200, 0.001)
    out["record_us"] = [(time.perf_counter() - t0) / reps * 1e6]
    print(json.dumps(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=2000, help="cache hits per block")
    ap.add_argument("--blocks", type=int, default=20)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return _child(args.child, args.requests, args.blocks)
    for mode in ("with", "multiprocess"):
        env = {**os.environ, "PAPERWIRE_EMBEDDER": "none"}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        if mode == "multiprocess":
            env["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="pw-ops-bench-mp-")
        out = subprocess.run([sys.executable, __file__, "--child", mode, "--requests", str(args.requests),
                              "--blocks", str(args.blocks)], env=env, capture_output=True, text=True, check=True)
        res = json.loads(out.stdout.strip().splitlines()[-1])
        (b0, bm), (w0, wm) = ((min(v), statistics.median(v)) for v in (res["without"], res[mode]))
        print(f"cache hits, {mode:>12} vs without: best {w0:6.1f} vs {b0:6.1f} us/request (+{w0 - b0:5.1f}), "
              f"median {wm:6.1f} vs {bm:6.1f} (+{wm - bm:5.1f}); the middleware's bookkeeping alone "
              f"{res['record_us'][0]:.2f} us/request")


if __name__ == "__main__":
    main()
