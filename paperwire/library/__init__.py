"""A reader's library: saved papers with notes, tags, read state and folders.

Service functions used by the web and CLI adapters. Each write is one
transaction that also bumps the user's revision (``user_revs``), so the "For you"
feed and anything else keyed on it sees the change on the next page view.
Imports live in :mod:`paperwire.library.importing`, exports in
:mod:`paperwire.library.exporting`, the user's data in :mod:`paperwire.library.userdata`.
"""

from __future__ import annotations

import re
import secrets
import sqlite3
import unicodedata
from typing import Iterable, Sequence

from paperwire.store import library as store
from paperwire.store import papers as paper_store
from paperwire.store.db import transaction

MAX_NOTE = 10_000
MAX_TAG = 64
MAX_FOLDER_NAME = 100
MAX_FOLDERS = 500
MAX_TAGS_PER_PAPER = 50
SORTS = ("saved", "saved_asc", "published", "title")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class LibraryError(ValueError):
    """A request the library cannot do; the message is for people."""


class NotFound(LibraryError):
    """No such paper, folder or item (for this user)."""


# ---------------------------------------------------------------- papers

def resolve(conn: sqlite3.Connection, ident: str | int) -> dict:
    """The paper for a public id, arXiv id (any version or URL form) or internal row id.

    Hidden papers count as missing: a reader cannot save what the site does not show.
    """
    if isinstance(ident, int):
        paper = paper_store.get_papers_by_rowid(conn, [ident]).get(ident)
    else:
        ident = (ident or "").strip()[:300]
        paper = paper_store.get_paper(conn, ident) if ident else None
    if paper is None or paper.get("hidden"):
        raise NotFound(f"no paper {str(ident)[:100]!r}")
    return paper


def _rowid(conn: sqlite3.Connection, ident: str | int, *, hidden_ok: bool = False) -> int:
    if hidden_ok and isinstance(ident, str):
        # A paper hidden after it was saved can still be taken out of the library.
        paper = paper_store.get_paper(conn, ident.strip()[:300]) if ident.strip() else None
        if paper is not None:
            return paper["id"]
    return resolve(conn, ident)["id"]


def is_saved(conn: sqlite3.Connection, user_id: int, ident: str | int) -> bool:
    return store.get_item(conn, user_id, _rowid(conn, ident)) is not None


def save(conn: sqlite3.Connection, user_id: int, ident: str | int, *, source: str = "web") -> bool:
    """Save a paper; True when it was not saved before (saving twice changes nothing)."""
    rowid = _rowid(conn, ident)
    with transaction(conn):
        added = store.insert_items(conn, user_id, [rowid], source)
        if added:
            store.bump_user_rev(conn, user_id)
    return bool(added)


def unsave(conn: sqlite3.Connection, user_id: int, ident: str | int) -> bool:
    """Remove a paper from the library (with its note, tags and folder places)."""
    rowid = _rowid(conn, ident, hidden_ok=True)
    with transaction(conn):
        removed = store.delete_items(conn, user_id, [rowid])
        if removed:
            store.bump_user_rev(conn, user_id)
    return bool(removed)


def _item_rowid(conn: sqlite3.Connection, user_id: int, ident: str | int) -> int:
    rowid = _rowid(conn, ident)
    if store.get_item(conn, user_id, rowid) is None:
        raise NotFound("that paper is not in your library")
    return rowid


def clean_text(text: str | None, limit: int) -> str:
    """Text as stored: NFC, no control characters, at most ``limit`` characters."""
    text = unicodedata.normalize("NFC", text or "")
    return _CONTROL.sub("", text).strip()[:limit]


def set_note(conn: sqlite3.Connection, user_id: int, ident: str | int, note: str) -> str:
    """Replace the private note of a saved paper; returns the note as stored."""
    if note is not None and len(note) > MAX_NOTE:
        raise LibraryError(f"notes hold at most {MAX_NOTE} characters")
    note = clean_text(note, MAX_NOTE)
    rowid = _item_rowid(conn, user_id, ident)
    with transaction(conn):
        if store.update_note(conn, user_id, rowid, note):
            store.bump_user_rev(conn, user_id)
    return note


