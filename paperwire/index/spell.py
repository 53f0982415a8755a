"""Typo correction against the corpus vocabulary ("did you mean").

The vocabulary is every word of the indexed titles and abstracts with its document
frequency (``search_terms``, kept in step with the lexical index by ``update_index`` in
the same transactions, and rebuilt from ``search_fts`` when missing). Corrections come
from SymSpell (symmetric-delete lookup, Damerau-OSA distance: a swapped pair of letters
costs 1), the closest candidate winning and document frequency breaking ties, so the
common word beats a rare one at the same distance.

Rules (issue 14):

* a word in the vocabulary, or whose Porter stem is a vocabulary stem (``thoughts`` when
  only ``thought`` occurs: the lexical index matches it anyway), is never corrected;
* nor is a general English word that no paper contains (:func:`english_words`), or a known
  word behind a common prefix: a paraphrase's "rashes", "motorist" or "untrainable" is a
  real word, not a typo of "cases", "motors" or "trainable", and its meaning is what the
  semantic side searches for;
* short words are left alone (under 4 letters), as are words with digits (ids,
  model names); 4-5 letter words get at most 1 edit, longer ones 2;
* the in-process lookup table holds the ``MAX_TERMS`` most frequent words (df >= 2 once
  the corpus has 1,000 papers: a word seen once is as likely a typo as a word).
"""

from __future__ import annotations

import functools
import re
import sqlite3
import threading
from collections import Counter
from dataclasses import dataclass
from importlib import resources

from paperwire.index.query import STOPWORDS, tokens
from paperwire.store import search as search_sql
from paperwire.store import vocab as sql
from paperwire.store.db import transaction
from paperwire.store.meta import database_file

MAX_TERMS = 60_000     # words in the SymSpell table (~100 MB of Python objects at the cap)
MIN_WORD = 4           # shorter query words are never corrected
MAX_TERM_CHARS = 40    # longer tokens (hashes, URLs squashed) are not vocabulary
_ALPHA = re.compile(r"^[^\W\d_]+$", re.UNICODE)
# symspellpy's bundled English word list (Google Books n-gram counts of the SCOWL words):
# 82,765 words, no common misspellings ("recieve", "thoght" and "lenght" are not in it).
ENGLISH_LIST = "frequency_dictionary_en_82_765.txt"
# A known word behind one of these is a word too ("untrainable" is no typo of "trainable").
PREFIXES = ("un", "non", "anti", "counter", "de", "dis", "mis", "re", "pre", "post", "over", "under",
            "multi", "semi", "sub", "super", "co", "cross", "inter", "intra", "self")


def doc_terms(title: str, abstract: str) -> set[str]:
    """The distinct vocabulary words of one paper's title and abstract."""
    return {t for t in tokens(f"{title or ''} {abstract or ''}") if 1 < len(t) <= MAX_TERM_CHARS}


def delta_for(old: dict[int, tuple[str, str]], new: dict[int, tuple[str, str]]) -> Counter:
    """Document-frequency changes when papers' indexed text goes from ``old`` to ``new``
    (a rowid missing from ``new`` is a removal, one missing from ``old`` an addition)."""
    delta: Counter = Counter()
    for r in set(old) | set(new):
        before = doc_terms(*old[r]) if r in old else set()
        after = doc_terms(*new[r]) if r in new else set()
        for t in after - before:
            delta[t] += 1
        for t in before - after:
            delta[t] -= 1
    return delta


def vocab_built(conn: sqlite3.Connection) -> bool:
    return search_sql.get_state(conn, "vocab_built") == "1"


def rebuild_vocab(conn: sqlite3.Connection) -> int:
    """Recount the vocabulary from everything in the lexical index (one transaction).
    Returns the number of distinct words."""
    counts: Counter = Counter()
    for batch in sql.iter_indexed_texts(conn):
        for title, abstract in batch:
            counts.update(doc_terms(title, abstract))
    with transaction(conn):
        sql.clear_terms(conn)
        sql.bump_terms(conn, counts)
        search_sql.set_state(conn, "vocab_built", "1")
        _bump_rev(conn)
    return len(counts)


def _bump_rev(conn: sqlite3.Connection) -> None:
    search_sql.set_state(conn, "vocab_rev", int(search_sql.get_state(conn, "vocab_rev", "0")) + 1)


def apply_delta(conn: sqlite3.Connection, delta: Counter) -> None:
    """Write a frequency delta (inside the caller's transaction) and mark the vocabulary
    changed, so query processes reload their lookup table."""
    if delta:
        sql.bump_terms(conn, delta)
        _bump_rev(conn)


# ------------------------------------------------------------------ lookups


@functools.lru_cache(maxsize=1)
def english_words() -> frozenset[str]:
    """General English words, lower case (about 83k; a few MB, read once per process).
    Empty when symspellpy or its list is missing: then only the corpus vocabulary counts."""
    try:
        text = resources.files("symspellpy").joinpath(ENGLISH_LIST).read_text("utf-8")
    except (ImportError, OSError):
        return frozenset()
    return frozenset(line.split(" ", 1)[0] for line in text.splitlines() if line)


@dataclass
class Correction:
    word: str
    suggestion: str
    distance: int
    df: int


