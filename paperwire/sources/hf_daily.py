"""Hugging Face daily-papers API JSON (``GET /api/daily_papers``).

An array of entries; each entry has a nested ``paper`` object (``id``,
``title``, ``summary``, ``authors[].name``, ``publishedAt``, ``upvotes``,
optional ``githubRepo`` / ``projectPage``) and entry fields ``publishedAt``
(when the list featured it), ``submittedBy``, ``numComments``. Also accepts
one entry per line (JSON lines). Upvotes and the submitter are kept.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

from paperwire.ingest import BadRecord
from paperwire.model import PaperRecord, RecordError
from paperwire.sources.base import RECORD_ERRORS, iso_date, read_limited

SOURCE = "hf-daily"


def looks_like_hf(head: str) -> bool:
    return '"paper"' in head and ('"summary"' in head or '"upvotes"' in head or '"title"' in head)


# A day's response is ~200 KB; the whole document is read at once, so it is bounded.
MAX_DOCUMENT_CHARS = 64 * 2**20


def parse(path: Path) -> Iterator[PaperRecord | BadRecord]:
    """Entries of a saved daily-papers response (array or JSON lines)."""
    try:
        text = read_limited(path, MAX_DOCUMENT_CHARS)
    except ValueError as exc:  # not UTF-8, or a broken .gz
        yield BadRecord(str(path), 1, str(exc))
        return
    if text is None:
        yield BadRecord(str(path), 1, f"file too long for a daily-papers response (more than "
                                      f"{MAX_DOCUMENT_CHARS:,} characters); split it into JSON lines")
        return
    yield from parse_text(text, str(path))


def parse_text(text: str, origin: str = "<response>") -> Iterator[PaperRecord | BadRecord]:
    """Entries of a daily-papers response body; ``origin`` names it in errors."""
    decoder = json.JSONDecoder()
    pos = _skip_ws(text, 0)
    if pos < len(text) and text[pos] == "[":
        pos += 1
        array = True
    else:
        array = False
    line = text.count("\n", 0, pos) + 1
    counted = pos
    while True:
        pos = _skip_ws(text, pos)
        if array and pos < len(text) and text[pos] == ",":
            pos = _skip_ws(text, pos + 1)
        if pos >= len(text) or (array and text[pos] == "]"):
            if array and pos >= len(text):
                yield BadRecord(origin, text.count("\n") + 1, "unterminated JSON array")
            return
        line += text.count("\n", counted, pos)
        counted = pos
        try:
            obj, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            yield BadRecord(origin, exc.lineno, f"invalid JSON: {exc.msg}")
            return  # the rest of the document cannot be located reliably
        except RecursionError:
            yield BadRecord(origin, line, "invalid JSON: nested too deeply")
            return
        yield _convert(obj, origin, line)
        pos = end


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _convert(obj, origin: str, line: int) -> PaperRecord | BadRecord:
    try:
        return record_from_entry(obj)
    except RECORD_ERRORS as exc:
        return BadRecord(origin, line, str(exc) or type(exc).__name__)


def record_from_entry(entry: dict) -> PaperRecord:
    """One daily-papers entry (or a bare paper object) to a :class:`PaperRecord`."""
    if not isinstance(entry, dict):
        raise RecordError("entry is not an object")
    paper = entry.get("paper", entry)
    if not isinstance(paper, dict):
        raise RecordError("'paper' is not an object")
    if not paper.get("id"):
        raise RecordError("missing paper.id")
    if not (paper.get("title") or entry.get("title")):
        raise RecordError("missing paper.title")
    submitter = entry.get("submittedBy") or paper.get("submittedOnDailyBy")
    if isinstance(submitter, dict):
        submitter = submitter.get("name") or submitter.get("fullname")
    authors = [a.get("name", "") if isinstance(a, dict) else str(a) for a in paper.get("authors") or []]
    # The day a daily list featured the paper; entry.publishedAt repeats the paper's date.
    listed = paper.get("submittedOnDailyAt") or (entry.get("publishedAt") if "paper" in entry else None)
    upvotes = paper.get("upvotes")
    comments = entry.get("numComments")
    return PaperRecord(
        title=paper.get("title") or entry.get("title"),
        abstract=paper.get("summary") or entry.get("summary") or "",
        source=SOURCE,
        arxiv_id=str(paper["id"]),
        authors=authors,
        published=iso_date(paper.get("publishedAt")),
        listed_at=iso_date(listed),
        upvotes=int(upvotes) if upvotes is not None else None,
        submitted_by=submitter,
        num_comments=int(comments) if comments is not None else None,
        code_url=paper.get("githubRepo") or None,
        project_url=paper.get("projectPage") or None,
    )
