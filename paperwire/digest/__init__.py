"""Email digests: subscriptions with double opt-in, composing, rendering, sending.

* :mod:`.subscriptions` subscribe / confirm / change / unsubscribe (tokens in :mod:`.tokens`);
* :mod:`.compose` picks the papers of one digest (trending, personal picks, followed
  authors, categories, saved searches), never a paper the subscriber already got;
* :mod:`.render` turns a digest into a multipart/alternative message (Jinja2);
* :mod:`.send` the outbox: composes into the send ledger, then delivers over SMTP
  exactly once per subscriber and period (see the module docstring for the argument).
"""

from paperwire.digest.periods import FREQUENCIES, period_key

__all__ = ["FREQUENCIES", "period_key"]
