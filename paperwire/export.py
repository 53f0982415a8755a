"""Exporting papers: JSON lines (lossless) and BibTeX.

BibTeX values are LaTeX, and paper text already is LaTeX source (arXiv metadata):
so each field is written *as written*, escaped once. Math (``$B_n$``) and commands
(``{\\em if}``, ``\\'e``) stay; only what TeX would misread in text is escaped
(``%``, ``&``, ``#``, ``_``, ``^``, a lone ``$``, a trailing backslash); braces are
made to balance (BibTeX counts every brace, escaped or not). The public pieces,
also used by the library export: :func:`bib_escape` (one value),
:func:`bibtex_key`, :class:`KeyDeduper` / :func:`unique_keys`, :func:`bibtex_entry`,
:func:`to_bibtex_all`.
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Iterable, Iterator

from paperwire import latex

_EXPORT_DROP = ("id", "title_norm", "record_hash", "rev", "hidden")


def paper_to_json(paper: dict) -> dict:
    """The public JSON shape of a paper (internal bookkeeping columns dropped)."""
    out = {k: v for k, v in paper.items() if k not in _EXPORT_DROP}
    out["id"] = paper["paper_id"]
    return out


def to_jsonl(papers: Iterable[dict]) -> Iterator[str]:
    """One JSON object per paper (lossless)."""
    for p in papers:
        yield json.dumps(paper_to_json(p), ensure_ascii=False)


# ---------------------------------------------------------------------------
# Field values

_CTRL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_BRACES = re.compile(r"[{}]")
_TEXT_ESCAPES = {"%": r"\%", "&": r"\&", "#": r"\#", "_": r"\_", "^": r"\^{}", "$": r"\$"}


def _backslashes_before(s: str, i: int) -> int:
    n = 0
    while i - n - 1 >= 0 and s[i - n - 1] == "\\":
        n += 1
    return n


def _in_spans(spans: list[tuple[int, int]], i: int) -> bool:
    return any(a <= i < b for a, b in spans)


def _balance(text: str) -> str:
    """``text`` with every brace paired, counting as BibTeX does (``\\{`` counts too).

    An unpaired escaped brace becomes a brace command (``\\textbraceleft{}``, in math
    ``\\lbrace``) that prints the same; an unpaired bare brace is TeX syntax, dropped.
    """
    stack: list[int] = []
    bad: set[int] = set()
    for m in _BRACES.finditer(text):
        if m.group(0) == "{":
            stack.append(m.start())
        elif stack:
            stack.pop()
        else:
            bad.add(m.start())
    bad.update(stack)
    if not bad:
        return text
    spans = latex.math_spans(text, braces=False)
    out, i = [], 0
    for j in sorted(bad):
        escaped = _backslashes_before(text, j) % 2 == 1
        out.append(text[i:j - 1] if escaped else text[i:j])
        if escaped:
            left = text[j] == "{"
            if _in_spans(spans, j):
                out.append(r"\lbrace " if left else r"\rbrace ")
            else:
                out.append(r"\textbraceleft{}" if left else r"\textbraceright{}")
        i = j + 1
    out.append(text[i:])
    return "".join(out)


def bib_escape(text: str | None) -> str:
    """One BibTeX field value from LaTeX source, escaped once; braces balanced.

    Whitespace is collapsed. Inside math nothing changes. Outside math, an existing
    escape or command (``\\%``, ``\\'e``, ``{\\em x}``) is kept, and bare ``%``, ``&``,
    ``#``, ``_``, ``^``, a ``$`` that opens no math and a trailing ``\\`` are escaped.
    """
    text = " ".join(_CTRL.sub(" ", text or "").split())
    if not text:
        return ""
    text = _balance(text)
    spans = latex.math_spans(text, braces=False)
    out, pos = [], 0
    for a, b in spans + [(len(text), len(text))]:
        out.append(_TEXT_RE.sub(_text_escape, text[pos:a]))
        out.append(text[a:b])
        pos = b
    return "".join(out)


# An escape or command pair is kept as written; a backslash at the very end has no pair.
_TEXT_RE = re.compile(r"\\.|\\$|[%&#_^$]", re.S)


def _text_escape(m: re.Match) -> str:
    s = m.group(0)
    if s[0] == "\\":
        return s if len(s) == 2 else r"\textbackslash{}"
    return _TEXT_ESCAPES[s]


def bib_verbatim(text: str | None) -> str:
    """A URL, DOI or id: written as is (those fields are verbatim), braces balanced."""
    return _balance(" ".join(_CTRL.sub(" ", text or "").split()))


def _bib_name(name: str) -> str:
    # A comma means "Last, First" to BibTeX and " and " separates names: a stored name
    # holding either is kept whole in braces.
    value = bib_escape(name)
    if "," in value or re.search(r"\sand\s", value, re.I):
        return "{" + value + "}"
    return value


# ---------------------------------------------------------------------------
# Keys

_FOLD = str.maketrans({"ß": "ss", "ø": "o", "Ø": "O", "ł": "l", "Ł": "L", "æ": "ae", "Æ": "AE", "œ": "oe",
                       "Œ": "OE", "đ": "d", "Đ": "D", "ð": "d", "þ": "th", "ı": "i", "ȷ": "j"})
_SUFFIXES = {"jr", "sr", "ii", "iii", "iv", "jun", "sen"}
_STOPWORDS = {"a", "an", "the", "on", "of", "in", "for", "to", "and", "with", "from", "by", "at", "via", "is",
              "are", "as", "into", "onto", "towards", "toward", "how", "what", "why", "when", "do", "does",
              "can", "we", "our", "its", "new", "some", "using", "about", "beyond", "between", "through"}
_KEY_CHARS = re.compile(r"[^A-Za-z0-9_:.\-]")


def ascii_fold(text: str) -> str:
    """``Balázs`` -> ``Balazs``, ``Straße`` -> ``Strasse``: ASCII letters for keys."""
    t = unicodedata.normalize("NFKD", latex.to_text(text).translate(_FOLD))
    return t.encode("ascii", "ignore").decode()


def _last_name(name: str) -> str:
    name = ascii_fold(name)
    if "," in name:  # "Last, First"
        name = name.split(",", 1)[0]
    parts = [re.sub(r"[^a-z0-9]", "", p.lower()) for p in name.split()]
    parts = [p for p in parts if p]
    while len(parts) > 1 and parts[-1] in _SUFFIXES:
        parts.pop()
    return parts[-1] if parts else ""


def _title_words(title: str) -> list[str]:
    text = latex.to_text(title or "")
    for a, b in reversed(latex.math_spans(text)):
        text = text[:a] + " " + text[b:]
    words = re.findall(r"[a-z0-9]+", ascii_fold(text).lower())
    # Google Scholar's rule, minus one- and two-letter words ("ab initio" -> "initio").
    significant = [w for w in words if w not in _STOPWORDS and len(w) > 2]
    return significant or [w for w in words if w not in _STOPWORDS] or words


def bibtex_key(paper: dict) -> str:
    """``firstauthorYEARfirstword`` (``balazs2007calculation``), ASCII-folded, lowercase.

    The first word is the title's first that is not a stop word nor shorter than three
    letters (math skipped).
    Without an author or a year the key spells what is missing, in readable parts:
    ``anon-2007-deep-learning``, ``smith-nodate-deep-learning``.
    """
    authors = paper.get("authors") or []
    last = _last_name(authors[0]) if authors else ""
    year = (paper.get("published") or "")[:4]
    year = year if year.isdigit() else ""
    words = _title_words(paper.get("title") or "") or ["untitled"]
    if last and year:
        return f"{last}{year}{words[0]}"
    return "-".join([last or "anon", year or "nodate", *words[:2]])


def _suffix(n: int) -> str:
    s = ""
    while n:
        n, r = divmod(n - 1, 26)
        s = chr(97 + r) + s
    return s


class KeyDeduper:
    """Unique keys across one export: ``dedupe(base)`` returns ``base`` the first time,
    then ``base + "a"``, ``"b"``, ... ``"z"``, ``"aa"`` (never a key already handed out)."""

    def __init__(self) -> None:
        self.taken: set[str] = set()

    def __call__(self, base: str) -> str:
        key, n = base, 0
        while key in self.taken:
            n += 1
            key = base + _suffix(n)
        self.taken.add(key)
        return key


def unique_keys(papers: Iterable[dict]) -> list[str]:
    """One key per paper, in order (:func:`bibtex_key` made unique by :class:`KeyDeduper`)."""
    dedupe = KeyDeduper()
    return [dedupe(bibtex_key(p)) for p in papers]


# ---------------------------------------------------------------------------
# Entries

def bibtex_fields(paper: dict) -> list[tuple[str, str]]:
    """``[(field, value), ...]`` of a paper, values already BibTeX-ready (escaped, balanced)."""
    fields: list[tuple[str, str]] = [("title", "{" + bib_escape(paper.get("title")) + "}")]
    if paper.get("authors"):
        fields.append(("author", " and ".join(_bib_name(a) for a in paper["authors"])))
    published = paper.get("published") or ""
    if published[:4].isdigit():
        fields.append(("year", published[:4]))
        if published[5:7].isdigit():
            fields.append(("month", str(int(published[5:7]))))
    if paper.get("journal_ref"):
        fields.append(("journal", bib_escape(paper["journal_ref"])))
    if paper.get("arxiv_id"):
        fields += [("eprint", bib_verbatim(paper["arxiv_id"])), ("archivePrefix", "arXiv")]
        if paper.get("primary_category"):
            fields.append(("primaryClass", bib_verbatim(paper["primary_category"])))
        fields.append(("url", bib_verbatim(paper.get("abs_url") or f"https://arxiv.org/abs/{paper['arxiv_id']}")))
    if paper.get("doi"):
        fields.append(("doi", bib_verbatim(paper["doi"])))
    if paper.get("abstract"):
        fields.append(("abstract", bib_escape(paper["abstract"])))
    return fields


def bibtex_entry(paper: dict, key: str, extra_fields: Iterable[tuple[str, str]] = ()) -> str:
    """One entry: ``@article`` with a journal reference, else ``@misc`` with eprint fields.

    ``key`` is used as given (characters BibTeX keys cannot hold are dropped);
    ``extra_fields`` are ``(name, text)`` pairs of plain LaTeX source (for example
    ``("keywords", "a, b")``), escaped here like every other value.
    """
    key = _KEY_CHARS.sub("", key) or "paper"
    fields = bibtex_fields(paper)
    fields += [(re.sub(r"[^A-Za-z0-9_-]", "", k), bib_escape(v)) for k, v in extra_fields if v]
    entry = "article" if paper.get("journal_ref") else "misc"
    body = ",\n".join(f"  {k} = {{{v}}}" for k, v in fields)
    return f"@{entry}{{{key},\n{body}\n}}\n"


def to_bibtex(paper: dict) -> str:
    """One paper's entry under its :func:`bibtex_key`."""
    return bibtex_entry(paper, bibtex_key(paper))


def to_bibtex_all(papers: Iterable[dict]) -> Iterator[str]:
    """Entries in order, keys made unique across the export (:func:`unique_keys`)."""
    dedupe = KeyDeduper()
    for paper in papers:  # streamed: an export of the whole store never holds it in memory
        yield bibtex_entry(paper, dedupe(bibtex_key(paper)))
