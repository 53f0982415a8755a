"""Web: server-side sessions, rate-limit events, a counter that changes on every vote."""

SQL = """
CREATE TABLE sessions (
    token_hash  TEXT PRIMARY KEY,            -- sha256 of the cookie value; the cookie alone is useless in a DB leak
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX sessions_user ON sessions(user_id);

-- One row per attempt (login, sign-up); shared by all worker processes.
CREATE TABLE rate_events (
    key  TEXT NOT NULL,
    at   REAL NOT NULL
);
CREATE INDEX rate_events_key_at ON rate_events(key, at);

-- Bumped in the same transaction as every vote or hide: page caches key on it.
INSERT OR IGNORE INTO meta (key, value) VALUES ('web_rev', '0');

CREATE INDEX papers_submitted_by ON papers(submitted_by) WHERE submitted_by IS NOT NULL;
"""
