"""``paperwire db copy SRC DST``: move a whole store to another database (SQLite or PostgreSQL).

Rows are read from one store connection and written to the other, table by table in
foreign-key order (:mod:`paperwire.store.copy_schema` discovers the tables), keeping
every primary key and rowid, since other tables and the node caches refer to them.

Resumable: each batch is one transaction on the destination that also records, in the
destination's ``meta`` (key ``db_copy``), the last key copied of that table. A copy killed
at any point (SIGKILL included) and run again continues after the last committed batch,
so it ends with the same rows and no duplicates. A destination that already holds data
and is not a partial copy of the same source is refused, unless ``replace`` empties it.

At the end the destination's identity sequences (PostgreSQL) are moved past the copied
ids, ``meta.rev`` is at least every paper's ``rev`` (node replicas rebuild from the
copy by following it), this node's replica folders of the destination are removed, and
every table is counted on both sides (``verify``: also an order-free checksum of its rows).

``crash(point)``, when given, is called at ``batch`` (a batch written, not committed) and
``commit`` (just committed): the CLI passes a :class:`paperwire.crashpoints.CrashHook`
(``PAPERWIRE_DB_COPY_CRASH_AT=point[:n]``), which the crash tests use to SIGKILL it there.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import struct
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from paperwire.store import copy_schema as schema
from paperwire.store.copy_schema import PROGRESS_KEY, CopyError, TablePlan, plan_copy
from paperwire.store.db import transaction
from paperwire.store.dialect import copy_rows, fts5_is_index, is_postgres
from paperwire.store.meta import database_file

__all__ = ["CopyError", "CopyReport", "TableResult", "copy_store", "table_rows", "table_checksum"]

BATCH = 5000


@dataclass
class TableResult:
    """One table's outcome: rows on each side after the copy, and whether they agree."""

    name: str
    source_rows: int
    dest_rows: int
    copied: int = 0          # rows written by this run
    ok: bool = True
    note: str = ""


@dataclass
class CopyReport:
    """What a run did (``copied`` rows, of a ``resumed`` copy or not) and every table's check."""

    tables: list[TableResult] = field(default_factory=list)
    resumed: bool = False
    copied: int = 0
    seconds: float = 0.0
    sequences: int = 0       # identity sequences moved past the copied ids
    lexical_rebuild: bool = False   # the destination's FTS5 index must be rebuilt from papers

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.tables)

    def mismatches(self) -> list[TableResult]:
        """The tables whose copy does not match the source."""
        return [t for t in self.tables if not t.ok]




# ---------------------------------------------------------------- progress record

def source_fingerprint(conn: sqlite3.Connection, label: str) -> str:
    """Names the source store: its label plus when its schema was first created (a
    different database at the same path or URL is another source)."""
    row = conn.execute("SELECT MIN(applied_at) FROM _migrations").fetchone()
    return f"{label}|{row[0] if row else ''}"


def load_progress(conn: sqlite3.Connection) -> dict | None:
    """The destination's copy record (None: it was never the target of a copy)."""
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (PROGRESS_KEY,)).fetchone()
    if not row:
        return None
    try:
        return json.loads(row[0])
    except ValueError:
        raise CopyError(f"the destination's meta.{PROGRESS_KEY} record is unreadable: use --replace") from None


def _save_progress(conn: sqlite3.Connection, state: dict) -> None:
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (PROGRESS_KEY, json.dumps(state)))


def _count(conn: sqlite3.Connection, plan: TablePlan) -> int:
    return int(conn.execute(plan.count_sql(), plan.where_params).fetchone()[0])


def _nonempty_tables(conn: sqlite3.Connection) -> list[tuple[str, int]]:
    cat = schema.catalog(conn)
    out = []
    for name in sorted(cat.columns):
        if name in schema.NOT_COPIED or name == "meta":
            continue
        n = conn.execute(f"SELECT COUNT(*) FROM {schema._q(name)}").fetchone()[0]
        if n:
            out.append((name, int(n)))
    return out


def _empty_destination(conn: sqlite3.Connection) -> None:
    """Delete every row of the destination (``--replace``), in one transaction."""
    cat = schema.catalog(conn)
    names = [n for n in cat.columns if n not in schema.NOT_COPIED]
    with transaction(conn):
        if is_postgres(conn):
            conn.execute("TRUNCATE " + ", ".join(schema._q(n) for n in names))
            return
        for name in reversed(schema.fk_order(names, cat.parents)):
            conn.execute(f"DELETE FROM {schema._q(name)}")


# ---------------------------------------------------------------- writing

def _insert_sql(plan: TablePlan, upsert: bool) -> str:
    cols = ", ".join(schema._q(c) for c in plan.columns)
    verb = "INSERT OR REPLACE" if upsert else "INSERT"
    return f"{verb} INTO {schema._q(plan.name)} ({cols}) VALUES ({', '.join('?' * len(plan.columns))})"


