"""OAI-PMH 2.0 ``ListRecords`` responses with arXiv's ``arXiv`` and ``arXivRaw`` metadata.

A response is ``<OAI-PMH>`` with ``<ListRecords>`` holding ``<record>`` elements
(``<header>`` with ``identifier`` / ``datestamp`` / ``setSpec``, optionally
``status="deleted"``; ``<metadata>`` with one ``<arXiv>`` or ``<arXivRaw>``
element) and a ``<resumptionToken>`` (empty on the last page), or an
``<error code="...">`` such as ``noRecordsMatch`` or ``badResumptionToken``.

* ``arXiv``: ``id``, ``created``, ``updated``, ``authors/author/{keyname,forenames,suffix}``,
  ``title``, ``categories``, ``comments``, ``journal-ref``, ``doi``, ``license``,
  ``abstract``. No version numbers: the record carries dates only.
* ``arXivRaw``: the same text fields, ``authors`` as one string, ``submitter``, and one
  ``<version version="vN"><date>RFC 2822</date>...</version>`` per version: the newest
  version number lets a newer record update a stored paper and never the reverse.

Parsing is streaming (a whole-arXiv dump is gigabytes) and safe: defusedxml's
expat parser with DTDs forbidden, so an entity-expansion bomb or an external
entity is refused before anything is expanded. Fetching lives in
:mod:`paperwire.harvest`; this module only reads bytes.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from paperwire.ingest import BadRecord
from paperwire.model import FIELD_LIMITS, MAX_AUTHORS, PaperRecord, RecordError, parse_arxiv_id
from paperwire.sources.base import RECORD_ERRORS, delatex, iso_date

SOURCE = "oai-pmh"  # the name paperwire.model.SOURCE_RANK knows
FORMATS = ("arXiv", "arXivRaw")
_CHUNK = 1 << 20
# Longest text kept of one element: above every field limit of PaperRecord.
MAX_TEXT_CHARS = 2 * FIELD_LIMITS["abstract"]


class OaiXMLError(ValueError):
    """A response or file that is not well-formed, or was refused as unsafe XML."""

    def __init__(self, origin: str, line: int, reason: str):
        super().__init__(f"{origin}:{line}: {reason}")
        self.origin, self.line, self.reason = origin, line, reason


@dataclass(frozen=True)
class Deleted:
    """A record the repository reports as deleted (``<header status="deleted">``)."""

    identifier: str
    arxiv_id: str | None
    datestamp: str | None
    line: int


@dataclass
class OaiPage:
    """One parsed ListRecords response."""

    origin: str
    items: list[PaperRecord | BadRecord] = field(default_factory=list)
    deleted: list[Deleted] = field(default_factory=list)
    token: str | None = None  # None on the last page
    token_attrs: dict = field(default_factory=dict)
    error_code: str | None = None  # OAI-PMH error, e.g. noRecordsMatch, badResumptionToken
    error_message: str = ""
    max_datestamp: str | None = None  # YYYY-MM-DD, over all records including deleted ones
    response_date: str | None = None

    @property
    def records_seen(self) -> int:
        return len(self.items) + len(self.deleted)


class _Collector:
    """Parser target: turns start/end/data events into one dict per ``<record>``.

    Only leaf text and a few attributes are kept, so memory stays flat however
    long the document is.
    """

    def __init__(self) -> None:
        self.stack: list[str] = []
        self.buf: list[str] = []
        self.buf_chars = 0  # of the element's text, also past MAX_TEXT_CHARS (not kept)
        self.rec: dict | None = None
        self.author: dict | None = None
        self.version: str | None = None
        self.done: list[dict] = []
        self.token: str | None = None
        self.token_attrs: dict = {}
        self.saw_token = False
        self.errors: list[tuple[str, str]] = []
        self.error_code: str | None = None
        self.response_date: str | None = None
        self.root: str | None = None
        self.line = lambda: 0

    def start(self, tag: str, attrs: dict) -> None:
        name = tag.rpartition("}")[2]
        if self.root is None:
            self.root = name
        parent = self.stack[-1] if self.stack else None
        self.stack.append(name)
        self.buf = []
        self.buf_chars = 0
        rec = self.rec
        if name == "record":
            self.rec = {"line": self.line(), "sets": [], "authors": [], "versions": [], "fields": {},
                        "deleted": False, "format": None, "identifier": None, "datestamp": None}
        elif rec is not None:
            if name == "header":
                rec["deleted"] = attrs.get("status") == "deleted"
            elif parent == "metadata" and rec["format"] is None:
                rec["format"] = name
            elif name == "author" and parent == "authors":
                self.author = {}
            elif name == "version":
                self.version = attrs.get("version")
        elif name == "resumptionToken":
            self.saw_token = True
            self.token_attrs = {k.rpartition("}")[2]: v for k, v in attrs.items()}
        elif name == "error":
            self.error_code = attrs.get("code", "unknown")

    def data(self, text: str) -> None:
        # A gigabyte <title> in a small .gz: keep only what a valid field could hold.
        if self.buf_chars <= MAX_TEXT_CHARS:
            self.buf.append(text)
        self.buf_chars += len(text)

    def end(self, tag: str) -> None:
        name = self.stack.pop()
        text = "".join(self.buf)
        chars, self.buf, self.buf_chars = self.buf_chars, [], 0
        too_long = chars > MAX_TEXT_CHARS
        parent = self.stack[-1] if self.stack else None
        rec = self.rec
        if rec is not None and (too_long or len(rec["authors"]) > MAX_AUTHORS or len(rec["versions"]) > 1000):
            # The record is skipped (see convert); keep no more of it.
            if too_long and not rec.get("too_long"):
                rec["too_long"] = f"<{name}> too long ({chars:,} characters; the limit is {MAX_TEXT_CHARS:,})"
            elif not rec.get("too_long"):
                rec["too_long"] = "too many <author> or <version> elements"
            if name != "record":
                return
            text = ""
        if rec is not None:
            if name == "record":
                self.done.append(rec)
                self.rec = None
            elif parent == "header":
                if name == "identifier":
                    rec["identifier"] = text.strip()
                elif name == "datestamp":
                    rec["datestamp"] = text.strip()
                elif name == "setSpec":
                    rec["sets"].append(text.strip())
            elif parent == "author" and self.author is not None:
                self.author[name] = text.strip()
            elif name == "author" and self.author is not None:
                rec["authors"].append(self.author)
                self.author = None
            elif name == "date" and parent == "version":
                rec["versions"].append((self.version, text.strip()))
            elif parent is not None and parent == rec["format"]:
                rec["fields"][name] = text
        elif name == "resumptionToken":
            self.token = text.strip() or None
        elif name == "error":
            self.errors.append((self.error_code or "unknown", " ".join(text.split())))
        elif name == "responseDate":
            self.response_date = text.strip()

    def close(self) -> None:
        return None


def _parser(origin: str) -> tuple[DefusedXMLParser, _Collector]:
    target = _Collector()
    # forbid_dtd: OAI-PMH responses never need a DTD; refusing it refuses every
    # entity trick (billion laughs, quadratic blowup, external entities) up front.
    parser = DefusedXMLParser(target=target, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    expat = getattr(parser, "parser", None) or getattr(parser, "_parser", None)
    target.line = (lambda: expat.CurrentLineNumber) if expat is not None else (lambda: 0)
    return parser, target


def _feed(parser: DefusedXMLParser, target: _Collector, origin: str, chunk: bytes | None) -> None:
    """Feed one chunk (None closes the document); translate errors into :class:`OaiXMLError`."""
    try:
        if chunk is None:
            parser.close()
        else:
            parser.feed(chunk)
    except ParseError as exc:
        line = exc.position[0] if getattr(exc, "position", None) else target.line()
        raise OaiXMLError(origin, line, f"malformed XML: {exc}") from None
    except DefusedXmlException as exc:
        raise OaiXMLError(origin, target.line(),
                          f"refused unsafe XML ({type(exc).__name__}: DTDs and entity declarations "
                          "are not allowed; an entity-expansion bomb looks like this)") from None


def parse_page(data: bytes, origin: str = "<response>") -> OaiPage:
    """Parse a complete ListRecords response.

    Raises :class:`OaiXMLError` for malformed or unsafe XML, or a document that is
    not an OAI-PMH response; OAI-PMH errors (``noRecordsMatch``, ...) are returned
    in ``error_code``.
    """
    parser, target = _parser(origin)
    for i in range(0, len(data), _CHUNK):
        _feed(parser, target, origin, data[i : i + _CHUNK])
    _feed(parser, target, origin, None)
    if target.root != "OAI-PMH":
        raise OaiXMLError(origin, 1, f"not an OAI-PMH response (root element <{target.root}>)")
    page = OaiPage(origin=origin, token=target.token, token_attrs=target.token_attrs,
                   response_date=target.response_date)
    if target.errors:
        page.error_code, page.error_message = target.errors[0]
    for raw in target.done:
        item = convert(raw, origin)
        if isinstance(item, Deleted):
            page.deleted.append(item)
        else:
            page.items.append(item)
        # The cursor advances by datestamp, bad records included: they were seen.
        stamp = (raw.get("datestamp") or "")[:10] or None
        if stamp and (page.max_datestamp is None or stamp > page.max_datestamp):
            page.max_datestamp = stamp
    return page


def iter_items(chunks: Iterable[bytes], origin: str) -> Iterator[PaperRecord | BadRecord | Deleted]:
    """Stream the records of a (possibly huge) OAI-PMH document given as byte chunks.

    Malformed or unsafe XML ends the stream with a :class:`BadRecord` naming the line.
    """
    parser, target = _parser(origin)
    try:
        for chunk in chunks:
            _feed(parser, target, origin, chunk)
            yield from _drain(target, origin)
        _feed(parser, target, origin, None)
    except OaiXMLError as exc:
        yield from _drain(target, origin)
        yield BadRecord(origin, exc.line, exc.reason)
        return
    except (EOFError, OSError, zlib.error) as exc:  # a truncated or corrupt .gz
        yield from _drain(target, origin)
        yield BadRecord(origin, target.line(), f"unreadable compressed data ({exc})")
        return
    yield from _drain(target, origin)
    for code, message in target.errors:
        if code != "noRecordsMatch":
            yield BadRecord(origin, 1, f"OAI-PMH error {code}: {message}")


def _drain(target: _Collector, origin: str) -> Iterator[PaperRecord | BadRecord | Deleted]:
    done, target.done = target.done, []
    for raw in done:
        yield convert(raw, origin)


def parse(path: Path) -> Iterator[PaperRecord | BadRecord]:
    """Records of a saved ListRecords response (``paperwire import dump.xml``).

    Deleted records are reported as skipped: a file import cannot unpublish papers.
    """
    import gzip

    path = Path(path)

    def chunks() -> Iterator[bytes]:
        with open(path, "rb") as fh:
            gz = fh.read(2) == b"\x1f\x8b"
        opener = gzip.open if gz else open
        with opener(path, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                yield chunk

    for item in iter_items(chunks(), str(path)):
        if isinstance(item, Deleted):
            yield BadRecord(str(path), item.line, f"{item.identifier}: deleted upstream (status=\"deleted\"), not imported")
        else:
            yield item


# --- one record -----------------------------------------------------------------------------

_IDENT = re.compile(r"^oai:arXiv\.org:(.+)$", re.I)


def arxiv_id_from_identifier(identifier: str | None) -> str | None:
    """``oai:arXiv.org:2101.00001`` -> ``2101.00001`` (None if not an arXiv identifier)."""
    if not identifier:
        return None
    m = _IDENT.match(identifier.strip())
    parsed = parse_arxiv_id(m.group(1) if m else identifier)
    return parsed[0] if parsed else None


def convert(raw: dict, origin: str) -> PaperRecord | BadRecord | Deleted:
    """One collected ``<record>`` to a record, a skip reason, or a deletion."""
    ident = raw.get("identifier") or "(no identifier)"
    line = raw["line"]
    stamp = (raw.get("datestamp") or "")[:10] or None
    if raw["deleted"]:
        return Deleted(ident, arxiv_id_from_identifier(ident), stamp, line)
    if raw.get("too_long"):
        return BadRecord(origin, line, f"{ident}: {raw['too_long']}")
    fmt = raw["format"]
    try:
        if fmt is None:
            raise RecordError("no <metadata>")
        if fmt not in FORMATS:
            raise RecordError(f"unsupported metadata format <{fmt}> (use arXiv or arXivRaw)")
        rec = _from_arxiv(raw) if fmt == "arXiv" else _from_arxiv_raw(raw)
    except RECORD_ERRORS as exc:
        return BadRecord(origin, line, f"{ident}: {exc}")
    return rec


def _text(fields: dict, name: str) -> str | None:
    v = fields.get(name)
    if v is None:
        return None
    v = " ".join(v.split())
    return v or None


def _common(raw: dict) -> dict:
    f = raw["fields"]
    raw_id = _text(f, "id") or arxiv_id_from_identifier(raw.get("identifier"))
    if not raw_id:
        raise RecordError("missing id")
    if not _text(f, "title"):
        raise RecordError("missing title")
    return dict(
        title=f["title"],
        abstract=f.get("abstract") or "",
        source=SOURCE,
        arxiv_id=raw_id,
        categories=(f.get("categories") or "").split(),
        doi=_text(f, "doi"),
        journal_ref=_text(f, "journal-ref"),
        comments=_text(f, "comments"),
        license=_text(f, "license"),
    )


def _from_arxiv(raw: dict) -> PaperRecord:
    base = _common(raw)
    f = raw["fields"]
    authors = []
    for a in raw["authors"]:
        # arXiv splits hyphenated initials ("C. -P."); join them back as the snapshot importer does.
        first = re.sub(r"\. -(?=\w)", ".-", a.get("forenames") or "")
        name = " ".join(p for p in (first, a.get("keyname"), a.get("suffix")) if p)
        if name:
            authors.append(delatex(name))
    created = iso_date(_text(f, "created"))
    updated = iso_date(_text(f, "updated")) or created
    return PaperRecord(**base, authors=authors, published=created, updated=updated)


def _from_arxiv_raw(raw: dict) -> PaperRecord:
    base = _common(raw)
    latest, dates = None, []
    for label, date in raw["versions"]:
        num = (label or "").lstrip("v")
        if num.isdigit() and (latest is None or int(num) > latest[0]):
            latest = (int(num), date)
        if date:
            dates.append((int(num) if num.isdigit() else 0, iso_date(date)))
    dates.sort()
    authors = [delatex(a) for a in split_authors(raw["fields"].get("authors") or "")]
    return PaperRecord(
        **base,
        version=latest[0] if latest else None,
        authors=authors,
        published=dates[0][1] if dates else None,
        updated=dates[-1][1] if dates else None,
    )


_PARENS = re.compile(r"\([^()]*\)")


def split_authors(raw: str) -> list[str]:
    """arXiv's free-text author line to names: affiliations in parentheses dropped,
    split on commas and ``and``."""
    s = " ".join(raw.split())
    prev = None
    while prev != s:  # nested parentheses, innermost first
        prev, s = s, _PARENS.sub("", s)
    parts: list[str] = []
    for chunk in s.split(","):
        parts.extend(p.strip() for p in re.split(r"\s+and\s+|\s*&\s*", chunk) if p.strip())
    return parts


def looks_like_oai(head: str) -> bool:
    return "OAI-PMH" in head[:4000]


from paperwire.sources import register_format  # noqa: E402  (the package imports this module last)

register_format("oai-pmh", parse, "OAI-PMH ListRecords XML (arXiv / arXivRaw metadata)")
