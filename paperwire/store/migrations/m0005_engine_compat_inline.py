"""The two-argument ``max``/``min`` of ``m0000_engine_compat`` again, in a form PostgreSQL inlines.

``m0000`` wrote them as ``CASE WHEN $1 IS NULL OR $2 IS NULL THEN NULL ELSE GREATEST($1, $2)
END``: each argument appears twice, and PostgreSQL does not inline a SQL function whose
argument is used twice and costs more than a few operators. On a trending page the argument
is the paper's age (two ``julianday`` calls), so every row went through the SQL-function
executor: 2.8 ms for one day's 359 papers against 1.1 ms inlined (bench/pg_vs_sqlite.py).

Now they are STRICT (NULL if either argument is NULL, as SQLite's scalar ``max``/``min``)
around the built-in ``float8larger`` & co., the functions behind the ``max``/``min``
aggregates: strict, each argument used once, so the planner inlines them. Nothing on SQLite.
"""

from paperwire.store.dialect import is_postgres

PG_SQL = tuple(
    f"CREATE OR REPLACE FUNCTION {name}({t}, {t}) RETURNS {t} LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE "
    f"AS $$ SELECT {builtin}($1, $2) $$"
    for name, t, builtin in (
        ("max", "double precision", "float8larger"), ("min", "double precision", "float8smaller"),
        ("max", "bigint", "int8larger"), ("min", "bigint", "int8smaller"),
    )
)


def apply(conn) -> None:
    """Replace the compatibility functions on PostgreSQL; SQLite has them built in."""
    if is_postgres(conn):
        for statement in PG_SQL:
            conn.execute(statement)
