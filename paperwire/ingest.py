"""Turning a stream of parsed records into papers: dedup, merge, batched writes.

Every importer (snapshot files, listing pages, BEIR, HF daily papers, OAI-PMH
harvests) goes through :func:`import_records`, so the identity and merge rules
live in one place:

* one paper per arXiv id; a record of an older version never overwrites a newer one;
* records with an external id (BEIR) are keyed by that id alone;
* records without any id are one paper per normalised title; a later record with an
  arXiv id and the same title upgrades such a paper (its old id stays as an alias);
* community fields (votes, links) follow the latest record, but ``listed_at`` keeps
  the earliest listing day (a paper on several daily pages belongs to its first);
* a record whose merged result equals what is stored counts as "unchanged".

Writes go in batches, each its own transaction, and each batch is idempotent, so
a process killed at any point and rerun ends with exactly the right papers.

A bulk load (``bulk=True``) into an empty store drops the secondary indexes of the
paper tables first (on PostgreSQL also the child tables' foreign keys, whose per-row
checks cost more than the rows: store/pgpapers.py) and builds them once at the end
(sorting beats a million random B-tree inserts); the store records what it dropped, so
any later import rebuilds indexes that a killed bulk load left missing before it writes
anything.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import signal
import sqlite3
import sys
from dataclasses import dataclass, field
from typing import Callable, Iterable, NamedTuple

from paperwire.model import (
    BIBLIO_FIELDS,
    COMMUNITY_FIELDS,
    MERGE_FIELDS,
    PaperRecord,
    arxiv_links,
    content_hash,
    normalize_title,
    record_hash,
    source_rank,
    title_id,
    utcnow_iso,
)
from paperwire.store import papers as sql
from paperwire.store.db import page_cache, transaction


@dataclass(frozen=True)
class BadRecord:
    """A record a parser could not read: where it is and why."""

    path: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


class StrictImportError(Exception):
    """Raised with ``strict=True`` on the first bad record; nothing was written."""

    def __init__(self, bad: BadRecord):
        super().__init__(str(bad))
        self.bad = bad


@dataclass
class ImportReport:
    """What an import did; every record counts exactly once."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    # Records of a paper that this same import had already written (the same paper twice
    # in the input, e.g. on several listing pages): merged into it, not "unchanged".
    duplicates: int = 0
    errors: list[BadRecord] = field(default_factory=list)
    changed_ids: list[str] = field(default_factory=list)  # paper_ids added or updated
    resumed: str | None = None  # what an import resumed after a killed one skipped


    MAX_ERRORS_KEPT = 1000

    @property
    def total(self) -> int:
        return self.added + self.updated + self.unchanged + self.duplicates + self.skipped

    def summary(self) -> str:
        dupes = f"{self.duplicates} duplicates within the input, " if self.duplicates else ""
        out = f"{self.added} added, {self.updated} updated, {self.unchanged} unchanged, {dupes}{self.skipped} skipped"
        return f"{out} ({self.resumed})" if self.resumed else out

    def to_dict(self) -> dict:
        return {
            "added": self.added, "updated": self.updated, "unchanged": self.unchanged,
            "duplicates": self.duplicates, "skipped": self.skipped, "errors": [str(e) for e in self.errors],
            **({"resumed": self.resumed} if self.resumed else {}),
        }

    def merge(self, other: "ImportReport") -> None:
        self.added += other.added
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.duplicates += other.duplicates
        self.skipped += other.skipped
        self.errors.extend(other.errors[: self.MAX_ERRORS_KEPT - len(self.errors)])
        self.changed_ids.extend(other.changed_ids)


class Prepared(NamedTuple):
    """What the writer needs from a record alone to insert it as a new paper."""

    content_hash: str
    record_hash: str  # of the paper a new row made from this record gets
    authors_json: str
    categories_json: str
    author_norms: tuple[str, ...]  # paper_authors.name_norm, same rule as titles


def prepare_record(rec: PaperRecord) -> Prepared:
    """Hashes, JSON and author keys of ``rec``, computed once and cached on the record.

    Large imports call this in the parser process, so that the writing process
    only merges and runs SQL. Call it once the record is final.
    """
    if rec._prepared is None:
        # A plain tuple on the record: it pickles in half the time of a named one.
        rec._prepared = (
            content_hash(rec.title, rec.abstract), record_hash(_new_values(rec)),
            _json(rec.authors), _json(rec.categories), tuple(normalize_title(a) for a in rec.authors),
        )
    return Prepared._make(rec._prepared)


