"""Imported entries whose arXiv paper is not here yet: queued for the harvester, and
added to the reader's library (with the entry's tags, note and folder) once it arrives."""

SQL = """
CREATE TABLE library_pending (
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    arxiv_id   TEXT NOT NULL,                 -- versionless
    source     TEXT NOT NULL,                 -- import:<file name>
    tags       TEXT NOT NULL DEFAULT '[]',    -- JSON list
    note       TEXT NOT NULL DEFAULT '',
    folder_id  INTEGER REFERENCES library_folders(id) ON DELETE SET NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (user_id, arxiv_id)
);
CREATE INDEX library_pending_arxiv ON library_pending(arxiv_id);
"""
