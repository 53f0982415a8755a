"""Accounts that last: personal API tokens, profiles, avatars, e-mail verification state.

Accounts that existed before this step count as verified (their owners never got a
verification mail to click)."""

SQL = """
CREATE TABLE api_tokens (
    id          INTEGER PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name        TEXT NOT NULL DEFAULT '',
    token_hash  TEXT NOT NULL UNIQUE,          -- sha256 of the token: a DB leak does not leak tokens
    prefix      TEXT NOT NULL,                 -- the first characters, to tell tokens apart in lists
    scope       TEXT NOT NULL CHECK (scope IN ('read', 'write')),
    created_at  TEXT NOT NULL,
    last_used   TEXT,
    revoked_at  TEXT                           -- set = refused from then on (401)
);
CREATE INDEX api_tokens_user ON api_tokens(user_id, id);

CREATE TABLE user_profiles (
    user_id        INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    bio            TEXT NOT NULL DEFAULT '',   -- Markdown as written
    bio_html       TEXT NOT NULL DEFAULT '',   -- sanitised HTML rendered at write time
    public_upvotes INTEGER NOT NULL DEFAULT 0,
    updated_at     TEXT NOT NULL
);

-- An uploaded avatar, re-encoded as PNG (no EXIF, bounded size); none = identicon.
CREATE TABLE user_avatars (
    user_id     INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    image       BLOB NOT NULL,
    media_type  TEXT NOT NULL,
    etag        TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

CREATE TABLE email_verifications (
    user_id     INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    email       TEXT NOT NULL,                 -- the address that was verified
    verified_at TEXT NOT NULL
);
INSERT INTO email_verifications (user_id, email, verified_at) SELECT id, email, created_at FROM users;
"""
