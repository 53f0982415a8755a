"""arXiv bulk-snapshot metadata (the Kaggle "arxiv-metadata-oai-snapshot" schema),
as JSON lines or as the CSV export of the same columns.

The CSV export has quirks the JSON does not: ids written as numbers
(``704.0006``), ``versions`` and ``authors_parsed`` as Python literals, and
``update_date`` as ``M/D/YYYY``. Both paths end in :func:`record_from_snapshot`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

from paperwire.ingest import BadRecord
from paperwire.model import PaperRecord, RecordError
from paperwire.sources.base import RECORD_ERRORS, delatex, iso_date, iter_csv_rows, iter_json_lines, literal

SOURCE = "arxiv-snapshot"
_SPLIT_INITIALS = re.compile(r"\. -(?=\w)")


def parse_jsonl(path: Path, *, start_line: int = 1) -> Iterator[PaperRecord | BadRecord]:
    """Records of a snapshot JSON-lines file, one paper a line (from line ``start_line`` on)."""
    for lineno, obj in iter_json_lines(path, start_line):
        if isinstance(obj, BadRecord):
            yield obj
            continue
        rec = _convert(obj, path, lineno)
        if isinstance(rec, PaperRecord):
            rec._line = lineno  # where a resumed import may start over (paperwire.sources.resume)
        yield rec


def parse_csv(path: Path, *, start_line: int = 1) -> Iterator[PaperRecord | BadRecord]:
    """Records of the snapshot schema written as CSV (header row required), from the
    record at line ``start_line`` on."""
    for lineno, row, end in iter_csv_rows(path, start_line):
        if isinstance(row, BadRecord):
            yield row
            continue
        rec = _convert(row, path, lineno)
        if isinstance(rec, PaperRecord):
            rec._line = end  # a resumed import starts after the record's last line
        yield rec


def _convert(obj, path: Path, lineno: int) -> PaperRecord | BadRecord:
    if not isinstance(obj, dict):
        return BadRecord(str(path), lineno, "not a JSON object")
    try:
        return record_from_snapshot(obj)
    except RECORD_ERRORS as exc:
        return BadRecord(str(path), lineno, str(exc) or type(exc).__name__)


def _literal(value, what: str):
    """JSON values arrive parsed; CSV ones as Python-literal strings."""
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return None
        return literal(value, what)
    return value


def record_from_snapshot(obj: dict) -> PaperRecord:
    """One snapshot object (JSON or a CSV row) to a :class:`PaperRecord`."""
    raw_id = obj.get("id")
    if raw_id is None or str(raw_id).strip() == "":
        raise RecordError("missing id")
    if not str(obj.get("title") or "").strip():
        raise RecordError("missing title")
    versions = _literal(obj.get("versions"), "versions") or []
    dates = []
    latest = None
    for v in versions:
        dates.append(iso_date(v.get("created")))
        num = str(v.get("version", "")).lstrip("v")
        if num.isdigit():
            latest = max(latest or 0, int(num))
    dates = [d for d in dates if d]
    update_date = iso_date(obj.get("update_date"))
    updated = max([d for d in (dates[-1] if dates else None, update_date) if d], default=None)

    authors_parsed = _literal(obj.get("authors_parsed"), "authors_parsed")
    if authors_parsed:
        authors = [_full_name(a) for a in authors_parsed]
    else:
        authors = [delatex(a) for a in _split_authors(obj.get("authors") or "")]

    def text(key):
        v = obj.get(key)
        return str(v).strip() or None if v is not None else None

    return PaperRecord(
        title=obj["title"],
        abstract=obj.get("abstract") or "",
        source=SOURCE,
        arxiv_id=str(raw_id),
        version=latest,
        authors=authors,
        categories=(obj.get("categories") or "").split(),
        published=dates[0] if dates else None,
        updated=updated,
        doi=text("doi"),
        journal_ref=text("journal-ref"),
        comments=text("comments"),
        license=text("license"),
    )


def _full_name(parts) -> str:
    """``['Yuan', 'C. -P.', '']`` -> ``C.-P. Yuan`` (the snapshot splits hyphenated initials)."""
    last, first = str(parts[0]).strip(), str(parts[1]).strip() if len(parts) > 1 else ""
    suffix = str(parts[2]).strip() if len(parts) > 2 else ""
    if ". -" in first:
        first = _SPLIT_INITIALS.sub(".-", first)
    return delatex(" ".join(p for p in (first, last, suffix) if p))


def _split_authors(raw: str) -> list[str]:
    raw = raw.replace("\n", " ")
    parts = []
    for chunk in raw.split(","):
        parts.extend(p for p in chunk.split(" and ") if p.strip())
    return [p.strip() for p in parts]
