"""Core tables: papers, their authors and categories, id aliases, users, votes."""

SQL = """
CREATE TABLE papers (
    id              INTEGER PRIMARY KEY,
    paper_id        TEXT NOT NULL UNIQUE,      -- public id: arXiv id, external id, or pw-<title hash>
    id_kind         TEXT NOT NULL CHECK (id_kind IN ('arxiv', 'external', 'title')),
    arxiv_id        TEXT UNIQUE,               -- versionless
    version         INTEGER,                   -- latest version seen
    title           TEXT NOT NULL,
    title_norm      TEXT NOT NULL,
    abstract        TEXT NOT NULL DEFAULT '',
    authors         TEXT NOT NULL DEFAULT '[]', -- JSON list, in order
    categories      TEXT NOT NULL DEFAULT '[]', -- JSON list, primary first
    primary_category TEXT,
    published       TEXT,                      -- first version, ISO-8601 UTC
    updated         TEXT,                      -- latest version, ISO-8601 UTC
    listed_at       TEXT,                      -- featured in a daily listing at
    feed_date       TEXT NOT NULL,             -- YYYY-MM-DD the daily feed files it under
    doi             TEXT,
    journal_ref     TEXT,
    comments        TEXT,
    license         TEXT,
    abs_url         TEXT,
    pdf_url         TEXT,
    code_url        TEXT,
    project_url     TEXT,
    source          TEXT NOT NULL,             -- importer that first brought it
    first_seen      TEXT NOT NULL,
    upvotes         INTEGER NOT NULL DEFAULT 0, -- upvotes reported by an upstream (HF)
    local_upvotes   INTEGER NOT NULL DEFAULT 0, -- upvotes by this site's users
    submitted_by    TEXT,
    num_comments    INTEGER NOT NULL DEFAULT 0,
    hidden          INTEGER NOT NULL DEFAULT 0,
    content_hash    TEXT NOT NULL,             -- title + abstract: drives re-indexing
    record_hash     TEXT NOT NULL,             -- all mergeable fields: drives "unchanged"
    rev             INTEGER NOT NULL           -- store revision of the last write
);
CREATE INDEX papers_title_norm ON papers(title_norm);
CREATE INDEX papers_feed_date ON papers(feed_date);
CREATE INDEX papers_published ON papers(published);
CREATE INDEX papers_rev ON papers(rev);

CREATE TABLE paper_authors (
    paper        INTEGER NOT NULL REFERENCES papers(id) ON DELETE CASCADE,
    position     INTEGER NOT NULL,
    name         TEXT NOT NULL,
    name_norm    TEXT NOT NULL,
    PRIMARY KEY (paper, position)
) WITHOUT ROWID;
CREATE INDEX paper_authors_name ON paper_authors(name_norm);

CREATE TABLE paper_categories (
    paper        INTEGER NOT NULL REFERENCES papers(id) ON DELETE CASCADE,
    position     INTEGER NOT NULL,
    category     TEXT NOT NULL,
    PRIMARY KEY (paper, position)
) WITHOUT ROWID;
CREATE INDEX paper_categories_cat ON paper_categories(category);

-- Old public ids (pw-<hash>) of papers that later got an arXiv id: links keep working.
CREATE TABLE paper_aliases (
    alias   TEXT PRIMARY KEY,
    paper   INTEGER NOT NULL REFERENCES papers(id) ON DELETE CASCADE
) WITHOUT ROWID;

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
INSERT INTO meta (key, value) VALUES ('rev', '0');

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE COLLATE NOCASE,
    email         TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash TEXT NOT NULL,
    is_admin      INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL
);

CREATE TABLE votes (
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    paper      INTEGER NOT NULL REFERENCES papers(id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    PRIMARY KEY (user_id, paper)
) WITHOUT ROWID;
CREATE INDEX votes_paper ON votes(paper);
"""
