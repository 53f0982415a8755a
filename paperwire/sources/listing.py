"""Saved listing pages of a trending-papers site: a short header of page chrome,
then a title line and an abstract line per paper, blank lines optional.

The pages carry no ids or authors, so these papers are identified by their
normalised title (and merge with the arXiv record when one arrives).

A page names its day under the header ("Mar 11"), without a year. The papers
after that line get the day as ``listed_at`` (so as their feed date). The year is
the one given (``--year``), else that of the latest such day not after the file's
time: for a gzipped page the time in its gzip header (it travels with the
content, where a package install resets file times), else the file's
modification time. A page without a date line takes the latest day of the dated
pages imported with it (it is a snapshot of the same site, and its file time is
only when it was copied: often today); alone, it is dated by the file's time.
"""

from __future__ import annotations

import os
import re
import struct
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Iterator

from paperwire.ingest import BadRecord
from paperwire.model import PaperRecord, RecordError
from paperwire.sources.base import open_lines

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
_DATE_LINE = re.compile(r"^(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]* (\d{1,2})(?:, (\d{4}))?$", re.I)
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_GLUED = re.compile(r"^Subscribe(?=[A-Z0-9\"'(\[])")
# A title is a line; an abstract is prose. These bounds only catch broken pairs.
MAX_TITLE = 400
MAX_PAGE_BYTES = 64 * 2**20  # a saved page is ~100 KB
MIN_ABSTRACT = 150


def is_chrome(line: str) -> bool:
    return line.lower() in CHROME or bool(_DATE_LINE.match(line))


def looks_like_listing(head: str) -> bool:
    """True when a text sample has the page chrome of a listing page."""
    lines = [l.strip().lower() for l in head.splitlines()[:20] if l.strip()]
    return any(l.startswith("get trending papers") or l.startswith("subscribe") for l in lines)


def file_time(path: Path) -> datetime:
    """When a page was saved: its gzip header's time if it has one, else its mtime (UTC)."""
    stamp = 0
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head[:2] == b"\x1f\x8b" and len(head) == 8:
        stamp = struct.unpack("<I", head[4:8])[0]  # 0 means "no time stored"
    if not stamp:
        stamp = os.stat(path).st_mtime
    return datetime.fromtimestamp(stamp, timezone.utc)


def resolve_day(month: int, day: int, *, year: int | None, before: date) -> date | None:
    """The date of "Mon D": in ``year`` if given, else the latest one not after ``before``.

    None when no such calendar date exists (Feb 30, or Feb 29 of a given common year).
    """
    if year is not None:
        try:
            return date(year, month, day)
        except ValueError:
            return None
    # Feb 29 may go back up to 8 years (1900-style century gaps); other days 1.
    for y in range(before.year, before.year - 9, -1):
        try:
            d = date(y, month, day)
        except ValueError:
            continue
        if d <= before:
            return d
    return None


def parse_date_line(line: str, *, year: int | None, before: date) -> date | None:
    """The day a date line names ("Mar 11", "March 11, 2025"), or None if it is not one."""
    m = _DATE_LINE.match(line)
    if not m:
        return None
    month = _MONTHS.index(m.group(1).lower()) + 1
    stated = int(m.group(3)) if m.group(3) else None
    return resolve_day(month, int(m.group(2)), year=stated or year, before=before)


def first_page_day(path: Path, *, year: int | None = None, max_lines: int = 200) -> date | None:
    """The first date line's day of a listing page (None if its head has none): read from
    the first ``max_lines`` lines only, so planning an import stays cheap."""
    saved = file_time(path).date()
    with open_lines(path, max_total=MAX_PAGE_BYTES) as fh:
        for n, (_, raw) in enumerate(fh):
            if n >= max_lines:
                break
            if isinstance(raw, BadRecord):
                continue
            line = raw.strip()
            if _DATE_LINE.match(line):
                day = parse_date_line(line, year=year, before=saved)
                if day is not None:
                    return day
    return None


def parse(path: Path, *, year: int | None = None, undated: date | None = None) -> Iterator[PaperRecord | BadRecord]:
    """Title/abstract pairs of one listing page, each dated by the page (see the module doc).

    ``year`` is the year of the page's dates when they name none; ``undated`` is the
    day for a page without a date line (the latest day of the pages imported with it).
    """
    saved = file_time(path).date()
    lines: list[tuple[int, str, date | None]] = []
    page_day: date | None = None
    in_header = True
    # Bounded: an over-long or binary line is a skip, and a page (held whole below) has a size limit.
    with open_lines(path, max_total=MAX_PAGE_BYTES) as fh:
        for lineno, raw in fh:
            if isinstance(raw, BadRecord):
                yield raw
                continue
            line = raw.strip()
            if not line:
                continue
            if _DATE_LINE.match(line):
                day = parse_date_line(line, year=year, before=saved)
                if day is None:
                    yield BadRecord(str(path), lineno, f"date line {line!r} is not a calendar date")
                else:
                    page_day = day
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
            lines.append((lineno, line, page_day))
    # Papers above the first date line take the first date; a page with none takes ``undated``, else the file's day.
    first_day = next((d for _, _, d in lines if d), page_day) or undated or saved

    i = 0
    while i < len(lines):
        t_line, title, day = lines[i]
        if i + 1 >= len(lines):
            yield BadRecord(str(path), t_line, "title without an abstract at end of file")
            break
        a_line, abstract, _ = lines[i + 1]
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
            yield PaperRecord(title=title, abstract=abstract, source=SOURCE,
                              listed_at=f"{(day or first_day).isoformat()}T00:00:00Z")
        except RecordError as exc:
            yield BadRecord(str(path), t_line, str(exc))
        i += 2
