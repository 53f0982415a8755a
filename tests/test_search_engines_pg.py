"""Search on a PostgreSQL store: tantivy is the lexical index there (no FTS5), vectors and
the typo vocabulary come from the store, and the answers equal SQLite's on the same corpus.

The CLI (``paperwire index`` / ``search`` / ``similar``) and the web search paths (page,
API, Atom) run against a ``postgresql://`` URL end to end.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from paperwire.index import fastlex
from paperwire.index.build import update_index
from paperwire.index.embeddings import FakeEmbedder
from paperwire.index.search import search, similar
from paperwire.store import papers
from paperwire.store.db import connect
from paperwire.store.meta import cache_base
from paperwire.store.meta import database_file
from tests.search_support import CORPUS, load_corpus
from tests.test_store_engines import run_cli

QUERIES = [
    dict(query="attention"),
    dict(query="attention", mode="hybrid"),
    dict(query="attention", mode="semantic"),
    dict(query="language models", sort="date"),
    dict(query="language models", sort="votes"),
    dict(query='"diffusion models"'),
    dict(query="attention -survey"),
    dict(query="networks year:2024"),
    dict(query="networks", cat="cs.LG"),
    dict(query="author:turing"),
    dict(query="author:turing", sort="votes"),
    dict(query="cat:cs -attention", sort="votes"),
    dict(query="cat:cs -attention"),
    dict(query="learning after:2023-06-01 before:2024-01-31", mode="lexical"),
    dict(query="atention transformr"),  # typos: corrected from the corpus vocabulary
    dict(query="protein folding", limit=2, offset=1),
]


def _answers(conn, emb) -> list:
    out = []
    for q in QUERIES:
        kw = dict(q)
        res = search(conn, kw.pop("query"), embedder=emb, **kw)
        out.append((q["query"], res.mode, [h.paper_id for h in res.hits], [round(h.score, 4) for h in res.hits],
                    res.total, res.total_exact, res.corrected_from, res.suggestion))
    return out


@pytest.fixture
def both(pg_url, tmp_path):
    fastlex.close_all()
    conns = {"sqlite": connect(str(tmp_path / "s.db")), "postgresql": connect(pg_url)}
    emb = FakeEmbedder()
    for c in conns.values():
        load_corpus(c)
        update_index(c, embedder=emb)
    yield conns, emb
    for c in conns.values():
        c.close()
    fastlex.close_all()


def test_same_results_on_both_engines(both):
    conns, emb = both
    sq, pg = (_answers(conns[k], emb) for k in ("sqlite", "postgresql"))
    for a, b in zip(sq, pg):
        assert a == b
    assert [a[1] for a in pg[:3]] == ["hybrid", "hybrid", "semantic"]  # vectors from the store
    assert pg[0][2][0] == "2402.00008"  # the survey: attention in title and abstract
    by_query = {a[0]: a for a in pg}
    assert "2402.00008" not in by_query["attention -survey"][2]
    assert by_query["atention transformr"][6] == "atention transformr"  # corrected on PostgreSQL too
    assert set(by_query["author:turing"][2]) == {"2401.00001", "2302.00003"}
    assert by_query["cat:cs -attention"][2] and "2401.00001" not in by_query["cat:cs -attention"][2]
    for pid in ("2401.00001", "2205.00004"):
        assert [h.paper_id for h in similar(conns["sqlite"], pid, limit=4)] == \
            [h.paper_id for h in similar(conns["postgresql"], pid, limit=4)]


def test_caches_live_in_a_per_database_folder(both, pg_url, tmp_path):
    conns, emb = both
    pg = conns["postgresql"]
    base = Path(database_file(pg))
    assert base == Path(cache_base(pg_url)) and not base.exists()
    assert base.parent.parent == Path(__import__("os").environ["PAPERWIRE_INDEX_DIR"])
    assert (base.parent / "store.tantivy" / "paperwire-rev").exists()
    from paperwire.index import vectors

    assert vectors.default_cache_dir(pg) == base.parent / "store.vectors"
    if vectors.ann_available():
        # The HNSW cache of a node is written there, and reloaded from there.
        idx = vectors.VectorIndex.load(pg, emb.name, kind="hnsw")
        assert idx.cache_path.parent == base.parent / "store.vectors" and idx.cache_path.exists()
        again = vectors.VectorIndex.load(pg, emb.name, kind="hnsw")
        assert again.load_info["source"] == "cache" and len(again) == len(CORPUS)
    other = pg_url.rsplit("/", 1)[0] + "/elsewhere"
    assert cache_base(other) != cache_base(pg_url)


def test_a_new_paper_and_a_hide_are_seen_without_reindexing(both, pg_url):
    """The node's tantivy replica follows the store's rev: a paper committed through another
    connection (another node or a worker) is found by the next search, a hidden one goes."""
    conns, emb = both
    pg = conns["postgresql"]
    assert search(pg, "quasar", mode="lexical").hits == []
    writer = connect(pg_url)
    try:
        load_corpus(writer, [dict(CORPUS[0], arxiv_id="2405.00099", title="Quasar Spectra at High Redshift",
                                  abstract="Quasar absorption lines trace the intergalactic medium.",
                                  upvotes=1)])
    finally:
        writer.close()
    res = search(pg, "quasar", mode="lexical")
    assert [h.paper_id for h in res.hits] == ["2405.00099"]
    from paperwire.store import accounts

    accounts.set_hidden(pg, papers.get_paper(pg, "2405.00099")["id"], True)
    assert search(pg, "quasar", mode="lexical").hits == []
    # update_index afterwards is incremental: only the new paper is embedded.
    rep = update_index(pg, embedder=emb)
    assert rep["embeddings"]["embedded"] == 1 and rep["lexical"]["indexed"] == 1


def test_removed_replica_is_rebuilt_from_the_store(both):
    conns, _ = both
    pg = conns["postgresql"]
    want = [h.paper_id for h in search(pg, "attention", mode="lexical").hits]
    import shutil

    fastlex.close_all()
    shutil.rmtree(Path(database_file(pg)).parent / "store.tantivy")
    assert [h.paper_id for h in search(pg, "attention", mode="lexical").hits] == want


def test_vocabulary_counts_match_sqlite_after_an_update(both):
    conns, emb = both
    from paperwire.store import vocab

    for c in conns.values():
        rec = dict(CORPUS[6], abstract="Observations of galaxy rotation curves constrain modified gravity.")
        load_corpus(c, [rec])
        update_index(c, embedder=emb)
    sq, pg = (sorted(vocab.terms(conns[k])) for k in ("sqlite", "postgresql"))
    assert sq == pg and ("gravity", 1) in pg and not any(t == "halos" for t, _ in pg)


def test_cli_index_search_similar_on_postgresql(pg_url, tmp_path):
    from tests.test_store_engines import write_snapshot

    src = write_snapshot(tmp_path / "snap.jsonl", 12)
    assert run_cli("import", str(src), db=pg_url, cwd=tmp_path).returncode == 0
    r = run_cli("index", "--embedder", "fake", "--json", db=pg_url, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert (rep["lexical"]["indexed"], rep["fast"]["indexed"], rep["embeddings"]["embedded"]) == (12, 12, 12)
    assert rep["lexical"]["vocabulary"] > 0 and rep["similar"]["computed"] == 12 and not rep["notes"]
    r = run_cli("index", "--embedder", "fake", "--json", db=pg_url, cwd=tmp_path)  # incremental: nothing to do
    rep = json.loads(r.stdout)
    assert (rep["lexical"]["indexed"], rep["fast"]["indexed"], rep["embeddings"]["embedded"]) == (0, 0, 0)
    r = run_cli("search", "graphs", "--json", "--mode", "lexical", db=pg_url, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert len(got) == 6 and all("graphs" in h["title"] for h in got)  # the odd ids
    r = run_cli("search", "graphs", "--json", "--embedder", "fake", db=pg_url, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    hybrid = json.loads(r.stdout)
    assert {h["id"] for h in got} <= {h["id"] for h in hybrid}
    r = run_cli("search", "grahps", db=pg_url, cwd=tmp_path)  # corrected from the store's vocabulary
    assert r.returncode == 0 and "graphs" in r.stdout + r.stderr, r.stdout + r.stderr
    r = run_cli("similar", "2403.00004", "--json", db=pg_url, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "2403.00004" not in r.stdout and json.loads(r.stdout)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snap.jsonl"]  # caches are not in the cwd


def test_web_search_paths_on_postgresql(both, pg_url):
    """The search page, the API and the Atom search feed on a real server over a
    PostgreSQL store: answers, never a 500."""
    import urllib.error
    import urllib.request

    from tests.web_support import live_server

    def get(url):
        try:
            with urllib.request.urlopen(url, timeout=30) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    with live_server(pg_url, embedder="fake") as base:
        for path in ("/search?q=attention", "/search?q=attention&sort=date", "/search?q=author%3Aturing",
                     "/search?q=cat%3Acs+-attention&sort=votes", "/search?q=%22diffusion+models%22",
                     "/search?q=atention", "/search?q=attention&mode=semantic", "/api/papers/search?q=attention",
                     "/api/papers/search?q=language+models&limit=3", "/feeds/search.atom?q=attention",
                     "/search?q=%22unclosed", "/search?q=-only", "/papers/2401.00001"):
            status, _ = get(base + path)
            assert status < 500, (path, status)
        status, page = get(base + "/search?q=attention")
        assert status == 200 and "A Survey of Attention Mechanisms" in page
        status, body = get(base + "/api/papers/search?q=attention")
        assert status == 200 and "A Survey of Attention Mechanisms" in body
        status, feed = get(base + "/feeds/search.atom?q=diffusion")
        assert status == 200 and "Diffusion Models for Image Synthesis" in feed


def test_without_tantivy_postgresql_says_so(both, monkeypatch):
    """No FTS5 to fall back on: a clear QueryError (a 4xx on the site), not a traceback."""
    from paperwire.index.query import QueryError

    conns, _ = both
    fastlex.close_all()
    monkeypatch.setattr(fastlex, "available", lambda: False)
    with pytest.raises(QueryError, match="needs tantivy"):
        search(conns["postgresql"], "attention", mode="lexical")
    assert search(conns["sqlite"], "attention", mode="lexical").hits  # FTS5 answers there
