"""PostgreSQL import at N records: another tree's code (e.g. HEAD) against this one, interleaved.

    git archive HEAD paperwire | tar -x -C /tmp/base
    PYTHONPATH=../tests python bench/pg_import_ab.py bench/out/synth-100k.jsonl /tmp/base head,tree,head,tree

Each run imports FILE with ``python -m paperwire import`` (the CLI's path) into a fresh,
migrated database of one throwaway cluster (tests/pg_support.py), with PYTHONPATH set to the
other tree ("head") or to this one ("tree"), in the order given, so both see the machine's
other load alike. Prints per run: wall, CPU of the import processes (parser + writer),
CPU of the PostgreSQL server (every process of the cluster) and the 1-minute load average.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from pg_bench_support import ROOT, machine, postmaster_pid, start_cluster, tree_cpu  # noqa: E402


def main() -> None:
    snap, other, order = Path(sys.argv[1]).resolve(), sys.argv[2], sys.argv[3].split(",")
    trees = {"head": other, "tree": str(ROOT)}
    print(json.dumps(machine()))
    cluster = start_cluster()
    try:
        pm = postmaster_pid(cluster)
        for name in order:
            url = cluster.create_database()
            env = {**os.environ, "PYTHONPATH": trees[name], "PAPERWIRE_INDEX_DIR": str(cluster.root / "index")}
            env.pop("PAPERWIRE_DB", None)
            subprocess.run([sys.executable, "-m", "paperwire", "--db", url, "stats"], env=env, cwd="/tmp",
                           capture_output=True, check=True)  # migrations first: the timing is the import
            r0, s0, l0 = resource.getrusage(resource.RUSAGE_CHILDREN), tree_cpu(pm), os.getloadavg()[0]
            t0 = time.perf_counter()
            p = subprocess.run([sys.executable, "-m", "paperwire", "--db", url, "import", str(snap)], env=env,
                               cwd="/tmp", capture_output=True, text=True)
            wall, r1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_CHILDREN)
            print(json.dumps({"code": name, "wall_s": round(wall, 1),
                              "client_cpu_s": round(r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime, 1),
                              "server_cpu_s": round(tree_cpu(pm) - s0, 1), "report": p.stdout.strip()[-90:],
                              "rc": p.returncode, "load": [round(l0, 2), round(os.getloadavg()[0], 2)]}), flush=True)
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
