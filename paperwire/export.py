"""Exporting papers: JSON lines (lossless) and BibTeX."""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Iterable, Iterator

_EXPORT_DROP = ("id", "title_norm", "record_hash", "rev", "hidden")


def paper_to_json(paper: dict) -> dict:
    """The public JSON shape of a paper (internal bookkeeping columns dropped)."""
    out = {k: v for k, v in paper.items() if k not in _EXPORT_DROP}
    out["id"] = paper["paper_id"]
    return out


def to_jsonl(papers: Iterable[dict]) -> Iterator[str]:
    for p in papers:
        yield json.dumps(paper_to_json(p), ensure_ascii=False)


_BIB_SPECIAL = {"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "&": r"\&", "%": r"\%",
                "$": r"\$", "#": r"\#", "_": r"\_", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
_BIB_RE = re.compile("|".join(re.escape(k) for k in _BIB_SPECIAL))


def bib_escape(text: str) -> str:
    """Escape TeX specials so any title or name is a valid, balanced BibTeX value."""
    return _BIB_RE.sub(lambda m: _BIB_SPECIAL[m.group(0)], text or "")


def _ascii_word(text: str) -> str:
    t = unicodedata.normalize("NFKD", text)
    return re.sub(r"[^A-Za-z0-9]", "", t.encode("ascii", "ignore").decode())


def bibtex_key(paper: dict) -> str:
    """``lastnameYEARfirstword``, as Google Scholar and arXiv tools make them."""
    last = _ascii_word(paper["authors"][0].split()[-1]).lower() if paper.get("authors") else "anon"
    year = (paper.get("published") or "")[:4] or "nd"
    words = [w for w in re.findall(r"[A-Za-z0-9]+", _ascii_word_keep_spaces(paper["title"])) if len(w) > 3]
    first = words[0].lower() if words else "paper"
    return f"{last or 'anon'}{year}{first}"


def _ascii_word_keep_spaces(text: str) -> str:
    t = unicodedata.normalize("NFKD", text)
    return t.encode("ascii", "ignore").decode()


def to_bibtex(paper: dict) -> str:
    """One BibTeX entry: ``@article`` with a journal reference, else ``@misc`` with eprint fields."""
    fields: list[tuple[str, str]] = [("title", "{" + bib_escape(paper["title"]) + "}")]
    if paper.get("authors"):
        fields.append(("author", " and ".join(bib_escape(a) for a in paper["authors"])))
    if paper.get("published"):
        fields.append(("year", paper["published"][:4]))
        fields.append(("month", str(int(paper["published"][5:7]))))
    entry = "misc"
    if paper.get("journal_ref"):
        entry = "article"
        fields.append(("journal", bib_escape(paper["journal_ref"])))
    if paper.get("arxiv_id"):
        fields += [("eprint", paper["arxiv_id"]), ("archivePrefix", "arXiv")]
        if paper.get("primary_category"):
            fields.append(("primaryClass", bib_escape(paper["primary_category"])))
        fields.append(("url", paper.get("abs_url") or f"https://arxiv.org/abs/{paper['arxiv_id']}"))
    if paper.get("doi"):
        fields.append(("doi", bib_escape(paper["doi"])))
    if paper.get("abstract"):
        fields.append(("abstract", bib_escape(paper["abstract"])))
    body = ",\n".join(f"  {k} = {{{v}}}" for k, v in fields)
    return f"@{entry}{{{bibtex_key(paper)},\n{body}\n}}\n"


def to_bibtex_all(papers: Iterable[dict]) -> Iterator[str]:
    """Entries with keys made unique (``...a``, ``...b``) across the export."""
    seen: dict[str, int] = {}
    for p in papers:
        entry = to_bibtex(p)
        key = bibtex_key(p)
        n = seen.get(key, 0)
        seen[key] = n + 1
        if n:
            entry = entry.replace("{" + key + ",", "{" + key + _suffix(n) + ",", 1)
        yield entry


def _suffix(n: int) -> str:
    s = ""
    while n:
        n, r = divmod(n - 1, 26)
        s = chr(97 + r) + s
    return s
