"""Shared helpers for the file parsers: opening text safely, dates, LaTeX accents."""

from __future__ import annotations

import ast
import csv
import gzip
import io
import json
import re
import unicodedata
import zlib
from contextlib import contextmanager
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import BinaryIO, Iterator

from paperwire.ingest import BadRecord

__all__ = ["BadRecord", "UnreadableFile", "open_text", "open_binary", "iter_lines", "open_lines", "sniff", "iso_date",
           "delatex", "iter_json_lines", "iter_csv_rows", "read_limited", "MAX_LINE_BYTES"]


class UnreadableFile(Exception):
    """A file that no importer can read (binary, unknown format, wrong encoding)."""


# What converting one hostile record can raise: each becomes a skipped record, never a
# failed import (a list where a string belongs, 1e999 as a count, [[[[...]]]] nesting).
RECORD_ERRORS = (ValueError, TypeError, KeyError, AttributeError, SyntaxError, OverflowError, RecursionError,
                 MemoryError)


# Longest line a line-based format may have. A real JSON-lines record is a few KB (a
# 3,000-author collaboration paper ~300 KB); longer lines are skipped, read past in
# chunks, never held whole: a small .gz can hold gigabytes on one line (a gzip bomb).
# Decoded, a line of JSON can take ~20 times its size ([{},{},...]): this bounds that too.
MAX_LINE_BYTES = 4 * 2**20
# Longest Python-literal field of the CSV export (versions, authors_parsed): parsing one
# builds a syntax tree of ~50 bytes a character.
MAX_LITERAL_CHARS = 2**20
_SKIP_CHUNK = 2**20
_BOM = b"\xef\xbb\xbf"


def open_binary(path: Path) -> BinaryIO:
    """Open a (possibly gzipped) file for reading bytes."""
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rb")
    return open(path, "rb", buffering=2**20)


def _dirty(line: bytes) -> str | None:
    """Why a raw line is not text (None when it is)."""
    if b"\x00" in line:
        return "binary data (a NUL byte) in the line"
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"not UTF-8 text (byte {exc.start + 1} of the line)"
    return None


def iter_lines(path: Path, *, max_bytes: int = MAX_LINE_BYTES, start: int = 1,
               max_total: int | None = None) -> Iterator[tuple[int, "str | BadRecord"]]:
    """``(line number, text)`` for every line of a (possibly gzipped) file, in bounded memory.

    A line longer than ``max_bytes``, or holding a NUL byte or bytes that are not
    UTF-8, comes as a :class:`BadRecord` saying so; the lines around it are read as
    usual. Lines keep their ``\\n`` (or ``\\r\\n``); a UTF-8 byte-order mark is dropped.
    Compressed data that is cut short or corrupt ends the lines with a BadRecord.
    Lines before ``start`` are read past without being decoded (resuming an import).
    With ``max_total``, reading stops with a BadRecord after that many bytes (for formats
    whose parsers hold a whole file).
    """
    origin = str(path)
    counter = [0]
    try:
        yield from _read_lines(path, origin, max_bytes, start, max_total, counter)
    except (EOFError, OSError, zlib.error) as exc:  # a truncated or corrupt .gz
        n = counter[0] + 1
        yield n, BadRecord(origin, n, f"unreadable compressed data after line {counter[0]:,} ({exc})")


def _read_lines(path: Path, origin: str, max_bytes: int, start: int, max_total: int | None, counter: list):
    """The lines for :func:`iter_lines`; ``counter[0]`` follows the line number."""
    with open_binary(path) as fh:
        readline = fh.readline
        lineno = 0
        while lineno < start - 1:
            chunk = readline(_SKIP_CHUNK)
            if not chunk:
                return
            if chunk[-1:] == b"\n":
                lineno += 1
                counter[0] = lineno
        total = 0
        while True:
            raw = readline(max_bytes + 1)
            if not raw:
                return
            lineno += 1
            counter[0] = lineno
            total += len(raw)
            if max_total is not None and total > max_total:
                yield lineno, BadRecord(origin, lineno, f"file too long for this format (more than {max_total:,} "
                                                        "bytes); the rest is not read")
                return
            if len(raw) > max_bytes and raw[-1:] != b"\n":
                size = len(raw)
                raw = b""  # let go of it before reading on
                while True:
                    chunk = readline(_SKIP_CHUNK)
                    size += len(chunk)
                    if not chunk or chunk[-1:] == b"\n":
                        break
                yield lineno, BadRecord(origin, lineno, f"line too long ({size:,} bytes; the limit is {max_bytes:,})")
                continue
            if lineno == 1 and raw.startswith(_BOM):
                raw = raw[3:]
            try:
                if b"\x00" in raw:
                    raise ValueError
                yield lineno, raw.decode("utf-8")
            except ValueError:
                yield lineno, BadRecord(origin, lineno, _dirty(raw) or "unreadable line")


@contextmanager
def open_lines(path: Path, *, max_bytes: int = MAX_LINE_BYTES, max_total: int | None = None):
    """:func:`iter_lines` as a context manager (closes the file early on ``break``)."""
    lines = iter_lines(path, max_bytes=max_bytes, max_total=max_total)
    try:
        yield lines
    finally:
        lines.close()


_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0e-\x1a\x1c-\x1f]")


