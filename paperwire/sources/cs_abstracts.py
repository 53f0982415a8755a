"""The "arXiv CS abstracts" CSV (``titles``, ``summaries``, ``terms``): no ids,
so papers are identified by normalised title; ``terms`` are arXiv categories."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from paperwire.ingest import BadRecord
from paperwire.model import PaperRecord, RecordError
from paperwire.sources.base import RECORD_ERRORS, iter_csv_rows, literal

SOURCE = "cs-abstracts"


def parse(path: Path, *, start_line: int = 1) -> Iterator[PaperRecord | BadRecord]:
    """Rows of the CSV as records (from the record at line ``start_line`` on)."""
    for lineno, row, end in iter_csv_rows(path, start_line):
        if isinstance(row, BadRecord):
            yield row
            continue
        try:
            terms = literal(row.get("terms") or "[]", "terms")
            if not isinstance(terms, (list, tuple)):
                raise RecordError("terms is not a list")
            rec = PaperRecord(
                title=row.get("titles") or "",
                abstract=row.get("summaries") or "",
                source=SOURCE,
                categories=[str(t) for t in terms],
            )
            rec._line = end  # a resumed import starts after the record's last line
            yield rec
        except RECORD_ERRORS as exc:
            yield BadRecord(str(path), lineno, str(exc) or type(exc).__name__)
