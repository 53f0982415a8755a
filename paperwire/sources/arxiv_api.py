"""arXiv API responses (``/api/query?id_list=...``): an Atom feed, one ``<entry>`` per paper.

An entry has ``<id>http://arxiv.org/abs/2101.00001v2</id>`` (the version is in the
id), ``published`` / ``updated``, ``title``, ``summary``, ``author/name``,
``category/@term`` and ``arxiv:primary_category/@term``, and optionally
``arxiv:doi``, ``arxiv:journal_ref``, ``arxiv:comment``. An id the API cannot
read comes back as an entry whose id is ``http://arxiv.org/api/errors#...`` and
whose title is ``Error``. Parsed with defusedxml (no DTDs, no entities).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from paperwire.ingest import BadRecord
from paperwire.model import PaperRecord, RecordError, parse_arxiv_id
from paperwire.sources.base import iso_date

SOURCE = "arxiv-api"
ATOM = "{http://www.w3.org/2005/Atom}"
ARXIV = "{http://arxiv.org/schemas/atom}"


class ApiXMLError(ValueError):
    """The API response is not well-formed or was refused as unsafe XML."""


@dataclass
class ApiFeed:
    """Parsed entries: records by versionless arXiv id, plus errors the API reported."""

    records: dict[str, PaperRecord] = field(default_factory=dict)
    bad: list[BadRecord] = field(default_factory=list)
    api_errors: list[str] = field(default_factory=list)  # e.g. "incorrect id format for 1234"


def parse_feed(data: bytes, origin: str = "<arXiv API>") -> ApiFeed:
    """Parse an Atom response from the arXiv API."""
    try:
        root = fromstring(data, forbid_dtd=True)
    except ParseError as exc:
        raise ApiXMLError(f"{origin}: malformed XML: {exc}") from None
    except DefusedXmlException as exc:
        raise ApiXMLError(f"{origin}: refused unsafe XML ({type(exc).__name__})") from None
    if root.tag != f"{ATOM}feed":
        raise ApiXMLError(f"{origin}: not an Atom feed (root <{root.tag}>)")
    feed = ApiFeed()
    for n, entry in enumerate(root.iter(f"{ATOM}entry"), 1):
        ident = (entry.findtext(f"{ATOM}id") or "").strip()
        title = entry.findtext(f"{ATOM}title") or ""
        if "/api/errors" in ident or title.strip() == "Error":
            feed.api_errors.append(" ".join((entry.findtext(f"{ATOM}summary") or ident).split()))
            continue
        try:
            rec = record_from_entry(entry)
        except (RecordError, ValueError) as exc:
            feed.bad.append(BadRecord(origin, n, f"entry {n} ({ident or 'no id'}): {exc}"))
            continue
        feed.records[rec.arxiv_id] = rec
    return feed


def record_from_entry(entry) -> PaperRecord:
    """One Atom ``<entry>`` element to a :class:`PaperRecord`."""
    ident = (entry.findtext(f"{ATOM}id") or "").strip()
    raw_id = ident.rsplit("/abs/", 1)[-1] if "/abs/" in ident else ident
    parsed = parse_arxiv_id(raw_id)
    if not raw_id or parsed is None:
        raise RecordError(f"not an arXiv id: {raw_id!r}")
    title = entry.findtext(f"{ATOM}title") or ""
    if not title.strip():
        raise RecordError("missing title")
    primary = entry.find(f"{ARXIV}primary_category")
    cats = [c.get("term") for c in entry.findall(f"{ATOM}category") if c.get("term")]
    if primary is not None and primary.get("term"):
        p = primary.get("term")
        cats = [p] + [c for c in cats if c != p]

    def text(tag: str) -> str | None:
        v = entry.findtext(tag)
        return " ".join(v.split()) or None if v else None

    return PaperRecord(
        title=title,
        abstract=entry.findtext(f"{ATOM}summary") or "",
        source=SOURCE,
        arxiv_id=raw_id,
        authors=[a.findtext(f"{ATOM}name") or "" for a in entry.findall(f"{ATOM}author")],
        categories=cats,
        published=iso_date(text(f"{ATOM}published")),
        updated=iso_date(text(f"{ATOM}updated")),
        doi=text(f"{ARXIV}doi"),
        journal_ref=text(f"{ARXIV}journal_ref"),
        comments=text(f"{ARXIV}comment"),
    )
