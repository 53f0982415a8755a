"""Load test of the site with wrk: home page and search API, one command.

    python bench/load_web.py --db bench/out/web-100k.db --workers 2 --duration 60

Starts ``paperwire serve`` on 127.0.0.1 with N workers, warms it, then runs wrk
(``apt-get install -y wrk``) against each scenario and prints a markdown table
(req/s, p50/p90/p99 latency, errors). Scenarios:

- ``home``: ``GET /`` (anonymous; the rendered page is cached per store revision,
  so this measures the cache + ETag path);
- ``home-nocache``: the same with the server started with ``--no-cache``
  (every request renders the page: 30 papers, SQL + Jinja);
- ``search-zipf``: ``GET /api/papers/search?q=..`` over 2,000 distinct queries
  drawn Zipf-like (real query logs repeat: a few queries are very common);
- ``search-unique``: every request a query not seen before (nothing cached:
  the search engine's own speed).

Queries are 1-3 words taken from the titles of the database, seeded.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

LUA = r"""
local queries = {}
for line in io.lines(os.getenv("PW_QUERIES")) do queries[#queries + 1] = line end
local counter = 0
local step = tonumber(os.getenv("PW_STEP") or "1")
setup = function(thread)
  counter = counter + 1
  thread:set("offset", counter * 20000)
end
init = function(args)
  i = offset or 0
end
request = function()
  i = i + step
  return wrk.format("GET", queries[(i % #queries) + 1])
end
"""

STOP = set("a an and are as at be by for from in into is of on or the to with via using toward towards".split())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_queries(db: Path, n: int, seed: int, *, mixed: bool = False) -> list[str]:
    """``n`` distinct queries: word runs from titles, or (``mixed``) words from two titles."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    titles = [r[0] for r in conn.execute("SELECT title FROM papers WHERE hidden=0 ORDER BY id")]
    rng = random.Random(seed)
    out, seen = [], set()

    def words_of(t):
        return [w.lower() for w in re.findall(r"[A-Za-z][A-Za-z-]{2,}", t) if w.lower() not in STOP]

    for _ in range(n * 50):
        if len(out) >= n:
            break
        words = words_of(rng.choice(titles))
        if not words:
            continue
        k = rng.choice((1, 2, 2, 3))
        start = rng.randrange(max(1, len(words) - k + 1))
        picked = words[start:start + k]
        if mixed:
            other = words_of(rng.choice(titles))
            if other:
                picked = picked[:2] + [rng.choice(other)]
        q = " ".join(picked)
        if q not in seen:
            seen.add(q)
            out.append(q)
    return out


def zipf_sample(items: list[str], n: int, seed: int, s: float = 1.0) -> list[str]:
    rng = random.Random(seed)
    weights = [1.0 / (i + 1) ** s for i in range(len(items))]
    return rng.choices(items, weights=weights, k=n)


def start_server(db: Path, workers: int, port: int, no_cache: bool) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "paperwire", "--db", str(db), "serve", "--host", "127.0.0.1", "--port", str(port),
           "--workers", str(workers)]
    if no_cache:
        cmd.append("--no-cache")
    env = {**os.environ, "PAPERWIRE_SECRET_KEY": "bench", "PAPERWIRE_EMBEDDER": os.environ.get("PAPERWIRE_EMBEDDER", "auto")}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).read()
            return proc
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError("server died: " + proc.stderr.read().decode()[-2000:])
            time.sleep(0.3)
    raise RuntimeError("server did not start")


def stop_server(proc: subprocess.Popen) -> None:
    import signal

    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)


_UNIT = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s|m)", text)
    return float(m.group(1)) * _UNIT[m.group(2)]


def run_wrk(url: str, duration: int, connections: int, threads: int, paths: list[str] | None, step: int = 1) -> dict:
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "10s"]
    env = dict(os.environ)
    tmp = None
    if paths:
        tmp = Path(tempfile.mkdtemp(prefix="pw-wrk-"))
        (tmp / "q.txt").write_text("\n".join(paths) + "\n")
        (tmp / "rotate.lua").write_text(LUA)
        env.update(PW_QUERIES=str(tmp / "q.txt"), PW_STEP=str(step))
        cmd += ["-s", str(tmp / "rotate.lua")]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, env=env, timeout=duration + 60).stdout
    if tmp:
        shutil.rmtree(tmp, ignore_errors=True)
    res = {"raw": out}
    res["rps"] = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    for p in ("50", "90", "99"):
        m = re.search(rf"^\s+{p}%\s+(\S+)", out, re.M)
        res[f"p{p}"] = _ms(m.group(1)) if m else float("nan")
    res["requests"] = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    res["errors"] = (int(non2xx.group(1)) if non2xx else 0) + (sum(int(x) for x in sock.groups()) if sock else 0)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", required=True, type=Path)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--duration", type=int, default=60)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1, help="wrk threads (wrk shares the CPU with the server)")
    ap.add_argument("--scenarios", default="home,home-nocache,search-zipf,search-unique")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install -y wrk")
    scenarios = args.scenarios.split(",")
    queries = make_queries(args.db, 2000, args.seed)
    enc = lambda q: "/api/papers/search?limit=20&q=" + urllib.parse.quote(q)  # noqa: E731
    zipf_paths = [enc(q) for q in zipf_sample(queries, 50000, args.seed)]
    unique_paths = [enc(q) for q in make_queries(args.db, 60000, args.seed + 1, mixed=True)]
    rows = []
    for no_cache in (False, True):
        todo = [s for s in scenarios if (s == "home-nocache") == no_cache]
        if not todo:
            continue
        port = free_port()
        proc = start_server(args.db, args.workers, port, no_cache)
        base = f"http://127.0.0.1:{port}"
        try:
            for path in ("/", enc("graph neural networks"), enc("quantum")):  # warm up imports, caches, models
                for _ in range(3):
                    urllib.request.urlopen(base + path, timeout=60).read()
            for sc in todo:
                if sc in ("home", "home-nocache"):
                    res = run_wrk(base + "/", args.duration, args.connections, args.threads, None)
                elif sc == "search-zipf":
                    res = run_wrk(base, args.duration, args.connections, args.threads, zipf_paths)
                elif sc == "search-unique":
                    # wrk threads each start at a different offset and stride by the thread count
                    res = run_wrk(base, args.duration, args.connections, args.threads, unique_paths, step=1)
                else:
                    continue
                rows.append((sc, res))
                print(f"{sc}: {res['rps']:.0f} req/s, p50 {res['p50']:.1f} ms, p99 {res['p99']:.1f} ms, "
                      f"errors {res['errors']} ({res['requests']} requests)", file=sys.stderr)
        finally:
            stop_server(proc)
    papers = sqlite3.connect(f"file:{args.db}?mode=ro", uri=True).execute("SELECT COUNT(*) FROM papers").fetchone()[0]
    print(f"\n{papers} papers, {args.workers} workers, wrk -t{args.threads} -c{args.connections} -d{args.duration}s, "
          f"{os.cpu_count()} CPUs, load before start {os.getloadavg()[0]:.1f}\n")
    print("| scenario | req/s | p50 ms | p90 ms | p99 ms | errors | requests |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for sc, r in rows:
        print(f"| {sc} | {r['rps']:.0f} | {r['p50']:.1f} | {r['p90']:.1f} | {r['p99']:.1f} | {r['errors']} | {r['requests']} |")


if __name__ == "__main__":
    main()
