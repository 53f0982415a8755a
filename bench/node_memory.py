"""A node's memory with ``paperwire serve --workers 2`` on a large store (issue 13).

    python bench/node_memory.py prepare --papers 1000000 [--from STORE.db]   # store + vectors + HNSW snapshot
    python bench/node_memory.py measure --papers 1000000 [--queries 300] [--workers 2] [--code DIR]
    python bench/node_memory.py vectors-build --papers 3000000 [--expansion-add 32]   # a snapshot alone
    python bench/node_memory.py vectors-measure --papers 3000000 [--base SNAPSHOT]  # 2 processes map it
    python bench/node_memory.py vectors-recall --papers 3000000                     # recall@10 vs exact
    python bench/node_memory.py prepare --papers 3000000 --link-snapshot           # store + that snapshot

``prepare`` builds (or copies, ``--from``) a SQLite store of N papers with the product's
importer and lexical indexes (short synthetic texts, as bench/recommend_speed.py), gives
every paper a synthetic 384-d vector (mixes of real MiniLM vectors plus noise, as
bench/vectors_search.py) stored under the real int8 MiniLM's name, so queries are encoded
by the real model, and builds the node's HNSW snapshot (``<db>.vectors/``). Stores live in
``~/.cache/paperwire/bench/node_memory/`` (``PAPERWIRE_BENCH_CACHE``).

``measure`` starts a real ``paperwire serve --workers N`` on it, warms it with searches
through the HTTP API, reads ``/proc/PID/smaps_rollup`` of the master and every worker and
prints, per process and summed: private memory (Private_Clean + Private_Dirty: what the
process alone holds, USS), file-backed resident memory (Rss of file mappings, of which
Shared_* is what other processes map too: the OS page cache holds it once per node) and
PSS; then hybrid search p50/p99 through ``/api/v1/search`` (wall time at the client).

The store is SQLite: the memory point is about the node's index replicas (HNSW, tantivy,
query model), which are the same on a PostgreSQL node.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
CACHE = Path(os.environ.get("PAPERWIRE_BENCH_CACHE", Path.home() / ".cache" / "paperwire" / "bench"))
MODEL = "minilm-l6-int8-onnx"


def store_path(n: int) -> Path:
    return CACHE / "node_memory" / f"store-{n}.db"


def prepare(args) -> None:
    from embed_common import now
    from vectors_search import base_vectors, synth

    from paperwire.index.vectors import VectorIndex
    from paperwire.store import embeddings as emb_store
    from paperwire.store import search as sql
    from paperwire.store.db import connect, transaction

    path = store_path(args.papers)
    path.parent.mkdir(parents=True, exist_ok=True)
    print(f"{now()} store {path}")
    if not path.exists():
        if args.source:
            src = Path(args.source)
            t = time.perf_counter()
            shutil.copyfile(src, path.with_name(path.name + ".tmp"))
            os.replace(path.with_name(path.name + ".tmp"), path)
            if src.with_name(src.name + ".tantivy").exists():
                shutil.copytree(src.with_name(src.name + ".tantivy"), path.with_name(path.name + ".tantivy"))
            print(f"copied {src} in {time.perf_counter() - t:.0f} s")
        else:
            from recommend_speed import build_store

            build_store(path, args.papers)
    conn = connect(path)
    if args.link_snapshot:
        link_snapshot(conn, path, args.papers)
        conn.close()
        return
    t = time.perf_counter()
    rows = emb_store.papers_without_embedding(conn, MODEL)
    hashes = list(dict.fromkeys(r["content_hash"] for r in rows))
    del rows
    base = base_vectors()
    for i in range(0, len(hashes), 50_000):
        part = hashes[i : i + 50_000]
        emb_store.put_embeddings(conn, MODEL, part, synth(base, len(part), seed=i))
        print(f"\r{now()} vectors {i + len(part):,}/{len(hashes):,}", end="", file=sys.stderr, flush=True)
    with transaction(conn):
        sql.set_state(conn, "model", MODEL)
        sql.set_state(conn, f"embed_rev:{MODEL}", sql.store_rev(conn))
    print(f"\n{now()} synthetic vectors: {len(hashes):,} in {time.perf_counter() - t:.0f} s")
    t = time.perf_counter()
    idx = VectorIndex.load(conn, MODEL, kind="hnsw")
    print(f"{now()} HNSW snapshot: {len(idx):,} vectors, {idx.load_info}, {time.perf_counter() - t:.0f} s, "
          f"file {idx.cache_path} {idx.cache_path.stat().st_size / 2**20:.0f} MiB")
    conn.close()


def link_snapshot(conn, path: Path, n: int) -> None:
    """Give the store the vector-only snapshot of ``vectors-build`` (keys 1..n = the store's
    rowids) as its node snapshot, with a manifest at the store's state: the vectors then live
    only in the node's snapshot, not in the store's embeddings table, which a serving node
    never reads (it saves writing 4.4 GB of blobs at 3M). Serve with PAPERWIRE_ANN_THRESHOLD=-1
    (the store counts no vectors of its own)."""
    from embed_common import now

    from paperwire.index import snapshot
    from paperwire.store import embeddings as emb_store
    from paperwire.store import search as sql
    from paperwire.store.db import transaction

    src = snapshot.read_manifest(CACHE / "node_memory" / f"vectors-{n}.vectors" / f"{MODEL}.usearch")
    if src is None:
        raise SystemExit(f"no vector snapshot: run `vectors-build --papers {n}` first")
    rev, seq, count, max_rowid = emb_store.index_state(conn, MODEL)
    if (count, max_rowid) != (n, n):
        raise SystemExit(f"the store has {count:,} papers up to rowid {max_rowid:,}, the snapshot keys 1..{n:,}")
    with transaction(conn):
        sql.set_state(conn, "model", MODEL)
    rev = emb_store.index_state(conn, MODEL)[0]
    base = path.with_name(path.name + ".vectors") / f"{MODEL}.usearch"
    base.parent.mkdir(parents=True, exist_ok=True)
    target = base.with_name(src["file"].name)
    if not target.exists():
        os.link(src["file"], target)
    man = {"version": snapshot.MANIFEST_VERSION, "model": MODEL, "dim": 384, "rev": rev, "seq": seq,
           "paper_count": count, "max_rowid": max_rowid, "size": n, "include_hidden": False, "file": target.name}
    tmp = snapshot.manifest_path(base).with_name(snapshot.manifest_path(base).name + ".tmp")
    tmp.write_text(json.dumps(man))
    os.replace(tmp, snapshot.manifest_path(base))
    print(f"{now()} linked {target} as the node snapshot of {path} (rev {rev})")


def _children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                out.append(int(d.name))
    return out


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    todo, out = [pid], []
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(_children(p))
    return out


def smaps(pid: int) -> dict:
    """MiB per class from /proc/PID/smaps: private anonymous, private file-backed (pages of a
    file only this process maps: page cache, not heap), shared file-backed; plus Rss and Pss."""
    acc = {"private_anon": 0, "private_file": 0, "shared_file": 0, "shared_anon": 0, "rss": 0, "pss": 0, "swap": 0,
           "rss_hnsw": 0, "rss_tantivy": 0, "rss_sqlite": 0}
    file_backed, what = False, None
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        parts = line.split()
        if not parts:
            continue
        if not parts[0].endswith(":") or len(parts) > 3 and "-" in parts[0]:
            # mapping header: "start-end perms offset dev inode [path]"
            file_backed = len(parts) >= 5 and parts[4] != "0"
            path = parts[5] if len(parts) >= 6 else ""
            what = ("rss_hnsw" if path.endswith(".usearch") else "rss_tantivy" if ".tantivy/" in path
                    else "rss_sqlite" if path.endswith((".db", ".db-shm")) else None)
            continue
        key, kb = parts[0][:-1], int(parts[1]) if parts[1].isdigit() else 0
        if key in ("Private_Clean", "Private_Dirty"):
            acc["private_file" if file_backed else "private_anon"] += kb
        elif key in ("Shared_Clean", "Shared_Dirty"):
            acc["shared_file" if file_backed else "shared_anon"] += kb
        elif key == "Rss":
            acc["rss"] += kb
            if what:
                acc[what] += kb
        elif key == "Pss":
            acc["pss"] += kb
        elif key == "Swap":
            acc["swap"] += kb
    roll = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        k, v = line.split(":", 1)
        roll[k] = int(v.split()[0])
    out = {k: round(v / 1024, 1) for k, v in acc.items()}
    out["uss"] = round((roll["Private_Clean"] + roll["Private_Dirty"]) / 1024, 1)  # smaps_rollup, as the issue asks
    out["shared"] = round((roll["Shared_Clean"] + roll["Shared_Dirty"]) / 1024, 1)
    cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    out["cmd"] = cmd[:80]
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_queries(db: Path, n: int, seed: int) -> list[str]:
    """``n`` distinct 2-3 word queries cut from random titles of the store."""
    import sqlite3

    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    top = conn.execute("SELECT MAX(id) FROM papers").fetchone()[0]
    rng = random.Random(seed)
    ids = rng.sample(range(1, top + 1), min(top, n * 3))
    titles = [r[0] for r in conn.execute(f"SELECT title FROM papers WHERE id IN ({','.join(map(str, ids))})")]
    conn.close()
    out, seen = [], set()
    for t in titles:
        words = t.split()
        k = rng.choice((2, 3, 3))
        start = rng.randrange(max(1, len(words) - k + 1))
        q = " ".join(words[start : start + k])
        if q not in seen:
            seen.add(q)
            out.append(q)
        if len(out) >= n:
            break
    return out


def get(url: str, timeout: float = 120) -> tuple[int, bytes, float]:
    t = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            body = r.read()
            return r.status, body, (time.perf_counter() - t) * 1000
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), (time.perf_counter() - t) * 1000


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round((len(xs) - 1) * p)))]


def measure(args) -> None:
    from embed_common import machine, now

    db = store_path(args.papers)
    if not db.exists():
        raise SystemExit(f"{db} is missing: run `python bench/node_memory.py prepare --papers {args.papers}` first")
    port = free_port()
    env = dict(os.environ, PAPERWIRE_SECRET_KEY="bench-node-memory")
    cmd = [sys.executable, "-m", "paperwire", "--db", str(db), "serve", "--workers", str(args.workers), "--port", str(port)]
    t0 = time.perf_counter()
    if args.code:  # another checkout's paperwire/ (e.g. the code before a change): first on the path
        env["PYTHONPATH"] = args.code
    srv = subprocess.Popen(cmd, env=env, cwd=args.code or None, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        while True:
            if srv.poll() is not None:
                raise SystemExit(f"server exited: {srv.stdout.read().decode(errors='replace')[-2000:]}")
            try:
                if get(base + "/healthz", timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        print(f"{now()} serving {db} on :{port} with --workers {args.workers} after {time.perf_counter() - t0:.1f} s")
        queries = make_queries(db, args.queries + args.warm, seed=args.papers % 1000 + 1)
        warm, timed = queries[: args.warm], queries[args.warm :]
        t = time.perf_counter()
        modes = {}
        for q in warm:  # new connection per request: SO_REUSEPORT spreads them over the workers
            code, body, _ = get(f"{base}/api/papers/search?q={urllib.parse.quote(q)}&limit=10")
            modes[code] = modes.get(code, 0) + 1
        print(f"{now()} warm-up: {len(warm)} searches in {time.perf_counter() - t:.1f} s, status {modes}")
        lat, hdr_modes = [], {}
        for q in timed:
            req = urllib.request.Request(f"{base}/api/papers/search?q={urllib.parse.quote(q)}&limit=10")
            t = time.perf_counter()
            with urllib.request.urlopen(req, timeout=120) as r:
                r.read()
                mode = r.headers.get("X-Search-Mode")
            lat.append((time.perf_counter() - t) * 1000)
            hdr_modes[mode] = hdr_modes.get(mode, 0) + 1
        if args.concurrency > 1:  # many request threads: each holds its own SQLite connection
            from concurrent.futures import ThreadPoolExecutor

            more = make_queries(db, args.burst, seed=args.papers % 1000 + 7)
            t = time.perf_counter()
            with ThreadPoolExecutor(args.concurrency) as pool:
                codes = list(pool.map(lambda q: get(f"{base}/api/papers/search?q={urllib.parse.quote(q)}&limit=10")[0], more))
            print(f"{now()} then {len(more)} searches over {args.concurrency} connections in {time.perf_counter() - t:.1f} s, "
                  f"status {dict((c, codes.count(c)) for c in set(codes))}")
        procs = {pid: smaps(pid) for pid in tree(srv.pid)}
    finally:
        os.killpg(srv.pid, signal.SIGTERM)
        try:
            srv.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(srv.pid, signal.SIGKILL)
    keys = ("private_anon", "private_file", "uss", "shared_file", "rss", "pss", "rss_hnsw", "rss_tantivy", "rss_sqlite")
    print(f"\n{args.label or 'run'}: {args.papers:,} papers, {machine()}, {now()}")
    print(f"| process | {' | '.join(keys)} (MiB) |")
    for pid, m in procs.items():
        print(f"| {pid} {m['cmd'][:60]} | " + " | ".join(f"{m[k]:,.0f}" for k in keys) + " |")
    total = {k: sum(m[k] for m in procs.values()) for k in keys}
    print("| **sum** | " + " | ".join(f"{total[k]:,.0f}" for k in keys) + " |")
    print(f"hybrid search via /api/papers/search (limit 10, {len(lat)} distinct queries, sequential, wall at the client): "
          f"p50 {pct(lat, 0.5):.1f} ms, p99 {pct(lat, 0.99):.1f} ms, mean {statistics.mean(lat):.1f} ms; modes {hdr_modes}")
    print(json.dumps({"papers": args.papers, "label": args.label, "sum_mib": total, "procs": procs,
                      "p50_ms": round(pct(lat, 0.5), 2), "p99_ms": round(pct(lat, 0.99), 2)}))


def vectors_build(args) -> None:
    """A snapshot of N synthetic vectors alone (no store), built with the product's HNSW settings
    (``--expansion-add`` lower only to save build time: same memory, a little less recall)."""
    from embed_common import now
    from vectors_search import base_vectors, synth

    from paperwire.index import snapshot
    from paperwire.index.vectors import HNSW_DTYPE, _Hnsw, usearch_index_class

    out = CACHE / "node_memory" / f"vectors-{args.papers}.vectors" / f"{MODEL}.usearch"
    Index = usearch_index_class()
    idx = Index(ndim=384, metric="cos", dtype=HNSW_DTYPE, connectivity=16, expansion_add=args.expansion_add,
                expansion_search=_Hnsw.SEARCH_EF)
    base = base_vectors()
    t = time.perf_counter()
    for s in range(0, args.papers, 100_000):
        m = min(100_000, args.papers - s)
        idx.add(np.arange(s + 1, s + m + 1, dtype=np.uint64), synth(base, m, seed=s))
        print(f"\r{now()} added {s + m:,} ({(s + m) / (time.perf_counter() - t):,.0f}/s)", end="", file=sys.stderr, flush=True)
    build_s = time.perf_counter() - t
    with snapshot.node_lock(out):
        file = snapshot.write_snapshot(idx, out, {"model": MODEL, "dim": 384, "rev": 0, "seq": 0, "paper_count": args.papers,
                                                  "max_rowid": args.papers, "size": len(idx), "include_hidden": False,
                                                  "expansion_add": args.expansion_add, "build_s": round(build_s)})
    print(f"\n{now()} {len(idx):,} vectors in {build_s:.0f} s (expansion_add {args.expansion_add}); {file} "
          f"{file.stat().st_size / 2**20:,.0f} MiB")


def _vector_worker(file: str, size: int, nq: int, seed: int, conn) -> None:
    from vectors_search import base_vectors, synth

    from paperwire.index import snapshot
    from paperwire.index.vectors import _Exact, _Hnsw, usearch_index_class

    view = snapshot.open_view(usearch_index_class(), Path(file), size=size, expansion_search=_Hnsw.SEARCH_EF)
    mapped = snapshot.Mapped(view, Path(file), _Exact(384))
    qs = synth(base_vectors(), nq, seed=seed)
    lat = []
    for q in qs:
        t = time.perf_counter()
        mapped.search(q, 50)  # the hybrid pool's semantic side: 50 nearest
        lat.append((time.perf_counter() - t) * 1000)
    conn.send(lat)
    conn.recv()  # hold the mapping until the parent has read our memory


def vectors_measure(args) -> None:
    """W processes map the vector-only snapshot and search it; their private vs shared memory."""
    import multiprocessing as mp

    from embed_common import machine, now

    from paperwire.index import snapshot

    base = Path(args.base) if args.base else CACHE / "node_memory" / f"vectors-{args.papers}.vectors" / f"{MODEL}.usearch"
    meta = snapshot.read_manifest(base)
    if meta is None:
        raise SystemExit(f"no snapshot at {base}: run `vectors-build --papers {args.papers}` first")
    ctx = mp.get_context("spawn")
    pipes, procs = [], []
    for w in range(args.workers):
        a, b = ctx.Pipe()
        p = ctx.Process(target=_vector_worker, args=(str(meta["file"]), int(meta["size"]), args.queries, 100 + w, b))
        p.start()
        pipes.append(a)
        procs.append(p)
    lats = [a.recv() for a in pipes]
    mem = {p.pid: smaps(p.pid) for p in procs}
    for a in pipes:
        a.send("done")
    for p in procs:
        p.join()
    keys = ("private_anon", "private_file", "uss", "shared_file", "rss", "pss", "rss_hnsw")
    print(f"\nvector snapshot only: {int(meta['size']):,} vectors ({meta['file'].stat().st_size / 2**20:,.0f} MiB file), "
          f"{args.workers} processes, {machine()}, {now()}")
    print(f"| process | {' | '.join(keys)} (MiB) |")
    for pid, m in mem.items():
        print(f"| {pid} | " + " | ".join(f"{m[k]:,.0f}" for k in keys) + " |")
    print("| **sum** | " + " | ".join(f"{sum(m[k] for m in mem.values()):,.0f}" for k in keys) + " |")
    flat = [x for lat in lats for x in lat[5:]]
    print(f"top-50 search on the mapped snapshot: p50 {pct(flat, 0.5):.2f} ms, p99 {pct(flat, 0.99):.2f} ms ({len(flat)} queries)")


def vectors_recall(args) -> None:
    """recall@10 of the vector-only snapshot against exact search (its vectors regenerated
    from the same seeds, scanned in chunks), for ``--queries`` query vectors."""
    from vectors_search import base_vectors, synth

    from paperwire.index import snapshot
    from paperwire.index.vectors import _Exact, _Hnsw, usearch_index_class

    base = CACHE / "node_memory" / f"vectors-{args.papers}.vectors" / f"{MODEL}.usearch"
    meta = snapshot.read_manifest(base)
    view = snapshot.open_view(usearch_index_class(), meta["file"], size=int(meta["size"]), expansion_search=_Hnsw.SEARCH_EF)
    mapped = snapshot.Mapped(view, meta["file"], _Exact(384))
    bv = base_vectors()
    qs = synth(bv, args.queries, seed=424242)
    best_s = np.full((len(qs), 10), -np.inf, np.float32)
    best_i = np.zeros((len(qs), 10), np.int64)
    for s in range(0, args.papers, 100_000):
        m = min(100_000, args.papers - s)
        sc = qs @ synth(bv, m, seed=s).T
        ids = np.arange(s + 1, s + m + 1)
        allsc = np.hstack([best_s, sc])
        alli = np.hstack([best_i, np.broadcast_to(ids, sc.shape)])
        top = np.argsort(-allsc, axis=1)[:, :10]
        best_s, best_i = np.take_along_axis(allsc, top, 1), np.take_along_axis(alli, top, 1)
    for ef in (_Hnsw.SEARCH_EF, 512):
        view.expansion_search = ef
        got = [mapped.search(q, 10) for q in qs]
        rec = [len(set(g[0].tolist()) & set(best_i[j].tolist())) / 10 for j, g in enumerate(got)]
        # Near-ties: how far below the exact 10th cosine the 10th found one is.
        gap = [float(best_s[j, 9] - g[1][-1]) for j, g in enumerate(got)]
        spread = [float(best_s[j, 0] - best_s[j, 9]) for j in range(len(qs))]
        print(f"recall@10 vs exact, {int(meta['size']):,} vectors (expansion_add {meta.get('expansion_add')}, ef_search "
              f"{ef}), {len(qs)} queries: {np.mean(rec):.3f}; 10th cosine found vs exact: {np.mean(gap):.4f} below "
              f"(exact 1st-10th spread {np.mean(spread):.4f})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--papers", type=int, default=1_000_000)
    p.add_argument("--from", dest="source")
    p.add_argument("--link-snapshot", action="store_true", help="use the vectors-build snapshot instead of stored vectors")
    m = sub.add_parser("measure")
    m.add_argument("--papers", type=int, default=1_000_000)
    m.add_argument("--queries", type=int, default=300)
    m.add_argument("--warm", type=int, default=60)
    m.add_argument("--concurrency", type=int, default=8, help="then this many client threads at once (1: skip)")
    m.add_argument("--burst", type=int, default=400)
    m.add_argument("--workers", type=int, default=2)
    m.add_argument("--label", default="")
    m.add_argument("--code", help="a folder holding another paperwire/ package to serve with (before/after runs)")
    vb = sub.add_parser("vectors-build")
    vb.add_argument("--papers", type=int, default=3_000_000)
    vb.add_argument("--expansion-add", type=int, default=128)
    vm = sub.add_parser("vectors-measure")
    vm.add_argument("--papers", type=int, default=3_000_000)
    vm.add_argument("--workers", type=int, default=2)
    vm.add_argument("--queries", type=int, default=500)
    vm.add_argument("--base", help="a store's snapshot instead, e.g. STORE.db.vectors/minilm-l6-int8-onnx.usearch")
    vr = sub.add_parser("vectors-recall")
    vr.add_argument("--papers", type=int, default=3_000_000)
    vr.add_argument("--queries", type=int, default=200)
    args = ap.parse_args()
    {"vectors-recall": vectors_recall, "prepare": prepare, "measure": measure, "vectors-build": vectors_build, "vectors-measure": vectors_measure}[args.cmd](args)


if __name__ == "__main__":
    main()
