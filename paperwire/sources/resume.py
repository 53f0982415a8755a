"""Resuming an interrupted import where it stopped.

A rerun of a killed import used to re-read every record the killed run had already
written (each one merged, found unchanged, and thrown away) before it reached new
work: at ~1,000 unchanged records a second, a kill at 80k of 100k records meant over
a minute before the first new commit, so a rerun killed again soon made no progress.

Instead each batch commits, in its own transaction, how far into the input it got:
``meta.import_resume`` holds the identity of the input (every file's format, size,
modification time and first and last MiB) and the position (file, line) of the
batch's last record. A rerun of the same input skips the files before that
position unread and, in a line-based format, the lines up to it without parsing
them (the header of a CSV file is read again); an input that changed in any way
starts over. A finished import removes the
mark, so importing the same files again reads them all (and reports them unchanged).
Nothing is lost: everything before the mark was committed with it.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from paperwire.store.meta import delete_meta, get_meta, set_meta

META_KEY = "import_resume"
# Formats whose parsers take ``start_line`` and mark each record with its last line.
RESUMABLE = frozenset({"arxiv-jsonl", "beir", "arxiv-csv", "cs-abstracts"})
_SAMPLE = 2**20


def _data_file(path: Path) -> Path:
    path = Path(path)
    return path / "corpus.jsonl" if path.is_dir() else path  # a BEIR folder


def file_identity(path: Path, fmt: str) -> str:
    """A digest that changes whenever the file does (size, time, first and last MiB)."""
    f = _data_file(path)
    st = os.stat(f)
    h = hashlib.sha1(f"{fmt}\0{f.resolve()}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    with open(f, "rb") as fh:
        h.update(fh.read(_SAMPLE))
        if st.st_size > 2 * _SAMPLE:
            fh.seek(st.st_size - _SAMPLE)
            h.update(fh.read(_SAMPLE))
    return h.hexdigest()


def plan_key(plan: list[tuple[Path, str]]) -> str:
    """The identity of a whole import: its files, in order, with their formats."""
    return hashlib.sha1("\n".join(file_identity(p, name) for p, name in plan).encode()).hexdigest()


@dataclass(frozen=True)
class ResumePoint:
    """Everything up to line ``line`` of file number ``file`` of the input is committed
    (``line`` 0: nothing of that file is known to be)."""

    file: int
    line: int


def load(conn, key: str) -> ResumePoint | None:
    """The point a killed import of the input ``key`` reached, if it is this input."""
    raw = get_meta(conn, META_KEY)
    if not raw:
        return None
    try:
        d = json.loads(raw)
        if d.get("plan") != key:
            return None
        return ResumePoint(int(d["file"]), int(d["line"]))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None  # an unreadable mark only costs a full re-read


def save(conn, key: str, file: int, line: int) -> None:
    """Mark how far the import got; call inside the transaction of the batch it covers."""
    set_meta(conn, META_KEY, json.dumps({"plan": key, "file": file, "line": line}))


def clear(conn) -> None:
    """Drop the mark (the import finished)."""
    delete_meta(conn, META_KEY)


def start_lines(plan: list[tuple[Path, str]], point: ResumePoint | None) -> list[int | None]:
    """Per file of ``plan``: None to skip it (all committed), else the first line to read."""
    if point is None or not 0 <= point.file < len(plan):
        return [1] * len(plan)
    out: list[int | None] = []
    for i, (_, name) in enumerate(plan):
        if i < point.file:
            out.append(None)
        elif i == point.file and name in RESUMABLE:
            out.append(point.line + 1)
        else:
            out.append(1)
    return out


def describe(plan: list[tuple[Path, str]], starts: list[int | None]) -> str | None:
    """What a resumed import skipped, for its report (None: nothing)."""
    done = [str(p) for (p, _), s in zip(plan, starts) if s is None]
    part = [(str(p), s) for (p, _), s in zip(plan, starts) if s and s > 1]
    bits = []
    if done:
        bits.append(f"{len(done)} file(s) already imported" if len(done) > 1 else f"{done[0]} already imported")
    if part:
        bits.append(f"lines 1-{part[0][1] - 1:,} of {part[0][0]} already imported")
    if not bits:
        return None
    return "resumed an interrupted import: " + "; ".join(bits)
