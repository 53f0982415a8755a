"""The "arXiv CS abstracts" CSV (``titles``, ``summaries``, ``terms``): no ids,
so papers are identified by normalised title; ``terms`` are arXiv categories."""

from __future__ import annotations

import ast
import csv
from pathlib import Path
from typing import Iterator

from paperwire.ingest import BadRecord
from paperwire.model import PaperRecord, RecordError
from paperwire.sources.base import open_text

SOURCE = "cs-abstracts"


def parse(path: Path) -> Iterator[PaperRecord | BadRecord]:
    """Rows of the CSV as records."""
    with open_text(path) as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames:
            return
        start = reader.line_num + 1
        for row in reader:
            try:
                if None in row or any(v is None for v in row.values()):
                    raise RecordError("wrong number of columns")
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
                yield BadRecord(str(path), start, str(exc))
            start = reader.line_num + 1
