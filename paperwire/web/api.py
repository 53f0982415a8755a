"""The JSON API.

``/api/daily_papers``, ``/api/papers/{id}`` and ``/api/papers/search`` follow the
Hugging Face Papers API (same paths, parameters and field names), so
``huggingface_hub.HfApi`` works against a paperwire server with
``HF_ENDPOINT=http://host:port``. Our extras live under ``/api/v1/``.
Bad parameters answer 422 with ``{"error": "..."}`` (a bad date/week/month 400, as on HF), unknown ids 404.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Body, Query, Request

from paperwire import feed, rank
from paperwire.store import accounts
from paperwire.web import hf, periods, searching
from paperwire.web.account_routes import submit_arxiv_id
from paperwire.web.context import api_error as _err, api_writer as _writer
from paperwire.web.context import (JSONResponse, cached_page, cached_search, conn, csrf_token, current_user,
                                   finish, state)
from paperwire.web.pages import lookup_paper, trending_now

router = APIRouter(prefix="/api")


def _base(request: Request) -> str:
    return state(request).settings.base_url.rstrip("/")


@router.get("/daily_papers", tags=["HF-compatible"], summary="Papers of a day, week or month")
def daily_papers(
    request: Request,
    # No max_length: a bad date/week/month of any length answers 400, as on HF (below).
    date: str | None = Query(None, description="YYYY-MM-DD"),
    week: str | None = Query(None, description="ISO week, YYYY-Www (e.g. 2025-W09)"),
    month: str | None = Query(None, description="YYYY-MM"),
    submitter: str | None = Query(None, description="only papers submitted by this user", max_length=64),
    sort: Literal["publishedAt", "trending"] = Query("publishedAt"),
    p: int = Query(0, ge=0, le=100000, description="page number, from 0"),
    limit: int = Query(50, ge=1, le=100),
):
    """Daily papers as Hugging Face lists them: a list of ``{"paper": {...}, "publishedAt", "title", ...}``.
    Without date/week/month: the newest papers (or the trending ones with ``sort=trending``)."""
    given = [(k, v) for k, v in (("day", date), ("week", week), ("month", month)) if v]
    if len(given) > 1:
        return _err(400, "give at most one of date, week, month")
    try:
        period = periods.parse(given[0][0], given[0][1][:40]) if given else None
    except periods.PeriodError as exc:
        return _err(400, str(exc))  # HF answers 400 (huggingface_hub raises BadRequestError)
    order = "trending" if sort == "trending" else "date"

    def build():
        c = conn(request)
        if period is not None:
            papers = feed.papers_between(c, period.since, period.until, sort=order, limit=limit,
                                         offset=p * limit, submitter=submitter)
        elif sort == "trending" and not submitter:
            papers = rank.trending(c, now=trending_now(c), limit=limit, offset=p * limit)
        elif submitter:
            papers = feed.papers_between(c, "0000-00-00", "9999-12-31", sort=order, limit=limit,
                                         offset=p * limit, submitter=submitter)
        else:
            papers = feed.newest(c, limit=limit, offset=p * limit)
        return JSONResponse([hf.daily_item(x, _base(request)) for x in papers])
    return cached_page(request, build, time_bucket=sort == "trending")


@router.get("/papers/search", tags=["HF-compatible"], summary="Search papers")
async def papers_search(
    request: Request,
    q: str | None = Query(None, description="query (at most 250 characters); supports author:, cat:, year:",
                          max_length=searching.MAX_QUERY_CHARS),
    limit: int = Query(50, ge=1, le=120),  # HF's maximum
    p: int = Query(0, ge=0, le=1000, description="page number, from 0"),
    mode: Literal["hybrid", "lexical", "semantic"] = Query("hybrid"),
    sort: Literal["relevance", "date", "votes"] = Query("relevance"),
):
    """Hybrid search; each result is a daily-papers item plus ``snippet`` and ``score``.
    Without ``q``: the newest papers."""
    def build():
        c = conn(request)
        if not q or not q.strip():
            return JSONResponse([hf.daily_item(x, _base(request)) for x in feed.newest(c, limit=limit, offset=p * limit)])
        try:
            res = searching.run_search(c, q, mode=mode, limit=limit, offset=p * limit, sort=sort)
        except searching.SearchInputError as exc:
            return _err(422, str(exc))
        return JSONResponse([hf.daily_item(h.paper, _base(request), snippet=h.snippet, score=h.score)
                             for h in res.hits],
                            headers={"X-Total-Count": str(res.total), "X-Search-Mode": res.mode,
                                     "X-Total-Exact": "true" if res.total_exact else "false"})
    return await cached_search(request, build)


@router.get("/papers/{paper_id:path}", tags=["HF-compatible"], summary="One paper")
def paper_info(request: Request, paper_id: str,
               field: Literal["comments"] | None = Query(None, description="comments: add the discussion")):
    """The paper object (HF ``paper_info``): id, title, summary, authors, publishedAt, upvotes, ...
    With ``field=comments``: plus ``comments[]`` in HF's shape (paperwire.web.discuss_routes)."""
    def build():
        paper = lookup_paper(request, paper_id)
        if paper is None or paper.get("hidden"):
            return _err(404, f"paper {paper_id[:100]!r} not found")
        data = hf.paper_object(paper, _base(request))
        if field == "comments":
            from paperwire.web.discuss_routes import api_comments

            data["comments"] = api_comments(request, paper)
        return JSONResponse(data)
    return cached_page(request, build)


