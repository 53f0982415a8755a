"""Papers in the JSON shapes of the Hugging Face Papers API.

``huggingface_hub.HfApi`` parses these with ``PaperInfo(**item)``:
- ``/api/daily_papers`` and ``/api/papers/search`` return a list of *daily
  items*: ``{"paper": {...}, "publishedAt", "title", "summary",
  "numComments", "submittedBy", ...}`` where top-level ``publishedAt`` is when
  the paper reached the daily feed;
- ``/api/papers/{id}`` returns the *paper* object itself, with
  ``submittedOnDailyAt`` / ``submittedOnDailyBy``.
Extra fields (``arxivId``, ``categories``, ``links``) are ours; clients ignore them.
"""

from __future__ import annotations

from paperwire.web.security import http_url


def _iso(stamp: str | None) -> str | None:
    """Our stored ISO-8601 UTC stamps as HF writes them (``...T..:..:..Z``)."""
    if not stamp:
        return None
    s = stamp.strip()
    if len(s) == 10:  # a bare date
        return s + "T00:00:00.000Z"
    if s.endswith("+00:00"):
        s = s[:-6] + "Z"
    return s if s.endswith("Z") else s + "Z"


def _user(name: str | None) -> dict | None:
    if not name:
        return None
    # HF sends "name"; huggingface_hub's User reads "user" for .username: send both.
    return {"_id": name, "name": name, "user": name, "fullname": name, "avatarUrl": "", "type": "user",
            "isPro": False}


def submitted_at(p: dict) -> str | None:
    return _iso(p.get("listed_at") or (p.get("feed_date") + "T00:00:00Z" if p.get("feed_date") else None))


def paper_object(p: dict, base_url: str = "") -> dict:
    """The HF ``paper`` object (also the whole body of ``/api/papers/{id}``)."""
    pid = p["paper_id"]
    votes = p.get("votes")
    if votes is None:
        votes = (p.get("upvotes") or 0) + (p.get("local_upvotes") or 0)
    return {
        "id": pid,
        "authors": [{"_id": f"{pid}#{i}", "name": n, "hidden": False} for i, n in enumerate(p.get("authors") or [])],
        "publishedAt": _iso(p.get("published") or p.get("listed_at") or p.get("first_seen")),
        "submittedOnDailyAt": submitted_at(p),
        "title": p["title"],
        "summary": p.get("abstract") or "",
        "upvotes": int(votes),
        "discussionId": pid,
        "submittedOnDailyBy": _user(p.get("submitted_by")),
        # Imported links: http(s) only, as on the pages (a client may make them links).
        "projectPage": http_url(p.get("project_url")),
        "githubRepo": http_url(p.get("code_url")),
        "numComments": int(p.get("num_comments") or 0),
        # paperwire extras
        "arxivId": p.get("arxiv_id"),
        "categories": p.get("categories") or [],
        "updatedAt": _iso(p.get("updated")),
        "feedDate": p.get("feed_date"),
        "doi": p.get("doi"),
        "links": {
            "html": f"{base_url}/papers/{pid}",
            "abs": http_url(p.get("abs_url")),
            "pdf": http_url(p.get("pdf_url")),
        },
    }


def daily_item(p: dict, base_url: str = "", **extra) -> dict:
    """One entry of ``/api/daily_papers`` (and of ``/api/papers/search``)."""
    paper = paper_object(p, base_url)
    item = {
        "paper": paper,
        "publishedAt": paper["submittedOnDailyAt"],
        "title": p["title"],
        "summary": p.get("abstract") or "",
        "thumbnail": None,
        "numComments": int(p.get("num_comments") or 0),
        "submittedBy": _user(p.get("submitted_by")),
        "isAuthorParticipating": False,
    }
    item.update(extra)
    return item
