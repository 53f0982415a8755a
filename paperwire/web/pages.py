"""HTML pages: the daily/weekly/monthly feed, trending, paper pages, authors, search.

Each page also answers JSON (``?format=json``), datasette-style, with the same
HF-shaped paper objects as the API.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from math import ceil

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response

from paperwire import feed, rank
from paperwire.export import to_bibtex
from paperwire.store import accounts
from paperwire.store import papers as store
from paperwire.web import hf, periods, searching
from paperwire.web.context import (cached_page, cached_search, conn, current_user, dismissed_of, json_response,
                                   render, state, wants_json)

router = APIRouter()
PAGE_SIZE = 30
SORTS = {"trending": "Trending", "date": "Newest"}


def _int(request: Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query_params.get(name)
    try:
        return min(max(int(raw), lo), hi) if raw not in (None, "") else default
    except ValueError:
        return default


def _sort(request: Request) -> str:
    s = request.query_params.get("sort", "trending")
    return s if s in SORTS else "trending"


def _voted(request: Request, papers: list[dict]) -> set[int]:
    user = current_user(request)
    if not user:
        return set()
    return accounts.user_votes(conn(request), user["id"], [p["id"] for p in papers])


def _without_dismissed(request: Request, papers: list[dict]) -> tuple[list[dict], int]:
    """``papers`` less those the signed-in reader marked not interested, and how many went.
    (Anonymous pages are cached and shared: nothing to hide there.)"""
    user = current_user(request)
    if not user:
        return papers, 0
    gone = dismissed_of(conn(request), user)
    if not gone:
        return papers, 0
    kept = [p for p in papers if p["id"] not in gone]
    return kept, len(papers) - len(kept)


def _base(request: Request) -> str:
    return state(request).settings.base_url.rstrip("/")


def error_page(request: Request, status: int, title: str, message: str) -> Response:
    if wants_json(request) or request.url.path.startswith("/api/"):
        return json_response({"error": message}, status)
    return render(request, "error.html", {"title": title, "message": message}, status=status)


# ---------------------------------------------------------------- feed

def _feed_response(request: Request, period: periods.Period, *, is_home: bool = False) -> Response:
    c = conn(request)
    sort = _sort(request)
    page = _int(request, "page", 1, 1, 100000)
    total = feed.count_between(c, period.since, period.until)
    papers = feed.papers_between(c, period.since, period.until, sort=sort, limit=PAGE_SIZE,
                                 offset=(page - 1) * PAGE_SIZE)
    papers, hidden = _without_dismissed(request, papers)
    prev, nxt = periods.neighbours(c, period)
    if wants_json(request):
        return json_response({
            "period": {"kind": period.kind, "key": period.key, "since": period.since, "until": period.until},
            "sort": sort, "page": page, "pageSize": PAGE_SIZE, "total": total,
            "previous": prev.key if prev else None, "next": nxt.key if nxt else None,
            "papers": [hf.daily_item(p, _base(request)) for p in papers], "hidden": hidden,
        })
    views = {k: periods.containing(k, period.since if k != "day" else _day_in(c, period)) for k in ("day", "week", "month")}
    return render(request, "feed.html", {
        "period": period, "papers": papers, "sort": sort, "sorts": SORTS, "page": page,
        "pages": max(1, ceil(total / PAGE_SIZE)), "total": total, "prev": prev, "next": nxt,
        "views": views, "voted": _voted(request, papers), "is_home": is_home,
        "offset": (page - 1) * PAGE_SIZE, "hidden": hidden,
    })


def _day_in(c, period: periods.Period) -> str:
    """For the 'Daily' tab of a week/month: its newest day with papers, else its first day."""
    if period.kind == "day":
        return period.key
    d = feed.previous_date(c, (datetime.fromisoformat(period.until) + timedelta(days=1)).date().isoformat())
    return d if d and d >= period.since else period.since


@router.get("/", include_in_schema=False)
def home(request: Request):
    def build():
        latest = feed.latest_feed_date(conn(request))
        if latest is None:
            if wants_json(request):
                return json_response({"period": None, "papers": [], "total": 0})
            return render(request, "empty.html", {})
        return _feed_response(request, periods.day(latest), is_home=True)
    return cached_page(request, build, time_bucket=_sort(request) == "trending")


def _period_route(kind: str):
    def view(request: Request, key: str):
        try:
            period = periods.parse(kind, key)
        except periods.PeriodError as exc:
            return error_page(request, 422, "Not a valid date", str(exc))
        return cached_page(request, lambda: _feed_response(request, period),
                           time_bucket=_sort(request) == "trending")
    view.__name__ = f"feed_{kind}"
    return view


router.add_api_route("/papers/date/{key}", _period_route("day"), methods=["GET"], include_in_schema=False)
router.add_api_route("/papers/week/{key}", _period_route("week"), methods=["GET"], include_in_schema=False)
router.add_api_route("/papers/month/{key}", _period_route("month"), methods=["GET"], include_in_schema=False)


def trending_now(c) -> datetime:
    """The reference time for /trending: now, or the end of the newest feed day when
    the corpus is older than the trending window (an archive still shows its best)."""
    now = datetime.now(timezone.utc)
    latest = feed.latest_feed_date(c)
    if latest:
        end = datetime.fromisoformat(latest).replace(tzinfo=timezone.utc) + timedelta(days=1)
        if end < now - timedelta(days=rank.DEFAULT_WINDOW_DAYS):
            return end
    return now


@router.get("/trending", include_in_schema=False)
def trending_page(request: Request):
    def build():
        c = conn(request)
        page = _int(request, "page", 1, 1, 1000)
        ref = trending_now(c)
        papers = rank.trending(c, now=ref, limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE)
        more = len(papers) > PAGE_SIZE
        papers, hidden = _without_dismissed(request, papers[:PAGE_SIZE])
        if wants_json(request):
            return json_response({"page": page, "asOf": ref.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                  "papers": [hf.daily_item(p, _base(request), trendingScore=p["score"]) for p in papers]})
        return render(request, "trending.html", {
            "papers": papers, "page": page, "more": more, "voted": _voted(request, papers),
            "as_of": ref, "window": rank.DEFAULT_WINDOW_DAYS, "offset": (page - 1) * PAGE_SIZE,
            "gravity": rank.GRAVITY, "offset_hours": rank.OFFSET_HOURS, "hidden": hidden,
        })
    return cached_page(request, build, time_bucket=True)


# ---------------------------------------------------------------- search

@router.get("/search", include_in_schema=False)
async def search_page(request: Request):
    def build():
        qp = request.query_params
        q = qp.get("q", "")
        form = {k: qp.get(k, "") for k in ("author", "category", "year_from", "year_to")}
        mode = qp.get("mode", "hybrid")
        sort = qp.get("sort", "relevance")
        page = _int(request, "page", 1, 1, 500)
        filters = searching.form_filters(**form)
        full = searching.describe(q, filters)
        ctx = {"q": q, "form": form, "mode": mode, "sort": sort, "page": page, "results": None,
               "error": None, "modes": searching.MODES, "sorts": searching.SORTS, "full_query": full,
               "page_size": 20}
        if full:
            try:
                res = searching.run_search(conn(request), q, mode=mode, limit=20, offset=(page - 1) * 20, sort=sort,
                                           filters=filters)
            except searching.SearchInputError as exc:
                ctx["error"] = str(exc)
                if wants_json(request):
                    return json_response({"error": str(exc)}, 422)
            else:
                ctx["results"] = res
                if res.cut_from is not None:
                    ctx["q"] = searching.cut_query(q.strip())  # the box and the pager carry what was searched
                ctx["pages"] = max(1, min(ceil(res.total / 20), 50))  # the engine pages to 1,000 results
                ctx["voted"] = _voted(request, [h.paper for h in res.hits if "id" in h.paper])
                if wants_json(request):
                    return json_response({
                        "query": full, "mode": res.mode, "notes": res.notes, "total": res.total, "page": page,
                        "totalExact": res.total_exact, "suggestion": res.suggestion,
                        "correctedFrom": res.corrected_from, "noMatch": res.no_match,
                        "results": [hf.daily_item(h.paper, _base(request), snippet=h.snippet, score=h.score)
                                    for h in res.hits],
                    })
        elif wants_json(request):
            return json_response({"error": "q is required"}, 422)
        return render(request, "search.html", ctx, status=422 if ctx["error"] and q else 200)
    return await cached_search(request, build)


# ---------------------------------------------------------------- authors

@router.get("/authors/{name:path}", include_in_schema=False)
def author_page(request: Request, name: str):
    def build():
        if not name.strip() or len(name) > 300:
            return error_page(request, 404, "No such author", "No papers by that author.")
        page = _int(request, "page", 1, 1, 10000)
        papers, total = feed.papers_by_author(conn(request), name, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
        if total == 0:
            return error_page(request, 404, "No such author", f"No papers by {name} here.")
        if wants_json(request):
            return json_response({"author": name, "total": total, "page": page,
                                  "papers": [hf.daily_item(p, _base(request)) for p in papers]})
        return render(request, "author.html", {
            "name": name, "papers": papers, "total": total, "page": page,
            "pages": max(1, ceil(total / PAGE_SIZE)), "voted": _voted(request, papers),
            "offset": (page - 1) * PAGE_SIZE,
        })
    return cached_page(request, build)


# ---------------------------------------------------------------- paper page

def lookup_paper(request: Request, paper_id: str) -> dict | None:
    """A paper by any of its ids; hidden papers exist only for admins."""
    if not paper_id or len(paper_id) > 200:
        return None
    user = current_user(request)
    p = store.get_paper(conn(request), paper_id, include_hidden=bool(user and user["is_admin"]))
    if p is not None:
        p["votes"] = (p.get("upvotes") or 0) + (p.get("local_upvotes") or 0)
        if not p.get("submitted_by") and p.get("arxiv_id"):
            p["submitted_by"] = feed.submitter_of(conn(request), p["arxiv_id"])
    return p


@router.get("/papers/{paper_id:path}", include_in_schema=False)
def paper_page(request: Request, paper_id: str):
    def build():
        suffix = None
        pid = paper_id
        for ext in (".bib", ".json", ".md"):
            if pid.endswith(ext) and lookup_paper(request, pid) is None:
                pid, suffix = pid[: -len(ext)], ext
        paper = lookup_paper(request, pid)
        if paper is None:
            return error_page(request, 404, "Paper not found", f"There is no paper {pid!r} here.")
        if paper["paper_id"] != pid and suffix is None and not wants_json(request):
            # Old ids (pw-<hash> before an arXiv id was known, versioned ids) keep working.
            return RedirectResponse(f"/papers/{paper['paper_id']}", status_code=301)
        if suffix == ".bib":
            return PlainTextResponse(to_bibtex(paper), media_type="application/x-bibtex; charset=utf-8")
        if suffix == ".md" or (suffix is None and "text/markdown" in request.headers.get("accept", "")):
            return _markdown(request, paper)  # HF's read_paper (paperwire/paper_markdown.py)
        similar = searching.similar_papers(conn(request), paper["paper_id"], limit=6)
        if suffix == ".json" or wants_json(request):
            data = hf.paper_object(paper, _base(request))
            data["similar"] = [hf.daily_item(s, _base(request), similarity=s.get("similarity")) for s in similar]
            return json_response(data)
        return render(request, "paper.html", {
            "paper": paper, "similar": similar, "bibtex": to_bibtex(paper),
            "voted": _voted(request, [paper]), "hidden": bool(paper.get("hidden")),
        })
    return cached_page(request, build)


def _markdown(request: Request, paper: dict) -> Response:
    from paperwire.paper_markdown import paper_markdown

    user = current_user(request)
    if paper.get("hidden") and not (user and user["is_admin"]):
        return PlainTextResponse("paper not found\n", status_code=404)
    return PlainTextResponse(paper_markdown(paper, _base(request)), media_type="text/markdown; charset=utf-8",
                             headers={"Vary": "Accept"})
