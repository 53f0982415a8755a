"""Text-mode LaTeX in titles and abstracts, rendered for readers.

arXiv metadata is LaTeX source: ``{\\em x}``, ``\\textit{x}``, ````quotes''``,
``\\'e``, ``{\\ss}``, ``--``. :func:`to_html` turns it into safe HTML (``<em>``,
``<strong>``, ``<code>``, curly quotes, Unicode letters, dashes) and :func:`to_text`
into plain text. Math (``$..$``, ``$$..$$``, ``\\(..\\)``, ``\\[..\\]``) is copied
as written so KaTeX can typeset it on the page; the regions are found with the same
rules as KaTeX's auto-render (brace depth, backslash escapes), so what we convert is
exactly what KaTeX leaves as text. Commands we do not know stay as their source.

Safety: every character of the input reaches the output through
:func:`html.escape`; the only tags ever written are the ones named above, ``<mark>``
(snippets) and ``<span class="nomath">`` (a lone or escaped ``$``, kept apart so
auto-render cannot pair it with another one), always properly nested.

Why not pylatexenc: it treats ``%`` as a comment (abstracts mean "percent" and the
rest of the line would vanish), typesets math we must keep for KaTeX, and HTML
output would need our own node walker anyway; this scanner is one pass and small.
"""

from __future__ import annotations

import html
import re
import unicodedata
from functools import lru_cache

from paperwire.latex_commands import (
    _ACCENTS,
    _CITES,
    _CONTROL_SYMBOLS,
    _DECLARATIONS,
    _DROP_ARG,
    _FOOTNOTES,
    _REFS,
    _SPACING,
    _SYMBOLS,
    _TEXT_CMDS,
    _VERBATIM_ARG,
)

__all__ = ["to_html", "to_text", "snippet_html", "math_spans", "truncate", "MARK_OPEN", "MARK_CLOSE"]

# Private-use stand-ins for <mark> / </mark> while a highlighted snippet is converted.
MARK_OPEN = "\ue000"
MARK_CLOSE = "\ue001"
_SENTINELS = re.compile("[\ue000\ue001]")

_ACCENT_ARG = re.compile(r"[ \t]*(?:\{[ \t]*(\\[ij](?![A-Za-z])|[A-Za-z])?[ \t]*\}|(\\[ij](?![A-Za-z])|[A-Za-z]))")
_LETTER_ACCENT_ARG = re.compile(r"(?:[ \t]*\{[ \t]*(\\[ij](?![A-Za-z])|[A-Za-z])?[ \t]*\}|[ \t]+([A-Za-z]))")

_WORD = re.compile(r"[A-Za-z]+")
_SKIP_SPACE = re.compile(r"[ \t]*(?:\n[ \t]*)?(?!\n)")
_PLAIN = re.compile("[^\\\\{}$`'\\-~^_\ue000\ue001]+")
_URL = re.compile(r"(?<![\w/@.])(?:(?:https?|ftp)://|www\.)[^\s{}$\\<>\"\ue000\ue001]+")
_DASHES = re.compile(r"-+")
_SCAN = re.compile(r"[\\$]")
# Characters that can end math or change how it ends (delimiters start with "$" or "\\").
_END_SCAN = re.compile(r"[\\${}]")
_END_SCAN_FLAT = re.compile(r"[\\$]")
_OPT_ARG = re.compile(r"[ \t]*\[[^\]\n]{0,200}\]")
# ~ in arXiv abstracts mostly means "about" (z~2.56, ~500 km/s); it is LaTeX's
# non-breaking space only between words (et~al., E.~M.~Stein, Fig.~3, Section~2).
_TIE_BEFORE_NUMBER = re.compile(
    r"(?:\.|\b(?:Section|Sections|Sec|Sect|Table|Tables|Figure|Figures|Fig|Figs|Eq|Eqs|Equation|Equations|"
    r"Ref|Refs|Reference|References|Theorem|Lemma|Corollary|Proposition|Definition|Chapter|Appendix|Part|"
    r"Example|Remark|Conjecture|Step|Case|Algorithm))$")


def _find_end(text: str, delim: str, start: int, braces: bool) -> int:
    """KaTeX auto-render's findEndOfMath: the index of the closing ``delim`` at brace depth 0."""
    i, depth, n = start, 0, len(text)
    scan = _END_SCAN if braces else _END_SCAN_FLAT
    while i < n:
        m = scan.search(text, i)
        if not m:
            return -1
        i = m.start()
        c = text[i]
        if depth <= 0 and text.startswith(delim, i):
            return i
        if c == "\\":
            i += 1
        elif braces and c == "{":
            depth += 1
        elif braces and c == "}":
            depth -= 1
        i += 1
    return -1


