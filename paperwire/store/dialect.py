"""The PostgreSQL engine: the one place where the store's two dialects differ.

The store's modules are written once, in the SQL SQLite and PostgreSQL share, against
the subset of the ``sqlite3`` API they use (``execute``/``executemany``, rows by name and
by index, ``in_transaction``, ``lastrowid``, ``total_changes``, ``sqlite3.IntegrityError``).
:class:`PgConnection` offers that subset over a pooled psycopg 3 connection and
:func:`translate` rewrites the few SQLite spellings the store uses:

- ``?`` / ``:name`` placeholders -> ``%s`` / ``%(name)s`` (literal ``%`` doubled);
- ``INSERT OR IGNORE`` -> ``ON CONFLICT DO NOTHING``; ``INSERT OR REPLACE`` ->
  ``ON CONFLICT (primary key) DO UPDATE SET`` every other column;
- ``LIKE`` -> ``ILIKE`` (SQLite's LIKE ignores ASCII case);
- ``BEGIN IMMEDIATE`` -> ``BEGIN``; ``PRAGMA ...`` -> nothing (an empty result).

Schema steps go through :func:`translate_ddl` (``INTEGER PRIMARY KEY`` -> identity,
``WITHOUT ROWID`` dropped, ``REAL`` -> double precision, ``BLOB`` -> bytea; FTS5
virtual tables and their triggers are skipped: on PostgreSQL the lexical index of
record is the tantivy cache built from the store). SQLite functions the store calls
(``julianday``, two-argument ``max``/``min``, ``round(float, n)``) and the ``nocase``
collation are created on the server by migration ``m0000_engine_compat``.

Why a thin layer and not SQLAlchemy Core: the store's hot paths (feed pages, search
metadata by row id) spend their time in row construction, and this layer adds one
cached string lookup per statement; see BENCHMARKS.md ("store engines").
"""

from __future__ import annotations

import sqlite3
import threading
from functools import lru_cache
from typing import Any, Iterable, Sequence
from urllib.parse import unquote, urlsplit

from paperwire.store import pgpool
# The SQL rewrites (store/sqltranslate.py); translate and translate_ddl are public here too.
from paperwire.store.sqltranslate import (  # noqa: F401
    _PK_CACHE, _load_primary_keys, _translate, translate, translate_ddl)

URL_SCHEMES = ("postgresql://", "postgres://")
POOL_MAX = 8  # connections per process and URL; web workers are separate processes


class StoreUnavailable(RuntimeError):
    """The store named by a URL cannot be opened (wrong, unreachable, unauthorised).

    The message is one line naming host, port and database, never the password.
    """


class TextRefused(ValueError):
    """A text parameter holds a NUL byte: PostgreSQL can neither store nor compare one (SQLite
    can). Raised before the statement is sent, so an open transaction stays usable; the web
    answers 400, the CLI one line."""


def _refuse_nul(params) -> None:
    values = params.values() if isinstance(params, dict) else params
    for v in values:
        if isinstance(v, str) and "\x00" in v:
            raise TextRefused("text with a NUL byte (\\x00) is not accepted")


def is_url(db: object) -> bool:
    """Whether ``db`` (a ``--db`` value) names a PostgreSQL server rather than a file."""
    return isinstance(db, str) and db.lower().startswith(URL_SCHEMES)


def is_postgres(conn: object) -> bool:
    """Whether ``conn`` is a PostgreSQL store connection (else a ``sqlite3.Connection``)."""
    return getattr(conn, "dialect", "sqlite") == "postgresql"


def describe_url(url: str) -> dict:
    """Host, port, database and user of a URL, for messages (no password)."""
    parts = urlsplit(url)
    try:
        port = parts.port or 5432
    except ValueError:
        port = parts.netloc.rsplit(":", 1)[-1]
    return {
        "host": parts.hostname or "localhost",
        "port": port,
        "database": unquote(parts.path.lstrip("/")) or unquote(parts.username or "") or "?",
        "user": unquote(parts.username or ""),
        "password": unquote(parts.password or ""),
    }


