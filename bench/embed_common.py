"""Shared helpers for the embedding/vector benchmarks: real abstracts from ../shared."""

from __future__ import annotations

import csv
import json
import os
import platform
import resource
import sys
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("PAPERWIRE_SHARED", ROOT.parent / "shared"))
sys.path.insert(0, str(ROOT))


def arxiv_abstracts(n: int | None = None) -> list[tuple[str, str]]:
    """(title, abstract) pairs: the 1,000 arXiv CS abstracts, then SciFact's corpus."""
    out: list[tuple[str, str]] = []
    csv.field_size_limit(1 << 24)
    with open(SHARED / "data" / "arxiv" / "arxiv-cs-abstracts-1000.csv", newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            out.append((row["titles"], row["summaries"]))
    if n is None or n > len(out):
        for doc in scifact_corpus():
            out.append((doc["title"], doc["text"]))
    return out if n is None else out[:n]


def scifact_corpus() -> list[dict]:
    with open(SHARED / "bench" / "scifact" / "corpus.jsonl", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def scifact_queries() -> dict[str, str]:
    with open(SHARED / "bench" / "scifact" / "queries.jsonl", encoding="utf-8") as fh:
        return {q["_id"]: q["text"] for q in map(json.loads, fh)}


def scifact_qrels(split: str = "test") -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    with open(SHARED / "bench" / "scifact" / "qrels" / f"{split}.tsv", encoding="utf-8") as fh:
        next(fh)
        for line in fh:
            qid, did, score = line.rstrip("\n").split("\t")
            qrels.setdefault(qid, {})[did] = int(score)
    return qrels


def machine() -> str:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count()
    gpu = "no GPU"
    try:
        import torch

        if torch.cuda.is_available():
            gpu = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return f"{platform.machine()} {cores} cores, {gpu}, Python {platform.python_version()}"


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def rss_mb() -> float:
    """Peak resident set size of this process so far, MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
