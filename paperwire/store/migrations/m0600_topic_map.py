"""The topic map: a 2-D position and two cluster levels per paper, and labelled clusters.

A map build replaces both tables in one transaction; new papers are added to
``topic_map_points`` with ``fitted = 0`` (placed from their fitted neighbours, no refit).
The build's parameters (model, method, sizes, time) live in ``meta`` under ``topic_map.*``.
Portable SQL: plain INTEGER/REAL/TEXT columns, no SQLite-only clauses.
"""

SQL = """
CREATE TABLE topic_map_points (
    paper   INTEGER PRIMARY KEY REFERENCES papers(id) ON DELETE CASCADE,
    x       REAL NOT NULL,      -- layout coordinates, scaled to [0, 1]
    y       REAL NOT NULL,
    coarse  INTEGER NOT NULL,   -- topic_clusters(level='coarse').id
    fine    INTEGER NOT NULL,   -- topic_clusters(level='fine').id
    fitted  INTEGER NOT NULL DEFAULT 1,  -- 1 = in the fitted sample, 0 = placed later
    placed_at TEXT NOT NULL
);
CREATE INDEX topic_map_points_coarse ON topic_map_points(coarse);

CREATE TABLE topic_clusters (
    level   TEXT NOT NULL,      -- 'coarse' | 'fine'
    id      INTEGER NOT NULL,
    parent  INTEGER,            -- a fine cluster's coarse cluster
    label   TEXT NOT NULL,
    terms   TEXT NOT NULL,      -- JSON list of distinctive terms, best first
    size    INTEGER NOT NULL,
    x       REAL NOT NULL,      -- centroid on the map (label position)
    y       REAL NOT NULL,
    PRIMARY KEY (level, id)
);
"""
