"""The store's small state rows, read once for a whole request.

A search reads the same handful of state rows several times on its way through the
engine: the store revision (``meta.rev``) in the page cache key, the result-set flags,
the vector index's freshness check and the tantivy replica's catch-up; ``meta.web_rev``
with it; ``search_state`` (which model, which lexical revisions) and the model's vector
sequence number (``embedding_models.seq``). On SQLite each is an in-process page read of
microseconds. On PostgreSQL each is a network round trip (about 0.1-0.2 ms of node and
server CPU together), and together they were most of a search's store time.

:func:`pinned` reads all of them in one statement and, until the block ends, answers
those reads on that connection from what it read. It is also more consistent: the whole
request sees one revision of the store's state instead of whatever was current at each
read. Every memo keyed on these revisions stays correct, because the revisions are still
read before any rows they guard (they are read first of all).

The pin is for reads. A write transaction on the pinned connection drops it
(:func:`forget`, called by :func:`paperwire.store.db.transaction`), so code that writes a
state row and reads it back sees its own write. Only the connection that was pinned is
affected; other connections in the same thread read as before.
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Iterator

# search_state.deleted_rowids can be long (a list of rowids) and is read only by index
# updates: it stays out of the pinned read.
_PIN_SQL = (
    "SELECT 'meta', key, value FROM meta WHERE key IN ('rev', 'web_rev') "
    "UNION ALL SELECT 'state', key, value FROM search_state WHERE key <> 'deleted_rowids' "
    "UNION ALL SELECT 'seq', model, CAST(seq AS TEXT) FROM embedding_models"
)
_UNPINNED_STATE_KEYS = frozenset({"deleted_rowids"})


class _Pin:
    """What one :func:`pinned` block read, for one connection."""

    __slots__ = ("conn_id", "rows")

    def __init__(self, conn_id: int, rows: dict[tuple[str, str], str]):
        self.conn_id = conn_id
        self.rows = rows


_current: contextvars.ContextVar[_Pin | None] = contextvars.ContextVar("paperwire_state_pin", default=None)
MISSING = object()  # "not pinned": the caller reads the row itself


@contextlib.contextmanager
def pinned(conn) -> Iterator[None]:
    """Within the block, the state reads on ``conn`` come from one read at its start.

    Nested blocks on the same connection keep the outer pin (one revision per request)."""
    outer = _current.get()
    if outer is not None and outer.conn_id == id(conn):
        yield
        return
    rows = {(kind, key): value for kind, key, value in conn.execute(_PIN_SQL).fetchall()}
    token = _current.set(_Pin(id(conn), rows))
    try:
        yield
    finally:
        _current.reset(token)


def forget(conn) -> None:
    """Drop the pin on ``conn`` (it is about to write): later reads go to the store."""
    pin = _current.get()
    if pin is not None and pin.conn_id == id(conn):
        pin.conn_id = 0


def _pin_for(conn) -> _Pin | None:
    pin = _current.get()
    return pin if pin is not None and pin.conn_id == id(conn) else None


def meta_value(conn, key: str):
    """``meta.<key>`` (``rev`` or ``web_rev``) as pinned, None when absent, or MISSING."""
    pin = _pin_for(conn)
    if pin is None:
        return MISSING
    return pin.rows.get(("meta", key))


def state_value(conn, key: str):
    """``search_state.<key>`` as pinned, None when absent, or MISSING."""
    pin = _pin_for(conn)
    if pin is None or key in _UNPINNED_STATE_KEYS:
        return MISSING
    return pin.rows.get(("state", key))


def model_seq(conn, model: str):
    """``embedding_models.seq`` of ``model`` as pinned (0 when absent), or MISSING."""
    pin = _pin_for(conn)
    if pin is None:
        return MISSING
    return int(pin.rows.get(("seq", model), 0))
