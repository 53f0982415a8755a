"""A reader's library (saved papers, folders, tags, notes, read state) and feedback.

Written in the SQL that SQLite and PostgreSQL share (no AUTOINCREMENT quirks, no
WITHOUT ROWID on tables a later engine must copy), so the PostgreSQL store can run
the same step. Timestamps are ISO-8601 UTC text, like the rest of the store.
"""

SQL = """
-- One row per saved paper; the note and read state belong to the saved paper.
CREATE TABLE library_items (
    user_id   INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    paper     INTEGER NOT NULL REFERENCES papers(id) ON DELETE CASCADE,
    saved_at  TEXT NOT NULL,
    read_at   TEXT,                 -- NULL = unread
    note      TEXT NOT NULL DEFAULT '',
    source    TEXT NOT NULL DEFAULT 'web',  -- web | cli | import:<file name> | mail
    PRIMARY KEY (user_id, paper)
);
CREATE INDEX library_items_paper ON library_items(paper);

CREATE TABLE library_folders (
    id          INTEGER PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    slug        TEXT NOT NULL,
    is_public   INTEGER NOT NULL DEFAULT 0,
    share_token TEXT,               -- unguessable part of the public URL (and its Atom feed)
    created_at  TEXT NOT NULL,
    UNIQUE (user_id, slug)
);

-- A paper can be in several folders; removing it from the library removes it from all.
CREATE TABLE library_folder_items (
    folder_id  INTEGER NOT NULL REFERENCES library_folders(id) ON DELETE CASCADE,
    user_id    INTEGER NOT NULL,
    paper      INTEGER NOT NULL,
    added_at   TEXT NOT NULL,
    PRIMARY KEY (folder_id, paper),
    FOREIGN KEY (user_id, paper) REFERENCES library_items(user_id, paper) ON DELETE CASCADE
);

CREATE TABLE library_tags (
    user_id  INTEGER NOT NULL,
    paper    INTEGER NOT NULL,
    tag      TEXT NOT NULL,
    PRIMARY KEY (user_id, paper, tag),
    FOREIGN KEY (user_id, paper) REFERENCES library_items(user_id, paper) ON DELETE CASCADE
);

-- Explicit feedback other than votes and saves: 'not_interested' (hides the paper from
-- that reader's feeds), 'more_like_this'. Undo deletes the row.
CREATE TABLE feedback (
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    paper       INTEGER NOT NULL REFERENCES papers(id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (user_id, paper, kind)
);
CREATE INDEX feedback_paper ON feedback(paper);

-- What a reader follows: kind 'category' (value = arXiv category, e.g. cs.CL),
-- 'author' (value = normalised author name, as paper_authors.name_norm), 'keyword'.
CREATE TABLE follows (
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    value       TEXT NOT NULL,
    label       TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL,
    PRIMARY KEY (user_id, kind, value)
);

-- Bumped with every library / feedback / follow write of a user: the For-you page and the
-- user's cached model key on it, so the next page view after a click reflects the click.
CREATE TABLE user_revs (
    user_id  INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    rev      INTEGER NOT NULL DEFAULT 0
);

-- Per-user secret for the private For-you Atom URL; revoking = replacing it.
CREATE TABLE feed_tokens (
    token_hash  TEXT PRIMARY KEY,   -- sha256 of the token; the URL holds the token itself
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    purpose     TEXT NOT NULL DEFAULT 'foryou',
    created_at  TEXT NOT NULL
);
CREATE INDEX feed_tokens_user ON feed_tokens(user_id);
"""
