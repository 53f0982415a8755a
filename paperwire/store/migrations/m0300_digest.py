"""Digest subscriptions, the send ledger (outbox) and the per-subscriber paper ledger."""

SQL = """
CREATE TABLE digest_subscriptions (
    id              INTEGER PRIMARY KEY,
    email           TEXT NOT NULL UNIQUE COLLATE NOCASE,
    user_id         INTEGER REFERENCES users(id) ON DELETE SET NULL,
    frequency       TEXT NOT NULL CHECK (frequency IN ('daily', 'weekly')),
    status          TEXT NOT NULL CHECK (status IN ('pending', 'active', 'unsubscribed', 'bounced')),
    top_n           INTEGER NOT NULL DEFAULT 10,      -- trending papers per digest; 0 = none
    personal        INTEGER NOT NULL DEFAULT 0,       -- picks similar to the user's upvotes/saves
    authors         TEXT NOT NULL DEFAULT '[]',       -- JSON list of followed author names
    categories      TEXT NOT NULL DEFAULT '[]',       -- JSON list of followed categories
    queries         TEXT NOT NULL DEFAULT '[]',       -- JSON list of saved searches
    nonce           TEXT NOT NULL,                    -- in every token; rotating it revokes links
    source          TEXT NOT NULL DEFAULT 'web',      -- web | cli
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    confirmed_at    TEXT,
    unsubscribed_at TEXT,
    permanent_failures INTEGER NOT NULL DEFAULT 0      -- consecutive 5xx; bounced at a threshold
);
CREATE INDEX digest_subscriptions_due ON digest_subscriptions(status, frequency);

-- The outbox: one row per mail, composed (bytes, Message-ID, papers) BEFORE any
-- SMTP traffic. States: pending -> sending -> in_doubt -> sent | failed.
-- UNIQUE(subscription, period) is the "once per subscriber per period" rule.
CREATE TABLE digest_sends (
    id              INTEGER PRIMARY KEY,
    subscription    INTEGER NOT NULL REFERENCES digest_subscriptions(id) ON DELETE CASCADE,
    kind            TEXT NOT NULL CHECK (kind IN ('digest', 'confirm')),
    period          TEXT NOT NULL,                   -- daily:YYYY-MM-DD | weekly:YYYY-Www | confirm:...
    state           TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'in_doubt', 'sent', 'failed')),
    recipient       TEXT NOT NULL,
    message_id      TEXT NOT NULL UNIQUE,
    papers          TEXT NOT NULL DEFAULT '[]',      -- JSON list of papers.id in the mail
    message         BLOB NOT NULL,                   -- the exact bytes handed to SMTP
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    sent_at         TEXT,
    UNIQUE (subscription, period)
);
CREATE INDEX digest_sends_state ON digest_sends(kind, state, next_attempt_at);

-- A paper goes to a subscriber at most once, ever: reserved when the mail is composed.
CREATE TABLE digest_sent_papers (
    subscription    INTEGER NOT NULL REFERENCES digest_subscriptions(id) ON DELETE CASCADE,
    paper           INTEGER NOT NULL REFERENCES papers(id) ON DELETE CASCADE,
    send_id         INTEGER NOT NULL REFERENCES digest_sends(id) ON DELETE CASCADE,
    PRIMARY KEY (subscription, paper)
) WITHOUT ROWID;
CREATE INDEX digest_sent_papers_send ON digest_sent_papers(send_id);

-- Worker bookkeeping: which scheduled job ran for which period.
CREATE TABLE worker_jobs (
    job         TEXT NOT NULL,
    period      TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('running', 'done', 'failed', 'skipped')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    detail      TEXT,
    PRIMARY KEY (job, period)
) WITHOUT ROWID;
"""
