"""Remember how authoritative the source of a paper's bibliographic fields was."""

SQL = """
ALTER TABLE papers ADD COLUMN meta_rank INTEGER NOT NULL DEFAULT 0;
"""
