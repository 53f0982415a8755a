"""What ``paperwire db copy`` copies: the tables of a migrated store, read from its catalog.

The list is discovered from the schema both stores were migrated to (never a hand list
that rots when a migration adds a table), and ordered so every table comes after the
tables its foreign keys point at. Each table gets a plan: its columns, the key it is
copied in order of (keyset pagination, so a rerun resumes after the last committed
batch), and how it is written.

Not copied, because they are derived indexes on one engine:

- FTS5 shadow tables (``search_fts_data`` ...) are never copied as rows. SQLite ->
  SQLite copies the ``search_fts`` virtual table itself (rowid + columns), so the
  bookkeeping (``search_docs``, ``search_terms``, ``search_state``) stays true.
- Into SQLite from PostgreSQL (no FTS5 there): the lexical bookkeeping is left out and
  the index is rebuilt from ``papers`` after the copy (:data:`LEXICAL_TABLES`,
  :data:`LEXICAL_STATE_KEYS`); see :func:`paperwire.store.copy.copy_store`.
- Into PostgreSQL: nothing is left out; the lexical index there is each node's tantivy
  replica, built from ``papers`` up to ``meta.rev`` (:func:`~paperwire.store.dialect.fts5_is_index`).
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass, field

from paperwire.store.dialect import fts5_is_index, is_postgres

PROGRESS_KEY = "db_copy"  # the destination's meta row recording the copy's progress
# The migration record is written by each store's own migrations, not copied.
NOT_COPIED = {"_migrations"}
FTS5_SHADOWS = ("_data", "_idx", "_content", "_docsize", "_config")
# Lexical bookkeeping that only describes a store's own FTS5 index (SQLite destination,
# source without FTS5): rebuilt from ``papers`` on the destination instead.
LEXICAL_TABLES = {"search_docs", "search_terms"}
LEXICAL_STATE_KEYS = ("lexical_rev", "tantivy_rev", "deleted_rowids", "vocab_built", "vocab_rev")


class CopyError(RuntimeError):
    """A copy cannot start or did not end well; the message is one line for people."""


@dataclass
class TablePlan:
    """How one table is copied.

    ``mode``: ``keyset`` (batches in key order, resumable), ``whole`` (a table without a
    primary key: emptied and copied in one transaction), ``merge`` (``meta``: rows upserted,
    the destination's own keys kept).
    """

    name: str
    columns: list[str]
    key: list[str]
    mode: str = "keyset"
    where: str = ""                   # extra source filter (SQL, no parameters)
    where_params: tuple = ()
    virtual: bool = False             # an FTS5 table copied through its virtual table
    notes: list[str] = field(default_factory=list)

    def select_sql(self, after: list | None, limit: int) -> tuple[str, list]:
        """The source query for the batch after key ``after`` (None: the first batch)."""
        cols = ", ".join(_q(c) for c in self.columns)
        where, params = [], list(self.where_params)
        if self.where:
            where.append(self.where)
        if after is not None and self.mode != "whole":
            if len(self.key) == 1:
                where.append(f"{_q(self.key[0])} > ?")
            else:  # a row-value comparison: both engines walk the primary key index with it
                where.append(f"({', '.join(_q(k) for k in self.key)}) > ({', '.join('?' * len(self.key))})")
            params.extend(after)
        sql = f"SELECT {cols} FROM {_q(self.name)}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        if self.key:
            sql += " ORDER BY " + ", ".join(_q(k) for k in self.key)
        if self.mode != "whole":
            sql += f" LIMIT {int(limit)}"
        return sql, params

    def count_sql(self) -> str:
        return f"SELECT COUNT(*) FROM {_q(self.name)}" + (f" WHERE {self.where}" if self.where else "")

    def key_of(self, row) -> list:
        idx = [self.columns.index(k) for k in self.key]
        return [row[i] for i in idx]


def _q(name: str) -> str:
    """An identifier for SQL: bare when the schema could write it bare (the dialect layer
    reads ``INSERT OR REPLACE INTO name``), else quoted."""
    return name if _PLAIN.match(name) else '"' + name.replace('"', '""') + '"'


_PLAIN = re.compile(r"^[a-z_][a-z0-9_]*$")


# ---------------------------------------------------------------- catalogs

@dataclass
class Catalog:
    """The tables of one store: columns in order, primary keys, foreign-key parents."""

    columns: dict[str, list[str]]
    keys: dict[str, list[str]]
    parents: dict[str, set[str]]
    virtual: set[str]
    identity: dict[str, list[str]]   # PostgreSQL identity / serial columns per table


def catalog(conn: sqlite3.Connection) -> Catalog:
    """Read the store's schema from its catalog (``sqlite_master`` or ``information_schema``)."""
    return _pg_catalog(conn) if is_postgres(conn) else _sqlite_catalog(conn)


def _sqlite_catalog(conn) -> Catalog:
    rows = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table' "
                        "AND name NOT LIKE 'sqlite!_%' ESCAPE '!'").fetchall()
    virtual = {r[0] for r in rows if (r[1] or "").lstrip().upper().startswith("CREATE VIRTUAL TABLE")}
    shadows = {v + s for v in virtual for s in FTS5_SHADOWS}
    columns, keys, parents = {}, {}, {}
    for name, _sql in rows:
        if name in shadows:
            continue
        info = conn.execute(f"PRAGMA table_info({_q(name)})").fetchall()
        columns[name] = [r[1] for r in info]
        keys[name] = [r[1] for r in sorted((r for r in info if r[5]), key=lambda r: r[5])]
        if name in virtual:
            keys[name] = ["rowid"]
            columns[name] = ["rowid", *columns[name]]
        parents[name] = {r[2] for r in conn.execute(f"PRAGMA foreign_key_list({_q(name)})")}
    return Catalog(columns, keys, parents, virtual, {})


