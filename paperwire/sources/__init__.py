"""Input formats: one module per format, and detection from content.

Fetching (HTTP, OAI-PMH) lives apart from parsing: every parser here reads a
local file and yields :class:`~paperwire.model.PaperRecord` or
:class:`~paperwire.ingest.BadRecord` items for :func:`paperwire.ingest.import_records`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

from paperwire.ingest import BadRecord
from paperwire.model import PaperRecord
from paperwire.sources import arxiv_snapshot, beir, cs_abstracts, hf_daily, listing, reader, resume
from paperwire.sources.base import UnreadableFile, sniff
from paperwire.sources.base import open_lines as reader_lines

Parser = Callable[[Path], Iterable[PaperRecord | BadRecord]]

IMPORT_CACHE_KIB = 256 * 1024
# Below this much input, dropping and rebuilding indexes costs more than it saves.
BULK_MIN_BYTES = 16 * 2**20

FORMATS: dict[str, tuple[Parser, str]] = {
    "arxiv-jsonl": (arxiv_snapshot.parse_jsonl, "arXiv bulk snapshot, JSON lines (Kaggle schema)"),
    "arxiv-csv": (arxiv_snapshot.parse_csv, "arXiv bulk snapshot schema as CSV"),
    "listing": (listing.parse, "saved listing page: title line, abstract line"),
    "beir": (beir.parse, "BEIR corpus.jsonl (_id, title, text), or a BEIR folder"),
    "hf-daily": (hf_daily.parse, "Hugging Face /api/daily_papers JSON"),
    "cs-abstracts": (cs_abstracts.parse, "CSV of titles, summaries, terms"),
}


def register_format(name: str, parser: Parser, description: str) -> None:
    """Add a format (used by modules such as the OAI-PMH reader)."""
    FORMATS[name] = (parser, description)


def detect_format(path: Path) -> str:
    """Name of the format of ``path``, judged from its content.

    Raises :class:`UnreadableFile` with a message for a person when no
    format fits.
    """
    path = Path(path)
    if path.is_dir():
        if (path / "corpus.jsonl").exists():
            return "beir"
        raise UnreadableFile(f"{path}: a folder without corpus.jsonl (import its files instead)")
    if not path.exists():
        raise UnreadableFile(f"{path}: no such file")
    head = sniff(path)
    stripped = head.lstrip("\ufeff \t\r\n")
    if not stripped:
        raise UnreadableFile(f"{path}: empty file")
    first_line = stripped.splitlines()[0]
    if stripped[0] == "[":
        if hf_daily.looks_like_hf(stripped[:20000]):
            return "hf-daily"
        raise UnreadableFile(f"{path}: a JSON array, but not of daily-papers entries")
    if stripped[0] == "{":
        return _detect_json_lines(path, stripped)
    if stripped[0] == "<":
        if "OAI-PMH" in stripped[:2000] and "oai-pmh" in FORMATS:
            return "oai-pmh"
        raise UnreadableFile(f"{path}: XML/HTML, not a format paperwire knows (see --format)")
    header = {h.strip().strip('"').lower() for h in first_line.split(",")}
    if {"id", "title", "abstract"} <= header and ({"versions", "authors_parsed", "update_date"} & header):
        return "arxiv-csv"
    if {"titles", "summaries"} <= header:
        return "cs-abstracts"
    if listing.looks_like_listing(stripped):
        return "listing"
    raise UnreadableFile(f"{path}: cannot tell the format from its content; name one with --format")


# JSON lines looked at to tell a format: a first line may be broken (or binary) and
# skipped at import; the format is that of the first line that is a JSON object.
SNIFF_JSON_LINES = 20


def _json_format(obj) -> str | None:
    if not isinstance(obj, dict):
        return None
    if "_id" in obj and ("text" in obj or "title" in obj):
        return "beir"
    if "paper" in obj:
        return "hf-daily"
    if "id" in obj and "title" in obj and ("abstract" in obj or "versions" in obj):
        return "arxiv-jsonl"
    return None


def _detect_json_lines(path: Path, head: str) -> str:
    """The format of a file starting with ``{``: JSON lines of some known kind, or a
    JSON document (HF daily papers); a file whose lines are not JSON names the line."""
    parsed_any = False
    first_error: tuple[int, str] | None = None
    seen = 0
    with reader_lines(path) as lines:
        for lineno, line in lines:
            if isinstance(line, str) and not line.strip():
                continue
            seen += 1
            if seen > SNIFF_JSON_LINES:
                break
            if not isinstance(line, str):
                continue  # an unreadable line: skipped at import, with its number
            try:
                obj = json.loads(line)
            except (ValueError, RecursionError) as exc:
                if first_error is None:
                    first_error = (lineno, getattr(exc, "msg", None) or "nested too deeply")
                continue
            name = _json_format(obj)
            if name is not None:
                return name
            parsed_any = True
    if hf_daily.looks_like_hf(head[:20000]):
        return "hf-daily"
    if not parsed_any and first_error is not None:
        try:  # one JSON document over several lines is JSON (of some other kind)
            json.JSONDecoder().raw_decode(head)
        except json.JSONDecodeError as exc:
            if exc.pos < len(head.rstrip()) - 1 or len(head) < 60_000:  # not just the sample's end
                lineno, msg = first_error
                raise UnreadableFile(f"{path}:{lineno}: invalid JSON: {msg}") from None
    raise UnreadableFile(f"{path}: JSON, but not a format paperwire knows (see --format)")


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files to import: folders expand to their files, except BEIR folders."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir() and not (p / "corpus.jsonl").exists():
            out.extend(sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith(".")))
        else:
            out.append(p)
    return out


def parse_path(path: Path, fmt: str = "auto") -> Iterator[PaperRecord | BadRecord]:
    """Records of one file in the given (or detected) format."""
    name = detect_format(path) if fmt == "auto" else fmt
    if name not in FORMATS:
        raise UnreadableFile(f"unknown format {name!r}; known: {', '.join(sorted(FORMATS))}")
    parser, _ = FORMATS[name]
    return iter(parser(Path(path)))


def file_records(index: int, path: Path, name: str, options: dict, start: int | None = 1
                 ) -> Iterator[PaperRecord | BadRecord]:
    """Records of file number ``index`` of an import, each marked with it; ``start``: the
    first line to read (None: none, the file was imported already; see :mod:`.resume`)."""
    if start is None:
        return
    kw = dict(options.get(name, {}))
    if start > 1:
        kw["start_line"] = start
    for item in FORMATS[name][0](Path(path), **kw):
        if isinstance(item, PaperRecord):
            item._file = index
        yield item


def parser_options(*, year: int | None = None, plan: Sequence[tuple[Path, str]] = ()) -> dict[str, dict]:
    """Keyword options per format name, for the parsers that take any.

    Listing pages without a date line take the latest day of the dated pages in
    ``plan`` (see :mod:`paperwire.sources.listing`).
    """
    options: dict[str, dict] = {}
    if year is not None:
        options.setdefault("listing", {})["year"] = year
    days = [d for p, name in plan if name == "listing" for d in [listing.first_page_day(p, year=year)] if d]
    if days:
        options.setdefault("listing", {})["undated"] = max(days)
    return options


def import_files(
    conn,
    paths: Iterable[str | Path],
    *,
    fmt: str = "auto",
    strict: bool = False,
    progress: bool = True,
    batch_size: int = 2000,
    track_changes: bool = False,
    parallel: bool | None = None,
    bulk: bool | None = None,
    year: int | None = None,
):
    """Import files into the store and return one :class:`~paperwire.ingest.ImportReport`.

    Every file's format is settled before anything is written, so an unreadable
    file fails the import up front. With ``strict`` the whole import is one
    transaction: the first bad record aborts it and nothing is written.
    ``parallel`` parses in a second process (default: for inputs of 16 MiB or more).
    ``bulk`` loads an empty store with its secondary indexes built at the end
    (default: for inputs of 16 MiB or more; a store with papers is never bulk-loaded).
    ``year`` is the year of listing pages' dates ("Mar 11"); by default it comes
    from each file's time (see :mod:`paperwire.sources.listing`).
    """
    from paperwire.ingest import import_records, progress_bar
    from paperwire.store.db import page_cache, temp_files, transaction

    files = expand_paths(paths)
    plan = [(p, detect_format(p) if fmt == "auto" else fmt) for p in files]
    for p, name in plan:
        if name not in FORMATS:
            raise UnreadableFile(f"unknown format {name!r}; known: {', '.join(sorted(FORMATS))}")
        if not p.exists():
            raise UnreadableFile(f"{p}: no such file")

    per_format = parser_options(year=year, plan=plan)
    # A rerun of a killed import skips what that one committed (not under strict, where a
    # kill leaves nothing); each batch records how far it got, in its own transaction.
    key = None if strict else resume.plan_key(plan)
    starts = resume.start_lines(plan, resume.load(conn, key) if key else None)

    def mark(c, last: PaperRecord) -> None:
        resume.save(c, key, last._file, last._line)

    def records() -> Iterator[PaperRecord | BadRecord]:
        for i, (p, name) in enumerate(plan):
            yield from file_records(i, p, name, per_format, starts[i])

    size = reader.input_size(plan)
    if parallel is None:
        parallel = size >= reader.PARALLEL_MIN_BYTES
    if bulk is None:
        bulk = size >= BULK_MIN_BYTES
    source = reader.parallel_records(plan, per_format, starts) if parallel else records()

    bar = progress_bar(desc="importing") if progress else None
    options = dict(batch_size=batch_size, on_progress=bar.update if bar is not None else None,
                   track_changes=track_changes, bulk=bulk)
    # Index B-trees of a million-paper store outgrow the default cache; a bigger but fixed
    # cache for the import keeps memory flat in the input size and cuts page misses.
    # Index builds at the end of a bulk load sort through files for the same reason.
    try:
        with page_cache(conn, IMPORT_CACHE_KIB), temp_files(conn):
            if strict:
                with transaction(conn):
                    return import_records(conn, source, strict=True, **options)
            report = import_records(conn, source, on_commit=mark, **options)
            with transaction(conn):
                resume.clear(conn)  # finished: the same files imported again are read in full
            report.resumed = resume.describe(plan, starts)
            return report
    finally:
        if bar is not None:
            bar.close()


from paperwire.sources import oai_pmh  # noqa: E402,F401  registers the "oai-pmh" format
