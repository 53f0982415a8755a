"""Issue 14, paraphrases: real words are searched as typed (never "corrected"), and the lexical
weight follows how much of the query its best matches cover."""

from __future__ import annotations

import math
import re
from dataclasses import replace

import pytest

from paperwire.index import spell
from paperwire.index.build import update_index
from paperwire.index.coverage import lexical_coverage, lexical_strength, lexical_trust
from paperwire.index.embeddings import FakeEmbedder
from paperwire.index.hybrid import DEFAULT_FUSION
from paperwire.index.query import parse_query
from paperwire.index.search import search
from paperwire.ingest import import_records
from paperwire.model import PaperRecord


class ConceptEmbedder(FakeEmbedder):
    """The fake embedder after mapping synonyms to one word: texts that say the same thing in
    other words get a high cosine, as a real model gives them."""

    SAME = {"rashes": "skin", "moles": "skin", "lesions": "skin", "dermatology": "skin",
            "complexions": "tone", "tones": "tone", "darker": "tone", "photo": "image", "images": "image"}

    def __init__(self):
        super().__init__(name="concept-64")

    def encode(self, texts, *, batch_size: int = 64):
        word = re.compile(r"\w+")
        return super().encode([word.sub(lambda m: self.SAME.get(m.group(0).lower(), m.group(0)), t) for t in texts])


def _load(conn, rows):
    import_records(conn, [PaperRecord(source="t", authors=["A B"], categories=["cs.CV"],
                                      published="2024-02-01T00:00:00Z", **r) for r in rows])


# The right paper shares no word with the query; the wrong one shares only "photo". Each other
# query word is in some unrelated paper, so it counts in the query's idf.
PARAPHRASE = "photo of rashes moles darker complexions"
ROWS = [
    dict(arxiv_id="2402.00001", title="Dermatology images of skin lesions across skin tones",
         abstract="A dataset of skin lesions images for dermatology, labelled across skin tones by experts."),
    dict(arxiv_id="2402.00002", title="A photo survey of spiral galaxies",
         abstract="Telescope plates of spiral galaxies, digitised and catalogued for morphology studies."),
    dict(arxiv_id="2402.00003", title="Field mice burrows", abstract="Moles dig deeper burrows than field mice do in clay soils."),
    dict(arxiv_id="2402.00004", title="Sunburn in sailors", abstract="Rashes after long exposure at sea were logged for a season."),
    dict(arxiv_id="2402.00005", title="Paint chemistry", abstract="Darker pigments fade more slowly under ultraviolet light."),
    dict(arxiv_id="2402.00006", title="Victorian portraits", abstract="Complexions in painted portraits followed the fashions of the day."),
] + [dict(arxiv_id=f"2402.{i:05d}", title=f"Lattice note {i}", abstract=f"Notes on lattices in number theory, part {i}.")
     for i in range(7, 13)]


def test_english_words_and_prefixed_known_words_are_never_corrected(conn):
    _load(conn, [dict(arxiv_id="2401.00001", title="Attention for motors", abstract="Trainable cases of attention in motors."),
                 dict(arxiv_id="2401.00002", title="Lines and lanes", abstract="Attention to lines.")])
    update_index(conn, semantic=False)
    sp = spell.get_speller(conn)
    assert sp.correct("atention").suggestion == "attention"          # a typo is still fixed
    assert sp.correct("rashes") is None                              # not "cases": an English word
    assert sp.correct("motorist") is None                            # not "motors"
    assert sp.correct("untrainable") is None                         # "trainable" with a prefix
    res = search(conn, "rashes attention", mode="lexical")
    assert res.corrected_from is None and res.suggestion is None and res.hits
    # Half the words in no paper but real words: searched as typed, nothing offered.
    res = search(conn, "rashes motorist attention motors", mode="lexical")
    assert res.corrected_from is None and res.suggestion is None
    # A typo beside a real word that no paper contains: the typo is the only unknown word, and
    # the corrected query keeps the real word as typed.
    res = search(conn, "rashes atention", mode="lexical")
    assert res.corrected_from == "rashes atention" and res.query == "rashes attention"
    assert res.notes[0] == 'showing results for "rashes attention" (no paper contains "atention")'


def test_english_word_list_is_read_from_symspellpy():
    words = spell.english_words()
    assert len(words) > 80_000 and {"rashes", "motorist", "street"} <= words
    assert not {"thoght", "recieve", "retreival"} & words