class _BulkLoad:
    """A bulk load in progress: secondary indexes are gone until :meth:`finish`.

    While it lasts, every paper in the store came from this import (the store was
    empty, and the revision counter shows nobody else has written since), none of
    them lacks an id, so records with an arXiv id need no title lookups, which is
    what lets the title index go too. An id-less record, or another writer, ends
    the bulk load early: the indexes are rebuilt and the normal path takes over.
    """

    def __init__(self, conn: sqlite3.Connection, wanted: bool):
        self.conn = conn
        self.active = False
        self.rev = 0
        self._cache = contextlib.ExitStack()
        if wanted:
            with transaction(conn):
                self.active = sql.begin_bulk_load(conn)
                self.rev = sql.current_rev(conn)
        if self.active:
            # Appends need few pages in memory; a small cache keeps the process small.
            self._cache.enter_context(page_cache(conn, sql.BULK_CACHE_KIB))

    def check(self, batch: list[PaperRecord], rev: int) -> None:
        """Call in the batch's transaction with its new revision: end the bulk load if needed."""
        if self.active and (rev != self.rev + 1 or any(r.id_kind == "title" for r in batch)):
            self.finish()
        self.rev = rev

    def finish(self) -> None:
        """Build the dropped indexes (committed one by one unless in a caller's transaction)."""
        if self.active:
            self.active = False
            try:
                sql.finish_bulk_load(self.conn, on_built=_crash_hook)
            finally:
                self._cache.close()

    def abandon(self) -> None:
        """Stop without building: the caller's transaction rolls the drops back (strict)."""
        self.active = False
        self._cache.close()


@contextlib.contextmanager
def fewer_collections(gen0: int = 50_000):
    """Run the cyclic garbage collector less often for the duration of an import.

    An import allocates a dozen containers per record (rows, lists, tuples) and frees
    them a batch later, nearly none in a cycle; at the default threshold (700) the
    collector ran every few records and cost a fifth of the writer's CPU time (and a
    third of unpickling the parser's batches). Cycles are still collected, later.
    """
    before = gc.get_threshold()
    if before[0] >= gen0:
        yield  # already raised (nested, or by the caller)
        return
    gc.set_threshold(gen0, max(before[1], 20), max(before[2], 100))
    try:
        yield
    finally:
        gc.set_threshold(*before)


def _crash_hook(index_name: str) -> None:
    """Test hook: ``PAPERWIRE_IMPORT_CRASH_AT=index:N`` SIGKILLs this process once the
    Nth index of a bulk load is built but not committed (tests/test_import_crash.py)."""
    point, _, n = os.environ.get("PAPERWIRE_IMPORT_CRASH_AT", "").partition(":")
    if point == "index":
        _crash_hook.count = getattr(_crash_hook, "count", 0) + 1
        if _crash_hook.count == int(n or 1):
            os.kill(os.getpid(), signal.SIGKILL)


def import_records(
    conn: sqlite3.Connection,
    items: Iterable[PaperRecord | BadRecord],
    *,
    strict: bool = False,
    batch_size: int = 2000,
    on_progress: Callable[[int], None] | None = None,
    track_changes: bool = False,
    now: str | None = None,
    bulk: bool = False,
    on_commit: Callable[[sqlite3.Connection, PaperRecord], None] | None = None,
) -> ImportReport:
    """Import parsed records into the store.

    ``strict`` runs everything in one transaction and raises
    :class:`StrictImportError` at the first bad record, leaving the store as it was.
    Otherwise bad records are counted as skipped and listed in ``report.errors``.
    ``bulk`` asks for a bulk load (indexes built at the end) if the store is empty.
    ``on_commit(conn, last_record)`` runs inside each batch's transaction (to record
    how far the input is written: :mod:`paperwire.sources.resume`).
    """
    report = ImportReport()
    report_changes = report.changed_ids if track_changes else None
    now = now or utcnow_iso()
    # A bulk load killed earlier left indexes missing: rebuild them before anything else.
    sql.finish_bulk_load(conn, on_built=_crash_hook)
    state = _BulkLoad(conn, bulk)
    # The store revisions of this import's batches: a record of a paper last written at
    # one of them repeats an earlier record of the input (a duplicate).
    own_revs: set[int] = set()

    def write(batch: list[PaperRecord]) -> None:
        with transaction(conn):
            rev = sql.next_rev(conn)
            own_revs.add(rev)
            state.check(batch, rev)
            _apply_batch(conn, batch, report, now, rev, report_changes, title_rows=not state.active,
                         own_revs=own_revs)
            if on_commit is not None:
                on_commit(conn, batch[-1])
        if on_progress:
            on_progress(len(batch))

    def run() -> None:
        batch: list[PaperRecord] = []
        try:
            for item in items:
                if isinstance(item, BadRecord):
                    if strict:
                        raise StrictImportError(item)
                    report.skipped += 1
                    if len(report.errors) < report.MAX_ERRORS_KEPT:
                        report.errors.append(item)
                    if on_progress:
                        on_progress(1)
                    continue
                batch.append(item)
                if len(batch) >= batch_size:
                    write(batch)
                    batch = []
            if batch:
                write(batch)
        except BaseException:
            # The papers written so far stay, so their indexes must come back. Under
            # strict the caller's transaction rolls everything back, index drops included.
            if strict:
                state.abandon()
            else:
                state.finish()
            raise
        state.finish()

    with fewer_collections():
        if strict:
            with transaction(conn):
                run()
        else:
            run()
    return report


