"""Helpers for the For-you tests: three clearly separated topics, indexed with the fake embedder."""

from __future__ import annotations

from paperwire.ingest import import_records
from paperwire.model import PaperRecord

TOPICS = {
    "graphs": ("cs.LG", "graph neural network message passing molecules atoms bonds node embeddings"),
    "galaxies": ("astro-ph.GA", "galaxy rotation curves dark matter halos spiral stellar velocity"),
    "proteins": ("q-bio.BM", "protein folding residues sequence structure amino acids contact maps"),
}
PER_TOPIC = 12


def paper_id(topic: str, i: int) -> str:
    base = {"graphs": 1, "galaxies": 2, "proteins": 3}[topic]
    return f"2501.{base}{i:04d}"


def records(day: str = "2025-01-20"):
    out = []
    for topic, (cat, words) in TOPICS.items():
        w = words.split()
        for i in range(PER_TOPIC):
            # Each paper: its topic's words in a rotated order plus a distinct word, so papers of a
            # topic are near each other and far from the other topics.
            rot = w[i % len(w):] + w[: i % len(w)]
            out.append(PaperRecord(
                source="test", arxiv_id=paper_id(topic, i),
                title=f"{topic.title()} study {i}: {' '.join(rot[:4])}",
                abstract=" ".join(rot) + f" variant{topic}{i} " + " ".join(rot[::-1]),
                authors=[f"{topic.title()} Author{i % 3}", "Shared Person"], categories=[cat],
                published=f"{day}T0{i % 10}:00:00Z",
            ))
    return out


def build(conn):
    """Import the corpus and index it (lexical + fake 64-d embeddings). Returns the conn."""
    from paperwire.index.build import update_index
    from paperwire.index.embeddings import FakeEmbedder

    import_records(conn, records())
    update_index(conn, embedder=FakeEmbedder(64))
    return conn


def make_user(conn, name: str = "reader") -> int:
    from paperwire.store.accounts import create_user

    return create_user(conn, name, f"{name}@example.org", "x")
