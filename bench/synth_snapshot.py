"""Generate a synthetic arXiv bulk snapshot (Kaggle JSON-lines schema).

Field values are sampled from the real records in ../shared/data/arxiv so that
lengths and shapes are realistic: titles are real titles with a few words
swapped, abstracts are real sentences recombined to a real abstract's length,
author lists, categories, comments and journal refs are drawn from real ones.
Ids are unique new-style ids spread over months, so every record is a new paper.

    python bench/synth_snapshot.py 100000 bench/out/synth-100k.jsonl
"""

from __future__ import annotations

import ast
import csv
import json
import random
import re
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data" / "arxiv"


def load_samples(shared: Path = SHARED) -> list[dict]:
    """Real snapshot records (JSONL + CSV) as dicts of the JSON schema."""
    rows = [json.loads(l) for l in open(shared / "arxiv-metadata-200.jsonl", encoding="utf-8")]
    csv.field_size_limit(2**31 - 1)
    with open(shared / "arxiv-metadata-2000.csv", encoding="utf-8", newline="") as fh:
        for r in csv.DictReader(fh):
            r["authors_parsed"] = ast.literal_eval(r["authors_parsed"])
            r["versions"] = ast.literal_eval(r["versions"])
            rows.append(r)
    return rows


class Synthesizer:
    """Makes snapshot records from a pool of real ones, deterministically per seed."""

    def __init__(self, samples: list[dict], seed: int = 7):
        self.rng = random.Random(seed)
        self.samples = samples
        self.sentences = [s for r in samples for s in re.split(r"(?<=\.)\s+", " ".join(r["abstract"].split())) if len(s) > 20]
        self.words = [w for r in samples for w in r["title"].split() if w.isalpha() and len(w) > 3]
        self.base = datetime(2015, 1, 1, tzinfo=timezone.utc)

    def record(self, i: int) -> dict:
        rng = self.rng
        src = rng.choice(self.samples)
        month = i // 20000  # 20k papers a month, like arXiv today
        yymm = (self.base + timedelta(days=31 * month)).strftime("%y%m")
        title_words = src["title"].split()
        for _ in range(2):
            title_words[rng.randrange(len(title_words))] = rng.choice(self.words)
        target = len(src["abstract"])
        abstract, n = [], 0
        while n < target:
            s = rng.choice(self.sentences)
            abstract.append(s)
            n += len(s) + 1
        created = self.base + timedelta(days=31 * month + rng.random() * 28, seconds=rng.randrange(86400))
        nver = rng.choice((1, 1, 1, 2, 2, 3))
        versions = [
            {"version": f"v{k + 1}", "created": (created + timedelta(days=20 * k)).strftime("%a, %d %b %Y %H:%M:%S GMT")}
            for k in range(nver)
        ]
        authors_parsed = rng.choice(self.samples)["authors_parsed"]
        return {
            "id": f"{yymm}.{i % 20000:05d}",
            "submitter": src.get("submitter") or None,
            "authors": ", ".join(" ".join(p for p in (a[1], a[0]) if p) for a in authors_parsed),
            "title": " ".join(title_words),
            "comments": src.get("comments") or None,
            "journal-ref": src.get("journal-ref") or None,
            "doi": src.get("doi") or None,
            "report-no": src.get("report-no") or None,
            "categories": src["categories"],
            "license": src.get("license") or None,
            "abstract": " ".join(abstract),
            "versions": versions,
            "update_date": (created + timedelta(days=20 * (nver - 1))).strftime("%Y-%m-%d"),
            "authors_parsed": authors_parsed,
        }


def write_snapshot(n: int, out: Path, seed: int = 7) -> Path:
    """Write ``n`` synthetic records to ``out`` (JSON lines)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    syn = Synthesizer(load_samples(), seed)
    tmp = out.with_suffix(out.suffix + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        for i in range(n):
            fh.write(json.dumps(syn.record(i), ensure_ascii=False) + "\n")
    tmp.replace(out)
    return out


if __name__ == "__main__":
    write_snapshot(int(sys.argv[1]), Path(sys.argv[2]))