def _apply_batch(conn: sqlite3.Connection, batch: list[PaperRecord], report: ImportReport, now: str, rev: int,
                 changes, *, title_rows: bool = True, own_revs: set[int] | None = None) -> None:
    """Merge ``batch`` into the store. ``title_rows=False`` promises the store holds no
    id-less papers (see :class:`_BulkLoad`), which spares the title lookups. A record of
    a paper last written at one of ``own_revs`` (by this import) counts as a duplicate."""
    if title_rows:
        title_keys = {r.title_norm for r in batch if r.id_kind in ("arxiv", "title")}
    else:
        title_keys = set()
    pid_keys = {r.external_id for r in batch if r.external_id} | {title_id(t) for t in title_keys}
    existing = sql.find_candidates(conn, (r.arxiv_id for r in batch if r.arxiv_id), pid_keys, title_keys)

    by_arxiv: dict[str, dict] = {}
    by_pid: dict[str, dict] = {}
    by_title: dict[str, list[dict]] = {}

    def index(row: dict) -> None:
        if row["arxiv_id"]:
            by_arxiv[row["arxiv_id"]] = row
        by_pid[row["paper_id"]] = row
        rows = by_title.setdefault(row["title_norm"], [])
        if row not in rows:
            rows.append(row)

    for r in existing:
        index(_row_to_state(r))

    next_id = sql.max_paper_rowid(conn) + 1
    new_rows: dict[int, dict] = {}
    changed_rows: dict[int, dict] = {}
    aliases: list[tuple[str, int]] = []

    for rec in batch:
        current = _match(rec, by_arxiv, by_pid, by_title)
        if current is None:
            row = _new_row(rec, next_id, now, rev)
            next_id += 1
            new_rows[row["id"]] = row
            index(row)
            report.added += 1
            if changes is not None:
                changes.append(row["paper_id"])
            continue
        duplicate = own_revs is not None and current["rev"] in own_revs
        merged = _merge(current, rec, rev)
        if merged is None:
            if duplicate:
                report.duplicates += 1
            else:
                report.unchanged += 1
            continue
        if merged["paper_id"] != current["paper_id"]:
            aliases.append((current["paper_id"], current["id"]))
            by_pid.pop(current["paper_id"], None)
        same_title = by_title.get(current["title_norm"], [])
        if current in same_title:
            same_title.remove(current)
        index(merged)
        if merged["id"] in new_rows:
            new_rows[merged["id"]] = merged
        else:
            changed_rows[merged["id"]] = merged
        if duplicate:
            report.duplicates += 1
        else:
            report.updated += 1
        if changes is not None:
            changes.append(merged["paper_id"])

    sql.insert_papers(conn, [_with_json(r) for r in new_rows.values()])
    sql.update_papers(conn, [_with_json(r) for r in changed_rows.values()])
    for alias, rowid in aliases:
        sql.add_alias(conn, alias, rowid)


def _match(rec: PaperRecord, by_arxiv, by_pid, by_title) -> dict | None:
    if rec.arxiv_id:
        if rec.arxiv_id in by_arxiv:
            return by_arxiv[rec.arxiv_id]
        # An id-less paper (listing page) with the same title is the same paper.
        for row in by_title.get(rec.title_norm, ()):
            if row["id_kind"] == "title":
                return row
        return None
    if rec.external_id:
        return by_pid.get(rec.external_id)
    candidates = [r for r in by_title.get(rec.title_norm, ()) if r["id_kind"] in ("arxiv", "title")]
    candidates.sort(key=lambda r: r["id_kind"] != "arxiv")
    return candidates[0] if candidates else None


