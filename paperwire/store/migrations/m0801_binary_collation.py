"""A ``binary`` collation on PostgreSQL, as SQLite has built in.

Columns declared ``COLLATE NOCASE`` (usernames, e-mail addresses) get PostgreSQL's
nondeterministic ICU collation (``m0000_engine_compat``), and PostgreSQL refuses pattern
matching (``ILIKE``, the translation of SQLite's ``LIKE``) under a nondeterministic
collation. A query that searches such a column writes ``column COLLATE "binary" LIKE ?``:
on SQLite that is its own BINARY collation (LIKE still ignores ASCII case there), here it
is the deterministic "C" collation, under which ILIKE works.
"""

from paperwire.store.dialect import is_postgres


def apply(conn) -> None:
    """Create the collation on PostgreSQL; SQLite has it."""
    if is_postgres(conn):
        conn.execute('CREATE COLLATION IF NOT EXISTS "binary" FROM "C"')
