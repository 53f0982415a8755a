"""Trends: a covering index for "papers and upvotes of visible papers per feed day"
(`store/topics.daily_cluster_counts`); `m0602` widens it for the trending sort. The twelve weeks of /trends are ~92,000 papers at
arXiv's rate; without it each is a lookup of its whole row for two vote counts (0.65-0.82 s
warm for a 1M-paper store, 0.30 s with it)."""

SQL = """
CREATE INDEX papers_feed_votes ON papers(feed_date, hidden, upvotes, local_upvotes);
"""
