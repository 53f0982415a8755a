"""Parsing what people type into the search box.

Syntax (everything optional, any order)::

    graph neural networks "message passing" author:kipf cat:cs.LG year:2017
    after:2024-01-01 before:2024-07-01 year:2019-2021 -survey

* bare words: ranked with BM25 (any word may match; more and rarer matches rank higher);
* ``"quoted phrases"``: must appear, words adjacent and in order;
* ``-word``: excludes papers containing the word;
* ``author:NAME`` (``author:"geoffrey hinton"``), ``cat:cs.CL`` (or an archive: ``cat:cs``);
* ``year:2023``, ``year:2019-2021``, ``after:DATE``, ``before:DATE`` (``YYYY``, ``YYYY-MM`` or
  ``YYYY-MM-DD``; ``after`` is inclusive, ``before`` exclusive).

Unknown ``name:value`` pairs are read as plain words. User text never reaches FTS5
unquoted: every token is emitted as a quoted FTS5 string, so no input can cause an
FTS5 syntax error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

from paperwire.model import normalize_title

MAX_QUERY_CHARS = 250  # as Hugging Face's paper search

# Matches what FTS5's unicode61 tokenizer calls a token: runs of letters and digits.
WORD = re.compile(r"[^\W_]+", re.UNICODE)

# A compact English stopword list (Lucene's plus common query fillers). Removed from the
# ranked words only; phrases keep them.
STOPWORDS = frozenset("""
a an and are as at be but by for if in into is it no not of on or such that the their then
there these they this to was will with we our us you your i me my he she his her its them
from has have had do does did can could would should may might must shall been being
were what which who whom whose when where why how all any both each few more most other
some than too very s t just don so also via about between over under within without
""".split())

_TOKEN = re.compile(
    r'(?P<neg>-)?(?:(?P<key>[A-Za-z]+):(?:"(?P<qval>[^"]*)"|(?P<val>\S*))|"(?P<phrase>[^"]*)"|(?P<word>\S+))'
)
_DATE = re.compile(r"^(\d{4})(?:-(\d{1,2}))?(?:-(\d{1,2}))?$")
_YEARS = re.compile(r"^(\d{4})(?:\s*(?:-|\.\.)\s*(\d{4}))?$")
KEYS = {"author": "author", "authors": "author", "au": "author", "cat": "cat", "category": "cat",
        "year": "year", "after": "after", "since": "after", "from": "after",
        "before": "before", "until": "before"}


class QueryError(ValueError):
    """A query that cannot be run; the message is written for the person who typed it."""


@dataclass
class ParsedQuery:
    """A query split into ranked words, required phrases, exclusions and filters."""

    raw: str
    words: list[str] = field(default_factory=list)        # lower-cased, stopwords removed
    phrases: list[list[str]] = field(default_factory=list)  # each a list of tokens
    excluded: list[str] = field(default_factory=list)
    authors: list[str] = field(default_factory=list)     # each a list of name tokens joined by ' '
    categories: list[str] = field(default_factory=list)
    date_from: str | None = None   # inclusive, YYYY-MM-DD
    date_to: str | None = None     # exclusive, YYYY-MM-DD
    text: str = ""                 # free text for the embedder (words and phrases, no operators)

    @property
    def has_text(self) -> bool:
        return bool(self.words or self.phrases)

    @property
    def has_filters(self) -> bool:
        return bool(self.authors or self.categories or self.date_from or self.date_to)

    def highlight_terms(self) -> list[str]:
        """Tokens worth marking in snippets."""
        out = list(self.words)
        for p in self.phrases:
            out.extend(t for t in p if t not in STOPWORDS)
        return out


def tokens(text: str) -> list[str]:
    """Lower-cased FTS5-compatible tokens of ``text``."""
    return [t.lower() for t in WORD.findall(text)]


def _parse_date(value: str, *, end: bool, what: str) -> str:
    value = value.strip()
    if re.match(r"^\d{4}-\d{2}-\d{2}[T ]\d", value):
        value = value[:10]  # an ISO timestamp: its day
    m = _DATE.match(value)
    if not m:
        raise QueryError(f"{what}: expects a date like 2024, 2024-03 or 2024-03-15, not {value!r}.")
    y, mo, d = int(m.group(1)), m.group(2), m.group(3)
    try:
        if d:
            day = date(y, int(mo), int(d))
            if end:
                return day.isoformat()
            return day.isoformat()
        if mo:
            month = int(mo)
            date(y, month, 1)
            return f"{y:04d}-{month:02d}-01"
        return f"{y:04d}-01-01"
    except ValueError:
        raise QueryError(f"{what}: {value!r} is not a valid date.") from None


def _next_period(value: str) -> str:
    """Exclusive end for a ``year:``-style period starting at ``value`` (YYYY)."""
    return f"{int(value[:4]) + 1:04d}-01-01"


def _max(a: str | None, b: str) -> str:
    return b if a is None or b > a else a


def _min(a: str | None, b: str) -> str:
    return b if a is None or b < a else a


def parse_query(raw: str | None, *, max_chars: int = MAX_QUERY_CHARS, require_terms: bool = True) -> ParsedQuery:
    """Parse a search box string; raises :class:`QueryError` with a readable message.

    ``require_terms=False`` accepts a query of exclusions only, for callers that add
    filters afterwards and then call :func:`check_searchable`."""
    if raw is None or not str(raw).strip():
        raise QueryError("Type something to search for.")
    raw = str(raw)
    if len(raw) > max_chars:
        raise QueryError(f"The query is too long ({len(raw)} characters); the limit is {max_chars}.")
    if "\x00" in raw:
        raise QueryError("The query contains a NUL character.")
    pq = ParsedQuery(raw=raw.strip())
    text_parts: list[str] = []
    # An unbalanced quote is read as a plain character.
    s = raw if raw.count('"') % 2 == 0 else raw.replace('"', " ")
    for m in _TOKEN.finditer(s):
        neg = bool(m.group("neg"))
        key = m.group("key")
        if key and key.lower() in KEYS:
            kind = KEYS[key.lower()]
            value = (m.group("qval") if m.group("qval") is not None else m.group("val")) or ""
            if not value.strip():
                raise QueryError(f"{key}: needs a value, e.g. {key}:something.")
            if kind == "author":
                # Same folding as paper_authors.name_norm (accents dropped), so SQL and FTS agree.
                name = normalize_title(value) or " ".join(tokens(value))
                if not name:
                    raise QueryError(f"author: {value!r} has no letters or digits.")
                pq.authors.append(name)
            elif kind == "cat":
                cat = value.strip().strip(",;")
                if not re.fullmatch(r"[A-Za-z][A-Za-z\-]*(?:\.[A-Za-z\-]+)?", cat):
                    raise QueryError(f"cat: expects an arXiv category like cs.CL or an archive like cs, not {value!r}.")
                pq.categories.append(cat)
            elif kind == "year":
                ym = _YEARS.match(value.strip())
                if not ym:
                    raise QueryError(f"year: expects a year like 2023 or a range like 2019-2021, not {value!r}.")
                y1, y2 = ym.group(1), ym.group(2) or ym.group(1)
                if y2 < y1:
                    y1, y2 = y2, y1
                pq.date_from = _max(pq.date_from, f"{y1}-01-01")
                pq.date_to = _min(pq.date_to, _next_period(y2))
            elif kind == "after":
                pq.date_from = _max(pq.date_from, _parse_date(value, end=False, what=key))
            elif kind == "before":
                pq.date_to = _min(pq.date_to, _parse_date(value, end=True, what=key))
            continue
        if m.group("phrase") is not None:
            toks = tokens(m.group("phrase"))
            if not toks:
                continue
            if neg:
                pq.excluded.extend(toks if len(toks) == 1 else [])
                if len(toks) > 1:
                    pq.excluded.append(" ".join(toks))
                continue
            if len(toks) == 1:
                pq.words.append(toks[0])
            else:
                pq.phrases.append(toks)
            text_parts.append(" ".join(toks))
            continue
        word = m.group(0) if key else m.group("word")
        if neg and not key:
            pq.excluded.extend(tokens(word[1:] if word.startswith("-") else word))
            continue
        toks = tokens(word)
        pq.words.extend(toks)
        if toks:
            text_parts.append(word.lstrip("-"))
    pq.text = " ".join(text_parts)
    # Drop stopwords from the ranked words unless nothing else would be left.
    content = [w for w in pq.words if w not in STOPWORDS]
    if content or pq.phrases:
        pq.words = content
    pq.words = list(dict.fromkeys(pq.words))
    if require_terms or not pq.excluded:
        check_searchable(pq)
    if pq.date_from and pq.date_to and pq.date_from >= pq.date_to:
        raise QueryError(f"The date range is empty (from {pq.date_from} to before {pq.date_to}).")
    return pq


def check_searchable(pq: ParsedQuery) -> None:
    """Raise :class:`QueryError` unless ``pq`` has words or filters: exclusions alone
    would mean "every paper but", which no one needs from a search box."""
    if not pq.has_text and not pq.has_filters:
        if pq.excluded:
            raise QueryError("A query needs at least one word to look for besides -exclusions.")
        raise QueryError("The query has no searchable words (letters or digits).")


# ------------------------------------------------------------------ FTS5 expressions

def fts_quote(token: str) -> str:
    """A token as an FTS5 string literal (double quotes doubled)."""
    return '"' + token.replace('"', '""') + '"'


def category_tokens(categories) -> str:
    """Text indexed in the ``categories`` column: one token per archive and per category
    (dots removed, as unicode61 would split them): ``cs.CL`` -> ``cs cscl``."""
    out = []
    for c in categories:
        c = c.lower()
        archive = c.split(".", 1)[0]
        out.append(re.sub(r"[^0-9a-z]", "", archive))
        if "." in c:
            out.append(re.sub(r"[^0-9a-z]", "", c))
    return " ".join(dict.fromkeys(out))


def fts_expression(pq: ParsedQuery, *, include_filters: bool = True) -> str | None:
    """The FTS5 MATCH expression for a parsed query, or None when it has no text terms
    and no FTS-side filters."""
    text_cols = "{title abstract authors}"
    required: list[str] = []
    for p in pq.phrases:
        required.append(f"{text_cols} : " + fts_quote(" ".join(p)))
    if include_filters:
        for a in pq.authors:
            required.extend(f"authors : {fts_quote(t)}" for t in a.split())
        for c in pq.categories:
            required.append("categories : " + fts_quote(category_tokens([c]).split()[-1]))
    optional = [fts_quote(w) for w in pq.words]
    if required and optional:
        # Words stay optional (they only add to the score), phrases and filters must match.
        # The phrases are repeated inside the OR group so a document matching only them passes.
        ranked = optional + [fts_quote(" ".join(p)) for p in pq.phrases]
        expr = " AND ".join(required) + f" AND ({text_cols} : (" + " OR ".join(ranked) + "))"
    elif required:
        expr = " AND ".join(required)
    elif optional:
        expr = f"{text_cols} : (" + " OR ".join(optional) + ")"
    else:
        return None
    for e in pq.excluded:
        expr = f"({expr}) NOT {fts_quote(e)}"
    return expr


def exclusion_expression(pq: ParsedQuery) -> str | None:
    """FTS5 expression matching any excluded word or phrase (None: no exclusions), for
    queries of filters and exclusions only, which FTS5 cannot state as ``NOT`` alone."""
    if not pq.excluded:
        return None
    return " OR ".join(fts_quote(e) for e in pq.excluded)


def text_only_expression(words: list[str]) -> str | None:
    """OR of quoted words over the text columns (used for "more like this")."""
    if not words:
        return None
    return "{title abstract authors} : (" + " OR ".join(fts_quote(w) for w in words) + ")"
