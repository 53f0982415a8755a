"""Comment Markdown -> safe HTML.

CommonMark through markdown-it-py with raw HTML disabled, plus ``$...$`` and
``$$...$$`` math: the math is kept verbatim (escaped, shielded from emphasis and
links) inside ``<span class="math">`` for the vendored KaTeX to render in the
browser (``.math-text`` containers, ``trust: false``). Then an allow-list
sanitiser (nh3) runs over the result as a second layer: only the tags Markdown
makes, no attributes but ``href``/``title`` on links (absolute http(s) only,
``rel="nofollow ugc noopener"``) and ``start`` on lists, no images.
"""

from __future__ import annotations

import html as _html

import nh3
from markdown_it import MarkdownIt

MAX_CHARS = 20_000  # a comment body, in characters (raw Markdown)
# Deep nesting (500 ">" or list markers) is flattened past this many levels: markdown-it
# stops opening blocks there, so rendering stays linear and the DOM shallow.
MAX_NESTING = 20

_TAGS = {"p", "br", "hr", "em", "strong", "code", "pre", "blockquote", "ul", "ol", "li", "a",
         "h1", "h2", "h3", "h4", "h5", "h6", "span", "table", "thead", "tbody", "tr", "th", "td", "s", "del"}
_ATTRS = {"a": {"href", "title"}, "ol": {"start"}, "span": {"class"}}
_SCHEMES = {"http", "https"}


class CommentTooLong(ValueError):
    """A comment over :data:`MAX_CHARS`."""


def safe_link(url: str) -> bool:
    """Absolute http(s) URLs with a host and no control characters or backslashes."""
    if not isinstance(url, str) or not url or len(url) > 2048:
        return False
    if any(ord(c) < 0x21 or c in "\x7f\\" for c in url):
        return False
    scheme, sep, rest = url.partition(":")
    if not sep or scheme.lower() not in _SCHEMES or not rest.startswith("//"):
        return False
    host = rest[2:].split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    return bool(host) and not host.startswith("@")


def _math_rule(state, silent: bool) -> bool:
    """Inline ``$$...$$`` / ``$...$``: one token whose content is the math source."""
    src, pos = state.src, state.pos
    if src[pos] != "$" or (pos > 0 and src[pos - 1] == "\\"):
        return False
    delim = "$$" if src.startswith("$$", pos) else "$"
    start = pos + len(delim)
    end = src.find(delim, start)
    while end != -1 and src[end - 1] == "\\":
        end = src.find(delim, end + 1)
    if end == -1 or end == start:
        return False
    body = src[start:end]
    if delim == "$" and (body[0].isspace() or body[-1].isspace()):
        return False  # "costs $5 and $6": prices, not math
    if not silent:
        token = state.push("math_inline", "span", 0)
        token.content = body
        token.markup = delim
    state.pos = end + len(delim)
    return True


def _render_math(renderer, tokens, idx, options, env) -> str:
    t = tokens[idx]
    return f'<span class="math">{_html.escape(t.markup + t.content + t.markup, quote=False)}</span>'


def _make_parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False,
                                   "maxNesting": MAX_NESTING})
    md.enable(["table", "strikethrough"])
    md.disable("image")  # no third-party images (tracking pixels); ![x](u) stays text
    md.validateLink = safe_link  # javascript:, data:, relative links: left as text
    md.inline.ruler.before("escape", "math_inline", _math_rule)
    md.add_render_rule("math_inline", _render_math)
    return md


_MD = _make_parser()


def _attribute_filter(tag: str, attr: str, value: str) -> str | None:
    if tag == "a" and attr == "href":
        return value if safe_link(value) else None
    if tag == "span" and attr == "class":
        return "math" if value == "math" else None
    if tag == "ol" and attr == "start":
        return value if value.isdigit() and len(value) < 10 else None
    return value


def sanitise(html: str) -> str:
    """The allow-list pass (also usable on HTML from elsewhere)."""
    return nh3.clean(html, tags=_TAGS, attributes=_ATTRS, url_schemes=_SCHEMES, link_rel="nofollow ugc noopener",
                     attribute_filter=_attribute_filter, strip_comments=True)


def check_length(raw: str) -> str:
    """The text to store: line ends normalised, stripped; :class:`CommentTooLong` over the cap."""
    text = (raw or "").replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    if len(text) > MAX_CHARS:
        raise CommentTooLong(f"comments can be at most {MAX_CHARS:,} characters (this one has {len(text):,})")
    return text.strip()


def _too_deep(tokens) -> bool:
    for t in tokens:
        if t.level >= MAX_NESTING - 1 or (t.children and _too_deep(t.children)):
            return True
    return False


def render(raw: str) -> str:
    """Safe HTML for a comment's Markdown (capped at :data:`MAX_CHARS`).

    markdown-it drops what lies past its nesting limit; a comment that gets there
    (500 nested quotes, say) is shown as escaped plain text instead, so nothing
    written disappears."""
    text = check_length(raw)
    tokens = _MD.parse(text)
    if _too_deep(tokens):
        paras = [p for p in text.split("\n\n") if p.strip()]
        return "".join("<p>" + _html.escape(p).replace("\n", "<br>\n") + "</p>\n" for p in paras)
    return sanitise(_MD.renderer.render(tokens, _MD.options, {}))


def plain(raw: str, limit: int = 300) -> str:
    """A short plain-text excerpt (mail, Atom titles, notifications)."""
    text = " ".join((raw or "").split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
