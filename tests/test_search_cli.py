"""CLI: paperwire index / search / search --batch / similar / eval."""

from __future__ import annotations

import json
from pathlib import Path

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

    r = run("--db", cdb, "search", "attention", "--sort", "date", "--limit", "1", "--offset", "1")
    assert r.exit_code == 0 and "2401.00001" in r.output

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


def _tiny_beir(folder: Path) -> Path:
    (folder / "qrels").mkdir(parents=True)
    docs = [
        ("d1", "Vitamin D and bone density", "Vitamin D supplementation increases bone mineral density in elderly women."),
        ("d2", "Smoking and lung cancer", "Cigarette smoking is the leading cause of lung cancer."),
        ("d3", "Exercise and heart health", "Aerobic exercise lowers blood pressure and improves cardiac function."),
        ("d4", "Sleep and memory", "Sleep consolidates memory in the hippocampus."),
    ]
    (folder / "corpus.jsonl").write_text("".join(json.dumps({"_id": i, "title": t, "text": x}) + "\n" for i, t, x in docs))
    queries = {"1": "vitamin D improves bone density", "2": "smoking causes cancer", "3": "sleep helps memory"}
    (folder / "queries.jsonl").write_text("".join(json.dumps({"_id": k, "text": v}) + "\n" for k, v in queries.items()))
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n1\td1\t1\n2\td2\t1\n3\td4\t1\n")
    return folder


def test_eval_tiny_beir(tmp_path, cdb):
    folder = _tiny_beir(tmp_path / "beir")
    for mode in ("lexical", "hybrid"):
        r = run("--db", cdb, "eval", str(folder), "--mode", mode, "--embedder", "fake",
                "--scratch", str(tmp_path / "scratch.db"), "--json")
        assert r.exit_code == 0, r.output
        out = json.loads(r.stdout)
        assert out["ndcg@10"] == 1.0 and out["recall@100"] == 1.0 and out["queries"] == 3
        assert out["mode"] == mode
    # the store given with --db is untouched
    c = connect(cdb)
    assert c.execute("SELECT COUNT(*) FROM papers WHERE paper_id LIKE 'd%'").fetchone()[0] == 0
    c.close()
    r = run("eval", str(tmp_path))
    assert r.exit_code == 1 and "corpus.jsonl" in r.stderr


def test_eval_scifact_lexical(tmp_path, shared_dir):
    folder = shared_dir / "bench" / "scifact"
    if not (folder / "corpus.jsonl").exists():
        pytest.skip("SciFact not available")
    r = run("eval", str(folder), "--mode", "lexical", "--scratch", str(tmp_path / "sf.db"), "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["queries"] == 300
    assert out["ndcg@10"] >= 0.68
