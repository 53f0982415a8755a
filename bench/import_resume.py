"""Rerun after a killed import: seconds until the rerun's first commit of new papers.

Imports a synthetic snapshot with ``paperwire import``, SIGKILLs it once two thirds of
the papers are in, then reruns it twice on copies of the killed database: as shipped
(resuming after the last committed line, see paperwire/sources/resume.py) and, as the
anchor, with the resume mark deleted (what every rerun did before: re-read the
committed records, all unchanged, before reaching new ones). Reports the time from
the rerun's start to its first commit that added papers, and the rerun's total time.

    python bench/import_resume.py 30000
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from synth_snapshot import write_snapshot  # noqa: E402


def count(db: Path) -> int:
    try:
        c = sqlite3.connect(db, timeout=5)
        try:
            return c.execute("SELECT COUNT(*) FROM papers").fetchone()[0]
        finally:
            c.close()
    except sqlite3.OperationalError:
        return 0


def cmd(db: Path, snap: Path) -> list[str]:
    return [sys.executable, "-m", "paperwire", "--db", str(db), "import", str(snap)]


def rerun(db: Path, snap: Path) -> tuple[float, float]:
    before = count(db)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd(db, snap), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = None
    while proc.poll() is None:
        if first is None and count(db) > before:
            first = time.perf_counter() - t0
        time.sleep(0.02)
    total = time.perf_counter() - t0
    return (first if first is not None else total), total


def main(n: int) -> None:
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    snap = out / f"synth-{n // 1000}k.jsonl"
    if not snap.exists():
        write_snapshot(n, snap)
    killed = out / "resume-killed.db"
    for f in out.glob("resume-*.db*"):
        f.unlink()
    proc = subprocess.Popen(cmd(killed, snap), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while count(killed) < 2 * n // 3:
        assert proc.poll() is None, "the import finished before the kill"
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    at = count(killed)
    rows = []
    for label, keep_mark in (("resume (shipped)", True), ("no resume mark (before)", False)):
        db = out / f"resume-{'on' if keep_mark else 'off'}.db"
        for suffix in ("", "-wal", "-shm"):
            if Path(str(killed) + suffix).exists():
                shutil.copy(str(killed) + suffix, str(db) + suffix)
        if not keep_mark:
            c = sqlite3.connect(db)
            c.execute("DELETE FROM meta WHERE key='import_resume'")
            c.commit()
            c.close()
        first, total = rerun(db, snap)
        assert count(db) == n
        rows.append((label, first, total))
    print(f"{n:,} records, killed at {at:,} papers; {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, "
          f"{date.today()}")
    print("| rerun | first new commit | whole rerun |\n|---|---:|---:|")
    for label, first, total in rows:
        print(f"| {label} | {first:.1f} s | {total:.1f} s |")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 30000)