def set_read(conn: sqlite3.Connection, user_id: int, ident: str | int, read: bool = True) -> bool:
    """Mark a saved paper read (or unread again). Returns the new state."""
    rowid = _item_rowid(conn, user_id, ident)
    with transaction(conn):
        if store.update_read(conn, user_id, rowid, read):
            store.bump_user_rev(conn, user_id)
    return read


def clean_tag(tag: str) -> str:
    """A tag as stored: whitespace collapsed, at most 64 characters; empty is refused."""
    t = " ".join(clean_text(tag, MAX_TAG * 4).split())[:MAX_TAG]
    if not t:
        raise LibraryError("a tag cannot be empty")
    return t


def add_tags(conn: sqlite3.Connection, user_id: int, ident: str | int, tags: Iterable[str]) -> list[str]:
    """Add tags to a saved paper (commas split a string of several). Returns the paper's tags."""
    cleaned = []
    for raw in tags:
        for part in str(raw).split(","):
            if part.strip():
                cleaned.append(clean_tag(part))
    rowid = _item_rowid(conn, user_id, ident)
    with transaction(conn):
        have = store.tags_of(conn, user_id, [rowid]).get(rowid, [])
        if len(set(have) | set(cleaned)) > MAX_TAGS_PER_PAPER:
            raise LibraryError(f"a paper carries at most {MAX_TAGS_PER_PAPER} tags")
        if sum(store.insert_tag(conn, user_id, rowid, t) for t in cleaned):
            store.bump_user_rev(conn, user_id)
    return store.tags_of(conn, user_id, [rowid]).get(rowid, [])


def remove_tag(conn: sqlite3.Connection, user_id: int, ident: str | int, tag: str) -> list[str]:
    """Take a tag off a saved paper. Returns the paper's tags."""
    rowid = _item_rowid(conn, user_id, ident)
    with transaction(conn):
        if store.delete_tag(conn, user_id, rowid, " ".join((tag or "").split())):
            store.bump_user_rev(conn, user_id)
    return store.tags_of(conn, user_id, [rowid]).get(rowid, [])


def tags(conn: sqlite3.Connection, user_id: int) -> list[dict]:
    """The user's tags with counts."""
    return store.user_tags(conn, user_id)


# ---------------------------------------------------------------- folders

def slugify(name: str) -> str:
    """URL-safe ASCII slug of a folder name (``"Reading group: LLMs"`` -> ``reading-group-llms``)."""
    t = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    s = re.sub(r"[^a-z0-9]+", "-", t.lower()).strip("-")[:60].strip("-")
    return s or "folder"


def _folder_name(name: str) -> str:
    n = " ".join(clean_text(name, MAX_FOLDER_NAME * 4).split())
    if not n:
        raise LibraryError("a folder needs a name")
    if len(n) > MAX_FOLDER_NAME:
        raise LibraryError(f"folder names hold at most {MAX_FOLDER_NAME} characters")
    return n


def _unique_slug(conn: sqlite3.Connection, user_id: int, name: str, keep: str | None = None) -> str:
    base = slugify(name)
    taken = store.folder_slugs(conn, user_id) - ({keep} if keep else set())
    slug, n = base, 2
    while slug in taken:
        slug, n = f"{base}-{n}", n + 1
    return slug


def folders(conn: sqlite3.Connection, user_id: int) -> list[dict]:
    """The user's folders (id, name, slug, is_public, share_token, count)."""
    return [_folder_out(f) for f in store.list_folders(conn, user_id)]


def _folder_out(f: dict) -> dict:
    out = {k: f[k] for k in ("id", "name", "slug", "created_at") if k in f}
    out["is_public"] = bool(f.get("is_public"))
    out["share_token"] = f.get("share_token") if f.get("is_public") else None
    if "count" in f:
        out["count"] = f["count"]
    return out