def _math_at(text: str, i: int, braces: bool = True) -> tuple[int, int] | None:
    """``(end, delimiter length)`` of the math region starting at ``i``, or None if unterminated."""
    for left, right in (("$$", "$$"), ("\\[", "\\]"), ("$", "$"), ("\\(", "\\)")):
        if text.startswith(left, i):
            end = _find_end(text, right, i + len(left), braces)
            if end < 0 or (left == "$" and end == i + 1):
                return None
            return end + len(right), len(left)
    return None


def math_spans(text: str, *, braces: bool = True) -> list[tuple[int, int]]:
    """``[(start, end), ...]`` of the math regions of ``text`` (delimiters included).

    ``braces=True`` follows KaTeX (a closing delimiter only counts at brace depth 0);
    ``braces=False`` follows TeX, where ``$`` simply toggles. An escaped ``\\$`` never
    opens math; an unterminated delimiter is text and scanning goes on after it.
    """
    spans, i, n = [], 0, len(text)
    while i < n:
        m = _SCAN.search(text, i)  # only "\\" and "$" matter: jump to the next one
        if not m:
            break
        i = m.start()
        c = text[i]
        if c == "\\":
            if i + 1 < n and text[i + 1] in "([":
                m = _math_at(text, i, braces)
                if m:
                    spans.append((i, m[0]))
                    i = m[0]
                    continue
            i += 2
        elif c == "$":
            m = _math_at(text, i, braces)
            if m:
                spans.append((i, m[0]))
                i = m[0]
            else:
                i += 2 if text.startswith("$$", i) else 1
    return spans