def _row_to_state(row: sqlite3.Row) -> dict:
    d = dict(row)
    d["authors"] = json.loads(d["authors"])
    d["categories"] = json.loads(d["categories"])
    return d


# One encoder for all rows: json.dumps with options builds a new one per call.
_json = json.JSONEncoder(ensure_ascii=False).encode


def _new_values(rec: PaperRecord) -> dict:
    """The mergeable fields of a paper created from ``rec``."""
    values = {f: getattr(rec, f) for f in MERGE_FIELDS}
    values["upvotes"] = rec.upvotes or 0
    values["num_comments"] = rec.num_comments or 0
    return values


def _derive(row: dict) -> dict:
    """Fill the columns computed from others, but for title_norm, the hashes and the JSON."""
    row["primary_category"] = row["categories"][0] if row["categories"] else None
    row["feed_date"] = (row.get("listed_at") or row.get("published") or row["first_seen"])[:10]
    abs_url, pdf_url = arxiv_links(row["arxiv_id"])
    row["abs_url"], row["pdf_url"] = abs_url, pdf_url
    return row


def _new_row(rec: PaperRecord, rowid: int, now: str, rev: int) -> dict:
    prep = prepare_record(rec)
    row = _new_values(rec)
    row.update(
        id=rowid, paper_id=rec.paper_id, id_kind=rec.id_kind, arxiv_id=rec.arxiv_id,
        source=rec.source, first_seen=now, rev=rev, meta_rank=source_rank(rec.source),
        content_hash=prep.content_hash, record_hash=prep.record_hash, authors_json=prep.authors_json,
        categories_json=prep.categories_json, author_norms=prep.author_norms, title_norm=rec.title_norm,
    )
    return _derive(row)


def _merge(current: dict, rec: PaperRecord, rev: int) -> dict | None:
    if rec.version and current["version"] and rec.version < current["version"]:
        return None  # an older version never overwrites a newer one
    # Same mergeable values as stored (the usual re-import): merging changes nothing.
    if prepare_record(rec).record_hash == current["record_hash"] and (current["arxiv_id"] or not rec.arxiv_id):
        return None
    merged = dict(current)
    for key in ("authors_json", "categories_json", "author_norms"):
        merged.pop(key, None)  # stale once fields change; _with_json recomputes
    rank = source_rank(rec.source)
    authoritative = rank >= current["meta_rank"]
    for f in BIBLIO_FIELDS:
        value = getattr(rec, f)
        if value is None or value == "" or value == []:
            continue
        if authoritative or current[f] in (None, "", []):
            merged[f] = value
    for f in COMMUNITY_FIELDS:
        value = getattr(rec, f)
        if value is not None and value != "":
            if f == "listed_at" and current[f] and current[f] <= value:
                continue  # the first listing to feature a paper dates it: re-imports never move it
            merged[f] = value
    if authoritative:
        merged["meta_rank"] = rank
    if rec.arxiv_id and not current["arxiv_id"]:
        merged.update(arxiv_id=rec.arxiv_id, paper_id=rec.arxiv_id, id_kind="arxiv")
    _derive(merged)
    merged["title_norm"] = normalize_title(merged["title"])
    merged["content_hash"] = content_hash(merged["title"], merged["abstract"])
    merged["record_hash"] = record_hash(merged)
    if merged["record_hash"] == current["record_hash"] and merged["paper_id"] == current["paper_id"]:
        return None
    merged["rev"] = rev
    return merged


def _with_json(row: dict) -> dict:
    """``row`` with the serialised forms the store writes (new rows carry them already)."""
    if "authors_json" not in row:
        row["authors_json"] = _json(row["authors"])
        row["categories_json"] = _json(row["categories"])
        row["author_norms"] = tuple(normalize_title(a) for a in row["authors"])
    return row


def progress_bar(total: int | None = None, desc: str = "importing"):
    """A tqdm bar on stderr, silent when stderr is not a terminal."""
    import shutil

    from tqdm import tqdm

    # A fresh pty can report a 0x0 screen, which makes tqdm hide the bar entirely.
    size = shutil.get_terminal_size(fallback=(80, 24))
    return tqdm(total=total, desc=desc, unit="rec", file=sys.stderr, disable=not sys.stderr.isatty(),
                smoothing=0.1, ncols=size.columns or 80, nrows=size.lines or 24, unit_scale=True)