# ---------------------------------------------------------------- paperwire extras

@router.get("/v1/papers/{paper_id:path}/similar", tags=["paperwire"], summary="Similar papers")
def similar(request: Request, paper_id: str, limit: int = Query(10, ge=1, le=50)):
    def build():
        paper = lookup_paper(request, paper_id)
        if paper is None or paper.get("hidden"):
            return _err(404, f"paper {paper_id[:100]!r} not found")
        sims = searching.similar_papers(conn(request), paper["paper_id"], limit=limit)
        return JSONResponse([hf.daily_item(s, _base(request), similarity=s.get("similarity")) for s in sims])
    return cached_page(request, build)


@router.get("/v1/trending", tags=["paperwire"], summary="Trending papers")
def trending(request: Request, limit: int = Query(30, ge=1, le=100), p: int = Query(0, ge=0, le=1000)):
    """Ranked by ``(votes + 1) / (age_hours + 2) ** 1.5`` over the last 7 days (see README)."""
    def build():
        c = conn(request)
        papers = rank.trending(c, now=trending_now(c), limit=limit, offset=p * limit)
        return JSONResponse([hf.daily_item(x, _base(request), trendingScore=x["score"]) for x in papers])
    return cached_page(request, build, time_bucket=True)


@router.get("/v1/csrf", tags=["paperwire"], summary="A CSRF token for write requests")
def csrf(request: Request):
    """Send the token back as ``X-CSRF-Token`` with the cookies this response sets."""
    user = current_user(request)
    return finish(request, JSONResponse({"csrfToken": csrf_token(request),
                                         "user": user["username"] if user else None}))


@router.post("/v1/papers/{paper_id:path}/upvote", tags=["paperwire"], summary="Upvote (or undo)")
def upvote(request: Request, paper_id: str, up: bool = Body(True, embed=True)):
    """``{"up": true}`` upvotes, ``{"up": false}`` takes the vote back; one vote per user and paper."""
    user, error = _writer(request)
    if error:
        return error
    paper = lookup_paper(request, paper_id)
    if paper is None or paper.get("hidden"):
        return _err(404, f"paper {paper_id[:100]!r} not found")
    voted, total = accounts.set_vote(conn(request), user["id"], paper["id"], up)
    return {"paper": paper["paper_id"], "voted": voted, "upvotes": total}


@router.post("/v1/submissions", tags=["paperwire"], summary="Submit a paper by arXiv id")
def submit(request: Request, arxiv_id: str = Body(..., embed=True, max_length=100)):
    """Known papers are credited to you; unknown ones are queued for the next harvest."""
    user, error = _writer(request)
    if error:
        return error
    status, info = submit_arxiv_id(conn(request), user, arxiv_id)
    if status == "invalid":
        return _err(422, info["message"])
    return JSONResponse({"status": status, **info}, status_code=200 if status == "known" else 202)


@router.get("/v1/submissions", tags=["paperwire"], summary="Your submissions")
def my_submissions(request: Request):
    user = current_user(request)
    if user is None:
        return _err(401, "sign in first")
    return accounts.user_submissions(conn(request), user["id"])
