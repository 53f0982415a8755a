"""For you: a covering index for "visible papers listed in a window" (feed_date range,
hidden flag, rowid), which every For-you page and model training reads; without it a
30-day window of a 1M-paper store is 30,000 row lookups."""

SQL = """
CREATE INDEX papers_feed_date_hidden ON papers(feed_date, hidden);
"""