def folder(conn: sqlite3.Connection, user_id: int, ident: str | int) -> dict:
    """One of the user's folders by id, slug or name; another user's folder is NotFound."""
    f = None
    if isinstance(ident, str):
        f = store.find_folder(conn, user_id, ident.strip())
    if f is None and (isinstance(ident, int) or (isinstance(ident, str) and ident.strip().isdigit())):
        # Beyond SQLite's 64-bit integers there is no folder (and no OverflowError either).
        f = store.get_folder(conn, int(ident)) if 0 < int(ident) < 2**62 else None
        if f is not None and f["user_id"] != user_id:
            f = None
    if f is None:
        raise NotFound("no such folder")
    return f


def create_folder(conn: sqlite3.Connection, user_id: int, name: str) -> dict:
    """A new private folder. Names need not be unique; slugs are made unique."""
    name = _folder_name(name)
    with transaction(conn):
        if len(store.folder_slugs(conn, user_id)) >= MAX_FOLDERS:
            raise LibraryError(f"at most {MAX_FOLDERS} folders")
        fid = store.insert_folder(conn, user_id, name, _unique_slug(conn, user_id, name))
        store.bump_user_rev(conn, user_id)
    return _folder_out(store.get_folder(conn, fid))


def ensure_folder(conn: sqlite3.Connection, user_id: int, name: str) -> dict:
    """The user's folder of that name, created when missing (imports into a folder)."""
    try:
        return folder(conn, user_id, _folder_name(name))
    except NotFound:
        return create_folder(conn, user_id, name)


def rename_folder(conn: sqlite3.Connection, user_id: int, ident: str | int, name: str) -> dict:
    f = folder(conn, user_id, ident)
    name = _folder_name(name)
    with transaction(conn):
        store.update_folder(conn, f["id"], name=name, slug=_unique_slug(conn, user_id, name, keep=f["slug"]))
        store.bump_user_rev(conn, user_id)
    return _folder_out(store.get_folder(conn, f["id"]))


def delete_folder(conn: sqlite3.Connection, user_id: int, ident: str | int) -> bool:
    """Delete a folder; its papers stay in the library."""
    f = folder(conn, user_id, ident)
    with transaction(conn):
        store.delete_folder(conn, f["id"])
        store.bump_user_rev(conn, user_id)
    return True


def set_folder_public(conn: sqlite3.Connection, user_id: int, ident: str | int, public: bool) -> dict:
    """Share a folder (a page and an Atom feed under an unguessable URL) or make it private.

    The share token is kept when a folder goes private, so sharing again revives the
    old link; a reader who wants a new link deletes and recreates the folder.
    """
    f = folder(conn, user_id, ident)
    with transaction(conn):
        token = f["share_token"] or secrets.token_urlsafe(18)
        store.update_folder(conn, f["id"], is_public=int(bool(public)), share_token=token)
        store.bump_user_rev(conn, user_id)
    return _folder_out(store.get_folder(conn, f["id"]))


def add_to_folder(conn: sqlite3.Connection, user_id: int, ident: str | int, paper: str | int) -> bool:
    """Put a paper in a folder, saving it first when it is not in the library yet."""
    f = folder(conn, user_id, ident)
    rowid = _rowid(conn, paper)
    with transaction(conn):
        changed = store.insert_items(conn, user_id, [rowid], "web")
        changed += store.insert_folder_item(conn, f["id"], user_id, rowid)
        if changed:
            store.bump_user_rev(conn, user_id)
    return bool(changed)


def remove_from_folder(conn: sqlite3.Connection, user_id: int, ident: str | int, paper: str | int) -> bool:
    f = folder(conn, user_id, ident)
    rowid = _rowid(conn, paper)
    with transaction(conn):
        changed = store.delete_folder_item(conn, f["id"], rowid)
        if changed:
            store.bump_user_rev(conn, user_id)
    return changed


def public_folder(conn: sqlite3.Connection, token: str, limit: int = 500) -> tuple[dict, list[dict]]:
    """(folder, papers) of a shared folder by its token; NotFound when unknown or private."""
    f = store.folder_by_token(conn, (token or "")[:100]) if token else None
    if f is None or not f["is_public"]:
        raise NotFound("no such folder")
    papers = [paper_store.row_to_paper(r) for r in store.folder_papers(conn, f["id"], limit)]
    return _folder_out(f), papers


