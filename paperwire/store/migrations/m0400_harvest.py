"""Harvest cursors (one row per OAI-PMH list: endpoint + metadata format + set) and
records the repository reported as deleted."""

SQL = """
CREATE TABLE harvest_state (
    job               TEXT PRIMARY KEY,          -- base_url|metadata_prefix|set
    base_url          TEXT NOT NULL,
    metadata_prefix   TEXT NOT NULL,
    set_spec          TEXT NOT NULL DEFAULT '',
    last_datestamp    TEXT,                      -- newest datestamp of finished runs: next 'from'
    last_completed_at TEXT,
    run_status        TEXT NOT NULL DEFAULT 'idle' CHECK (run_status IN ('idle', 'running')),
    run_from          TEXT,                      -- the running run's from/until (restart point)
    run_until         TEXT,
    run_token         TEXT,                      -- resumption token of the next page to fetch
    run_max_datestamp TEXT,                      -- newest datestamp committed by the running run
    run_pages         INTEGER NOT NULL DEFAULT 0,
    run_records       INTEGER NOT NULL DEFAULT 0,
    run_started_at    TEXT,
    last_error        TEXT,
    updated_at        TEXT NOT NULL
);

CREATE TABLE harvest_deletions (
    arxiv_id   TEXT PRIMARY KEY,
    datestamp  TEXT,
    seen_at    TEXT NOT NULL
) WITHOUT ROWID;
"""
