"""Evaluation: metrics, `paperwire eval` on a tiny BEIR folder and on SciFact (lexical)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from paperwire.index.evaluate import ndcg_at_k, recall_at_k, score_run
from paperwire.store.db import connect
from tests.test_search_cli import cdb, run  # noqa: F401  (fixture and helper)


def test_metrics_by_hand():
    rels = {"a": 1, "b": 2}
    assert ndcg_at_k(["b", "a"], rels) == pytest.approx(1.0)
    # b (gain 3) at rank 2, a (gain 1) at rank 1: (1 + 3/log2(3)) / (3 + 1/log2(3))
    assert ndcg_at_k(["a", "b"], rels) == pytest.approx((1 + 3 / 1.5849625) / (3 + 1 / 1.5849625))
    assert ndcg_at_k(["x"] * 10 + ["a"], rels) == 0.0
    assert recall_at_k(["a", "x"], rels) == 0.5
    out = score_run({"q1": ["b", "a"]}, {"q1": rels, "q2": {"z": 1}})
    assert out == {"ndcg@10": 0.5, "recall@100": 0.5, "queries": 2}


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
