"""Import speed: synthetic arXiv snapshots of 100k and 1M records into a fresh database.

Runs `paperwire import` in a subprocess per size and reports wall time,
records/s, the child's peak RSS (getrusage) and the 1-minute load average before
and after (the machine may be shared). The snapshot files are
generated once into bench/out/ by synth_snapshot.py.

    python bench/import_speed.py 100000 1000000
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from synth_snapshot import write_snapshot  # noqa: E402


def label(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 and n % 1_000_000 == 0 else f"{n // 1000}k"


def run_one(n: int) -> dict:
    out = HERE / "out"
    snap = out / f"synth-{label(n)}.jsonl"
    if not snap.exists():
        t = time.perf_counter()
        write_snapshot(n, snap)
        print(f"generated {snap} in {time.perf_counter() - t:.0f}s", file=sys.stderr)
    db = out / f"import-{label(n)}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    load_before = os.getloadavg()[0]  # the machine may be shared: say how busy it was
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "paperwire", "--db", str(db), "import", str(snap)],
                          capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t
    rss_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    result = {
        "records": n, "wall_s": round(wall, 1), "records_per_s": round(n / wall),
        "peak_rss_mb": round(rss_kb / 1024),
        "db_mb": round(db.stat().st_size / 2**20), "input_mb": round(snap.stat().st_size / 2**20),
        "report": proc.stdout.strip(),
        "load_1min_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    return result


def main(sizes: list[int]) -> None:
    print(f"# {date.today()} {platform.processor() or platform.machine()} cores={os.cpu_count()} "
          f"python={platform.python_version()} (no GPU)")
    for n in sizes:
        # One process per size, so the children's peak RSS is that import's alone.
        subprocess.run([sys.executable, __file__, "--one", str(n)], check=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--one"]:
        print(json.dumps(run_one(int(sys.argv[2]))), flush=True)
    else:
        main([int(a) for a in sys.argv[1:]] or [100_000, 1_000_000])
