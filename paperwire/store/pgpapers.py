"""The PostgreSQL side of :mod:`paperwire.store.papers`: statements whose fastest form there
is PostgreSQL's own (imports and reads by id).

The rules stay engine-neutral in :mod:`paperwire.ingest` and :mod:`paperwire.store.papers`;
this module only holds what they run differently on PostgreSQL (through
:class:`~paperwire.store.dialect.PgConnection`):

* lookups by a set of keys take one array parameter (``= ANY(?)``) instead of SQLite's
  chunks of ``?`` marks: one statement text whatever the count, which the server plans
  once and psycopg converts once and prepares (a 500-mark statement is past psycopg's query
  cache, and splitting it cost the importer more client time than the lookup itself; the
  20-50 papers of a search page cost the server a third less CPU time);
* a bulk load into an empty store drops the same secondary indexes as on SQLite, read
  from ``pg_indexes`` instead of ``sqlite_master``, and also the child tables' foreign
  keys (see :func:`secondary_objects`), and makes them again at the end with a larger
  ``maintenance_work_mem`` (a sort in memory instead of on disk). The table lock taken
  first makes two importers starting at once agree on which of them bulk-loads; DDL is
  transactional on PostgreSQL, so the drops and their record in ``meta`` commit together,
  as on SQLite.
"""

from __future__ import annotations

from typing import Iterable, Sequence

# Sort memory of one index build at the end of a bulk load (the session default is 64 MB;
# the title index of 1M papers sorts ~100 MB). SET LOCAL: only the build's transaction.
INDEX_BUILD_MEMORY = "256MB"


def find_candidates(conn, arxiv_ids: Iterable[str], paper_ids: Iterable[str],
                    title_norms: Iterable[str]) -> list:
    """Existing papers that may be the same as incoming records (by any identity key)."""
    rows: dict[int, object] = {}
    for column, keys in (("arxiv_id", arxiv_ids), ("paper_id", paper_ids), ("title_norm", title_norms)):
        keys = sorted(set(keys))
        if keys:
            # The column name is one of the three above, never input.
            for r in conn.execute(f"SELECT * FROM papers WHERE {column} = ANY(?)", (keys,)):
                rows[r["id"]] = r
    return list(rows.values())


def papers_by_rowid(conn, rowids: Sequence[int]) -> list:
    """The rows of the papers with these internal ids (in no particular order)."""
    return conn.execute("SELECT * FROM papers WHERE id = ANY(?)", (list(rowids),)).fetchall()


def lock_papers(conn) -> None:
    """Take the paper table's write lock until the transaction ends (before a bulk load's
    checks: a second importer waits here, then sees the first one's record and backs off)."""
    # Lower-case "in": the translator reads SQLite's "x IN table" in upper case only.
    conn.execute("LOCK TABLE papers in SHARE ROW EXCLUSIVE MODE")


def secondary_objects(conn, tables: Sequence[str]) -> list[tuple[str, str]]:
    """(name, statement that makes it again) of what a bulk load into ``tables`` drops.

    The non-unique indexes: primary keys and unique constraints stay (they enforce
    identity and serve the importer's lookups); ``pg_indexes`` spells them ``CREATE
    UNIQUE INDEX``. And the foreign keys from the child tables to ``papers``: their
    checks run per row (an index probe and a row lock on the paper, for each of the
    ~5 authors and ~2 categories of every paper), which made the child tables' COPY cost
    more server time than the papers' own; PostgreSQL's manual advises the same for
    bulk loads. A foreign key is named ``table.constraint`` (an index name has no dot),
    and it comes back after the rows its cascade would have removed, should a paper
    have been deleted meanwhile, so that adding it again cannot fail.
    """
    marks = ",".join("?" * len(tables))
    rows = conn.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
        f"AND tablename IN ({marks}) ORDER BY indexname", tuple(tables)
    ).fetchall()
    out = [(n, q) for n, q in rows if not q.lstrip().upper().startswith("CREATE UNIQUE")]
    fks = conn.execute(
        "SELECT cl.relname, c.conname, pg_get_constraintdef(c.oid), a.attname "
        "FROM pg_constraint c JOIN pg_class cl ON cl.oid = c.conrelid "
        "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] "
        "WHERE c.contype = 'f' AND c.confrelid = 'papers'::regclass AND cardinality(c.conkey) = 1 "
        f"AND cl.relnamespace = current_schema()::regnamespace AND cl.relname IN ({marks}) "
        "ORDER BY cl.relname, c.conname", tuple(tables)
    ).fetchall()
    for table, name, definition, column in fks:
        out.append((f"{table}.{name}",
                    f'DELETE FROM {table} WHERE NOT EXISTS (SELECT 1 FROM papers WHERE papers.id = {table}."{column}");\n'
                    f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}'))
    return out


def drop_object(conn, name: str) -> None:
    """Drop an index, or a foreign key named ``table.constraint`` (see :func:`secondary_objects`)."""
    table, dot, constraint = name.partition(".")
    if dot:
        conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{constraint}"')
    else:
        conn.execute(f'DROP INDEX "{name}"')


def object_exists(conn, name: str) -> bool:
    """Whether the index ``name``, or the constraint ``table.constraint``, is in the current schema."""
    table, dot, constraint = name.partition(".")
    if dot:
        return conn.execute(
            "SELECT 1 FROM pg_constraint c JOIN pg_class cl ON cl.oid = c.conrelid WHERE c.conname = ? "
            "AND cl.relname = ? AND cl.relnamespace = current_schema()::regnamespace", (constraint, table)
        ).fetchone() is not None
    return conn.execute("SELECT 1 FROM pg_indexes WHERE schemaname = current_schema() AND indexname = ?",
                        (name,)).fetchone() is not None


def rebuild(conn, statements: str) -> None:
    """Make one dropped object again (inside the caller's transaction): an index build with
    the sort memory of :data:`INDEX_BUILD_MEMORY`, or a foreign key's statements."""
    conn.execute(f"SET LOCAL maintenance_work_mem = '{INDEX_BUILD_MEMORY}'")
    for statement in statements.split(";\n"):
        conn.execute(statement)
