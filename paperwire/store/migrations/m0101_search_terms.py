"""Search vocabulary: every word of the indexed titles and abstracts with its document
frequency, for typo correction ("did you mean"). Kept in step with ``search_fts`` by
``update_index`` in the same transactions; ``search_state.vocab_rev`` says it is built
(a store indexed before this step gets it rebuilt from ``search_fts`` on the next run)."""

SQL = """
CREATE TABLE search_terms (
    term  TEXT PRIMARY KEY,         -- lower-cased word as the query parser tokenises it
    df    INTEGER NOT NULL          -- indexed papers whose title or abstract holds it
) WITHOUT ROWID;
"""
