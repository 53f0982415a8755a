"""A reader's own data: "Download my data" (one JSON document) and "Delete my account".

Each area that keeps per-user data registers a section with :func:`register_section`
(a name and a ``fn(conn, user_id) -> JSON-able``); :func:`export_user_data` calls
them all. The library and the account are registered here; the feedback / model
area adds its own sections from its module, e.g.::

    from paperwire.library.userdata import register_section
    register_section("feedback", lambda conn, uid: store.feedback_dump(conn, uid))

Sections of modules that are never imported would be missed, so
:data:`SECTION_MODULES` names the modules imported before every export.
"""

from __future__ import annotations

import importlib
import sqlite3
from typing import Callable

from paperwire.model import utcnow_iso
from paperwire.store import library as store
from paperwire.store.db import transaction

Section = Callable[[sqlite3.Connection, int], object]
_SECTIONS: dict[str, Section] = {}
# Modules that register sections when imported (missing ones are skipped: an area may not exist yet).
SECTION_MODULES = ["paperwire.recommend.userdata", "paperwire.recommend"]


def register_section(name: str, fn: Section) -> None:
    """Add (or replace) a named section of the user's data export."""
    _SECTIONS[name] = fn


def _load_sections() -> None:
    for mod in SECTION_MODULES:
        try:
            importlib.import_module(mod)
        except ImportError as exc:
            if not (exc.name and mod.startswith(exc.name)):
                raise


def export_user_data(conn: sqlite3.Connection, user_id: int) -> dict:
    """Everything paperwire keeps about a user, as one JSON-able dict (no password hash)."""
    _load_sections()
    account = store.account_row(conn, user_id)
    if account is None:
        raise LookupError("no such user")
    out: dict = {"format": "paperwire-user-data", "version": 1, "exported_at": utcnow_iso(), "account": account}
    for name, fn in sorted(_SECTIONS.items()):
        out[name] = fn(conn, user_id)
    return out


def delete_account(conn: sqlite3.Connection, user_id: int) -> bool:
    """Delete a user and all their data in one transaction (the caller checks the password)."""
    with transaction(conn):
        return store.delete_user(conn, user_id)


register_section("library", store.library_dump)
register_section("votes", store.user_vote_rows)
# A plain dump of the feedback tables; the recommend area may replace it (same name) with a
# richer one that also describes the model.
register_section("feedback", store.feedback_rows)
