"""BibTeX export: each field escaped once, braces balanced, readable unique keys, and a
round trip through bibtexparser over every shared arXiv record."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from paperwire import export, latex
from paperwire.export import bib_escape, bibtex_entry, bibtex_key, to_bibtex, to_bibtex_all, unique_keys

bibtexparser = pytest.importorskip("bibtexparser")

ARXIV = ("arxiv-metadata-200.jsonl", "arxiv-metadata-2000.csv")


def _paper(**kw) -> dict:
    base = {"paper_id": "0704.0001", "arxiv_id": "0704.0001", "title": "A study", "abstract": "",
            "authors": ["Ada Lovelace"], "published": "2007-04-02T19:18:42Z", "primary_category": "hep-ph"}
    base.update(kw)
    return base


def raw_balanced(s: str) -> bool:
    """Balanced the way BibTeX counts: every brace, escaped or not."""
    depth = 0
    for c in s:
        depth += (c == "{") - (c == "}")
        if depth < 0:
            return False
    return depth == 0


@pytest.mark.parametrize("src,want", [
    ("$B_n$ graphs", "$B_n$ graphs"),                       # math stays as written
    (r"{\em if} and only if", r"{\em if} and only if"),      # commands stay
    (r"Bal\'azs and Schr{\"o}dinger", r"Bal\'azs and Schr{\"o}dinger"),
    ("50% & #1 a_b", r"50\% \& \#1 a\_b"),                   # escaped outside math
    (r"50\% \& \#1 a\_b", r"50\% \& \#1 a\_b"),              # ... once
    ("$a_1 % b & c$ and 5%", r"$a_1 % b & c$ and 5\%"),      # not inside math
    ("cm^{-3}", r"cm\^{}{-3}"),
    ("costs $5", r"costs \$5"),                              # a lone $ opens no math
    (r"costs \$5 and \$10", r"costs \$5 and \$10"),
    ("ends with \\", r"ends with \textbackslash{}"),
    ("two\n  lines", "two lines"),
    ("in}$D$ - Dimensions", "in$D$ - Dimensions"),            # unpaired bare brace: dropped
    ("{open", "open"),
    (r"set \{x", r"set \textbraceleft{}x"),                  # unpaired escaped brace: printed the same
    (r"$\{x$", r"$\lbrace x$"),
    (r"$\{x\}$ {a}", r"$\{x\}$ {a}"),
    ("", ""),
])
def test_bib_escape(src, want):
    assert bib_escape(src) == want
    assert raw_balanced(bib_escape(src))


def test_issue_examples_are_escaped_once():
    entry = to_bibtex(_paper(title="On $B_n$ and {\\em if}", abstract="We show $B_n$ {\\em if} 10% of & #"))
    assert "title = {{On $B_n$ and {\\em if}}}" in entry
    assert "abstract = {We show $B_n$ {\\em if} 10\\% of \\& \\#}" in entry
    assert "textbackslash" not in entry and "\\$B" not in entry


@pytest.mark.parametrize("paper,key", [
    (_paper(authors=["C. Balázs", "E. L. Berger"], title="Calculation of prompt diphoton production"),
     "balazs2007calculation"),
    (_paper(authors=["Jörg Straße Jr."], title="The Theory of everything"), "strasse2007theory"),
    (_paper(authors=["Søren Øster"], title="$\\mathcal{N}=4$ super Yang-Mills"), "oster2007super"),
    (_paper(authors=["C.-P. Yuan"], title="On the {\\em ab initio} method"), "yuan2007initio"),
    (_paper(authors=["Lovelace, Ada"], title="Notes"), "lovelace2007notes"),
    (_paper(authors=[], title="Deep learning for graphs"), "anon-2007-deep-learning"),
    (_paper(published=None, title="Deep learning for graphs"), "lovelace-nodate-deep-learning"),
    (_paper(authors=[], published="", title="The a"), "anon-nodate-the-a"),
    (_paper(title="3D: a to b"), "lovelace20073d"),
    (_paper(authors=["王小明"], published=None, title=""), "anon-nodate-untitled"),
])
def test_keys(paper, key):
    assert bibtex_key(paper) == key


def test_keys_dedupe_with_letters():
    p = _paper(title="Quantum gravity")
    q = _paper(title="Quantum gravity", published="2008-01-01T00:00:00Z")
    papers = [p, p, q, p]
    assert unique_keys(papers) == ["lovelace2007quantum", "lovelace2007quantuma", "lovelace2008quantum",
                                   "lovelace2007quantumb"]
    keys = [re.match(r"@\w+\{([^,]+),", e).group(1) for e in to_bibtex_all(papers)]
    assert keys == unique_keys(papers)
    # a natural key that looks like a suffixed one is not handed out twice
    dedupe = export.KeyDeduper()
    assert [dedupe("x2007a"), dedupe("x2007"), dedupe("x2007")] == ["x2007a", "x2007", "x2007b"]


def test_entry_api_for_library_export():
    entry = bibtex_entry(_paper(), "my key,}", [("keywords", "ml, 50% & more"), ("annote", "")])
    lib = bibtexparser.parse_string(entry)
    assert lib.failed_blocks == []
    (e,) = lib.entries
    assert e.key == "mykey"
    assert e.fields_dict["keywords"].value == r"ml, 50\% \& more"
    assert "annote" not in e.fields_dict


def test_names_with_commas_or_and_stay_whole():
    entry = to_bibtex(_paper(authors=["Smith, John", "Research and Development Team", "Ann Lee"]))
    lib = bibtexparser.parse_string(entry)
    assert lib.entries[0].fields_dict["author"].value == "{Smith, John} and {Research and Development Team} and Ann Lee"


def _norm(s: str) -> str:
    """What a field says, with the one-time escaping undone (test-side, independent of export.py)."""
    s = " ".join((s or "").split())
    s = s.replace(r"\^{}", "^").replace(r"\textbackslash{}", "\\")
    return re.sub(r"\\([%&#_$])", r"\1", s)


def _unbraced(s: str) -> str:
    return re.sub(r"\\?[{}]|\\textbrace(left|right)\{\}|\\[lr]brace ", "", s)


def _check_round_trip(papers: list[dict]) -> None:
    text = "\n".join(to_bibtex_all(papers))
    lib = bibtexparser.parse_string(text)
    assert lib.failed_blocks == []
    assert len(lib.entries) == len(papers)
    keys = [e.key for e in lib.entries]
    assert len(set(keys)) == len(keys)
    assert all(re.fullmatch(r"[a-z]+\d{4}[a-z0-9]+|[a-z]+-(\d{4}|nodate)(-[a-z0-9]+)+", k) for k in keys), keys[:5]
    unbalanced = 0
    for paper, e in zip(papers, lib.entries):
        f = {k: v.value for k, v in e.fields_dict.items()}
        title = f["title"]
        assert title.startswith("{") and title.endswith("}")
        title = title[1:-1]
        for got, stored in ((title, paper["title"]), (f.get("abstract", ""), paper.get("abstract") or "")):
            assert raw_balanced(got), got
            assert "\\textbackslash" not in got or stored.rstrip().endswith("\\")
            if raw_balanced(stored):
                assert _norm(got) == _norm(stored)  # nothing lost, nothing escaped twice
                for a, b in latex.math_spans(" ".join(stored.split()), braces=False):
                    assert " ".join(stored.split())[a:b] in got  # math byte for byte
            else:
                unbalanced += 1
                assert _unbraced(_norm(got)) == _unbraced(_norm(stored))
        want = [("{" + _norm(a) + "}" if "," in a or " and " in a else _norm(a)) for a in paper["authors"]]
        if paper["authors"]:
            assert [_norm(a) for a in f["author"].split(" and ")] == want
        assert f["eprint"] == paper["arxiv_id"]
        if paper.get("doi"):
            assert f["doi"] == " ".join(paper["doi"].split())
        if paper.get("published"):
            assert f["year"] == paper["published"][:4]
    assert unbalanced < len(papers) // 50  # a few real abstracts have stray braces


@pytest.fixture
def arxiv_dir(shared_dir) -> Path:
    folder = shared_dir / "data" / "arxiv"
    if not all((folder / f).is_file() for f in ARXIV):
        pytest.skip(f"shared arXiv samples not found in {folder}")
    return folder


def test_round_trip_all_shared_records(arxiv_dir):
    """All 2,200 records as parsed (the 200 JSON lines repeat 200 of the CSV's papers: keys get suffixes)."""
    from paperwire.sources import parse_path

    papers = []
    for name in ARXIV:
        for r in parse_path(arxiv_dir / name):
            assert not hasattr(r, "reason"), r
            papers.append({"paper_id": r.arxiv_id, "arxiv_id": r.arxiv_id, "title": r.title, "abstract": r.abstract,
                           "authors": r.authors, "published": r.published, "doi": r.doi,
                           "journal_ref": r.journal_ref, "primary_category": (r.categories or [None])[0]})
    assert len(papers) == 2200
    _check_round_trip(papers)
    keys = unique_keys(papers)
    assert keys[0] == "balazs2007calculation" and "balazs2007calculationa" in keys


def test_round_trip_from_the_store(arxiv_dir, tmp_path):
    """The export as the site and CLI make it: from a real SQLite store."""
    from paperwire.sources import import_files
    from paperwire.store import connect
    from paperwire.store.papers import iter_papers

    conn = connect(tmp_path / "pw.db")
    import_files(conn, [arxiv_dir / n for n in ARXIV])
    papers = list(iter_papers(conn))
    assert len(papers) == 2000
    _check_round_trip(papers)
