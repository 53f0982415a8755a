"""Embedding cache: one float32 vector per (model, content_hash), so unchanged text is never
embedded twice; ``seq`` orders writes per model so a vector index can catch up incrementally."""

SQL = """
CREATE TABLE embedding_models (
    model       TEXT PRIMARY KEY,
    dim         INTEGER NOT NULL,
    seq         INTEGER NOT NULL DEFAULT 0     -- last seq handed out for this model
) WITHOUT ROWID;

CREATE TABLE embeddings (
    model        TEXT NOT NULL REFERENCES embedding_models(model) ON DELETE CASCADE,
    content_hash TEXT NOT NULL,                -- papers.content_hash of the embedded text
    seq          INTEGER NOT NULL,             -- write order within the model
    vector       BLOB NOT NULL,                -- dim float32, little-endian, L2-normalised
    created_at   TEXT NOT NULL,
    PRIMARY KEY (model, content_hash)
) WITHOUT ROWID;
CREATE INDEX embeddings_seq ON embeddings(model, seq);
CREATE INDEX IF NOT EXISTS papers_content_hash ON papers(content_hash);
"""