class Speller:
    """A SymSpell table over the most frequent vocabulary words plus the stems of all words."""

    def __init__(self, entries: list[tuple[str, int]], n_docs: int):
        from symspellpy import SymSpell

        self.n_docs = n_docs
        min_df = 2 if n_docs >= 1000 else 1
        table = sorted((e for e in entries if e[1] >= min_df and _ALPHA.match(e[0]) and len(e[0]) >= 3),
                       key=lambda e: -e[1])[:MAX_TERMS]
        self.sym = SymSpell(max_dictionary_edit_distance=2, prefix_length=7)
        for term, df in table:
            self.sym.create_dictionary_entry(term, df)
        from paperwire.index.lexical import stem

        # Stems only (a known word's stem is among them): half the memory of words + stems.
        words = [t for t, _ in entries]
        self.stems = set(stem(words)) if words else set()

    def is_known(self, word: str) -> bool:
        """In the corpus vocabulary, by stem."""
        from paperwire.index.lexical import stem

        return stem([word])[0] in self.stems

    def is_word(self, word: str) -> bool:
        """A word to search as typed, never a typo: in the vocabulary, an English word, or
        either with a common prefix ("untrainable", "nonconvex": not "trainable", "convex")."""
        english = english_words()
        if word in english or self.is_known(word):
            return True
        for p in PREFIXES:
            rest = word[len(p):]
            if word.startswith(p) and len(rest) >= MIN_WORD and (rest in english or self.is_known(rest)):
                return True
        return False

    def correct(self, word: str) -> Correction | None:
        """The correction for one lower-cased query word, or None (known, too short,
        not a plain word, or nothing close enough)."""
        from symspellpy import Verbosity

        if len(word) < MIN_WORD or not _ALPHA.match(word) or word in STOPWORDS or self.is_word(word):
            return None
        # Two edits only from 8 letters: in a shorter word they change a third of it, and what
        # they reach is mostly another word, not the one meant (SciFact train's gene names
        # "Deltex" -> "deleted", "Coatomer" typed "coatmer" -> "coated"; "chatbot" -> "chatgpt").
        # Typing slips are one edit (a swap counts as one), and those are still corrected.
        max_d = 1 if len(word) <= 7 else 2
        found = self.sym.lookup(word, Verbosity.CLOSEST, max_edit_distance=max_d, transfer_casing=False)
        if not found:
            return None
        # Closest; then one with the very letters typed (two swapped: "casues" is "causes", not
        # "cases" with a stray u); then the most frequent.
        letters = sorted(word)
        best = max(found, key=lambda s: (-s.distance, sorted(s.term) == letters, s.count, s.term))
        return Correction(word, best.term, int(best.distance), int(best.count))

    def corrections(self, words: list[str]) -> dict[str, Correction]:
        """``{word: Correction}`` for the words that need and have one."""
        out = {}
        for w in dict.fromkeys(words):
            c = self.correct(w)
            if c is not None:
                out[w] = c
        return out


_LOCK = threading.Lock()
_SPELLERS: dict[str, tuple[str, Speller]] = {}


def get_speller(conn: sqlite3.Connection) -> Speller | None:
    """The process-wide speller for this database (rebuilt when the vocabulary changed);
    None when the vocabulary is not built yet or symspellpy is missing."""
    try:
        import symspellpy  # noqa: F401
    except ImportError:
        return None
    rev = search_sql.get_state(conn, "vocab_rev")
    if rev is None:
        return None
    key = database_file(conn) or f":memory:{id(conn)}"
    with _LOCK:
        got = _SPELLERS.get(key)
    if got is not None and got[0] == rev:
        return got[1]
    entries = sql.terms(conn)
    if not entries:
        return None
    speller = Speller(entries, search_sql.count_indexed(conn))
    with _LOCK:
        _SPELLERS[key] = (rev, speller)
    return speller


def query_spelling(conn: sqlite3.Connection, words: list[str], raw: str) -> tuple[dict[str, Correction], list[str]]:
    """(corrections for a query's unknown words, the unknown words). Unknown: in no paper
    and not an English word (those are searched as typed). ``raw`` is the query as typed:
    a word typed with a capital inside (dLNs, ComYMV, BERTology) is an acronym or a name,
    not a typo, and is left alone."""
    if not words:
        return {}, []
    sp = get_speller(conn)
    if sp is None:
        return {}, []
    from paperwire.index.query import WORD

    unknown = [w for w in words if not sp.is_word(w)]
    named = {t.lower() for t in WORD.findall(raw) if t[1:] != t[1:].lower()}
    return (sp.corrections([w for w in unknown if w not in named]) if unknown else {}), unknown


def drop_spellers() -> None:
    """Forget the cached lookup tables (tests)."""
    with _LOCK:
        _SPELLERS.clear()


def rewrite_words(raw: str, fixes: dict[str, str], *, drop=()) -> str:
    """``raw`` with its bare words replaced per ``fixes`` (lower-case word -> replacement)
    and the words in ``drop`` removed; operators (``author:``, ``-word``, quoted phrases)
    are kept as typed."""
    from paperwire.index.query import _TOKEN, WORD

    drop = set(drop)

    def fix_word(m: re.Match) -> str:
        w = m.group(0).lower()
        if w in drop:
            return ""
        return fixes.get(w, m.group(0))

    out, pos = [], 0
    for m in _TOKEN.finditer(raw):
        out.append(raw[pos : m.start()])
        piece = m.group(0)
        if m.group("word") is not None and not m.group("neg") and not m.group("key"):
            piece = WORD.sub(fix_word, piece)
        out.append(piece)
        pos = m.end()
    out.append(raw[pos:])
    return " ".join("".join(out).split())
