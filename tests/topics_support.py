"""A small three-topic corpus for the topic-map tests (tests/test_topics.py, test_map_web.py)."""

from __future__ import annotations

import random
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

from paperwire.ingest import import_records
from paperwire.model import PaperRecord
from paperwire.store.db import connect

# Three topics with their own words; shared filler words appear in every topic.
TOPICS = {
    "astro": "galaxy stellar telescope redshift supernova quasar cosmic nebula photometry exoplanet".split(),
    "bio": "protein genome enzyme cell mutation receptor sequencing antibody tissue microbiome".split(),
    "nlp": "language transformer token translation parser corpus summarization dialogue prompt grammar".split(),
}
FILLER = "analysis data method results approach study framework evaluation model system".split()
END = datetime(2026, 11, 18, tzinfo=timezone.utc)  # a Wednesday: "this week" starts Monday Nov 16


def _paper(topic: str, i: int, rng: random.Random, when: datetime) -> PaperRecord:
    words = TOPICS[topic]
    title = " ".join(rng.sample(words, 4)) + f" {topic} study {i}"
    body = " ".join(rng.choice(words) if rng.random() < 0.7 else rng.choice(FILLER) for _ in range(40))
    return PaperRecord(title=title, abstract=body, source="test", external_id=f"{topic}-{i}", authors=["A. Author"], categories=["cs.LG"],
                       published=when.strftime("%Y-%m-%dT%H:%M:%SZ"))


def make_corpus(path: Path, per_topic: int = 50, burst: int = 0) -> sqlite3.Connection:
    """A store of ``per_topic`` papers per topic over 10 weeks; ``burst`` extra nlp papers this week."""
    rng = random.Random(7)
    recs = []
    for topic in TOPICS:
        for i in range(per_topic):
            recs.append(_paper(topic, i, rng, END - timedelta(days=7 + rng.randrange(63))))
    for i in range(burst):
        recs.append(_paper("nlp", 1000 + i, rng, END - timedelta(days=rng.randrange(2))))
    conn = connect(path)
    import_records(conn, recs)
    return conn