def sniff(path: Path, size: int = 65536) -> str:
    """The first ``size`` bytes of a text file, as text; raises :class:`UnreadableFile` for binaries.

    Lines holding NUL bytes or bytes that are not UTF-8 come back empty: the importer
    skips them, each with its line number. A file is binary when the sample has such
    lines (or lines of control characters) and no line of text (16 characters or more).
    """
    parts: list[bytes] = []
    got = 0
    try:  # in pieces: a .gz cut short still shows the lines before the cut
        with open_binary(path) as fh:
            while got < size and (piece := fh.read(min(8192, size - got))):
                parts.append(piece)
                got += len(piece)
    except (EOFError, OSError, zlib.error) as exc:
        if not got:
            raise UnreadableFile(f"{path}: unreadable compressed data ({exc})") from None
    head = b"".join(parts)
    if head.startswith(_BOM):
        head = head[3:]
    lines = head.split(b"\n")
    out: list[str] = []
    bad = good = 0
    nul = False
    for i, line in enumerate(lines):
        if i == len(lines) - 1:
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as exc:
                if exc.start >= len(line) - 3:
                    line = line[: exc.start]  # a multi-byte character cut at the end of the sample
        if _dirty(line) is not None or _CONTROL.search(line):
            bad += 1
            nul = nul or b"\x00" in line
            out.append("")
            continue
        text = line.decode("utf-8")
        good += len(text.strip()) >= 16
        out.append(text)
    if bad and not good:
        if nul:
            raise UnreadableFile(f"{path}: binary file, not a paper listing or metadata dump")
        raise UnreadableFile(f"{path}: not UTF-8 text")
    return "\n".join(out)


def open_text(path: Path) -> io.TextIOBase:
    """Open a (possibly gzipped) UTF-8 file for reading, with universal newlines."""
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def read_limited(path: Path, limit: int) -> str | None:
    """The whole text of a (possibly gzipped) file, or None when it exceeds ``limit`` characters.

    Raises ValueError for compressed data that is cut short or corrupt."""
    try:
        with open_text(path) as fh:
            text = fh.read(limit + 1)
    except (EOFError, OSError, zlib.error) as exc:
        raise ValueError(f"unreadable compressed data ({exc})") from None
    return None if len(text) > limit else text


def load_json_line(origin: str, lineno: int, line: str):
    """A JSON-lines line decoded, or a BadRecord saying why it is not JSON."""
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        return BadRecord(origin, lineno, f"invalid JSON: {exc.msg}")
    except RecursionError:
        return BadRecord(origin, lineno, "invalid JSON: nested too deeply")


def literal(value: str, what: str):
    """A Python literal (the CSV export's lists), refusing one too long to parse safely."""
    if len(value) > MAX_LITERAL_CHARS:
        raise ValueError(f"{what} too long ({len(value):,} characters; the limit is {MAX_LITERAL_CHARS:,})")
    return ast.literal_eval(value)


def iter_json_lines(path: Path, start: int = 1):
    """``(line number, object)`` for each non-blank line from line ``start`` on; lines that
    are not JSON (or too long, or not text) come as BadRecord."""
    origin = str(path)
    for lineno, line in iter_lines(path, start=start):
        if isinstance(line, BadRecord):
            yield lineno, line
        elif line.strip():
            yield lineno, load_json_line(origin, lineno, line)


def iter_csv_rows(path: Path, start_line: int = 1):
    """``(first line, row dict, last line)`` of each record of a CSV with a header row,
    from the record at line ``start_line`` on (the header is always read).

    Rows with too few or too many fields, unreadable CSV, and records with an
    over-long or non-text line come as BadRecord; reading goes on after each.
    """
    # One field may not outgrow a line (abstracts exceed csv's 128 KiB default); without a
    # bound, one unbalanced quote would gather the rest of the file into one field.
    csv.field_size_limit(MAX_LINE_BYTES)
    origin = str(path)
    bad: dict[int, BadRecord] = {}
    last = [0]  # number of the last line handed to csv: it reads no further than a record

    def feed(numbered):
        for lineno, line in numbered:
            last[0] = lineno
            if isinstance(line, BadRecord):
                bad[lineno] = line
                yield "\n"  # the record holding it is skipped below
            else:
                yield line

    def lines():
        if start_line <= 2:
            yield from feed(iter_lines(path))
            return
        header = iter_lines(path)
        try:
            yield from feed([next(header, (1, ""))])
        finally:
            header.close()
        yield from feed(iter_lines(path, start=start_line))

    source = lines()
    reader = csv.reader(source)
    fieldnames = None
    start = 1
    try:
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                bad.clear()
                yield start, BadRecord(origin, start, f"unreadable CSV: {exc}"), last[0]
                start = last[0] + 1
                continue
            end = last[0]
            spanned = [bad.pop(n) for n in sorted(bad) if n <= end]
            if spanned:
                first = spanned[0]
                if row and any(v.strip() for v in row) or first.line != start:
                    yield start, BadRecord(origin, start, f"line {first.line}: {first.reason}"), end
                else:
                    yield first.line, first, end
                    if fieldnames is None:
                        return  # the header is unreadable: the columns are unknown
            elif not row:
                pass  # a blank line
            elif fieldnames is None:
                fieldnames = row
            elif len(row) != len(fieldnames):
                yield start, BadRecord(origin, start, "wrong number of columns"), end
            else:
                yield start, dict(zip(fieldnames, row)), end
            # Resuming, the header (line 1) is followed by line start_line.
            start = start_line if end == 1 and start_line > 2 else end + 1
    finally:
        source.close()


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
