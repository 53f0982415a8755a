"""Shared by the PostgreSQL benchmarks (bench/pg_import.py, bench/pg_vs_sqlite.py).

A throwaway cluster from tests/pg_support.py (run with PYTHONPATH=../tests, or from the repo
root: the scripts put tests/ on sys.path themselves), CPU seconds of processes read from
/proc (utime + stime, and for the postmaster also its reaped children: backends that
ended during the measurement), and a line on the machine (cores, load average).
"""

from __future__ import annotations

import os
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for p in (str(ROOT), str(ROOT / "tests"), str(ROOT / "bench")):
    if p not in sys.path:
        sys.path.insert(0, p)

TICK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid: int, *, children: bool = False) -> float:
    """CPU seconds (user + system) of process ``pid``; with ``children``, plus those of the
    children it has waited for. 0.0 for a process that is gone."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            raw = fh.read()
    except OSError:
        return 0.0
    fields = raw[raw.rindex(")") + 2:].split()  # after "pid (comm) "; comm may hold spaces
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return (utime + stime + ((cutime + cstime) if children else 0)) / TICK


def child_pids(pid: int) -> list[int]:
    """Direct children of ``pid`` (from /proc/*/stat)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                raw = fh.read()
        except OSError:
            continue
        if int(raw[raw.rindex(")") + 2:].split()[1]) == pid:
            out.append(int(entry))
    return out


def tree_cpu(pid: int) -> float:
    """CPU seconds of ``pid``, its live descendants, and every descendant already reaped.

    Monotone while the tree runs: a child's time moves into its parent's ``cutime`` when
    it is reaped, so a before/after difference counts every process that ran between.
    """
    total = proc_cpu(pid, children=True)
    for child in child_pids(pid):
        total += tree_cpu(child)
    return total


def postmaster_pid(cluster) -> int:
    """The postmaster of a :class:`pg_support.PgCluster` (first line of postmaster.pid)."""
    return int((cluster.data / "postmaster.pid").read_text().split()[0])


def start_cluster():
    """A running throwaway cluster (tests/pg_support.PgCluster); the caller stops it."""
    from pg_support import PgCluster, pg_bin_dir

    bindir = pg_bin_dir()
    if bindir is None or not (bindir / "initdb").exists():
        sys.exit("PostgreSQL binaries not found (apt-get install postgresql, or set PAPERWIRE_PG_BIN)")
    return PgCluster(bindir).start()


def pg_version(url: str) -> str:
    import psycopg

    with psycopg.connect(url) as c:
        return c.execute("SHOW server_version").fetchone()[0]


def machine() -> dict:
    """Cores, CPU model, GPU (none used), date and load average: where a figure came from."""
    model = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cores": os.cpu_count(), "cpu": model, "gpu": "none used", "python": platform.python_version(),
            "date_utc": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M"),
            "load_1_5_15": [round(x, 2) for x in os.getloadavg()]}
