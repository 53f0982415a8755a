"""Import speed into PostgreSQL, with SQLite as the anchor in the same run (issue 13).

    PYTHONPATH=../tests python bench/pg_import.py [N] [--rerun] [--pg URL] [--no-sqlite]

Writes N synthetic records in the arXiv bulk snapshot format (JSON lines, Kaggle schema;
bench/synth_snapshot.py) to bench/out/ once, then runs the real import path, ``python -m
paperwire --db TARGET import FILE`` (the CLI, so parsing in its second process, batches,
resume marks, everything as in production), into a fresh database of a throwaway
PostgreSQL cluster (tests/pg_support.py) and into a fresh SQLite file. Each target is
migrated first, so the time is the import alone. Per engine it reports wall time,
records/s, the CPU seconds of the import processes and, for PostgreSQL, of the server
(every process of the cluster, backends included), the papers counted afterwards, and with
``--rerun`` a second import of the same file (idempotence: it must add nothing).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from pg_bench_support import ROOT, machine, pg_version, postmaster_pid, start_cluster, tree_cpu  # noqa: E402
from synth_snapshot import write_snapshot  # noqa: E402


def label(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 and n % 1_000_000 == 0 else f"{n // 1000}k"


def snapshot(n: int) -> Path:
    snap = HERE / "out" / f"synth-{label(n)}.jsonl"
    if not snap.exists():
        t = time.perf_counter()
        write_snapshot(n, snap)
        print(f"generated {snap} in {time.perf_counter() - t:.0f}s", file=sys.stderr)
    return snap


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def one_import(target: str, snap: Path, server_pid: int | None) -> dict:
    """Run ``paperwire import`` once; wall, CPU of the client (and the server), its report."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    load0 = os.getloadavg()[0]
    cpu0, srv0 = children_cpu(), tree_cpu(server_pid) if server_pid else 0.0
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "paperwire", "--db", target, "import", "--json", str(snap)],
                          capture_output=True, text=True, env=env, cwd=ROOT)
    wall = time.perf_counter() - t0
    cpu, srv = children_cpu() - cpu0, (tree_cpu(server_pid) - srv0) if server_pid else None
    if proc.returncode != 0:
        sys.exit(f"import into {target} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    report = json.loads(proc.stdout)
    out = {"wall_s": round(wall, 1), "client_cpu_s": round(cpu, 1),
           "load_1min_before_after": [round(load0, 2), round(os.getloadavg()[0], 2)],
           "report": {k: v for k, v in report.items() if k != "errors"}, "errors": len(report.get("errors", []))}
    if srv is not None:
        out["server_cpu_s"] = round(srv, 1)
    return out


def count(target: str) -> int:
    from paperwire.store import papers
    from paperwire.store.db import connect

    conn = connect(target)
    try:
        return papers.count_papers(conn)
    finally:
        conn.close()


def run_engine(name: str, target: str, snap: Path, n: int, rerun: bool, server_pid: int | None) -> dict:
    from paperwire.store.db import connect

    connect(target).close()  # schema first: the timing is the import alone
    first = one_import(target, snap, server_pid)
    first["records_per_s"] = round(n / first["wall_s"])
    result = {"engine": name, "first": first, "papers_after": count(target)}
    if rerun:
        again = one_import(target, snap, server_pid)
        again["records_per_s"] = round(n / again["wall_s"])
        result["rerun"] = again
        result["papers_after_rerun"] = count(target)
    print(json.dumps(result), file=sys.stderr)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("n", nargs="?", type=int, default=1_000_000)
    ap.add_argument("--rerun", action="store_true", help="import the same file again (must add nothing)")
    ap.add_argument("--pg", help="an existing empty PostgreSQL database instead of a throwaway cluster")
    ap.add_argument("--no-sqlite", action="store_true", help="skip the SQLite anchor")
    args = ap.parse_args()

    snap = snapshot(args.n)
    info = {"machine": machine(), "records": args.n, "input_mb": round(snap.stat().st_size / 2**20),
            "command": "python bench/pg_import.py " + " ".join(sys.argv[1:])}
    cluster = None
    tmp = Path(tempfile.mkdtemp(prefix="pw-pgimport-"))
    os.environ["PAPERWIRE_INDEX_DIR"] = str(tmp / "index")  # node caches of the URL store
    try:
        if args.pg:
            url, server_pid = args.pg, None
        else:
            cluster = start_cluster()
            url, server_pid = cluster.create_database(), postmaster_pid(cluster)
        info["postgresql"] = pg_version(url) + ("" if args.pg else " (throwaway cluster: fsync=off, "
                                                "synchronous_commit=off, shared_buffers=32MB)")
        results = [run_engine("postgresql", url, snap, args.n, args.rerun, server_pid)]
        from paperwire.store.dialect import close_pools

        close_pools()
        if not args.no_sqlite:
            results.append(run_engine("sqlite", str(tmp / "import.db"), snap, args.n, args.rerun, None))
        info["results"] = results
        if len(results) == 2:
            info["pg_over_sqlite_records_per_s"] = round(
                results[0]["first"]["records_per_s"] / results[1]["first"]["records_per_s"], 2)
        info["load_after"] = machine()["load_1_5_15"]
        print(json.dumps(info, indent=1))
    finally:
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
