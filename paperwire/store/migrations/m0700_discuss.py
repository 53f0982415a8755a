"""Discussions: comments on papers (one level of replies), their revisions, votes,
reports, bans, the admin audit log, notifications and the notification mail ledger."""

SQL = """
CREATE TABLE comments (
    id          INTEGER PRIMARY KEY,
    paper       INTEGER NOT NULL REFERENCES papers(id) ON DELETE CASCADE,
    parent      INTEGER REFERENCES comments(id) ON DELETE CASCADE, -- the TOP-LEVEL comment; NULL = top level
    user_id     INTEGER REFERENCES users(id) ON DELETE SET NULL,   -- NULL: the account is gone ("deleted user")
    raw         TEXT NOT NULL,                 -- Markdown as written ('' once deleted)
    html        TEXT NOT NULL,                 -- sanitised HTML rendered from raw at write time
    created_at  TEXT NOT NULL,
    edited_at   TEXT,
    deleted_at  TEXT,                          -- a placeholder that keeps its replies
    hidden      INTEGER NOT NULL DEFAULT 0,    -- hidden by a moderator
    upvotes     INTEGER NOT NULL DEFAULT 0     -- always = rows of comment_votes
);
CREATE INDEX comments_paper ON comments(paper, parent, id);
CREATE INDEX comments_user ON comments(user_id);

-- Earlier texts of edited comments (the latest is comments.raw).
CREATE TABLE comment_revisions (
    comment     INTEGER NOT NULL REFERENCES comments(id) ON DELETE CASCADE,
    rev         INTEGER NOT NULL,
    raw         TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (comment, rev)
);

CREATE TABLE comment_votes (
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    comment     INTEGER NOT NULL REFERENCES comments(id) ON DELETE CASCADE,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (user_id, comment)
);

CREATE TABLE comment_reports (
    id          INTEGER PRIMARY KEY,
    comment     INTEGER NOT NULL REFERENCES comments(id) ON DELETE CASCADE,
    user_id     INTEGER REFERENCES users(id) ON DELETE SET NULL,
    reason      TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL,
    resolved_at TEXT,                          -- NULL = open: in the moderation queue
    resolution  TEXT,
    UNIQUE (comment, user_id)
);
CREATE INDEX comment_reports_open ON comment_reports(resolved_at, comment);

-- Banned accounts may not comment, edit, vote on or report comments.
CREATE TABLE user_bans (
    user_id     INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    reason      TEXT NOT NULL DEFAULT '',
    banned_by   INTEGER REFERENCES users(id) ON DELETE SET NULL,
    created_at  TEXT NOT NULL
);

-- Every admin action (hide, restore, ban, unban, dismiss), newest last.
CREATE TABLE admin_audit (
    id          INTEGER PRIMARY KEY,
    admin_id    INTEGER REFERENCES users(id) ON DELETE SET NULL,
    admin_name  TEXT NOT NULL,                 -- kept when the account goes
    action      TEXT NOT NULL,
    target_kind TEXT NOT NULL,                 -- comment | user
    target_id   TEXT NOT NULL,
    detail      TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL
);

CREATE TABLE notifications (
    id          INTEGER PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,                 -- reply
    comment     INTEGER NOT NULL REFERENCES comments(id) ON DELETE CASCADE,  -- the new comment
    actor_id    INTEGER REFERENCES users(id) ON DELETE SET NULL,
    created_at  TEXT NOT NULL,
    read_at     TEXT,
    UNIQUE (user_id, comment)
);
CREATE INDEX notifications_user ON notifications(user_id, read_at, id);

CREATE TABLE notify_prefs (
    user_id       INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    email_replies INTEGER NOT NULL DEFAULT 1,
    nonce         TEXT NOT NULL,               -- in every unsubscribe link; rotating it revokes them
    updated_at    TEXT NOT NULL
);

-- Notification mail, composed in the same transaction as the reply, delivered by the
-- web process after answering and by the worker: pending -> sending -> in_doubt -> sent | failed
-- (the digest ledger's protocol: committed in_doubt before the final ".", never resent).
CREATE TABLE notify_mail (
    id              INTEGER PRIMARY KEY,
    notification    INTEGER UNIQUE REFERENCES notifications(id) ON DELETE SET NULL,
    user_id         INTEGER REFERENCES users(id) ON DELETE CASCADE,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'in_doubt', 'sent', 'failed')),
    recipient       TEXT NOT NULL,
    message_id      TEXT NOT NULL UNIQUE,
    message         BLOB NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    sent_at         TEXT
);
CREATE INDEX notify_mail_due ON notify_mail(state, next_attempt_at);
"""
