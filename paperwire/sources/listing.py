"""Saved listing pages of a trending-papers site: a short header of page chrome,
then a title line and an abstract line per paper, blank lines optional.

The pages carry no ids, authors or dates, so these papers are identified by
their normalised title (and merge with the arXiv record when one arrives).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

from paperwire.ingest import BadRecord
from paperwire.model import PaperRecord, RecordError
from paperwire.sources.base import open_text

SOURCE = "listing"

CHROME = {
    "new",
    "subscribe",
    "get trending papers in your email inbox!",
    "get trending papers in your email inbox once a day!",
    "byak and the research community",
    "daily papers",
    "trending papers",
}
_DATE_LINE = re.compile(r"^(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]* \d{1,2}(, \d{4})?$", re.I)
_GLUED = re.compile(r"^Subscribe(?=[A-Z0-9\"'(\[])")
# A title is a line; an abstract is prose. These bounds only catch broken pairs.
MAX_TITLE = 400
MIN_ABSTRACT = 150


def is_chrome(line: str) -> bool:
    return line.lower() in CHROME or bool(_DATE_LINE.match(line))


def looks_like_listing(head: str) -> bool:
    """True when a text sample has the page chrome of a listing page."""
    lines = [l.strip().lower() for l in head.splitlines()[:20] if l.strip()]
    return any(l.startswith("get trending papers") or l.startswith("subscribe") for l in lines)


def parse(path: Path) -> Iterator[PaperRecord | BadRecord]:
    """Title/abstract pairs of one listing page."""
    lines: list[tuple[int, str]] = []
    in_header = True
    with open_text(path) as fh:
        for lineno, raw in enumerate(fh, 1):
            line = raw.strip()
            if not line:
                continue
            if in_header:
                if is_chrome(line):
                    continue
                glued = _GLUED.match(line)
                if glued:  # "SubscribeCan we Constrain ..." : chrome glued to the first title
                    line = line[glued.end():]
                in_header = False
            elif is_chrome(line):
                continue
            lines.append((lineno, line))

    i = 0
    while i < len(lines):
        t_line, title = lines[i]
        if i + 1 >= len(lines):
            yield BadRecord(str(path), t_line, "title without an abstract at end of file")
            break
        a_line, abstract = lines[i + 1]
        if len(title) > MAX_TITLE:
            yield BadRecord(str(path), t_line, f"expected a title line, got {len(title)} characters of text")
            i += 1
            continue
        if len(abstract) < MIN_ABSTRACT and len(abstract) < len(title) * 3:
            # The abstract line is missing: this "abstract" is the next title.
            yield BadRecord(str(path), t_line, "title without an abstract")
            i += 1
            continue
        try:
            yield PaperRecord(title=title, abstract=abstract, source=SOURCE)
        except RecordError as exc:
            yield BadRecord(str(path), t_line, str(exc))
        i += 2
