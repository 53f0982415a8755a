"""Reading bibliography files into :class:`Entry` records (no database here).

Formats are told apart by content, not by file name (a Zotero ``.txt`` RIS export
is common): CSL-JSON starts with ``[`` or ``{``, RIS has ``TY  -`` lines, BibTeX
has ``@type{`` entries, and anything else must be a list of arXiv ids or DOIs,
one a line. Line numbers in reports are 1-based lines of the file.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from paperwire.model import parse_arxiv_id

_ARXIV_URL = re.compile(r"arxiv\.org/(?:abs|pdf|html)/([a-z\-]+(?:\.[A-Z]{2})?/\d{7}|\d{4}\.\d{4,5})(?:v\d+)?", re.I)
_ARXIV_TEXT = re.compile(r"\barxiv\s*[:\s]\s*([a-z\-]+(?:\.[A-Z]{2})?/\d{7}|\d{4}\.\d{4,5})(?:v\d+)?", re.I)
_ARXIV_DOI = re.compile(r"^10\.48550/arxiv\.(.+)$", re.I)
_DOI = re.compile(r"\b(10\.\d{4,9}/[^\s\"<>{}]+)", re.I)
_DOI_PREFIX = re.compile(r"^(?:https?://(?:dx\.)?doi\.org/|doi:\s*)", re.I)
_BIB_ENTRY = re.compile(r"^\s*@\s*[A-Za-z]+\s*[{(]", re.M)
_RIS_TAG = re.compile(r"^([A-Z][A-Z0-9])  -(?: (.*))?$")
_LATEX_SPECIAL = re.compile(r"\\([_%&#$])")
_LATEX_CMD = re.compile(r"\\(?:[A-Za-z]+\*?|.)\s*")


@dataclass
class Entry:
    """One bibliography entry, reduced to what matching and the library need."""

    line: int
    key: str | None = None
    title: str = ""
    arxiv_id: str | None = None
    doi: str | None = None
    tags: list[str] = field(default_factory=list)
    note: str = ""

    @property
    def label(self) -> str:
        return f"{self.key} (line {self.line})" if self.key else f"line {self.line}"


@dataclass
class Malformed:
    """An entry that could not be read; it is skipped and reported."""

    line: int
    message: str
    key: str | None = None


def clean_doi(raw: str | None) -> str | None:
    """A bare DOI (``10.x/y``) from a DOI, a doi.org URL or ``doi:...``; None if none."""
    if not raw:
        return None
    s = _DOI_PREFIX.sub("", raw.strip())
    m = _DOI.search(s)
    return m.group(1).rstrip(".,;") if m else None


def arxiv_from(*texts: str | None) -> str | None:
    """The first arXiv id in URLs, an arXiv DOI, or ``arXiv:...`` text."""
    for t in texts:
        if not t:
            continue
        m = _ARXIV_URL.search(t) or _ARXIV_TEXT.search(t)
        if m:
            parsed = parse_arxiv_id(m.group(1))
            if parsed:
                return parsed[0]
        d = clean_doi(t)
        if d:
            m = _ARXIV_DOI.match(d)
            if m and parse_arxiv_id(m.group(1)):
                return parse_arxiv_id(m.group(1))[0]
    return None


def delatex(value: str) -> str:
    """BibTeX field text without braces and TeX commands (enough for title matching)."""
    value = _LATEX_SPECIAL.sub(r"\1", value)  # \& \% \_ ... are the characters themselves
    return " ".join(_LATEX_CMD.sub("", value).replace("{", "").replace("}", "").split())


def _split_tags(raw: str | None) -> list[str]:
    if not raw:
        return []
    return [t.strip() for t in re.split(r"[,;]", raw) if t.strip()]


def detect_format(text: str) -> str:
    """``csl-json``, ``ris``, ``bibtex`` or ``ids``."""
    head = text.lstrip()[:1]
    if head in ("[", "{"):
        return "csl-json"
    if re.search(r"^TY  - ", text, re.M):
        return "ris"
    if _BIB_ENTRY.search(text):
        return "bibtex"
    return "ids"


def parse_text(text: str) -> tuple[str, list[Entry], list[Malformed]]:
    """Parse a whole file; ValueError when it is no bibliography at all."""
    fmt = detect_format(text)
    parser = {"csl-json": parse_csl_json, "ris": parse_ris, "bibtex": parse_bibtex, "ids": parse_id_list}[fmt]
    entries, bad = parser(text)
    return fmt, entries, bad


# ---------------------------------------------------------------- BibTeX

def parse_bibtex(text: str) -> tuple[list[Entry], list[Malformed]]:
    """BibTeX via bibtexparser v2; failed blocks are reported by their first line."""
    import logging

    import bibtexparser
    from bibtexparser.model import DuplicateBlockKeyBlock, ParsingFailedBlock

    # Failures are reported to the reader below; the parser's own log lines would be noise.
    logging.getLogger("bibtexparser").setLevel(logging.CRITICAL)
    lib = bibtexparser.parse_string(text)
    bad: list[Malformed] = []
    for block in lib.failed_blocks:
        if isinstance(block, DuplicateBlockKeyBlock):
            msg = f"duplicate key {block.key!r}"
        elif isinstance(block, ParsingFailedBlock):
            err = block.error
            msg = getattr(err, "abort_reason", None) or getattr(err, "message", None) or str(err or "")
            msg = " ".join(msg.split())[:300] or "cannot be parsed"
        else:
            msg = "cannot be parsed"
        key = getattr(block, "key", None)
        if key is None:
            m = re.match(r"\s*@\s*\w+\s*[{(]\s*([^,\s]+)\s*,", getattr(block, "raw", "") or "")
            key = m.group(1) if m else None
        bad.append(Malformed(line=(block.start_line or 0) + 1, message=msg, key=key))
    entries: list[Entry] = []
    for e in lib.entries:
        f = {k.lower(): (v.value if isinstance(v.value, str) else str(v.value)) for k, v in e.fields_dict.items()}
        line = (e.start_line or 0) + 1
        arxiv = None
        eprint = f.get("eprint")
        prefix = (f.get("archiveprefix") or f.get("eprinttype") or "arxiv").lower()
        if eprint and prefix == "arxiv":
            parsed = parse_arxiv_id(delatex(eprint))
            arxiv = parsed[0] if parsed else None
        if arxiv is None:
            arxiv = arxiv_from(f.get("url"), f.get("doi"), f.get("journal"), f.get("note"),
                               f.get("howpublished"), f.get("eprint"))
        title = delatex(f.get("title", ""))
        doi = clean_doi(f.get("doi"))
        if not (title or arxiv or doi):
            bad.append(Malformed(line=line, key=e.key, message="entry has no title, DOI or arXiv id"))
            continue
        entries.append(Entry(line=line, key=e.key, title=title, arxiv_id=arxiv, doi=doi,
                             tags=_split_tags(delatex(f.get("keywords", ""))),
                             note=f.get("annote", "").strip()))
    entries.sort(key=lambda x: x.line)
    bad.sort(key=lambda x: x.line)
    return entries, bad


# ---------------------------------------------------------------- RIS

def parse_ris(text: str) -> tuple[list[Entry], list[Malformed]]:
    """RIS (``TY  -`` ... ``ER  -``). Lines that are no tag continue the previous field
    (exporters wrap long abstracts); a record cut off by the next ``TY`` is malformed."""
    entries: list[Entry] = []
    bad: list[Malformed] = []
    rec: dict[str, list[str]] | None = None
    start = 0
    last_tag = None

    def finish(end_ok: bool) -> None:
        nonlocal rec
        if rec is None:
            return
        if not end_ok:
            bad.append(Malformed(line=start, key=_first(rec, "ID"), message="record has no ER line before the next TY"))
        else:
            e = _ris_entry(rec, start)
            if isinstance(e, Malformed):
                bad.append(e)
            else:
                entries.append(e)
        rec = None

    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip("\r\n").lstrip("\ufeff")
        m = _RIS_TAG.match(line.rstrip()) or _RIS_TAG.match(line)
        if not m:
            if rec is not None and last_tag and line.strip():
                rec[last_tag][-1] += " " + line.strip()
            elif line.strip() and rec is None:
                bad.append(Malformed(line=n, message=f"text outside a record: {line.strip()[:60]!r}"))
            continue
        tag, value = m.group(1), (m.group(2) or "").strip()
        if tag == "TY":
            if rec is not None:
                finish(False)
            rec, start, last_tag = {"TY": [value]}, n, "TY"
            continue
        if rec is None:
            bad.append(Malformed(line=n, message=f"{tag} line outside a record (no TY line before it)"))
            continue
        if tag == "ER":
            finish(True)
            last_tag = None
            continue
        rec.setdefault(tag, []).append(value)
        last_tag = tag
    if rec is not None:
        finish(False)
        bad[-1].message = "record has no ER line (the file ends inside it)"
    return entries, bad


def _first(rec: dict[str, list[str]], *tags: str) -> str:
    for t in tags:
        for v in rec.get(t, []):
            if v:
                return v
    return ""


def _ris_entry(rec: dict[str, list[str]], line: int) -> Entry | Malformed:
    title = " ".join(_first(rec, "TI", "T1", "CT", "BT").split())
    urls = rec.get("UR", []) + rec.get("L1", []) + rec.get("L2", []) + rec.get("LK", [])
    notes = rec.get("N1", [])
    doi = clean_doi(_first(rec, "DO", "M3")) or None
    arxiv = arxiv_from(*urls, doi, _first(rec, "AN"), _first(rec, "JO", "T2", "JF"), *notes)
    key = _first(rec, "ID") or None
    if not (title or arxiv or doi):
        return Malformed(line=line, key=key, message="record has no title, DOI or arXiv id")
    # Zotero puts "arXiv:2401.00001 [cs]" (the Extra field) in N1; that is no reader's note.
    note = "\n\n".join(n for n in notes if n and not _ARXIV_TEXT.fullmatch(n.split(" [")[0].strip()))
    tags = [t for kw in rec.get("KW", []) for t in _split_tags(kw)]
    return Entry(line=line, key=key, title=title, arxiv_id=arxiv, doi=doi, tags=tags, note=note)


# ---------------------------------------------------------------- CSL-JSON

def parse_csl_json(text: str) -> tuple[list[Entry], list[Malformed]]:
    """CSL-JSON (Zotero's "CSL JSON" export): a list of items, or ``{"items": [...]}``."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON (line {exc.lineno}: {exc.msg})") from None
    if isinstance(data, dict):
        data = data.get("items", [data] if "title" in data or "DOI" in data else None)
    if not isinstance(data, list):
        raise ValueError("JSON, but not CSL-JSON (expected a list of items)")
    # json.loads gives no line numbers; items are located by where their id occurs.
    lines = _item_lines(text)
    entries: list[Entry] = []
    bad: list[Malformed] = []
    for i, item in enumerate(data):
        line = lines[i] if i < len(lines) else 1
        if not isinstance(item, dict):
            bad.append(Malformed(line=line, message=f"item {i + 1} is not an object"))
            continue
        key = str(item.get("id") or item.get("citation-key") or "") or None
        title = item.get("title") if isinstance(item.get("title"), str) else ""
        doi = clean_doi(str(item.get("DOI") or ""))
        arxiv = arxiv_from(str(item.get("URL") or ""), doi, str(item.get("number") or ""),
                           str(item.get("note") or ""), str(item.get("container-title") or ""),
                           str(item.get("archive_location") or ""))
        if not (title or arxiv or doi):
            bad.append(Malformed(line=line, key=key, message=f"item {i + 1} has no title, DOI or arXiv id"))
            continue
        kw = item.get("keyword") or ""
        tags = _split_tags(kw) if isinstance(kw, str) else [str(k) for k in kw if isinstance(k, (str, int))]
        entries.append(Entry(line=line, key=key, title=" ".join(title.split()), arxiv_id=arxiv, doi=doi, tags=tags))
    return entries, bad


def _item_lines(text: str) -> list[int]:
    """Best-effort 1-based line of each top-level item's opening brace."""
    out, depth, line, in_str, esc = [], 0, 1, False, False
    for ch in text:
        if ch == "\n":
            line += 1
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
            continue
        if ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
            if depth == 2 and ch == "{":
                out.append(line)
        elif ch in "]}":
            depth -= 1
    return out


# ---------------------------------------------------------------- plain list of ids

def parse_id_list(text: str) -> tuple[list[Entry], list[Malformed]]:
    """One arXiv id or DOI a line (URLs of either are fine; ``#`` starts a comment).

    Most lines must be ids, else the file is refused: a stray text file is no library.
    """
    entries: list[Entry] = []
    bad: list[Malformed] = []
    for n, raw in enumerate(text.splitlines(), 1):
        s = raw.split("#", 1)[0].strip().strip(",;")
        if not s:
            continue
        parsed = parse_arxiv_id(s)
        arxiv = parsed[0] if parsed else arxiv_from(s)
        doi = None if arxiv else clean_doi(s)
        if doi and _ARXIV_DOI.match(doi):
            arxiv, doi = arxiv_from(doi), None
        if not (arxiv or doi):
            bad.append(Malformed(line=n, message=f"not an arXiv id or DOI: {s[:60]!r}"))
            continue
        entries.append(Entry(line=n, key=s[:100], arxiv_id=arxiv, doi=doi))
    if len(bad) > len(entries):
        raise ValueError("not a bibliography (BibTeX, RIS, CSL-JSON) nor a list of arXiv ids or DOIs"
                         + (f"; line {bad[0].line}: {bad[0].message}" if bad else ""))
    return entries, bad
