"""What the store's SQL expects of its engine, created on PostgreSQL (nothing on SQLite).

The store's queries are written once, in SQLite's spelling where PostgreSQL has no
equivalent: ``julianday()``, the two-argument scalar ``max``/``min``, ``round(float, n)``
and ``COLLATE NOCASE``. Here they get PostgreSQL definitions with SQLite's meaning, so
no query needs a second copy. The step sorts first: ``m0001`` already uses NOCASE.
"""

from paperwire.store.dialect import is_postgres

PG_SQL = (
    # Case-insensitive equality and uniqueness like SQLite's NOCASE (ICU, strength 2).
    "CREATE COLLATION IF NOT EXISTS nocase (provider = icu, locale = 'und-u-ks-level2', deterministic = false)",
    # Days since noon UTC, 4714 BC (SQLite's julianday); timestamps without an offset are UTC.
    # Not STRICT and one expression, so the planner inlines it (3x faster on a trending
    # page); date_part gives double precision where extract() would give slow numeric.
    "CREATE OR REPLACE FUNCTION julianday(text) RETURNS double precision LANGUAGE sql STABLE AS "
    "$$ SELECT date_part('epoch', CASE WHEN $1 = 'now' THEN now() ELSE $1::timestamptz END) / 86400.0 "
    "+ 2440587.5 $$",
    "CREATE OR REPLACE FUNCTION max(double precision, double precision) RETURNS double precision "
    "LANGUAGE sql IMMUTABLE AS $$ SELECT CASE WHEN $1 IS NULL OR $2 IS NULL THEN NULL ELSE GREATEST($1, $2) END $$",
    "CREATE OR REPLACE FUNCTION min(double precision, double precision) RETURNS double precision "
    "LANGUAGE sql IMMUTABLE AS $$ SELECT CASE WHEN $1 IS NULL OR $2 IS NULL THEN NULL ELSE LEAST($1, $2) END $$",
    "CREATE OR REPLACE FUNCTION max(bigint, bigint) RETURNS bigint "
    "LANGUAGE sql IMMUTABLE AS $$ SELECT CASE WHEN $1 IS NULL OR $2 IS NULL THEN NULL ELSE GREATEST($1, $2) END $$",
    "CREATE OR REPLACE FUNCTION min(bigint, bigint) RETURNS bigint "
    "LANGUAGE sql IMMUTABLE AS $$ SELECT CASE WHEN $1 IS NULL OR $2 IS NULL THEN NULL ELSE LEAST($1, $2) END $$",
    "CREATE OR REPLACE FUNCTION round(double precision, integer) RETURNS double precision "
    "LANGUAGE sql IMMUTABLE AS $$ SELECT round($1::numeric, $2)::double precision $$",
)


def apply(conn) -> None:
    """Create the compatibility objects on PostgreSQL; SQLite has them built in."""
    if is_postgres(conn):
        for statement in PG_SQL:
            conn.execute(statement)
