"""Importing a library: BibTeX, RIS (Zotero, Mendeley, JabRef), CSL-JSON, or a list of ids.

The whole file is checked and parsed before anything is written: a file over the
size cap, a binary file, or one with no bibliography in it is refused with one
line (:class:`ImportRefused`). Entries are matched to papers by arXiv id (``eprint``,
an ``arxiv.org/abs/`` URL, an arXiv DOI, ``arXiv:...`` in a note), then DOI, then
normalised title. Writes go in batches, each one transaction of idempotent upserts,
so re-importing a file changes nothing and an import killed halfway and rerun ends
with the same library as one that ran through. Unmatched entries with an arXiv id
are queued for fetching, like submissions, and kept as pending: :func:`add_arrived`
adds them to the library once the harvester has brought the paper.

``PAPERWIRE_LIBRARY_IMPORT_CRASH_AT=commit:n`` SIGKILLs the process right after the n-th
batch commits (:mod:`paperwire.crashpoints`; the kill test uses it).
"""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable

from paperwire.crashpoints import CrashHook
from paperwire.library import LibraryError, clean_tag, clean_text, ensure_folder, MAX_NOTE, MAX_TAGS_PER_PAPER
from paperwire.library.parsing import Entry, Malformed, parse_text
from paperwire.model import normalize_title
from paperwire.store import library as store
from paperwire.store import submissions
from paperwire.store.db import transaction

MAX_BYTES = 20 * 1024 * 1024
BATCH = 200


class ImportRefused(LibraryError):
    """The file is not something we import; nothing was written. One line for people."""


@dataclass
class ImportReport:
    """What an import did. ``unmatched`` and ``malformed`` name entries by key or line."""

    file: str
    format: str
    entries: int = 0
    matched: int = 0
    added: int = 0
    already: int = 0
    unmatched: list[dict] = field(default_factory=list)
    malformed: list[dict] = field(default_factory=list)
    queued: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        return (f"{self.file}: {self.entries} entries ({self.format}): {self.matched} matched, {self.added} added, "
                f"{self.already} already in the library, {len(self.unmatched)} unmatched "
                f"({len(self.queued)} queued for fetching), {len(self.malformed)} malformed")


def read_library_file(path: str | Path, *, max_bytes: int = MAX_BYTES) -> tuple[str, str]:
    """(text, name) of a file to import; :class:`ImportRefused` for size, binary or encoding."""
    path = Path(path)
    name = path.name
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ImportRefused(f"{name}: cannot read: {exc.strerror or exc}") from None
    if size > max_bytes:
        raise ImportRefused(f"{name}: {size} bytes is over the {max_bytes // (1024 * 1024)} MB limit for a library file")
    with open(path, "rb") as fh:
        data = fh.read(max_bytes + 1)
    return decode_bytes(data, name, max_bytes=max_bytes), name


