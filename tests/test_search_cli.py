"""CLI: paperwire index / search / search --batch / similar / eval."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from paperwire.cli import cli
from paperwire.store.db import connect
from tests.search_support import load_corpus


@pytest.fixture
def cdb(db_path):
    c = connect(db_path)
    load_corpus(c)
    c.close()
    return str(db_path)


def run(*args, input=None):
    res = CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)
    return res


def test_index_search_similar_json(cdb):
    r = run("--db", cdb, "index", "--embedder", "fake", "--json")
    assert r.exit_code == 0, r.output
    rep = json.loads(r.output)
    assert rep["lexical"]["indexed"] == 8 and rep["model"] == "fake-64"
    r = run("--db", cdb, "index", "--embedder", "fake")
    assert r.exit_code == 0 and "0 indexed" in r.output and "0 embedded" in r.output

    r = run("--db", cdb, "search", "attention", "--json", "--limit", "2")
    assert r.exit_code == 0, r.output
    hits = json.loads(r.stdout)
    assert len(hits) == 2 and {"id", "title", "score"} <= set(hits[0])
    assert hits[0]["id"] in {"2401.00001", "2402.00008"}

    for mode in ("lexical", "semantic", "hybrid"):
        r = run("--db", cdb, "search", "diffusion images", "--mode", mode, "--json")
        assert r.exit_code == 0 and json.loads(r.stdout)[0]["id"] == "2302.00003"

    # Lexical: the papers containing the word, newest first. (A hybrid date sort also lists
    # the nearest papers by meaning, the same set as its relevance order: issue 14 totals.)
    r = run("--db", cdb, "search", "attention", "--sort", "date", "--limit", "1", "--offset", "1", "--mode", "lexical")
    assert r.exit_code == 0 and "2401.00001" in r.output and "results (lexical)" in r.output

    r = run("--db", cdb, "similar", "2302.00003", "--limit", "3", "--json")
    assert r.exit_code == 0
    sims = json.loads(r.output)
    assert len(sims) == 3 and all(s["id"] != "2302.00003" for s in sims)
    r = run("--db", cdb, "similar", "nope")
    assert r.exit_code == 1 and "no paper with id" in r.stderr


def test_search_errors_are_messages_not_tracebacks(cdb):
    run("--db", cdb, "index", "--lexical-only")
    for q in ("", "!!!", "x" * 300, "year:abc foo"):
        r = run("--db", cdb, "search", q)
        assert r.exit_code == 1 and r.stderr.startswith("Error: ") and "Traceback" not in r.output
    r = run("--db", cdb, "search", "attention")
    assert r.exit_code == 0 and "note: semantic search unavailable" in r.stderr


def test_search_batch(cdb, tmp_path):
    run("--db", cdb, "index", "--embedder", "fake")
    qfile = tmp_path / "q.jsonl"
    qfile.write_text("\n".join(json.dumps(q) for q in [
        {"_id": "q1", "text": "diffusion image synthesis"},
        {"_id": "q2", "text": "!!!"},
        {"_id": "q3", "text": "dark matter galaxies"},
    ]) + "\n")
    r = run("--db", cdb, "search", "--batch", str(qfile), "--limit", "2", "--mode", "hybrid")
    assert r.exit_code == 0, r.output
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert [x["query_id"] for x in lines] == ["q1", "q2", "q3"]
    assert lines[0]["hits"][0]["id"] == "2302.00003" and len(lines[0]["hits"]) == 2
    assert set(lines[0]["hits"][0]) >= {"id", "score"}
    assert lines[1]["hits"] == [] and "error" in lines[1]
    assert lines[2]["hits"][0]["id"] == "2104.00007"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"_id": "q1"}\n')
    r = run("--db", cdb, "search", "--batch", str(bad))
    assert r.exit_code == 1 and "bad.jsonl:1" in r.stderr


def test_index_no_passages_then_passages(cdb):
    r = run("--db", cdb, "index", "--embedder", "fake", "--no-passages")
    assert r.exit_code == 0, r.output
    assert "passages:" not in r.output and "8 embedded" in r.output
    c = connect(cdb)
    assert c.execute("SELECT COUNT(*) FROM passage_vectors").fetchone()[0] == 0
    r = run("--db", cdb, "index", "--embedder", "fake")
    assert r.exit_code == 0 and "0 embedded" in r.output
    assert "embedded for 8 papers" in r.output  # the paper vectors are cached, the passages are new
    assert c.execute("SELECT COUNT(*) FROM passage_vectors").fetchone()[0] == 8
    c.close()


def test_index_prune_drops_vectors_of_edited_texts(cdb):
    assert run("--db", cdb, "index", "--embedder", "fake").exit_code == 0
    from tests.search_support import CORPUS

    rows = [dict(r) for r in CORPUS]
    rows[2] = dict(rows[2], abstract=rows[2]["abstract"] + " An edited last sentence, long enough to be its own passage.")
    c = connect(cdb)
    assert load_corpus(c, rows).updated == 1
    c.close()
    r = run("--db", cdb, "index", "--embedder", "fake", "--prune")
    assert r.exit_code == 0, r.output
    assert "pruned: 1 paper vectors, 1 papers' passages" in r.output
    c = connect(cdb)
    assert c.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0] == 8
    assert c.execute("SELECT COUNT(*) FROM passage_vectors").fetchone()[0] == 8
    c.close()