def safe_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (for logs and ``stats``)."""
    d = describe_url(url)
    user = f"{d['user']}{':***' if d['password'] else ''}@" if d["user"] else ""
    return f"postgresql://{user}{d['host']}:{d['port']}/{d['database']}"


def db_label(db) -> str:
    """How to name a store (``--db`` value) to people: a path, or a URL without its password."""
    return safe_url(db) if is_url(db) else str(db)


def _unavailable(url: str, exc: BaseException) -> StoreUnavailable:
    d = describe_url(url)
    reason = " ".join(str(exc).split()) or type(exc).__name__
    if d["password"]:
        reason = reason.replace(d["password"], "***")
    # libpq repeats the address it tried; the part after the last "failed:" is the why.
    reason = reason.rsplit("failed: ", 1)[-1]
    return StoreUnavailable(
        f"cannot open the PostgreSQL store: host {d['host']}, port {d['port']}, "
        f"database {d['database']}: {reason}"
    )


# ---------------------------------------------------------------- rows and cursors

class Row(tuple):
    """A result row readable by index and by column name, like ``sqlite3.Row``."""

    __slots__ = ()
    _index: dict[str, int] = {}
    _names: tuple[str, ...] = ()

    def __getitem__(self, key):  # type: ignore[override]
        if key.__class__ is str:
            return tuple.__getitem__(self, self._index[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._names)


@lru_cache(maxsize=512)
def _row_class(names: tuple[str, ...]) -> type[Row]:
    index = {}
    for i, n in enumerate(names):
        index.setdefault(n, i)  # like sqlite3.Row: the first of duplicate names wins
    return type("Row", (Row,), {"__slots__": (), "_index": index, "_names": names})


def _row_factory(cursor):
    desc = cursor.description
    if desc is None:
        return tuple
    return _row_class(tuple(c.name for c in desc))


class _EmptyCursor:
    """What a ``PRAGMA`` returns on PostgreSQL: no rows."""

    rowcount = -1
    lastrowid = None
    description = None

    def fetchone(self):
        return None

    def fetchall(self):
        return []

    def fetchmany(self, size: int = 1):
        return []

    def __iter__(self):
        return iter(())

    def close(self) -> None:
        pass


def _cursor_class():
    import psycopg

    class PgCursor(psycopg.Cursor):
        """A psycopg cursor with ``sqlite3``'s ``lastrowid`` (the session's last identity value)."""

        @property
        def lastrowid(self):
            conn = self.connection
            # lastval() fails when no identity was drawn; inside a transaction a failed
            # statement would abort it, so the probe runs under a savepoint there.
            guard = conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE
            try:
                if guard:
                    conn.execute("SAVEPOINT pw_lastrowid")
                value = conn.execute("SELECT lastval()").fetchone()[0]
                if guard:
                    conn.execute("RELEASE SAVEPOINT pw_lastrowid")
                return value
            except psycopg.Error:
                if guard:
                    conn.execute("ROLLBACK TO SAVEPOINT pw_lastrowid")
                return None

    return PgCursor


# ---------------------------------------------------------------- connections and pools

_POOLS: dict[str, Any] = {}
_POOLS_LOCK = threading.Lock()


def _configure(raw) -> None:
    from psycopg.adapt import Dumper
    from psycopg.types.numeric import FloatLoader

    class BoolAsInt(Dumper):
        # The schema keeps flags as INTEGER 0/1 (as on SQLite), and queries also use a
        # bool as a condition (CASE WHEN ?): an untyped '1'/'0' lets the server read it
        # as whichever of integer or boolean the place needs.
        oid = 0

        def dump(self, obj):
            return b"1" if obj else b"0"

    raw.row_factory = _row_factory
    raw.adapters.register_dumper(bool, BoolAsInt)
    # AVG and decimal literals give numeric; the store works in floats like SQLite.
    raw.adapters.register_loader("numeric", FloatLoader)


def _pool(url: str):
    with _POOLS_LOCK:
        pool = _POOLS.get(url)
        if pool is not None:
            return pool
        try:
            import psycopg
            from psycopg_pool import ConnectionPool
        except ImportError as exc:  # pragma: no cover - the extra is part of the test install
            raise StoreUnavailable(
                f"a postgresql:// store needs psycopg: pip install 'paperwire[postgres]' ({exc.name} missing)"
            ) from None
        kwargs = {"autocommit": True, "cursor_factory": _cursor_class(), "connect_timeout": 5,
                  "options": "-c TimeZone=UTC"}
        # One direct attempt first: the pool only says "timed out", libpq says why.
        try:
            psycopg.connect(url, **kwargs).close()
        except (psycopg.Error, ValueError) as exc:
            raise _unavailable(url, exc) from None
        pool = pgpool.pool_class()(url, min_size=1, max_size=POOL_MAX, kwargs=kwargs, configure=_configure,
                                   open=False, name="paperwire", check=ConnectionPool.check_connection)
        pool.open(wait=True, timeout=10)
        _POOLS[url] = pool
        return pool


def close_pools() -> None:
    """Close every pool of this process (tests, and before a fork)."""
    with _POOLS_LOCK:
        for pool in _POOLS.values():
            pool.close()
        _POOLS.clear()


class PgConnection:
    """A pooled PostgreSQL connection behind the ``sqlite3.Connection`` subset the store uses.

    Autocommit, like the store's SQLite connections: :func:`paperwire.store.db.transaction`
    issues BEGIN/COMMIT. ``close()`` hands the connection back to its pool.
    """

    dialect = "postgresql"
    row_factory = None  # accepted and ignored: rows are always Row

    def __init__(self, url: str):
        self.url = url
        self._pool = _pool(url)
        try:
            self._raw = pgpool.acquire(self._pool, url, 30)
        except Exception as exc:
            raise _unavailable(url, exc) from None
        self.total_changes, self._lost_tx = 0, False

    @property
    def raw(self):
        """The psycopg connection (for COPY and other PostgreSQL-only calls in the store)."""
        return pgpool.raw_of(self)  # a fresh one if the server went away since (store/pgpool.py)

    @property
    def in_transaction(self) -> bool:
        return pgpool.in_transaction(self)

    def execute(self, sql: str, params: Sequence | dict | None = None):
        """Run one statement (SQLite spelling) and return its cursor."""
        import psycopg

        has = bool(params)
        if has:
            _refuse_nul(params)
        q = _translate(sql, has)
        if q is None:
            return _EmptyCursor()
        try:
            cur = pgpool.run(self, q, (list(params) if not isinstance(params, dict) else params) if has else None)
        except psycopg.IntegrityError as exc:
            raise sqlite3.IntegrityError(str(exc)) from exc
        if cur.rowcount > 0 and q[:6].upper() in ("INSERT", "UPDATE", "DELETE"):
            self.total_changes += cur.rowcount
        return cur

    def executemany(self, sql: str, seq: Iterable[Sequence]):
        """Run one statement for each parameter set (pipelined by psycopg: one round trip per batch)."""
        import psycopg

        rows = [list(p) if not isinstance(p, dict) else p for p in seq]
        for row in rows:
            _refuse_nul(row)
        cur = self.raw.cursor()
        if not rows:
            return cur
        q = _translate(sql, True)
        if q is None:
            return _EmptyCursor()
        try:
            cur.executemany(q, rows)
        except psycopg.IntegrityError as exc:
            raise sqlite3.IntegrityError(str(exc)) from exc
        if cur.rowcount > 0:
            self.total_changes += cur.rowcount
        return cur

    def commit(self) -> None:
        if self.in_transaction:
            self.execute("COMMIT")

    def rollback(self) -> None:
        if self.in_transaction:
            self.execute("ROLLBACK")

    def close(self) -> None:
        """Give the connection back to the pool (rolled back if a transaction was left open)."""
        raw, self._raw = self._raw, None
        if raw is not None:
            self._pool.putconn(raw)

    def __enter__(self) -> "PgConnection":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.rollback()

    def __del__(self) -> None:  # a forgotten connection must not leak from the pool
        try:
            self.close()
        except Exception:
            pass


def connect_url(url: str) -> PgConnection:
    """A pooled connection to the PostgreSQL store at ``url`` (``StoreUnavailable`` if it cannot be opened)."""
    import psycopg

    conn = PgConnection(url)
    try:
        if not _PK_CACHE:
            _load_primary_keys(conn.raw)
    except psycopg.Error as exc:
        conn.close()
        raise _unavailable(url, exc) from None
    return conn


def copy_rows(conn: PgConnection, table: str, columns: Sequence[str], rows: Iterable[Sequence]) -> int:
    """Append ``rows`` to ``table`` with COPY (the bulk path of imports); returns the count.

    Runs inside the caller's transaction like any statement, so a failed batch leaves nothing.
    """
    import psycopg

    n = 0
    try:
        with conn.raw.cursor().copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
                n += 1
    except psycopg.IntegrityError as exc:
        raise sqlite3.IntegrityError(str(exc)) from exc
    conn.total_changes += n
    return n


def refresh_schema(conn: PgConnection) -> None:
    """Re-read the catalog facts the translator needs (after migrations)."""
    _load_primary_keys(conn.raw)
    _translate.cache_clear()


def table_exists(conn: PgConnection, name: str) -> bool:
    """PostgreSQL's answer to ``sqlite_master``: is there a table or view called ``name``."""
    return conn.execute("SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() "
                        "AND table_name = ?", (name,)).fetchone() is not None


# ---------------------------------------------------------------- search indexes per engine

def fts5_is_index(conn: object) -> bool:
    """Whether the lexical index of record lives in the store as FTS5 (SQLite). On PostgreSQL
    the lexical index is each node's tantivy replica (:mod:`paperwire.index.fastlex`), kept
    current from ``rev``; the typo vocabulary is counted from ``papers``, not ``search_fts``."""
    return not is_postgres(conn)