def _write(dst: sqlite3.Connection, plan: TablePlan, rows: list) -> None:
    """Insert ``rows`` (inside the caller's transaction). Keys are preserved; a key the
    destination already has is an error, except in ``meta`` where the source's value wins."""
    try:
        _insert(dst, plan, rows)
    except sqlite3.IntegrityError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CopyError(f"table {plan.name}: the destination refused a row ({first})") from exc


def _insert(dst: sqlite3.Connection, plan: TablePlan, rows: list) -> None:
    if plan.mode == "merge":
        dst.executemany(_insert_sql(plan, True), [tuple(r) for r in rows])
    elif is_postgres(dst) and not plan.virtual:
        copy_rows(dst, schema._q(plan.name), [schema._q(c) for c in plan.columns], rows)
    else:
        dst.executemany(_insert_sql(plan, False), [tuple(r) for r in rows])


def _copy_table(src, dst, plan: TablePlan, state: dict, *, batch: int, crash: Callable[[str], None],
                progress: Callable[[str, int], None] | None) -> int:
    entry = state["tables"].setdefault(plan.name, {"rows": 0})
    if entry.get("done"):
        return 0
    copied = 0
    if plan.mode == "whole":
        sql, params = plan.select_sql(None, 0)
        rows = src.execute(sql, params).fetchall()
        with transaction(dst):
            dst.execute(f"DELETE FROM {schema._q(plan.name)}")
            if rows:
                _write(dst, plan, rows)
            entry.update(rows=len(rows), done=True)
            _save_progress(dst, state)
            crash("batch")
        crash("commit")
        if progress:
            progress(plan.name, len(rows))
        return len(rows)
    after = entry.get("after")
    while True:
        sql, params = plan.select_sql(after, batch)
        rows = src.execute(sql, params).fetchall()
        with transaction(dst):
            if rows:
                _write(dst, plan, rows)
                after = plan.key_of(rows[-1])
                entry.update(after=after, rows=entry["rows"] + len(rows))
            if len(rows) < batch:
                entry["done"] = True
            _save_progress(dst, state)
            crash("batch")
        crash("commit")
        copied += len(rows)
        if progress and rows:
            progress(plan.name, len(rows))
        if entry.get("done"):
            return copied


# ---------------------------------------------------------------- after the rows

def _fix_sequences(dst: sqlite3.Connection) -> int:
    """Move each identity sequence past the largest copied id: explicit ids do not
    advance it on PostgreSQL, and the next default id would collide."""
    if not is_postgres(dst):
        return 0  # SQLite gives max(rowid) + 1 (no AUTOINCREMENT table in the schema)
    n = 0
    for table, cols in sorted(schema.identity_columns(dst).items()):
        for col in cols:
            dst.execute(
                f"SELECT setval(pg_get_serial_sequence(?, ?), COALESCE(MAX({schema._q(col)}), 0) + 1, false) "
                f"FROM {schema._q(table)}", (schema._q(table), col))
            n += 1
    return n


def _fix_rev(dst: sqlite3.Connection) -> None:
    """``meta.rev`` at least every paper's ``rev``: replicas follow the store revision, so a
    paper written at a revision beyond it would never reach them."""
    top = dst.execute("SELECT COALESCE(MAX(rev), 0) FROM papers").fetchone()[0]
    row = dst.execute("SELECT value FROM meta WHERE key = 'rev'").fetchone()
    if row is None or int(row[0]) < int(top):
        dst.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('rev', ?)", (str(int(top)),))


def node_cache_dirs(conn: sqlite3.Connection) -> list[Path]:
    """This node's rebuildable caches of the store (tantivy, vectors, topic-map sample)."""
    base = database_file(conn)
    if not base:
        return []
    return [Path(base + suffix) for suffix in (".tantivy", ".vectors", ".topicmap.npz")]


def clear_node_caches(conn: sqlite3.Connection) -> None:
    """Remove this node's caches of the destination: they may describe an older database
    of the same name, and would otherwise count as caught up with the copy."""
    for path in node_cache_dirs(conn):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists():
            path.unlink()


def _check(src, dst, plan: TablePlan, copied: int, verify: bool) -> TableResult:
    s, d = _count(src, plan), _count(dst, plan)
    res = TableResult(plan.name, s, d, copied)
    if plan.mode == "merge":
        # The destination keeps keys of its own (the secret key carried after a first
        # completion, say); every source key must be there, equal. The copy column counts
        # the source's keys the destination holds, so a rerun reports what the first run did.
        theirs = {r[0]: r[1] for r in table_rows(dst, plan)}
        wrong = sum(1 for k, v in table_rows(src, plan) if theirs.get(k) != v)
        res.dest_rows = s - wrong
        res.ok = wrong == 0
        res.note = f"{wrong} source keys missing or different" if wrong else ""
        return res
    res.ok = s == d
    if not res.ok:
        res.note = f"row count differs: source {s}, destination {d}"
    elif verify and table_checksum(src, plan) != table_checksum(dst, plan):
        res.ok, res.note = False, "row contents differ (checksum)"
    return res