def _pg_catalog(conn) -> Catalog:
    names = [r[0] for r in conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
        "AND table_type = 'BASE TABLE'")]
    columns: dict[str, list[str]] = {n: [] for n in names}
    identity: dict[str, list[str]] = {}
    # Generated columns (papers.rank_jd) are computed by the destination, never copied; SQLite's
    # table_info leaves them out the same way.
    for table, col, ident, default in conn.execute(
            "SELECT table_name, column_name, is_identity, column_default FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND is_generated = 'NEVER' "
            "ORDER BY table_name, ordinal_position"):
        if table in columns:
            columns[table].append(col)
            if ident == "YES" or (default or "").startswith("nextval("):
                identity.setdefault(table, []).append(col)
    keys: dict[str, list[str]] = {n: [] for n in names}
    for table, col in conn.execute(
            "SELECT tc.table_name, kcu.column_name FROM information_schema.table_constraints tc "
            "JOIN information_schema.key_column_usage kcu ON kcu.constraint_name = tc.constraint_name "
            "AND kcu.table_schema = tc.table_schema "
            "WHERE tc.constraint_type = 'PRIMARY KEY' AND tc.table_schema = current_schema() "
            "ORDER BY tc.table_name, kcu.ordinal_position"):
        if table in keys:
            keys[table].append(col)
    parents: dict[str, set[str]] = {n: set() for n in names}
    for child, parent in conn.execute(
            "SELECT c.relname, p.relname FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid "
            "JOIN pg_class p ON p.oid = k.confrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE k.contype = 'f' AND n.nspname = current_schema()"):
        if child in parents:
            parents[child].add(parent)
    return Catalog(columns, keys, parents, set(), identity)


def fk_order(names: list[str], parents: dict[str, set[str]]) -> list[str]:
    """``names`` with every table after the tables it refers to (ties by name; a table's
    references to itself are ignored: its rows go in key order)."""
    todo = {n: {p for p in parents.get(n, ()) if p != n and p in names} for n in names}
    out: list[str] = []
    while todo:
        ready = sorted(n for n, deps in todo.items() if not deps)
        if not ready:
            raise CopyError("foreign keys form a cycle between tables: " + ", ".join(sorted(todo)))
        for n in ready:
            out.append(n)
            del todo[n]
        for deps in todo.values():
            deps.difference_update(ready)
    return out


# ---------------------------------------------------------------- the plan

def plan_copy(src: sqlite3.Connection, dst: sqlite3.Connection) -> list[TablePlan]:
    """The tables to copy from ``src`` to ``dst``, in foreign-key order, ``meta`` last."""
    s, d = catalog(src), catalog(dst)
    fts_both = fts5_is_index(src) and fts5_is_index(dst)
    rebuild_lexical = fts5_is_index(dst) and not fts5_is_index(src)
    plans = []
    for name in sorted(s.columns):
        if name in NOT_COPIED or (name in s.virtual and not (fts_both and name in d.virtual)):
            continue
        if rebuild_lexical and name in LEXICAL_TABLES:
            continue
        if name not in d.columns:
            raise CopyError(f"table {name} of the source is missing in the destination: "
                            "are both stores at the same paperwire version?")
        missing = [c for c in s.columns[name] if c not in d.columns[name]]
        if missing:
            raise CopyError(f"columns {', '.join(missing)} of table {name} are missing in the destination")
        key = s.keys[name] or d.keys[name]
        plan = TablePlan(name, list(s.columns[name]), list(key), virtual=name in s.virtual)
        if not key:
            plan.mode = "whole"
        if name == "meta":
            plan.mode, plan.where = "merge", "key <> ?"
            plan.where_params = (PROGRESS_KEY,)
        if name == "search_state" and rebuild_lexical:
            plan.where = "key NOT IN (" + ", ".join("?" * len(LEXICAL_STATE_KEYS)) + ")"
            plan.where_params = LEXICAL_STATE_KEYS
            plan.notes.append("lexical index state rebuilt on the destination")
        plans.append(plan)
    by_name = {p.name: p for p in plans}
    order = fk_order([n for n in by_name if n != "meta"], d.parents)
    return [by_name[n] for n in order] + ([by_name["meta"]] if "meta" in by_name else [])


def identity_columns(conn: sqlite3.Connection) -> dict[str, list[str]]:
    """PostgreSQL tables and their identity columns (whose sequences follow explicit ids)."""
    return catalog(conn).identity if is_postgres(conn) else {}
