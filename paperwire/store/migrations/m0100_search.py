"""Search tables: the FTS5 lexical index, what it holds, precomputed similar papers.

``search_fts`` keeps its own copy of the indexed text (a regular FTS5 table, not
external-content) so that a paper whose text changed upstream can still be
deleted from the index without knowing the old text. Its rowid is ``papers.id``.
``categories`` is indexed for ``cat:`` filters only (bm25 weight 0).
"""

SQL = """
CREATE VIRTUAL TABLE search_fts USING fts5(
    title, abstract, authors, categories,
    tokenize = 'porter unicode61 remove_diacritics 2'
);

-- One row per paper present in search_fts: the hashes it was indexed with.
CREATE TABLE search_docs (
    paper         INTEGER PRIMARY KEY,   -- papers.id
    content_hash  TEXT NOT NULL,         -- papers.content_hash at indexing time
    lex_hash      TEXT NOT NULL          -- hash of everything put in search_fts
);

-- Precomputed neighbours: one row per paper, JSON [[rowid, score], ...] best first.
CREATE TABLE search_similar (
    paper         INTEGER PRIMARY KEY,   -- papers.id
    content_hash  TEXT NOT NULL,         -- the text the list was computed for
    model         TEXT NOT NULL,         -- embedder name, or 'lexical'
    neighbours    TEXT NOT NULL
);

CREATE TABLE search_state (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
) WITHOUT ROWID;
"""
