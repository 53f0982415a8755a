"""A partial index of hidden papers: search reads the (few) hidden rowids once per store
revision instead of looking up the hidden flag of every candidate."""

SQL = """
CREATE INDEX papers_hidden ON papers(id) WHERE hidden=1;
"""