# ---------------------------------------------------------------- reading for checks

def table_rows(conn: sqlite3.Connection, plan: TablePlan, *, batch: int = BATCH):
    """Every row of ``plan``'s table in ``conn`` (key order, in batches), as tuples."""
    after = None
    while True:
        sql, params = plan.select_sql(after, batch)
        rows = conn.execute(sql, params).fetchall()
        yield from (tuple(_norm(v) for v in r) for r in rows)
        if plan.mode == "whole" or len(rows) < batch:
            return
        after = plan.key_of(rows[-1])


def _norm(value):
    if isinstance(value, memoryview):
        return value.tobytes()
    if isinstance(value, bool):
        return int(value)
    return value


def table_checksum(conn: sqlite3.Connection, plan: TablePlan) -> tuple[int, int]:
    """(rows, sum of row hashes mod 2**64): equal on two stores holding the same rows,
    whatever order each engine sorts text keys in."""
    total, n = 0, 0
    for row in table_rows(conn, plan):
        h = hashlib.blake2b(repr(tuple(_canon(v) for v in row)).encode(), digest_size=8).digest()
        total = (total + struct.unpack("<Q", h)[0]) % (1 << 64)
        n += 1
    return n, total


def _canon(value):
    if isinstance(value, float):
        return ("f", repr(value))
    if isinstance(value, bytes):
        return ("b", value.hex())
    return value


# ---------------------------------------------------------------- the copy

def _begin_snapshot(src: sqlite3.Connection) -> None:
    # One read transaction for the whole run: every table and the final counts see the
    # same state of the source, even if something writes to it meanwhile.
    if is_postgres(src):
        src.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    else:
        src.execute("BEGIN")


def copy_store(src: sqlite3.Connection, dst: sqlite3.Connection, *, src_label: str, dst_label: str,
               batch: int = BATCH, replace: bool = False, verify: bool = False,
               progress: Callable[[str, int], None] | None = None,
               on_table: Callable[[TablePlan, int], None] | None = None,
               crash: Callable[[str], None] | None = None) -> CopyReport:
    """Copy every table of ``src`` into ``dst`` (both migrated store connections).

    Resumes a previous partial copy of the same source; refuses (:class:`CopyError`) a
    destination holding other data unless ``replace``. ``progress(table, rows)`` is called
    after each committed batch, ``on_table(plan, source_rows)`` before each table. The
    report lists every table with its counts on both sides; ``report.ok`` is False on a
    mismatch. With ``lexical_rebuild`` set, the caller rebuilds the destination's FTS5
    index from ``papers`` (``paperwire.index.build.update_lexical``).
    """
    t0 = time.perf_counter()
    if batch < 1:
        raise CopyError("batch size must be at least 1")
    plans = plan_copy(src, dst)
    fingerprint = source_fingerprint(src, src_label)
    state = load_progress(dst)
    if state is not None and state.get("source") != fingerprint and not replace:
        raise CopyError(f"{dst_label} holds a copy of another store ({state.get('source_label', '?')}), "
                        f"not of {src_label}: pass --replace to empty it and copy again")
    if state is None and not replace:
        full = _nonempty_tables(dst)
        if full:
            listed = ", ".join(f"{n}: {c} rows" for n, c in full[:4]) + (", ..." if len(full) > 4 else "")
            raise CopyError(f"{dst_label} is not empty ({listed}) and is not a partial copy of {src_label}: "
                            "copy into an empty database, or pass --replace to empty it first")
    report = CopyReport(resumed=state is not None and not replace)
    if replace:
        _empty_destination(dst)
        state = None
    if state is None:
        state = {"source": fingerprint, "source_label": src_label, "tables": {},
                 "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        with transaction(dst):
            _save_progress(dst, state)
    first_completion = not state.get("completed_at")
    crash = crash or (lambda point: None)
    report.lexical_rebuild = fts5_is_index(dst) and not fts5_is_index(src)
    _begin_snapshot(src)
    try:
        copied = {}
        for plan in plans:
            if on_table:
                on_table(plan, _count(src, plan))
            copied[plan.name] = _copy_table(src, dst, plan, state, batch=batch, crash=crash, progress=progress)
        report.copied = sum(copied.values())
        with transaction(dst):
            report.sequences = _fix_sequences(dst)
            _fix_rev(dst)
            state["completed_at"] = state.get("completed_at") or datetime.now(timezone.utc).isoformat(timespec="seconds")
            _save_progress(dst, state)
        if first_completion:
            clear_node_caches(dst)
        report.tables = [_check(src, dst, p, copied[p.name], verify) for p in plans]
    finally:
        try:
            src.execute("ROLLBACK")
        except Exception:  # the source went away: the error that stopped the copy matters
            pass
    report.seconds = round(time.perf_counter() - t0, 3)
    return report