def decode_bytes(data: bytes, name: str, *, max_bytes: int = MAX_BYTES) -> str:
    """The text of an uploaded file, or :class:`ImportRefused` (too big, binary, not text)."""
    if len(data) > max_bytes:
        raise ImportRefused(f"{name}: over the {max_bytes // (1024 * 1024)} MB limit for a library file")
    if not data.strip():
        raise ImportRefused(f"{name}: the file is empty")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise ImportRefused(f"{name}: not a text file (bad UTF-16)") from None
    head = data[:65536]
    controls = sum(1 for b in head if b < 32 and b not in (9, 10, 13))
    if b"\x00" in head or controls > len(head) // 100:
        raise ImportRefused(f"{name}: a binary file, not a bibliography (BibTeX, RIS, CSL-JSON or a list of ids)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Older Mendeley / JabRef exports can be Latin-1; control characters were ruled out above.
        return data.decode("latin-1")


def parse_library(text: str, name: str = "input") -> tuple[str, list[Entry], list[Malformed]]:
    """(format, entries, malformed) or :class:`ImportRefused` when no bibliography is in it."""
    try:
        fmt, entries, bad = parse_text(text)
    except ValueError as exc:
        raise ImportRefused(f"{name}: {exc}") from None
    if not entries:
        if bad:
            raise ImportRefused(f"{name}: no readable entries ({fmt}); line {bad[0].line}: {bad[0].message}")
        raise ImportRefused(f"{name}: no bibliography entries found")
    return fmt, entries, bad


def import_file(conn: sqlite3.Connection, user_id: int, path: str | Path, *, folder: str | None = None,
                max_bytes: int = MAX_BYTES) -> ImportReport:
    """Import a library file for a user (see the module docstring)."""
    text, name = read_library_file(path, max_bytes=max_bytes)
    return import_text(conn, user_id, text, name=name, folder=folder)


def import_text(conn: sqlite3.Connection, user_id: int, text: str, *, name: str = "upload",
                folder: str | None = None) -> ImportReport:
    """Import library text (an upload, or a file already read)."""
    fmt, entries, bad = parse_library(text, name)
    report = ImportReport(file=name, format=fmt, entries=len(entries) + len(bad),
                          malformed=[{"line": b.line, "key": b.key, "error": b.message} for b in bad])
    folder_id = ensure_folder(conn, user_id, folder)["id"] if folder else None
    source = "import:" + name[:100]
    crash = CrashHook("PAPERWIRE_LIBRARY_IMPORT_CRASH_AT")
    for i in range(0, len(entries), BATCH):
        _import_batch(conn, user_id, entries[i : i + BATCH], report, source, folder_id)
        crash("commit")
    return report


def add_arrived(conn: sqlite3.Connection, user_id: int) -> int:
    """Add the user's pending imported papers that the harvester has fetched since. Returns how many.

    Cheap when there are none (one indexed join), so it runs before every library listing.
    """
    arrived = store.arrived_pending(conn, user_id)
    if not arrived:
        return 0
    with transaction(conn):
        for p in arrived:
            store.insert_items(conn, user_id, [p["rowid"]], p["source"])
            for tag in p["tags"]:
                store.insert_tag(conn, user_id, p["rowid"], tag)
            if p["note"]:
                store.fill_empty_note(conn, user_id, p["rowid"], p["note"])
            if p["folder_id"] is not None:
                store.insert_folder_item(conn, p["folder_id"], user_id, p["rowid"])
            store.delete_pending(conn, user_id, p["arxiv_id"])
        store.bump_user_rev(conn, user_id)
    return len(arrived)


def _match(conn: sqlite3.Connection, batch: list[Entry]) -> list[int | None]:
    by_arxiv = store.rowids_by_arxiv(conn, [e.arxiv_id for e in batch if e.arxiv_id])
    by_doi = store.rowids_by_doi(conn, [e.doi for e in batch if e.doi])
    by_title = store.rowids_by_title_norm(conn, [normalize_title(e.title) for e in batch if e.title])
    out: list[int | None] = []
    for e in batch:
        rowid = by_arxiv.get(e.arxiv_id) if e.arxiv_id else None
        if rowid is None and e.doi:
            rowid = by_doi.get(e.doi.lower())
        if rowid is None and e.title:
            norm = normalize_title(e.title)
            # Very short titles ("Introduction", "Reply") match far too much.
            if len(norm) >= 12:
                rowid = by_title.get(norm)
        out.append(rowid)
    return out


def _clean_tags(raw: Iterable[str]) -> list[str]:
    out: list[str] = []
    for t in raw:
        try:
            tag = clean_tag(t)
        except LibraryError:
            continue
        if tag not in out:
            out.append(tag)
    return out[:MAX_TAGS_PER_PAPER]


def _import_batch(conn: sqlite3.Connection, user_id: int, batch: list[Entry], report: ImportReport,
                  source: str, folder_id: int | None) -> None:
    with transaction(conn):
        rowids = _match(conn, batch)
        changed = 0
        for e, rowid in zip(batch, rowids):
            if rowid is None:
                queued = False
                if e.arxiv_id:
                    submissions.queue_submission(conn, e.arxiv_id, user_id)
                    # Added to the library (tags, note, folder and all) once the harvester has it.
                    store.insert_pending(conn, user_id, e.arxiv_id, source, _clean_tags(e.tags),
                                         clean_text(e.note, MAX_NOTE), folder_id)
                    queued = True
                    if e.arxiv_id not in report.queued:
                        report.queued.append(e.arxiv_id)
                report.unmatched.append({"line": e.line, "key": e.key, "title": e.title[:200],
                                         "arxiv_id": e.arxiv_id, "doi": e.doi, "queued": queued})
                continue
            report.matched += 1
            added = store.insert_items(conn, user_id, [rowid], source)
            if added:
                report.added += 1
            else:
                report.already += 1
            changed += added
            for tag in _clean_tags(e.tags):
                changed += store.insert_tag(conn, user_id, rowid, tag)
            note = clean_text(e.note, MAX_NOTE)
            if note:
                changed += store.fill_empty_note(conn, user_id, rowid, note)
            if folder_id is not None:
                changed += store.insert_folder_item(conn, folder_id, user_id, rowid)
        if changed:
            store.bump_user_rev(conn, user_id)
