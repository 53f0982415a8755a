"""Passage vectors: each paper's sentences embedded, for scoring a query against the best
matching sentence of an abstract rather than only its average (issue 14).

One row per (model, content_hash), like ``embeddings``: unchanged text is never embedded
twice, and a changed abstract simply misses. ``vectors`` holds ``n`` float32 scales followed
by ``n * dim`` int8 components (each passage vector divided by its scale and rounded), so a
paper's ~8 passages take ~3 kB instead of ~12 kB as float32. Portable SQL.
"""

SQL = """
CREATE TABLE passage_vectors (
    model        TEXT NOT NULL,
    content_hash TEXT NOT NULL,                -- papers.content_hash of the split text
    n            INTEGER NOT NULL,             -- passages in this paper
    dim          INTEGER NOT NULL,
    vectors      BLOB NOT NULL,                -- n float32 scales, then n*dim int8
    created_at   TEXT NOT NULL,
    PRIMARY KEY (model, content_hash)
);
"""