def truncate(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters at a space outside math (no ellipsis added)."""
    if len(text) <= limit:
        return text
    spans = math_spans(text)
    cut = limit
    for _ in range(64):
        sp = text.rfind(" ", 0, cut + 1)
        if sp <= 0:
            break
        inside = next((s for s in spans if s[0] < sp < s[1]), None)
        if inside is None:
            return text[:sp].rstrip()
        cut = inside[0]
    # No space outside math: cut before the first math region that crosses the limit.
    crossing = next((s for s in spans if s[0] < limit < s[1]), None)
    return text[:crossing[0]].rstrip() if crossing and crossing[0] > 0 else text[:limit]


class _Renderer:
    """One pass over the source with a stack of open groups (each remembers its closing tags)."""

    def __init__(self, text: str, as_html: bool):
        self.s = text
        self.html = as_html
        self.out: list[str] = []
        # Frame: [closing tags (innermost last), keep braces literally, trailing text]
        self.stack: list[list] = [[[], False, ""]]
        self.keep_next = False
        self.marked = False  # a <mark> is open (always innermost)
        self.urls = [(m.start(), m.end()) for m in _URL.finditer(text)]
        self.url_i = 0

    # -- output -----------------------------------------------------------------
    def emit(self, s: str) -> None:
        if s:
            self.out.append(html.escape(s) if self.html else s)

    def tag(self, s: str) -> None:
        if self.html:
            self.out.append(s)

    def nomath(self, s: str) -> None:
        # A lone/escaped delimiter in its own element: auto-render works per text node,
        # so it can never pair with a "$" elsewhere.
        if self.html:
            self.out.append(f'<span class="nomath">{html.escape(s)}</span>')
        else:
            self.out.append(s)

    # A highlight is always the innermost element: before any tag opens or closes it is
    # closed, and reopened after, so <mark> and <em> can never cross.
    def open_frame(self, tags: list[str] | None = None, keep: bool = False, trailing: str = "",
                   leading: str = "") -> None:
        marked = self.unmark()
        if keep:
            self.emit("{")
        self.emit(leading)
        for t in tags or []:
            self.tag(f"<{t}>")
        self.stack.append([list(tags or []), keep, trailing])
        self.remark(marked)

    def declare(self, tag: str) -> None:
        if tag:
            marked = self.unmark()
            self.tag(f"<{tag}>")
            self.stack[-1][0].append(tag)
            self.remark(marked)

    def close_frame(self, final: bool = False) -> None:
        if len(self.stack) == 1 and not final:
            return  # a stray "}" is LaTeX syntax, not text
        marked = self.unmark()
        tags, keep, trailing = self.stack.pop()
        for t in reversed(tags):
            self.tag(f"</{t}>")
        self.emit(trailing)
        if keep:
            self.emit("}")
        self.remark(marked and bool(self.stack))

    def unmark(self) -> bool:
        if self.marked:
            self.tag("</mark>")
            self.marked = False
            return True
        return False

    def remark(self, marked: bool) -> None:
        if marked:
            self.tag("<mark>")
            self.marked = True

    def mark(self, opening: bool) -> None:
        if opening and not self.marked:
            self.remark(True)
        elif not opening:
            self.unmark()

    # -- parsing ----------------------------------------------------------------
    def balanced_arg(self, i: int) -> tuple[str, int] | None:
        """The raw text of a ``{...}`` argument at ``i`` (after spaces) and the index after it."""
        j = i
        while j < len(self.s) and self.s[j] in " \t":
            j += 1
        if j >= len(self.s) or self.s[j] != "{":
            return None
        depth, k = 0, j
        while k < len(self.s):
            c = self.s[k]
            if c == "\\":
                k += 2
                continue
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
                if depth == 0:
                    return self.s[j + 1:k], k + 1
            k += 1
        return None

    def brace_next(self, i: int) -> int:
        """Index just inside a ``{`` that follows ``i`` (after spaces), or -1."""
        j = i
        while j < len(self.s) and self.s[j] in " \t":
            j += 1
        return j + 1 if j < len(self.s) and self.s[j] == "{" else -1

    def accent(self, acc: str, m: re.Match | None) -> bool:
        if not m:
            return False
        base = m.group(1) or m.group(2)
        if base is None:
            self.emit(_SPACING.get(acc, ""))
        else:
            base = {"\\i": "i", "\\j": "j"}.get(base, base)
            self.emit(unicodedata.normalize("NFC", base + _ACCENTS[acc]))
        return True

    def command(self, i: int) -> int:
        """Handle the backslash at ``i``; returns the next index."""
        s = self.s
        if i + 1 >= len(s):
            self.emit("\\")
            return i + 1
        c = s[i + 1]
        if not c.isascii() or not c.isalpha():
            if c in "'`\"^~=.":
                m = _ACCENT_ARG.match(s, i + 2)
                if self.accent(c, m):
                    return m.end()
                self.emit("\\" + c)  # an accent on nothing we know: its source
                return i + 2
            if c == "$":
                self.nomath("$")
                return i + 2
            if c in _CONTROL_SYMBOLS:
                self.emit(_CONTROL_SYMBOLS[c])
                return i + 2
            if c in ")]":  # closing delimiter with no opening one
                self.nomath("\\" + c)
                return i + 2
            if c in "([":  # unterminated \( or \[
                self.nomath("\\" + c)
                return i + 2
            self.emit("\\")
            return i + 1
        name = _WORD.match(s, i + 1).group(0)
        j = i + 1 + len(name)
        after = _SKIP_SPACE.match(s, j).end()
        if name in _ACCENTS:  # \c{c}, \v s, \u{g}
            m = _LETTER_ACCENT_ARG.match(s, j)
            if self.accent(name, m):
                return m.end()
        if name in _SYMBOLS:
            self.emit(_SYMBOLS[name])
            return after + 2 if s.startswith("{}", after) else after
        if name in _TEXT_CMDS:
            tag = _TEXT_CMDS[name]
            if tag is None:  # \foreignlanguage{lang}{text}
                arg = self.balanced_arg(j)
                j = arg[1] if arg else j
                tag = ""
            k = self.brace_next(j)
            if k < 0:
                return after
            self.open_frame([tag] if tag else [])
            return k
        if name in _DECLARATIONS:
            self.declare(_DECLARATIONS[name])
            return after
        if name in _VERBATIM_ARG or name in _CITES or name in _REFS or name in _DROP_ARG:
            k = j
            while True:
                m = _OPT_ARG.match(s, k)
                if not m:
                    break
                k = m.end()
            if s.startswith("*", k):
                k += 1
            arg = self.balanced_arg(k)
            if arg:
                body = arg[0].strip()
                if name in _CITES:
                    self.emit(f"[{body}]")
                elif name == "eqref":
                    self.emit(f"({body})")
                elif name not in _DROP_ARG:
                    self.emit(body)
                return arg[1]
        if name == "href":
            arg = self.balanced_arg(j)
            if arg and self.brace_next(arg[1]) >= 0:
                self.open_frame()
                return self.brace_next(arg[1])
        if name in _FOOTNOTES:
            k = self.brace_next(j)
            if k >= 0:
                self.open_frame(leading=" (", trailing=")")
                return k
        # Unknown: its source as written; braces right after it stay too (\mathcal{S}).
        self.emit("\\" + name)
        if s.startswith("{", j):
            self.keep_next = True
        return j

    def tie(self, i: int) -> None:
        before = self.s[max(0, i - 24):i]
        nxt = self.s[i + 1:i + 2]
        prev = before[-1:] if before else ""
        if prev.isalpha() and (nxt.isalpha() or nxt == "\\"):
            self.emit("\u00a0")
        elif prev in ".," and (nxt.isalnum() or nxt == "\\") and prev:
            self.emit("\u00a0")
        elif nxt.isdigit() and _TIE_BEFORE_NUMBER.search(before):
            self.emit("\u00a0")
        else:
            self.emit("~")

    def run(self) -> str:
        s, n, i = self.s, len(self.s), 0
        while i < n:
            while self.url_i < len(self.urls) and self.urls[self.url_i][0] < i:
                self.url_i += 1
            if self.url_i < len(self.urls) and self.urls[self.url_i][0] == i:
                self.emit(s[i:self.urls[self.url_i][1]])
                i = self.urls[self.url_i][1]
                continue
            c = s[i]
            keep, self.keep_next = self.keep_next, False
            if c == "$" or (c == "\\" and s[i + 1:i + 2] in ("(", "[")):
                m = _math_at(s, i)
                if m:
                    self.math(s[i:m[0]])
                    i = m[0]
                elif c == "$":
                    lone = "$$" if s.startswith("$$", i) else "$"
                    self.nomath(lone)
                    i += len(lone)
                else:
                    i = self.command(i)
            elif c == "\\":
                i = self.command(i)
            elif c == "{":
                self.open_frame(keep=keep)
                i += 1
            elif c == "}":
                self.close_frame()
                i += 1
            elif c == MARK_OPEN or c == MARK_CLOSE:
                self.mark(c == MARK_OPEN)
                self.keep_next = keep  # a highlight is invisible to LaTeX
                i += 1
            elif c == "`":
                dbl = s.startswith("``", i)
                self.emit("“" if dbl else "‘")
                i += 2 if dbl else 1
            elif c == "'":
                dbl = s.startswith("''", i)
                self.emit("”" if dbl else "’")
                i += 2 if dbl else 1
            elif c == "-":
                run = _DASHES.match(s, i).group(0)
                self.emit({2: "–", 3: "—"}.get(len(run), run))
                i += len(run)
            elif c == "~":
                self.tie(i)
                i += 1
            elif c in "^_":
                self.emit(c)
                self.keep_next = s.startswith("{", i + 1)  # V_{gas} stays V_{gas}
                i += 1
            else:
                end = _PLAIN.match(s, i).end()
                if self.url_i < len(self.urls):
                    end = min(end, max(self.urls[self.url_i][0], i + 1))
                self.emit(s[i:end])
                i = end
        while self.stack:
            self.close_frame(final=True)
        return "".join(self.out)

    def math(self, raw: str) -> None:
        # Highlights inside math would split KaTeX's text node: drop them there.
        self.emit(_SENTINELS.sub("", raw))


@lru_cache(maxsize=8192)  # the same titles and abstracts are rendered on many pages and mails
def to_html(text: str | None) -> str:
    """Safe HTML for LaTeX source ``text``: text-mode LaTeX rendered, math kept for KaTeX."""
    if not text:
        return ""
    return _Renderer(_SENTINELS.sub("", text), True).run()


@lru_cache(maxsize=8192)
def to_text(text: str | None) -> str:
    """Plain text for LaTeX source ``text`` (accents, quotes, dashes; math as written)."""
    if not text:
        return ""
    return _Renderer(_SENTINELS.sub("", text), False).run()


_MARK_TAGS = re.compile(r"<mark>|</mark>", re.I)


def snippet_html(snippet: str | None) -> str:
    """Safe HTML for a search snippet: escaped LaTeX source with ``<mark>`` highlights.

    The snippet is unescaped once (it works whether the producer escaped its text or
    not), the highlights become private-use stand-ins the renderer carries through
    (dropped inside math, re-nested around ``<em>``), then everything is rendered.
    """
    if not snippet:
        return ""
    raw = html.unescape(_MARK_TAGS.sub(lambda m: MARK_CLOSE if m.group(0)[1] == "/" else MARK_OPEN,
                                       _SENTINELS.sub("", snippet)))
    return _Renderer(raw, True).run()
