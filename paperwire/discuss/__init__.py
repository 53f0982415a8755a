"""Discussions on papers: comments (markdown.py renders them safely), threads and
moderation (comments.py, moderation.py), reply notification mail (mail.py)."""
