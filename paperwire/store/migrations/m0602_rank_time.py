"""The trending score's reference time as a column, ``papers.rank_jd``: the Julian day of
``COALESCE(listed_at, published, first_seen)``.

The trending query computed it from the timestamp text of every paper in the window, once per
row and per page view. On SQLite ``julianday()`` is a cheap C function; on PostgreSQL it is a
text-to-timestamptz parse, and at 100k papers it was most of the server's 3.9-4.8 ms per home
page (bench/pg_vs_sqlite.py: 1.34x SQLite's CPU against a 1.3x target). So the column is:

- on SQLite, a VIRTUAL generated column: computed when read, exactly as before, no storage;
- on PostgreSQL, a STORED generated column: computed once when a paper is written, by the
  server itself, so every write path (row inserts, the COPY bulk load, ``db copy``) fills it
  and none of them has to know. The function behind it is IMMUTABLE with its own TimeZone,
  so a timestamp without an offset means UTC whatever the writing session's setting.

Both give the same number (SQLite's ``julianday`` semantics); the query names the column once.
Generated columns are not copied by ``db copy`` (the destination computes its own).

The covering index of the feed days (``m0601``) gains the column and the id, so the trending
sort reads the index alone: an index-only scan on PostgreSQL, and on SQLite the Julian day is
kept in the index instead of being computed from the row's text on every page view.
"""

from paperwire.store.dialect import is_postgres

SOURCE = "COALESCE(listed_at, published, first_seen)"

PG_SQL = (
    # The shapes SQLite's julianday reads (an offset needs its colon there); any other text,
    # or a date no calendar has, gives NULL on both engines rather than failing the write of
    # the paper here.
    "CREATE OR REPLACE FUNCTION paperwire_rank_jd(stamp text) RETURNS double precision "
    "LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET TimeZone = 'UTC' AS $$ BEGIN "
    "IF stamp !~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\\.[0-9]+)?)?)?"
    "(Z|[+-][0-9]{2}:[0-9]{2})?$' THEN RETURN NULL; END IF; "
    "RETURN date_part('epoch', stamp::timestamptz) / 86400.0 + 2440587.5; "
    "EXCEPTION WHEN datetime_field_overflow OR invalid_datetime_format THEN RETURN NULL; END $$",
    f"ALTER TABLE papers ADD COLUMN rank_jd double precision GENERATED ALWAYS AS (paperwire_rank_jd({SOURCE})) STORED",
)

SQLITE_SQL = f"ALTER TABLE papers ADD COLUMN rank_jd REAL GENERATED ALWAYS AS (julianday({SOURCE})) VIRTUAL"

INDEX_SQL = (
    "CREATE INDEX papers_feed_rank ON papers(feed_date, hidden, upvotes, local_upvotes, rank_jd, id)",
    "DROP INDEX papers_feed_votes",
)


def apply(conn) -> None:
    """Add the column, stored on PostgreSQL and virtual on SQLite, and widen the feed index."""
    if is_postgres(conn):
        for statement in PG_SQL:
            conn.execute(statement)
    else:
        conn.execute(SQLITE_SQL)
    for statement in INDEX_SQL:
        conn.execute(statement)
