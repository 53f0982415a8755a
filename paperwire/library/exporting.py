"""Exporting a library or one folder: BibTeX (the site's writer), RIS, CSL-JSON.

BibTeX entries come from :mod:`paperwire.export` (``bibtex_entry``: escaped once, keys
made unique by ``unique_keys``);
the reader's tags ride along as ``keywords`` and the note as ``annote``, which is
where Zotero and JabRef put them, so an export imports back with its tags and notes.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Iterator

from paperwire import export
from paperwire.library import folder as get_folder
from paperwire.library import list_library

FORMATS = ("bibtex", "ris", "csl-json")
MEDIA = {"bibtex": ("application/x-bibtex; charset=utf-8", "bib"),
         "ris": ("application/x-research-info-systems; charset=utf-8", "ris"),
         "csl-json": ("application/vnd.citationstyles.csl+json; charset=utf-8", "json")}


def library_papers(conn: sqlite3.Connection, user_id: int, folder: str | int | None = None) -> list[dict]:
    """The saved papers to export (a folder's, or all), oldest save first."""
    return list_library(conn, user_id, folder_ident=folder, sort="saved_asc", limit=None)["papers"]


def export_library(conn: sqlite3.Connection, user_id: int, fmt: str = "bibtex", folder: str | int | None = None) -> str:
    """The whole export as text. ``fmt`` is one of :data:`FORMATS`."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}")
    if folder not in (None, ""):
        get_folder(conn, user_id, folder)  # NotFound before any work
    papers = library_papers(conn, user_id, folder)
    if fmt == "bibtex":
        return "\n".join(to_bibtex(papers))
    if fmt == "ris":
        return "".join(to_ris(p) for p in papers)
    return json.dumps([to_csl(p) for p in papers], ensure_ascii=False, indent=2) + "\n"


def to_bibtex(papers: list[dict]) -> Iterator[str]:
    """BibTeX entries from the site's writer, plus ``keywords`` (tags) and ``annote`` (note),
    which that writer escapes like every other value; keys are unique across the export."""
    for paper, key in zip(papers, export.unique_keys(papers)):
        extra = [("keywords", ", ".join(paper.get("tags") or [])), ("annote", paper.get("note") or "")]
        yield export.bibtex_entry(paper, key, extra)


def _ris_value(text: str | None) -> str:
    # One RIS field is one line: newlines would start a bogus tag.
    return " ".join(str(text or "").split())


def to_ris(paper: dict) -> str:
    """One RIS record (``TY  - ...`` to ``ER  - ``), as Zotero writes preprints."""
    lines = [("TY", "JOUR" if paper.get("journal_ref") else "PREPRINT"), ("TI", paper.get("title"))]
    lines += [("AU", a) for a in paper.get("authors") or []]
    if paper.get("published"):
        lines.append(("PY", paper["published"][:4]))
        lines.append(("DA", paper["published"][:10].replace("-", "/")))
    if paper.get("abstract"):
        lines.append(("AB", paper["abstract"]))
    if paper.get("journal_ref"):
        lines.append(("JO", paper["journal_ref"]))
    if paper.get("doi"):
        lines.append(("DO", paper["doi"]))
    if paper.get("arxiv_id"):
        lines.append(("UR", paper.get("abs_url") or f"https://arxiv.org/abs/{paper['arxiv_id']}"))
        lines.append(("N1", f"arXiv:{paper['arxiv_id']}"))
    lines.append(("ID", paper.get("paper_id")))
    lines += [("KW", t) for t in paper.get("tags") or []]
    if paper.get("note"):
        lines.append(("N1", paper["note"]))
    out = "".join(f"{tag}  - {_ris_value(v)}\n" for tag, v in lines if v not in (None, ""))
    return out + "ER  - \n\n"


def _csl_name(name: str) -> dict:
    parts = name.rsplit(" ", 1)
    return {"family": parts[-1], "given": parts[0]} if len(parts) == 2 else {"literal": name}


def to_csl(paper: dict) -> dict:
    """One CSL-JSON item (what Zotero's CSL JSON export gives for an arXiv preprint)."""
    item: dict = {"id": paper.get("paper_id"), "type": "article-journal" if paper.get("journal_ref") else "article",
                  "title": paper.get("title")}
    if paper.get("authors"):
        item["author"] = [_csl_name(a) for a in paper["authors"]]
    if paper.get("published"):
        y, m, d = paper["published"][:4], paper["published"][5:7], paper["published"][8:10]
        item["issued"] = {"date-parts": [[int(x) for x in (y, m, d) if x.isdigit()]]}
    if paper.get("abstract"):
        item["abstract"] = paper["abstract"]
    if paper.get("doi"):
        item["DOI"] = paper["doi"]
    if paper.get("journal_ref"):
        item["container-title"] = paper["journal_ref"]
    if paper.get("arxiv_id"):
        item["URL"] = paper.get("abs_url") or f"https://arxiv.org/abs/{paper['arxiv_id']}"
        item["number"] = f"arXiv:{paper['arxiv_id']}"
        item["publisher"] = "arXiv"
    if paper.get("tags"):
        item["keyword"] = ", ".join(paper["tags"])
    if paper.get("note"):
        item["note"] = paper["note"]
    return item
