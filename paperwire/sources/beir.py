"""BEIR corpora (``corpus.jsonl`` lines of ``_id``, ``title``, ``text``).

Ids are kept exactly as given so that a benchmark's qrels match our paper ids.
Also reads BEIR ``queries.jsonl`` and ``qrels/*.tsv`` for evaluation.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Iterator

from paperwire.ingest import BadRecord
from paperwire.model import PaperRecord
from paperwire.sources.base import RECORD_ERRORS, iter_json_lines

SOURCE = "beir"


def corpus_path(path: Path) -> Path:
    """A BEIR folder's corpus file, or the file itself."""
    path = Path(path)
    return path / "corpus.jsonl" if path.is_dir() else path


def parse(path: Path, *, start_line: int = 1) -> Iterator[PaperRecord | BadRecord]:
    """Documents of a BEIR corpus file (or folder), from line ``start_line`` on."""
    path = corpus_path(path)
    for lineno, obj in iter_json_lines(path, start_line):
        if isinstance(obj, BadRecord):
            yield obj
            continue
        if not isinstance(obj, dict) or "_id" not in obj:
            yield BadRecord(str(path), lineno, "missing _id")
            continue
        try:
            text = obj.get("text") or ""
            # Some BEIR corpora have empty titles; the start of the text stands in.
            title = (obj.get("title") or "").strip() or " ".join(text[:4096].split()[:12])
            rec = PaperRecord(title=title, abstract=text, source=SOURCE, external_id=str(obj["_id"]))
            rec._line = lineno  # see paperwire.sources.resume
            yield rec
        except RECORD_ERRORS as exc:
            yield BadRecord(str(path), lineno, str(exc) or type(exc).__name__)


def load_queries(folder: Path) -> dict[str, str]:
    """``{query_id: text}`` from ``queries.jsonl``."""
    out = {}
    with open(Path(folder) / "queries.jsonl", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                q = json.loads(line)
                out[str(q["_id"])] = q["text"]
    return out


def load_qrels(folder: Path, split: str = "test") -> dict[str, dict[str, int]]:
    """``{query_id: {doc_id: relevance}}`` from ``qrels/<split>.tsv``."""
    out: dict[str, dict[str, int]] = {}
    with open(Path(folder) / "qrels" / f"{split}.tsv", encoding="utf-8") as fh:
        reader = csv.reader(fh, delimiter="\t")
        for row in reader:
            if not row or row[0] == "query-id":
                continue
            out.setdefault(row[0], {})[row[1]] = int(row[2])
    return out
