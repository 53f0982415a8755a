"""The paper record every importer produces, and the normalisation rules
that decide identity (arXiv ids, normalised titles) and change (hashes)."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from urllib.parse import urlsplit

# New-style (0704.0001, 2301.12345) and old-style (hep-th/9901001, math.GT/0309136) ids,
# optionally with a version suffix.
_NEW_ID = re.compile(r"^(\d{4})\.(\d{4,5})(?:v(\d+))?$")
_OLD_ID = re.compile(r"^([a-z\-]+(?:\.[A-Z]{2})?)/(\d{7})(?:v(\d+))?$")
# What a spreadsheet or a link may have made of a new-style id (repaired below).
_NUMERIC_ID = re.compile(r"^(\d{3,4})\.(\d{1,5})(?:v(\d+))?$")
_ID_PREFIX = re.compile(r"^(?:arxiv:|https?://arxiv\.org/(?:abs|pdf)/)", re.I)
_WS = re.compile(r"\s+")


class RecordError(ValueError):
    """A record that cannot become a paper; the message says why."""


# Longest value each text field may have, in characters. Far above anything real (arXiv's
# longest titles are ~300 characters, abstracts ~2,000), low enough that hostile input
# (a gigabyte title) is a skipped record instead of a store that SQLite refuses or a page
# nobody can load.
FIELD_LIMITS = {
    "title": 2_000, "abstract": 65_536, "external_id": 512, "doi": 1_000, "journal_ref": 2_000,
    "comments": 8_192, "license": 1_000, "submitted_by": 200, "code_url": 2_048, "project_url": 2_048,
    "published": 64, "updated": 64, "listed_at": 64,
}
MAX_AUTHORS = 20_000  # big-collaboration papers have ~5,000
MAX_AUTHOR_CHARS = 500
MAX_CATEGORIES = 100
MAX_CATEGORY_CHARS = 64
MAX_COUNT = 10**12  # upvotes, comments: SQLite integers stop at 2**63
MAX_VERSION = 100_000
_URL_SCHEMES = ("http", "https")


def too_long(what: str, size: int, limit: int) -> RecordError:
    """The error for an over-long value: ``title too long (N characters; the limit is M)``."""
    return RecordError(f"{what} too long ({size:,} characters; the limit is {limit:,})")


def _check_count(name: str, value, limit: int) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit):
        raise RecordError(f"{name.replace('_', ' ')} out of range: {str(value)[:40]!r}")


def safe_url(value) -> str | None:
    """``value`` if it is an absolute http(s) URL, else None.

    Links from imported records (code, project pages) become ``href``s: a ``javascript:``
    or ``data:`` URL there would run in readers' browsers, so only http(s) ones are kept.
    """
    if not isinstance(value, str):
        return None
    url = value.strip()
    if not url or len(url) > FIELD_LIMITS["code_url"] or any(c <= " " or c == "\x7f" for c in url):
        return None
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:  # e.g. an unbalanced IPv6 bracket
        return None
    if parts.scheme.lower() not in _URL_SCHEMES or not host:
        return None
    return url


def utcnow_iso() -> str:
    """Current UTC time as ``YYYY-MM-DDTHH:MM:SSZ``."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def collapse_ws(text: str | None) -> str:
    """Trim and collapse runs of whitespace (arXiv wraps titles at 80 columns)."""
    return " ".join(text.split()) if text else ""


_NON_ALNUM = re.compile(r"[^0-9a-z]+")


def normalize_title(title: str) -> str:
    """Lower-case, accent-free, punctuation-free title used for dedup without ids."""
    if not title.isascii():
        t = unicodedata.normalize("NFKD", title)
        title = "".join(c for c in t if not unicodedata.combining(c))
    return _NON_ALNUM.sub(" ", title.lower()).strip()


def parse_arxiv_id(raw: str | None) -> tuple[str, int | None] | None:
    """Split an arXiv id into (versionless id, version) or return None.

    Repairs ids that a spreadsheet turned into numbers: ``704.0006`` -> ``0704.0006``
    and ``1001.001`` (lost trailing zero) -> ``1001.0010``.
    """
    if raw is None:
        return None
    s = str(raw).strip()
    s = _ID_PREFIX.sub("", s)
    s = s.removesuffix(".pdf")
    m = _OLD_ID.match(s)
    if m:
        return f"{m.group(1)}/{m.group(2)}", int(m.group(3)) if m.group(3) else None
    m = _NUMERIC_ID.match(s)
    if not m:
        return None
    yymm, num, ver = m.group(1).zfill(4), m.group(2), m.group(3)
    month = int(yymm[2:])
    if not 1 <= month <= 12:
        return None
    # Before 2015 numbers had 4 digits, since then 5; a float export drops trailing zeros.
    width = 4 if int(yymm) < 1501 else 5
    if len(num) > width:
        return None
    num = num.ljust(width, "0")
    return f"{yymm}.{num}", int(ver) if ver else None


def title_id(title_norm: str) -> str:
    """Stable id for a paper without any external id, from its normalised title."""
    return "pw-" + hashlib.sha1(title_norm.encode()).hexdigest()[:12]


def content_hash(title: str, abstract: str) -> str:
    """Hash of the text that embeddings and the lexical index are built from.

    Callers pass whitespace-collapsed text (PaperRecord guarantees it).
    """
    return hashlib.sha256(f"{title}\n{abstract}".encode()).hexdigest()


