"""The "arXiv CS abstracts" CSV (``titles``, ``summaries``, ``terms``): no ids,
so papers are identified by normalised title; ``terms`` are arXiv categories."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Iterator

from paperwire.ingest import BadRecord
from paperwire.model import PaperRecord, RecordError
from paperwire.sources.base import iter_csv_rows

SOURCE = "cs-abstracts"


def parse(path: Path) -> Iterator[PaperRecord | BadRecord]:
    """Rows of the CSV as records."""
    for lineno, row in iter_csv_rows(path):
        if isinstance(row, BadRecord):
            yield row
            continue
        try:
            terms = ast.literal_eval(row.get("terms") or "[]")
            if not isinstance(terms, (list, tuple)):
                raise RecordError("terms is not a list")
            yield PaperRecord(
                title=row.get("titles") or "",
                abstract=row.get("summaries") or "",
                source=SOURCE,
                categories=[str(t) for t in terms],
            )
        except (RecordError, ValueError, SyntaxError) as exc:
            yield BadRecord(str(path), lineno, str(exc))
