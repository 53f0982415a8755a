"""SIGKILL an import at several points; a rerun ends with exactly the right papers.

The snapshot (~19 MB) is big enough for ``paperwire import`` to bulk-load an empty
store (secondary indexes dropped, rebuilt at the end), so the kills land in a bulk
load, in its index rebuild, and in the rebuild a rerun does first."""

from __future__ import annotations

import importlib.util
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
N = 12000


def load_synth():
    spec = importlib.util.spec_from_file_location("synth_snapshot", ROOT / "bench" / "synth_snapshot.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory):
    if not (ROOT.parent / "shared" / "data" / "arxiv").is_dir():
        pytest.skip("shared data folder not found")
    path = tmp_path_factory.mktemp("synth") / "snap.jsonl"
    return load_synth().write_snapshot(N, path)


def cli(db, *args):
    return [sys.executable, "-m", "paperwire", "--db", str(db), "import", "--batch-size", "300", *args]


def count(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        c = sqlite3.connect(db, timeout=5)
        try:
            return c.execute("SELECT COUNT(*) FROM papers").fetchone()[0]
        finally:
            c.close()
    except sqlite3.OperationalError:
        return 0  # schema not created yet


def state(db: Path):
    c = sqlite3.connect(db)
    papers = sorted(c.execute("SELECT paper_id, record_hash, content_hash FROM papers"))
    authors = c.execute("SELECT COUNT(*) FROM paper_authors").fetchone()[0]
    cats = c.execute("SELECT COUNT(*) FROM paper_categories").fetchone()[0]
    dupes = c.execute("SELECT COUNT(*) - COUNT(DISTINCT arxiv_id) FROM papers").fetchone()[0]
    orphans = c.execute("SELECT COUNT(*) FROM paper_authors WHERE paper NOT IN (SELECT id FROM papers)").fetchone()[0]
    c.close()
    return papers, authors, cats, dupes, orphans


def indexes(db: Path) -> list[tuple]:
    c = sqlite3.connect(db)
    try:
        return sorted(tuple(r) for r in c.execute("SELECT name, tbl_name, sql FROM sqlite_master WHERE type='index'"))
    finally:
        c.close()


def bulk_pending(db: Path) -> bool:
    c = sqlite3.connect(db)
    try:
        return c.execute("SELECT 1 FROM meta WHERE key='bulk_load_indexes'").fetchone() is not None
    finally:
        c.close()


@pytest.fixture(scope="module")
def reference(tmp_path_factory, snapshot):
    """An uninterrupted import: (state, indexes) every interrupted one must end with."""
    ref = tmp_path_factory.mktemp("ref") / "ref.db"
    subprocess.run(cli(ref, str(snapshot)), check=True, capture_output=True, timeout=300)
    return state(ref), indexes(ref)


def children_of(pid: int) -> set[int]:
    kids = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids |= {int(k) for k in (task / "children").read_text().split()}
        except OSError:
            pass
    return kids


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def kill_when(proc, db: Path, at_least: int, timeout: float = 120) -> int:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"import finished before reaching {at_least} papers; raise N")
        n = count(db)
        if n >= at_least:
            kids = children_of(proc.pid)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            # The parser child (large inputs parse in a second process) must not linger.
            end = time.time() + 15
            while any(alive(k) for k in kids) and time.time() < end:
                time.sleep(0.1)
            assert not any(alive(k) for k in kids), "orphaned child process after SIGKILL"
            return n
        time.sleep(0.01)
    proc.kill()
    pytest.fail("import made no progress")


def test_sigkill_at_several_points_then_rerun(tmp_path, snapshot, reference):
    expected, expected_indexes = reference
    assert len(expected[0]) == N and expected[3] == 0

    db = tmp_path / "killed.db"
    seen = []
    for at_least in (1, N // 3, (2 * N) // 3):
        proc = subprocess.Popen(cli(db, str(snapshot)), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        seen.append(kill_when(proc, db, at_least))
        if at_least == 1:
            # The first run was a bulk load: killed with its indexes dropped.
            assert bulk_pending(db) and "papers_title_norm" not in {i[0] for i in indexes(db)}
    assert 0 < seen[-1] < N, seen  # the kills really landed mid-import
    final = subprocess.run(cli(db, str(snapshot)), capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr
    added = int(final.stdout.split()[0])
    assert 0 < added <= N - seen[-1]
    assert state(db) == expected
    assert indexes(db) == expected_indexes and not bulk_pending(db)
    again = subprocess.run(cli(db, str(snapshot)), capture_output=True, text=True, timeout=300)
    assert again.stdout.strip() == f"0 added, 0 updated, {N} unchanged, 0 skipped"


def crash_at_index(n: int) -> dict:
    """Environment that SIGKILLs the import once its nth index is built, before that commits."""
    return dict(os.environ, PAPERWIRE_IMPORT_CRASH_AT=f"index:{n}")


@pytest.mark.parametrize("crash_at", [1, 5])
def test_sigkill_during_index_rebuild_then_rerun(tmp_path, snapshot, reference, crash_at):
    expected, expected_indexes = reference
    secondary = [i for i in expected_indexes if i[1] in ("papers", "paper_authors", "paper_categories")
                 and i[2] and not i[2].startswith("CREATE UNIQUE")]
    assert len(secondary) >= 6 > crash_at - 1

    db = tmp_path / "rebuild.db"
    killed = subprocess.run(cli(db, str(snapshot)), env=crash_at_index(crash_at), capture_output=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    # All papers were committed; the indexes built before the kill stay, the one being
    # built when it came is gone with its transaction, the rest were never started.
    assert count(db) == N and bulk_pending(db)
    missing = set(expected_indexes) - set(indexes(db))
    assert len(missing) == len(secondary) - (crash_at - 1) and missing <= set(secondary)

    # The rerun rebuilds the missing indexes before importing; kill that too, once.
    killed = subprocess.run(cli(db, str(snapshot)), env=crash_at_index(1), capture_output=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL and bulk_pending(db)

    final = subprocess.run(cli(db, str(snapshot)), capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr
    # Every record was committed before the kills: the rerun resumes past all of them.
    assert final.stdout.strip() == (f"0 added, 0 updated, 0 unchanged, 0 skipped (resumed an interrupted import: "
                                    f"lines 1-{N:,} of {snapshot} already imported)")
    assert state(db) == expected
    assert indexes(db) == expected_indexes and not bulk_pending(db)


def test_sigkill_during_strict_import_leaves_nothing(tmp_path, snapshot, reference):
    db = tmp_path / "strict.db"
    proc = subprocess.Popen(cli(db, "--strict", str(snapshot)), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wal = db.with_name(db.name + "-wal")
    deadline = time.time() + 60
    # Wait until the single strict transaction has written megabytes, then kill it.
    while not (wal.exists() and wal.stat().st_size > 2_000_000):
        assert proc.poll() is None, "strict import finished before it could be killed"
        assert time.time() < deadline
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert count(db) == 0
    # A strict bulk load drops its indexes inside its one transaction: back with the rollback.
    assert indexes(db) == reference[1] and not bulk_pending(db)
    done = subprocess.run(cli(db, "--strict", str(snapshot)), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and count(db) == N
    assert state(db) == reference[0] and indexes(db) == reference[1] and not bulk_pending(db)
