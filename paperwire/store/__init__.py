"""The store: schema, migrations and all SQL (see :mod:`paperwire.store.papers`)."""

from paperwire.store.db import connect, transaction

__all__ = ["connect", "transaction"]