# ---------------------------------------------------------------- listing

def list_library(conn: sqlite3.Connection, user_id: int, *, q: str = "", folder_ident: str | int | None = None,
                 tag: str | None = None, read: bool | None = None, sort: str = "saved",
                 limit: int | None = 50, offset: int = 0) -> dict:
    """The user's saved papers: ``{"papers": [...], "total": n}``.

    Each paper is the paper dict plus ``saved_at``, ``read``, ``read_at``, ``note``,
    ``tags`` and ``folders`` (``[{"id", "name", "slug"}]``). ``q`` is a search
    inside the library (every word must match title, abstract, authors, note or tag).
    """
    if sort not in SORTS:
        raise LibraryError(f"sort must be one of {', '.join(SORTS)}")
    from paperwire.library.importing import add_arrived

    add_arrived(conn, user_id)
    folder_id = folder(conn, user_id, folder_ident)["id"] if folder_ident not in (None, "") else None
    words = [w for w in (q or "").split() if w][:20]
    rows, total = store.list_items(conn, user_id, words=words, folder_id=folder_id,
                                   tag=tag or None, read=read, sort=sort, limit=limit, offset=offset)
    return {"papers": _decorate(conn, user_id, rows), "total": total}


def _decorate(conn: sqlite3.Connection, user_id: int, rows: Sequence) -> list[dict]:
    papers = []
    for r in rows:
        p = paper_store.row_to_paper(r)
        p["saved_at"] = p.pop("lib_saved_at")
        p["read_at"] = p.pop("lib_read_at")
        p["read"] = p["read_at"] is not None
        p["note"] = p.pop("lib_note")
        p["saved_source"] = p.pop("lib_source")
        p["votes"] = (p.get("upvotes") or 0) + (p.get("local_upvotes") or 0)
        papers.append(p)
    ids = [p["id"] for p in papers]
    tags_by = store.tags_of(conn, user_id, ids)
    folders_by = store.folders_of(conn, user_id, ids)
    for p in papers:
        p["tags"] = tags_by.get(p["id"], [])
        p["folders"] = folders_by.get(p["id"], [])
    return papers


def saved_rowids(conn: sqlite3.Connection, user_id: int) -> list[int]:
    """Row ids of every saved paper (the "For you" model's positives)."""
    from paperwire.library.importing import add_arrived

    add_arrived(conn, user_id)
    return store.saved_rowids(conn, user_id)


def saved_among(conn: sqlite3.Connection, user_id: int, rowids: Sequence[int]) -> set[int]:
    """Which of these papers the user has saved (Save buttons on cards)."""
    return store.saved_among(conn, user_id, rowids)


def add_many(conn: sqlite3.Connection, user_id: int, idents: Sequence[str], *, source: str = "cli") -> dict:
    """Save several papers at once: ``{"added": [...], "already": [...], "missing": [...]}``."""
    found, missing = [], []
    for ident in idents:
        try:
            found.append(resolve(conn, ident))
        except NotFound:
            missing.append(ident)
    added, already = [], []
    with transaction(conn):
        for p in found:
            (added if store.insert_items(conn, user_id, [p["id"]], source) else already).append(p["paper_id"])
        if added:
            store.bump_user_rev(conn, user_id)
    return {"added": added, "already": already, "missing": missing}


def remove_many(conn: sqlite3.Connection, user_id: int, idents: Sequence[str]) -> dict:
    """Remove several papers: ``{"removed": [...], "not_saved": [...], "missing": [...]}``."""
    removed, not_saved, missing = [], [], []
    with transaction(conn):
        for ident in idents:
            try:
                p = resolve(conn, ident)
            except NotFound:
                missing.append(ident)
                continue
            (removed if store.delete_items(conn, user_id, [p["id"]]) else not_saved).append(p["paper_id"])
        if removed:
            store.bump_user_rev(conn, user_id)
    return {"removed": removed, "not_saved": not_saved, "missing": missing}
