"""Case-insensitive DOI lookups for library imports (DOIs are case-insensitive by spec).

An expression index, which SQLite and PostgreSQL both support. Bulk loads rebuild it
like every other secondary index (they read index definitions from the schema).
"""

SQL = """
CREATE INDEX papers_doi_lower ON papers(lower(doi));
"""
