"""Shared helpers for the file parsers: opening text safely, dates, LaTeX accents."""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import sys
import unicodedata
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path

from paperwire.ingest import BadRecord

__all__ = ["BadRecord", "UnreadableFile", "open_text", "sniff", "iso_date", "delatex", "iter_json_lines", "iter_csv_rows"]


class UnreadableFile(Exception):
    """A file that no importer can read (binary, unknown format, wrong encoding)."""


def sniff(path: Path, size: int = 65536) -> str:
    """The first ``size`` characters of a text file; raises :class:`UnreadableFile` for binaries."""
    with open(path, "rb") as fh:
        head = fh.read(size)
    if head[:2] == b"\x1f\x8b":
        with gzip.open(path, "rb") as fh:
            head = fh.read(size)
    if b"\x00" in head:
        raise UnreadableFile(f"{path}: binary file, not a paper listing or metadata dump")
    try:
        return head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the end of the sample is fine.
        if exc.start >= len(head) - 3:
            return head[: exc.start].decode("utf-8")
        raise UnreadableFile(f"{path}: not UTF-8 text (byte {exc.start})") from None


def open_text(path: Path) -> io.TextIOBase:
    """Open a (possibly gzipped) UTF-8 file for reading, with universal newlines."""
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def iter_json_lines(path: Path):
    """``(line number, object)`` for each non-blank line; undecodable lines come as BadRecord."""
    with open_text(path) as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield lineno, json.loads(line)
            except json.JSONDecodeError as exc:
                yield lineno, BadRecord(str(path), lineno, f"invalid JSON: {exc.msg}")


def iter_csv_rows(path: Path):
    """``(first line of the record, row dict)`` for a CSV with a header row.

    Rows with too few or too many fields, and unreadable CSV, come as BadRecord.
    """
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # abstracts exceed the 128 KiB default
    with open_text(path) as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames:
            return
        start = reader.line_num + 1
        try:
            for row in reader:
                if None in row or any(v is None for v in row.values()):
                    yield start, BadRecord(str(path), start, "wrong number of columns")
                else:
                    yield start, row
                start = reader.line_num + 1
        except csv.Error as exc:
            yield start, BadRecord(str(path), start, f"unreadable CSV: {exc}")


_MONTH_DAY_YEAR = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")
# arXiv's own shape, "Mon, 2 Apr 2007 19:18:42 GMT": parsed without datetime (hot path).
_RFC_GMT = re.compile(r"^[A-Z][a-z]{2}, (\d{1,2}) ([A-Z][a-z]{2}) (\d{4}) (\d{2}:\d{2}:\d{2}) GMT$")
_MONTHS = {m: f"{i:02d}" for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}
_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def iso_date(value: str | None) -> str | None:
    """Parse the date shapes seen in arXiv data into ``YYYY-MM-DDTHH:MM:SSZ``.

    Accepts RFC 2822 (``Mon, 2 Apr 2007 19:18:42 GMT``), ISO-8601 with or without
    time, and ``M/D/YYYY``. Raises ValueError on anything else.
    """
    if value is None:
        return None
    s = str(value).strip()
    if not s:
        return None
    m = _RFC_GMT.match(s)
    if m and m.group(2) in _MONTHS:
        return f"{m.group(3)}-{_MONTHS[m.group(2)]}-{int(m.group(1)):02d}T{m.group(4)}Z"
    if _ISO_DAY.match(s):
        if not (1 <= int(s[5:7]) <= 12 and 1 <= int(s[8:10]) <= 31):
            raise ValueError(f"unreadable date {s!r}")
        return s + "T00:00:00Z"
    m = _MONTH_DAY_YEAR.match(s)
    if m:
        dt = datetime(int(m.group(3)), int(m.group(1)), int(m.group(2)), tzinfo=timezone.utc)
    elif re.match(r"^\d{4}-\d{2}-\d{2}", s):
        dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=timezone.utc)
    else:
        try:
            dt = parsedate_to_datetime(s)
        except (TypeError, ValueError, IndexError):
            raise ValueError(f"unreadable date {s!r}") from None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# LaTeX accent commands as they appear in arXiv author names: Bal\'azs, {\"o}, \c{c}.
_ACCENTS = {"'": "\u0301", "`": "\u0300", '"': "\u0308", "^": "\u0302", "~": "\u0303",
            "=": "\u0304", ".": "\u0307", "u": "\u0306", "v": "\u030c", "H": "\u030b", "c": "\u0327"}
_ACCENT_RE = re.compile(r"\{?\\([`'\"^~=.]|[uvHc](?=[\s{]))\s*\{?\\?([A-Za-z])\}?\}?")
_LETTERS = {r"\o": "ø", r"\O": "Ø", r"\ss": "ß", r"\aa": "å", r"\AA": "Å", r"\ae": "æ", r"\l": "ł", r"\L": "Ł"}


def delatex(text: str) -> str:
    """Turn LaTeX accent escapes in names into Unicode (``Bal\\'azs`` -> ``Balázs``)."""
    if "\\" not in text:
        return text
    out = _ACCENT_RE.sub(lambda m: m.group(2) + _ACCENTS[m.group(1)], text)
    for k, v in _LETTERS.items():
        out = re.sub(r"\{?" + re.escape(k) + r"(?![A-Za-z])\}?\s?", v, out)
    out = out.replace("{", "").replace("}", "") if "\\" not in out else out
    return unicodedata.normalize("NFC", out)