@dataclass
class PaperRecord:
    """One paper as an importer sees it. ``None`` means "this source does not say"."""

    title: str
    abstract: str = ""
    source: str = "unknown"
    arxiv_id: str | None = None
    version: int | None = None
    external_id: str | None = None  # ids kept as given (BEIR); never title-deduped
    authors: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    published: str | None = None  # ISO-8601 UTC, first version
    updated: str | None = None  # ISO-8601 UTC, latest version
    listed_at: str | None = None  # when a daily listing featured it (HF)
    doi: str | None = None
    journal_ref: str | None = None
    comments: str | None = None
    license: str | None = None
    code_url: str | None = None
    project_url: str | None = None
    upvotes: int | None = None
    submitted_by: str | None = None
    num_comments: int | None = None
    _title_norm: str = field(default="", init=False, repr=False, compare=False)
    # Values the writer derives from the record alone (hashes, JSON), computed once by
    # paperwire.ingest.prepare_record, possibly in the parser process; see there.
    _prepared: tuple | None = field(default=None, init=False, repr=False, compare=False)
    # Where the record came from in an import: file number and line (0: unknown); a killed
    # import resumes after the last committed one (paperwire.sources.resume).
    _file: int = field(default=0, init=False, repr=False, compare=False)
    _line: int = field(default=0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._check_sizes()
        self.title = collapse_ws(self.title)
        self.abstract = collapse_ws(self.abstract)
        self._title_norm = normalize_title(self.title)
        if not self.title:
            raise RecordError("missing title")
        self.code_url = safe_url(self.code_url)
        self.project_url = safe_url(self.project_url)
        if self.arxiv_id is not None:
            parsed = parse_arxiv_id(self.arxiv_id)
            if parsed is None:
                raise RecordError(f"not an arXiv id: {self.arxiv_id!r}")
            self.arxiv_id, v = parsed
            if self.version is None:
                self.version = v
                _check_count("version", v, MAX_VERSION)
        self.authors = [a for a in map(collapse_ws, self.authors) if a]
        self.categories = [c.strip() for c in self.categories if c and c.strip()]

    def _check_sizes(self) -> None:
        """Refuse values no real paper has (see :data:`FIELD_LIMITS`) before any work on them."""
        for name, limit in FIELD_LIMITS.items():
            value = getattr(self, name)
            if value is None or name in ("code_url", "project_url"):
                continue  # links are dropped, not refused: see safe_url
            if not isinstance(value, str):
                raise RecordError(f"{name} is not text")
            if len(value) > limit:
                # Titles and abstracts may carry line wrapping: measure them collapsed,
                # unless they are too long even for that to matter.
                if name not in ("title", "abstract") or len(value) > 4 * limit or len(collapse_ws(value)) > limit:
                    raise too_long(name.replace("_", " "), len(value), limit)
        for name, items, count_limit, item_limit in (("author", self.authors, MAX_AUTHORS, MAX_AUTHOR_CHARS),
                                                       ("category", self.categories, MAX_CATEGORIES, MAX_CATEGORY_CHARS)):
            if len(items) > count_limit:
                raise RecordError(f"too many {name}s ({len(items):,}; the limit is {count_limit:,})")
            for item in items:
                if not isinstance(item, str):
                    raise RecordError(f"{name} is not text")
                if len(item) > item_limit:
                    raise too_long(f"{name} name" if name == "author" else name, len(item), item_limit)
        for name, limit in (("upvotes", MAX_COUNT), ("num_comments", MAX_COUNT), ("version", MAX_VERSION)):
            _check_count(name, getattr(self, name), limit)

    @property
    def title_norm(self) -> str:
        return self._title_norm

    @property
    def id_kind(self) -> str:
        if self.arxiv_id:
            return "arxiv"
        return "external" if self.external_id else "title"

    @property
    def paper_id(self) -> str:
        """Our public id: the arXiv id, the given external id, or a title hash."""
        return self.arxiv_id or self.external_id or title_id(self.title_norm)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("_title_norm", None)
        d.pop("_prepared", None)
        d.pop("_file", None)
        d.pop("_line", None)
        return d


# Bibliographic fields: overwritten only by a source at least as authoritative as the
# one that set them, otherwise only filled in when empty. Without this, re-importing a
# listing page after an arXiv harvest would flip the abstract back and forth.
BIBLIO_FIELDS = (
    "title", "abstract", "version", "authors", "categories", "published", "updated",
    "doi", "journal_ref", "comments", "license",
)
# Community fields: the latest source that reports them wins (upvotes change daily).
COMMUNITY_FIELDS = ("listed_at", "code_url", "project_url", "upvotes", "submitted_by", "num_comments")
MERGE_FIELDS = BIBLIO_FIELDS + COMMUNITY_FIELDS

# How authoritative each source is for bibliographic fields (higher wins).
SOURCE_RANK = {
    "arxiv-snapshot": 3, "oai-pmh": 3, "arxiv-api": 3,
    "hf-daily": 2, "beir": 2,
    "listing": 1, "cs-abstracts": 1,
}


def source_rank(source: str) -> int:
    return SOURCE_RANK.get(source, 1)


# json.dumps(..., sort_keys=True, default=str) builds an encoder per call; the output
# must stay byte for byte the same, or every stored paper would look changed.
_HASH_JSON = json.JSONEncoder(sort_keys=True, default=str).encode


def record_hash(values: dict) -> str:
    """Hash over every stored field that an import can change: equal hash, no update."""
    payload = _HASH_JSON([values.get(f) for f in MERGE_FIELDS])
    return hashlib.sha1(payload.encode()).hexdigest()


def arxiv_links(arxiv_id: str | None) -> tuple[str | None, str | None]:
    """(abs URL, pdf URL) for an arXiv id."""
    if not arxiv_id:
        return None, None
    return f"https://arxiv.org/abs/{arxiv_id}", f"https://arxiv.org/pdf/{arxiv_id}"
