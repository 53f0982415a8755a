"""Turning paper text into safe HTML, and small template filters.

Paper text is untrusted (abstracts hold ``<``, ``&``, LaTeX and sometimes
hostile HTML). Everything is escaped; the only tags
we ever emit ourselves are ``<p>``, ``<mark>`` and :mod:`paperwire.latex`'s few. LaTeX stays as escaped text
inside an element with class ``math-text``: the vendored KaTeX auto-render
reads text nodes (never HTML) and typesets ``$...$`` / ``$$...$$`` in place.
Text-mode LaTeX (``{\\em x}``, accents, quotes, dashes) is rendered by
:mod:`paperwire.latex`, which escapes everything it writes.
"""

from __future__ import annotations

import re
from datetime import date, datetime

from markupsafe import Markup

from paperwire import latex

def safe_snippet(snippet: str | None) -> Markup:
    """A search snippet as safe HTML: LaTeX rendered, only ``<mark>`` highlights kept.

    Works whether the producer escaped its text or not: the text is unescaped once
    and escaped again, so ``&amp;lt;`` never shows.
    """
    return Markup(latex.snippet_html(snippet))


def abstract_html(text: str | None) -> Markup:
    """Escaped abstract split into paragraphs on blank lines, text-mode LaTeX rendered."""
    if not text:
        return Markup("")
    paras = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    return Markup("".join(f"<p>{latex.to_html(p)}</p>" for p in paras))


def tex_html(text: str | None) -> Markup:
    """A title (or any short LaTeX source) as safe HTML."""
    return Markup(latex.to_html(text))


def tex_text(text: str | None) -> str:
    """LaTeX source as plain text, for ``<title>``, attributes and other text-only places."""
    return latex.to_text(text)


def tex_snippet(text: str | None, n: int = 280) -> Markup:
    """The first ``n`` characters of LaTeX source (cut at a space outside math) as safe HTML."""
    text = " ".join((text or "").split())
    if len(text) <= n:
        return Markup(latex.to_html(text))
    return Markup(latex.to_html(latex.truncate(text, n)) + " …")


def source_snippet(text: str | None, n: int = 280) -> str:
    """The first ``n`` characters of LaTeX source, cut at a space outside math, unrendered
    (for snippet producers: the ``snippet`` filter renders it)."""
    text = " ".join((text or "").split())
    return text if len(text) <= n else latex.truncate(text, n) + " …"


def plain_snippet(text: str | None, n: int = 280) -> str:
    """The first ``n`` characters of a text as plain text (LaTeX rendered), cut at a word boundary."""
    text = " ".join(latex.to_text(text).split())
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
        tex=tex_html,
        tex_text=tex_text,
        tex_snippet=tex_snippet,
        nice_date=nice_date,
        long_date=long_date,
    )
