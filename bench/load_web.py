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

Queries are 1-3 words taken from the titles of the database, seeded. Besides latency the
table gives the server's CPU per request (all its processes), the cores wrk used and the
cores every other process on the machine used meanwhile (the machine may be shared: a
result taken while others ran is not the server's capacity).

``--rate R`` offers a constant R requests/s instead of a closed loop (how fast can it go),
which is how "300 req/s with p99 <= 100 ms" is checked: p99 at that load, not at overload.

``--synth-vectors-from DB`` first makes a lexical-only database hybrid, for load tests
only: ``paperwire index --lexical-only`` (FTS5 + tantivy), then every paper gets the real
vector of the same text from DB (same content hash) if DB has one, else a noisy copy of a
random one of DB's vectors (``bench/search_latency.py``'s method: queries are still
encoded by the real model and searched in the real vector index, so the cost per request is
real; the ranking of those papers is not). Idempotent.
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
-- Rotates through the request paths in PW_QUERIES (each wrk thread from its own offset).
-- With PW_RATE > 0 it also paces the requests: every wrk thread sends on a fixed schedule
-- (PW_RATE / PW_THREADS requests a second), so the offered load stays constant however slow
-- the server gets, as long as a connection is free. Sends that leave later than 5 ms after
-- their slot (every connection was waiting for an answer) are counted as "late": then the
-- load was no longer what was asked for, and the latencies understate the queueing.
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } pw_timespec;
int clock_gettime(int clk, pw_timespec *tp);
]]
local ts = ffi.new("pw_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts)  -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local queries = {}
for line in io.lines(os.getenv("PW_QUERIES")) do queries[#queries + 1] = line end
local step = tonumber(os.getenv("PW_STEP") or "1")
local rate = tonumber(os.getenv("PW_RATE") or "0")
local nthreads = tonumber(os.getenv("PW_THREADS") or "1")
local threads = {}
local counter = 0
local base = tonumber(os.getenv("PW_OFFSET") or "0")
setup = function(thread)
  counter = counter + 1
  thread:set("offset", base + counter * 20000)
  threads[#threads + 1] = thread
end
init = function(args)
  i = offset or 0
  late = 0
  interval = rate > 0 and 1000.0 * nthreads / rate or 0
  slot = nil
end
if rate > 0 then
  delay = function()
    local t = now_ms()
    if slot == nil then slot = t end
    slot = slot + interval
    local wait = slot - t
    if wait < -5 then late = late + 1 end
    if wait < 0 then return 0 end
    return math.floor(wait)
  end
end
request = function()
  i = i + step
  return wrk.format("GET", queries[(i % #queries) + 1])
end
done = function(summary, latency, requests)
  local total = 0
  for _, t in ipairs(threads) do total = total + (t:get("late") or 0) end
  io.write(string.format("late sends: %d\n", total))
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


def synth_vectors(db: Path, source: Path) -> None:
    """Make ``db`` hybrid for load tests (see the module docstring); prints what it did."""
    import numpy as np

    from paperwire.index.build import update_index
    from paperwire.store import embeddings as emb_store
    from paperwire.store.db import connect
    from paperwire.store.search import get_state

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from search_latency import synth_vectors as noisy_copies

    conn, src = connect(db), connect(source)
    try:
        t0 = time.perf_counter()
        lexical = update_index(conn, semantic=False)
        model = get_state(src, "model")
        if not model:
            sys.exit(f"{source} has no embeddings (run `paperwire index` on it)")
        hashes = list(dict.fromkeys(r["content_hash"] for r in emb_store.papers_without_embedding(conn, model)))
        copied = 0
        for i in range(0, len(hashes), 5000):
            got = emb_store.get_embeddings(src, model, hashes[i:i + 5000])
            if got:
                copied += emb_store.put_embeddings(conn, model, list(got), np.vstack(list(got.values())))
        noisy = noisy_copies(conn, model, str(source))
        print(f"{db}: lexical {lexical.get('fast')}, {copied} real vectors copied, {noisy['synthetic_vectors']} "
              f"synthetic, {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    finally:
        conn.close()
        src.close()


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


def server_cpu_s(proc: subprocess.Popen) -> float:
    """CPU seconds used so far by the server and its worker processes (Linux /proc)."""
    pids = [proc.pid]
    try:
        pids += [int(x) for x in subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True,
                                                 text=True).stdout.split()]
    except OSError:
        return float("nan")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def machine_busy_s() -> float:
    """CPU seconds all processes have used since boot, all cores (Linux /proc/stat)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return float("nan")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def children_cpu_s() -> float:
    """CPU seconds of finished child processes (wrk, once it has exited)."""
    import resource

    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run_wrk(url: str, duration: int, connections: int, threads: int, paths: list[str], *, rate: float = 0,
            offset: int = 0) -> dict:
    """One wrk run over ``paths`` (rotating); ``rate`` > 0 paces it to that many requests/s."""
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "10s"]
    tmp = Path(tempfile.mkdtemp(prefix="pw-wrk-"))
    (tmp / "q.txt").write_text("\n".join(paths) + "\n")
    (tmp / "rotate.lua").write_text(LUA)
    env = {**os.environ, "PW_QUERIES": str(tmp / "q.txt"), "PW_RATE": str(rate), "PW_THREADS": str(threads),
           "PW_OFFSET": str(offset)}
    cmd += ["-s", str(tmp / "rotate.lua")]
    try:
        out = subprocess.run(cmd + [url], capture_output=True, text=True, env=env, timeout=duration + 60).stdout
    finally:
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
    late = re.search(r"late sends: (\d+)", out)
    res["late"] = int(late.group(1)) if late else 0
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", required=True, type=Path)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--duration", type=int, default=60)
    ap.add_argument("--rate", type=float, default=0,
                    help="requests/s to offer at a constant pace (0: closed loop, as fast as the server answers)")
    ap.add_argument("--connections", type=int, default=None,
                    help="wrk connections (default 16 closed loop, 64 with --rate: enough free connections "
                         "to keep the pace while answers are slow)")
    ap.add_argument("--threads", type=int, default=1, help="wrk threads (wrk shares the CPU with the server)")
    ap.add_argument("--scenarios", default="home,home-nocache,search-zipf,search-unique")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--synth-vectors-from", type=Path, metavar="DB",
                    help="first give papers without vectors real (same text) or synthetic ones from DB")
    args = ap.parse_args()
    if args.synth_vectors_from:
        synth_vectors(args.db, args.synth_vectors_from)
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install -y wrk")
    conns = args.connections or (64 if args.rate else 16)
    scenarios = args.scenarios.split(",")
    queries = make_queries(args.db, 2000, args.seed)
    enc = lambda q: "/api/papers/search?limit=20&q=" + urllib.parse.quote(q)  # noqa: E731
    zipf_paths = [enc(q) for q in zipf_sample(queries, 50000, args.seed)]
    unique_paths = [enc(q) for q in make_queries(args.db, 120000, args.seed + 1, mixed=True)]
    load_before = os.getloadavg()[0]
    rows = []
    for no_cache in (False, True):
        todo = [s for s in scenarios if (s == "home-nocache") == no_cache]
        if not todo:
            continue
        port = free_port()
        proc = start_server(args.db, args.workers, port, no_cache)
        base = f"http://127.0.0.1:{port}"
        offset = 0
        try:
            for path in ("/", enc("graph neural networks"), enc("quantum")):  # warm up imports, caches, models
                for _ in range(3):
                    urllib.request.urlopen(base + path, timeout=60).read()
            for sc in todo:
                paths = {"home": ["/"], "home-nocache": ["/"], "search-zipf": zipf_paths,
                         "search-unique": unique_paths}.get(sc)
                if paths is None:
                    continue
                cpu0, wrk0, busy0, t0 = server_cpu_s(proc), children_cpu_s(), machine_busy_s(), time.monotonic()
                # Each run starts further into the query lists, so a second run against the same
                # server never meets a query the first one cached.
                res = run_wrk(base, args.duration, conns, args.threads, paths, rate=args.rate, offset=offset)
                offset += 20000 * (args.threads + 1)
                server_s, wrk_s = server_cpu_s(proc) - cpu0, children_cpu_s() - wrk0
                res["cpu_ms"] = 1000 * server_s / max(1, res["requests"])
                # The machine is shared: whatever else ran meanwhile took cores from the server.
                elapsed = time.monotonic() - t0
                res["wrk"] = wrk_s / elapsed
                res["other"] = (machine_busy_s() - busy0 - server_s - wrk_s) / elapsed
                res["load"] = os.getloadavg()[0]
                rows.append((sc, res))
                print(f"{sc}: {res['rps']:.0f} req/s, p50 {res['p50']:.1f} ms, p99 {res['p99']:.1f} ms, "
                      f"errors {res['errors']} ({res['requests']} requests, {res['late']} late sends, "
                      f"server CPU {res['cpu_ms']:.2f} ms/request, wrk {res['wrk']:.2f} cores, other processes "
                      f"{res['other']:.2f} cores, "
                      f"load {res['load']:.1f})", file=sys.stderr)
        finally:
            stop_server(proc)
    papers = sqlite3.connect(f"file:{args.db}?mode=ro", uri=True).execute("SELECT COUNT(*) FROM papers").fetchone()[0]
    if args.rate:
        how = (f"constant offered rate {args.rate:g} requests/s (wrk -t{args.threads} -c{conns}, paced by a Lua "
               f"schedule; 'late' = sends that missed their slot because every connection was busy)")
    else:
        how = (f"closed loop, wrk -t{args.threads} -c{conns}: each connection sends its next request as soon as the "
               f"answer arrives, so req/s is the server's capacity and latency is queueing at that load")
    print(f"\n{papers} papers, {args.workers} server workers, {how}, {args.duration} s per scenario, "
          f"{os.cpu_count()} CPUs, load average before start {load_before:.1f}\n")
    print("| scenario | req/s | p50 ms | p90 ms | p99 ms | errors | requests | late sends | server CPU ms/req "
          "| wrk, cores | other processes, cores | load after |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for sc, r in rows:
        print(f"| {sc} | {r['rps']:.0f} | {r['p50']:.1f} | {r['p90']:.1f} | {r['p99']:.1f} | {r['errors']} | "
              f"{r['requests']} | {r['late']} | {r['cpu_ms']:.2f} | {r['wrk']:.2f} | {r['other']:.2f} | "
              f"{r['load']:.1f} |")


if __name__ == "__main__":
    main()