def test_coverage_is_the_best_matchs_share_of_the_query_idf(engine_conn):
    conn = engine_conn
    from paperwire.index.fastlex import fast_ready

    _load(conn, ROWS)
    update_index(conn, semantic=False)
    fast = fast_ready(conn)
    rowid = {pid: r for r, pid in conn.execute("SELECT id, paper_id FROM papers")}
    idf = fast.term_idf(["photo", "rashes", "moles", "darker", "complexions"])
    assert set(idf) == {"photo", "rash", "mole", "darker", "complexion"}
    total = sum(idf.values())
    galaxies, sailors, lattice = rowid["2402.00002"], rowid["2402.00004"], rowid["2402.00007"]
    words = parse_query(PARAPHRASE).words   # as search() passes them: stopwords dropped
    assert words == ["photo", "rashes", "moles", "darker", "complexions"]
    assert lexical_coverage(conn, idf, [galaxies]) == pytest.approx(idf["photo"] / total)
    # The best of the first few counts; a word no paper contains adds nothing to the whole.
    best = max(idf["photo"], idf["rash"]) / total
    assert lexical_coverage(conn, fast.term_idf(words + ["zzqx"]), [lattice, galaxies, sailors]) == pytest.approx(best)
    assert lexical_coverage(conn, idf, [lattice]) == 0.0
    assert lexical_coverage(conn, idf, []) == 0.0
    assert lexical_coverage(conn, fast.term_idf(["zzqx"]), [galaxies]) == 0.0
    assert lexical_coverage(conn, idf, [lattice] * 5 + [galaxies], top=5) == 0.0  # past the top
    # What fusion gets: the floor's scale and the gate's trust (0: the best match covers a fifth).
    scale, trust = lexical_strength(conn, fast, words, [galaxies, sailors], DEFAULT_FUSION)
    assert scale == pytest.approx(DEFAULT_FUSION.lexical_floor * total) and trust == 0.0
    assert lexical_strength(conn, fast, words, [galaxies], DEFAULT_FUSION, by_relevance=False)[1] == 1.0
    assert lexical_strength(conn, None, words, [galaxies], DEFAULT_FUSION) == (0.0, 1.0)
    # A quoted phrase: its matches hold it, whatever the words around it cover.
    assert lexical_strength(conn, fast, words, [galaxies], DEFAULT_FUSION, phrases=True)[1] == 1.0
    assert lexical_strength(conn, fast, [], [galaxies], DEFAULT_FUSION, phrases=True) == (0.0, 1.0)


def test_lexical_trust_ramps_between_the_bounds():
    assert lexical_trust(0.1, 0.25, 0.4) == 0.0
    assert lexical_trust(0.25, 0.25, 0.4) == 0.0
    assert lexical_trust(0.325, 0.25, 0.4) == pytest.approx(0.5)
    assert lexical_trust(0.9, 0.25, 0.4) == 1.0
    assert lexical_trust(0.0, 0.0, 0.0) == 1.0            # the gate off
    assert lexical_trust(0.3, 0.3, 0.3) == 1.0 and lexical_trust(0.2, 0.3, 0.3) == 0.0


def test_a_paraphrase_ranks_by_meaning_when_its_lexical_matches_cover_little(conn):
    _load(conn, ROWS)
    emb = ConceptEmbedder()
    update_index(conn, embedder=emb)
    # The floor off, to see the gate alone: at full lexical weight the galaxy survey's one
    # shared word ("photo") outranks the paper that means what the query says.
    no_floor = replace(DEFAULT_FUSION, lexical_floor=0.0)
    ungated = search(conn, PARAPHRASE, embedder=emb, fusion=replace(no_floor, coverage_high=0.0))
    gated = search(conn, PARAPHRASE, embedder=emb, fusion=no_floor)
    assert ungated.hits[0].paper_id == "2402.00002"
    assert gated.hits[0].paper_id == "2402.00001"
    # The default (floor and gate): the same, and the lexical matches are still results.
    res = search(conn, PARAPHRASE, embedder=emb)
    assert res.hits[0].paper_id == "2402.00001" and "2402.00002" in {h.paper_id for h in res.hits}
    assert res.corrected_from is None and res.suggestion is None
    # A query its lexical match covers keeps the lexical weight: the survey by its own words.
    assert search(conn, "photo survey spiral galaxies", embedder=emb).hits[0].paper_id == "2402.00002"



def test_a_quoted_phrase_keeps_the_full_lexical_weight(conn, monkeypatch):
    from paperwire.index import search as search_mod

    _load(conn, ROWS)
    emb = ConceptEmbedder()
    update_index(conn, embedder=emb)
    trusts = []
    real = search_mod.fuse
    monkeypatch.setattr(search_mod, "fuse", lambda *a, **kw: trusts.append(kw["lexical_trust"]) or real(*a, **kw))
    search(conn, PARAPHRASE, embedder=emb)
    quoted = search(conn, '"photo survey" rashes moles darker complexions', embedder=emb)
    # The paraphrase's one-word match weighs nothing; the phrase's matches hold the phrase.
    assert trusts == [0.0, 1.0] and [h.paper_id for h in quoted.hits] == ["2402.00002"]


def test_coverage_gate_changes_nothing_but_the_relevance_order(conn):
    _load(conn, ROWS)
    emb = ConceptEmbedder()
    update_index(conn, embedder=emb)
    for sort in ("date", "votes"):
        a = search(conn, PARAPHRASE, embedder=emb, sort=sort)
        b = search(conn, PARAPHRASE, embedder=emb, sort=sort, fusion=replace(DEFAULT_FUSION, coverage_high=0.0))
        assert [h.paper_id for h in a.hits] == [h.paper_id for h in b.hits] and a.total == b.total
    assert not math.isnan(search(conn, PARAPHRASE, embedder=emb).hits[0].score)
