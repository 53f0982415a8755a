"""A paper as Markdown: what ``GET /papers/{id}.md`` (and ``Accept: text/markdown`` on
the paper page) answers, as Hugging Face does for ``huggingface_hub``'s ``read_paper``.

Title and abstract go through :func:`paperwire.latex.to_text` (accents, ``\\emph`` and
friends as plain text; math kept as ``$...$``), and ``[ ] < >`` in record text are
escaped so an imported title cannot turn into a link or raw HTML.
"""

from __future__ import annotations

import re

from paperwire import latex

# Only what could make a link or raw HTML: math (`$x_i^*$`, `\alpha`) stays readable.
_MD_SPECIAL = re.compile(r"([\[\]<>])")


def _escape(text: str) -> str:
    return _MD_SPECIAL.sub(r"\\\1", " ".join((text or "").split()))


def _http(url) -> str | None:
    if isinstance(url, str) and re.match(r"^https?://[^\s<>()\"']+$", url.strip()):
        return url.strip()
    return None


def paper_markdown(paper: dict, base_url: str = "") -> str:
    """The paper (a store dict) as a Markdown document."""
    pid = paper["paper_id"]
    lines = [f"# {_escape(latex.to_text(paper.get('title') or ''))}", ""]
    authors = paper.get("authors") or []
    if authors:
        lines += [f"**Authors:** {_escape(', '.join(authors))}", ""]
    date = (paper.get("published") or paper.get("listed_at") or "")[:10]
    if date:
        lines += [f"**Published:** {date}", ""]
    if paper.get("categories"):
        lines += [f"**Categories:** {_escape(', '.join(paper['categories']))}", ""]
    links = [("paperwire", f"{base_url.rstrip('/')}/papers/{pid}" if base_url else f"/papers/{pid}")]
    if paper.get("arxiv_id"):
        links.append(("arXiv", f"https://arxiv.org/abs/{paper['arxiv_id']}"))
    for label, key in (("Abstract page", "abs_url"), ("PDF", "pdf_url"), ("Code", "code_url"),
                       ("Project page", "project_url")):
        url = _http(paper.get(key))
        if url and all(url != u for _, u in links):
            links.append((label, url))
    if paper.get("doi"):
        links.append(("DOI", f"https://doi.org/{paper['doi']}"))
    lines += ["**Links:** " + " · ".join(f"[{label}](<{url}>)" for label, url in links), ""]
    lines += ["## Abstract", "", _escape(latex.to_text(paper.get("abstract") or "")) or "(no abstract)", ""]
    return "\n".join(lines)
