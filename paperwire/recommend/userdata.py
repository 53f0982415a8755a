"""The For-you area's sections of "Download my data" (see ``paperwire.library.userdata``)."""

from __future__ import annotations

from paperwire.library.userdata import register_section
from paperwire.store import feedback as sql


def _feedback(conn, user_id: int) -> list[dict]:
    return sql.feedback_rows(conn, user_id)


def _for_you(conn, user_id: int) -> dict:
    # The model itself is not stored: it is retrained from these signals on demand.
    return {"follows": sql.list_follows(conn, user_id), "private_feed_active": sql.has_feed_token(conn, user_id),
            "model": "logistic regression + kNN + BM25 profile, retrained from your saves, upvotes and feedback"}


register_section("feedback", _feedback)
register_section("for_you", _for_you)
