"""Papers submitted by users by arXiv id, queued until a harvest fetches them."""

SQL = """
CREATE TABLE submissions (
    id           INTEGER PRIMARY KEY,
    arxiv_id     TEXT NOT NULL,
    user_id      INTEGER REFERENCES users(id) ON DELETE SET NULL,
    status       TEXT NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'done', 'failed')),
    error        TEXT,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);
CREATE UNIQUE INDEX submissions_queued ON submissions(arxiv_id) WHERE status = 'queued';
"""
