"""The local mail outbox: mail kept on the site instead of handed to SMTP (the demo
without a mail server, or ``PAPERWIRE_MAIL_TRANSPORT=outbox``)."""

SQL = """
CREATE TABLE mail_outbox (
    id          INTEGER PRIMARY KEY,
    message_id  TEXT NOT NULL UNIQUE,         -- a resent in-doubt mail is kept once
    sender      TEXT NOT NULL,
    recipient   TEXT NOT NULL,
    subject     TEXT NOT NULL DEFAULT '',
    message     BLOB NOT NULL,                -- the exact bytes SMTP would have carried
    created_at  TEXT NOT NULL
);
CREATE INDEX mail_outbox_recipient ON mail_outbox(recipient);
"""
