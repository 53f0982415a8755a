"""Turning paper text into safe HTML, and small template filters.

Paper text is untrusted (abstracts hold ``<``, ``&``, LaTeX and sometimes
hostile HTML). Everything goes through :func:`markupsafe.escape`; the only tags
we ever emit ourselves are ``<p>`` and ``<mark>``. LaTeX stays as escaped text
inside an element with class ``math-text``: the vendored KaTeX auto-render
reads text nodes (never HTML) and typesets ``$...$`` / ``$$...$$`` in place.
"""

from __future__ import annotations

import html
import re
from datetime import date, datetime

from markupsafe import Markup, escape

_MARK_SPLIT = re.compile(r"(</?mark>)", re.I)


def safe_snippet(snippet: str | None) -> Markup:
    """Re-escape a search snippet, keeping only ``<mark>`` highlights.

    Works whether the producer escaped its text or not: each text piece is
    unescaped once and escaped again, so ``&amp;lt;`` never shows.
    """
    if not snippet:
        return Markup("")
    out = []
    for piece in _MARK_SPLIT.split(snippet):
        low = piece.lower()
        if low == "<mark>":
            out.append("<mark>")
        elif low == "</mark>":
            out.append("</mark>")
        else:
            out.append(str(escape(html.unescape(piece))))
    return Markup("".join(out))


def abstract_html(text: str | None) -> Markup:
    """Escaped abstract split into paragraphs on blank lines."""
    if not text:
        return Markup("")
    paras = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    return Markup("".join(f"<p>{escape(p)}</p>" for p in paras))


def plain_snippet(text: str | None, n: int = 280) -> str:
    """The first ``n`` characters of a text, cut at a word boundary."""
    text = " ".join((text or "").split())
    if len(text) <= n:
        return text
    cut = text[:n].rsplit(" ", 1)[0]
    return cut + " …"


def nice_date(value: str | None) -> str:
    """``2007-04-02`` or an ISO timestamp -> ``Apr 2, 2007``."""
    if not value:
        return ""
    try:
        d = datetime.fromisoformat(value.replace("Z", "+00:00")) if "T" in value else datetime.fromisoformat(value)
    except ValueError:
        return value
    return f"{d:%b} {d.day}, {d.year}"


def long_date(value: str | date) -> str:
    d = value if isinstance(value, date) else date.fromisoformat(value)
    return f"{d:%A}, {d:%B} {d.day}, {d.year}"


def author_list(authors: list[str], n: int = 4) -> list[str]:
    return authors[:n]


def register_filters(env) -> None:
    env.filters.update(
        snippet=safe_snippet,
        abstract=abstract_html,
        plain_snippet=plain_snippet,
        nice_date=nice_date,
        long_date=long_date,
    )
