"""The topic map and trends: ``/map``, ``/trends``, ``/trends/rising.png`` and the map API.

* ``GET /api/v1/map?cursor=&limit=``: ``{"points": [{"id", "x", "y", "cluster"}], "clusters":
  [{"id", "label", "size"}], "next_cursor"}``, paged by paper rowid (the cursor is opaque).
  ``cluster`` is the coarse cluster; ``fine`` and ``fine_clusters`` give the second zoom level.
* ``GET /api/v1/map/points``: the same points in compact columns for the canvas (``ids``,
  ``xy`` as integers 0..65535 interleaved, ``c`` coarse, ``f`` fine), up to 100,000 a page.
* ``GET /api/v1/map/highlight?set=search&q=|today|library``: public ids to light up.

All of it answers an empty map with ``"empty": "<why>"`` and status 200, never an error.
"""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from paperwire.store import topics as sql
from paperwire.topics import charts, map as topic_map, trends as topic_trends
from paperwire.web.context import cached_page, conn, current_user, json_response, render

router = APIRouter()
API_LIMIT = 5000
API_MAX = 50000
COMPACT_MAX = 100000
HIGHLIGHT_MAX = 100  # the search engine pages at most 100 hits


def _int(raw: str | None, default: int, lo: int, hi: int) -> int | None:
    if raw is None or raw == "":
        return default
    try:
        v = int(raw)
    except ValueError:
        return None
    return min(max(v, lo), hi)


def _cluster_rows(c, level: str) -> list[dict]:
    rows = sql.clusters(c, level)
    keys = ("id", "label", "size", "terms", "x", "y") + (("parent",) if level == "fine" else ())
    return [{k: (round(r[k], 5) if k in ("x", "y") else r[k]) for k in keys} for r in rows]


def _page_args(request: Request, default: int, most: int):
    cursor = _int(request.query_params.get("cursor"), 0, 0, 2 ** 62)
    limit = _int(request.query_params.get("limit"), default, 1, most)
    if cursor is None or limit is None:
        return None, None, json_response({"error": "cursor and limit must be whole numbers"}, 400)
    return cursor, limit, None


@router.get("/api/v1/map", tags=["paperwire"], summary="The topic map: points and labelled clusters (paged)")
def api_map(request: Request, cursor: str | None = None, limit: str | None = None):
    """Points ``{id, x, y, cluster, fine}`` by cursor, and the clusters of both zoom levels."""
    cursor, limit, bad = _page_args(request, API_LIMIT, API_MAX)
    if bad:
        return bad

    def build():
        c = conn(request)
        reason = topic_map.empty_reason(c)
        if reason:
            return json_response({"points": [], "clusters": [], "fine_clusters": [], "next_cursor": None,
                                  "total": 0, "empty": reason})
        rows = sql.points_page(c, cursor, limit)
        points = [{"id": r["paper_id"], "x": round(r["x"], 5), "y": round(r["y"], 5), "cluster": r["coarse"],
                   "fine": r["fine"]} for r in rows]
        more = len(rows) == limit
        return json_response({"points": points, "clusters": _cluster_rows(c, "coarse"),
                              "fine_clusters": _cluster_rows(c, "fine"),
                              "next_cursor": str(rows[-1]["rowid"]) if more and rows else None,
                              "total": sql.point_count(c), "built_at": sql.get_map_value(c, "built_at")})
    return cached_page(request, build)


@router.get("/api/v1/map/points", tags=["paperwire"], summary="Map points in compact columns (for drawing)")
def api_map_points(request: Request, cursor: str | None = None, limit: str | None = None):
    """``{"ids": [...], "xy": [x0, y0, x1, ...] (0..65535), "c": [...], "f": [...], "next_cursor"}``."""
    cursor, limit, bad = _page_args(request, COMPACT_MAX, COMPACT_MAX)
    if bad:
        return bad

    def build():
        c = conn(request)
        reason = topic_map.empty_reason(c)
        if reason:
            return json_response({"ids": [], "xy": [], "c": [], "f": [], "next_cursor": None, "empty": reason})
        rows = sql.points_page(c, cursor, limit)
        xy: list[int] = []
        for r in rows:
            xy.append(int(r["x"] * 65535))
            xy.append(int(r["y"] * 65535))
        more = len(rows) == limit
        return json_response({"ids": [r["paper_id"] for r in rows], "xy": xy, "c": [r["coarse"] for r in rows],
                              "f": [r["fine"] for r in rows], "total": sql.point_count(c),
                              "next_cursor": str(rows[-1]["rowid"]) if more and rows else None})
    return cached_page(request, build)


def _ids_for(c, rowids: list[int]) -> list[str]:
    got = {r["rowid"]: r["paper_id"] for r in sql.points_for_rowids(c, rowids)}
    return [got[r] for r in rowids if r in got]


@router.get("/api/v1/map/highlight", tags=["paperwire"], summary="Papers to highlight on the map")
def api_map_highlight(request: Request, which: str | None = Query(None, alias="set"), q: str | None = None):
    """``set=search&q=...`` (search hits), ``set=today`` (the newest day), ``set=library`` (signed in)."""
    which = which or "search"
    c = conn(request)
    headers = {"Cache-Control": "private, no-store"}
    if which == "search":
        from paperwire.web.searching import SearchInputError, run_search

        q = (request.query_params.get("q") or "").strip()
        try:
            res = run_search(c, q, limit=HIGHLIGHT_MAX)
        except SearchInputError as exc:
            return json_response({"set": which, "ids": [], "note": str(exc)}, 400)
        pids = [h.paper.get("paper_id") for h in res.hits if h.paper.get("paper_id")]
        mapped = set(_ids_for(c, sql.rowids_for_paper_ids(c, pids)))
        ids = [p for p in pids if p in mapped]
        note = f"{len(ids)} of the top {len(pids)} results are on the map"
        if getattr(res, "no_match", False) or not pids:
            note = "no paper matches this query"
        if res.cut_from is not None:
            note = f"{res.notes[0]}; {note}"  # the cut note run_search put first
        resp = json_response({"set": which, "q": res.query, "ids": ids, "note": note})
    elif which == "today":
        day, rowids = sql.newest_day_points(c)
        resp = json_response({"set": which, "day": day, "ids": _ids_for(c, rowids),
                              "note": f"papers listed on {day}" if day else "no papers on the map yet"})
    elif which == "library":
        user = current_user(request)
        if user is None:
            return json_response({"set": which, "ids": [], "note": "sign in to see your library on the map"}, 401)
        ids = _ids_for(c, sql.library_points(c, user["id"]))
        resp = json_response({"set": which, "ids": ids, "note": f"{len(ids)} saved paper{'' if len(ids) == 1 else 's'} on the map"})
    else:
        return json_response({"error": "set must be search, today or library"}, 400)
    resp.headers.update(headers)
    return resp


@router.get("/map", include_in_schema=False)
def map_page(request: Request, q: str | None = None):
    """The canvas map (drawn by static/map.js from the compact points API); a long ``q`` is
    cut at a word boundary, as the search page cuts it."""
    from paperwire.web.searching import cut_query

    c = conn(request)
    status = topic_map.map_status(c, count_unplaced=False)
    return render(request, "map.html", {"status": status, "empty": status["empty_reason"],
                                        "q": cut_query((q or "").strip()),
                                        "signed_in": current_user(request) is not None,
                                        "coarse": sql.clusters(c, "coarse")[:30]})


def _trends(request: Request):
    c = conn(request)
    reason = topic_map.empty_reason(c)
    if reason:
        return None, reason
    end = None
    raw = request.query_params.get("week")
    if raw:
        try:
            end = date.fromisoformat(raw[:10])
        except ValueError:
            end = None
        if end is not None and not 1900 <= end.year <= 9000:
            end = None  # 12 weeks before year 1 is not a date; such a week has no papers anyway
    tr = topic_trends.weekly(c, end=end)
    if tr.empty:
        return None, "No dated papers on the map yet."
    return tr, None


@router.get("/trends", include_in_schema=False)
def trends_page(request: Request, week: str | None = None):
    """Topics over time: weekly papers and upvotes per cluster, and what is rising (SVG, no script)."""
    def build():
        tr, reason = _trends(request)
        if tr is None:
            return render(request, "trends.html", {"empty": reason})
        votes = sorted(((r.label, float(sum(r.upvotes)), str(sum(r.upvotes))) for r in tr.clusters),
                       key=lambda t: -t[1])[:10]
        ctx = {
            "empty": None, "trends": tr,
            "papers_svg": charts.line_chart(tr, series="papers", title="Papers per week, biggest topics"),
            "votes_svg": charts.bar_chart(votes, title=f"Upvotes per topic, {len(tr.weeks)} weeks"),
            "votes_weekly_svg": charts.line_chart(tr, series="upvotes", title="Upvotes per week, the same topics"),
            "rising_svg": charts.bar_chart([(r["label"], float(r["this_week"]),
                                             f"{r['this_week']} ({topic_trends.growth_text(r)})") for r in tr.rising],
                                           title="Rising this week (papers)") if tr.rising else "",
            "legend": charts.legend(tr), "growth_text": topic_trends.growth_text,
        }
        return render(request, "trends.html", ctx)
    return cached_page(request, build)


@router.get("/trends/rising.png", include_in_schema=False)
def rising_png(request: Request, week: str | None = None):
    """The "rising topics" chart as a PNG (what the weekly digest links to)."""
    tr, _reason = _trends(request)
    png = charts.rising_png(tr) if tr is not None else None
    if png is None:
        png = charts.empty_png("No rising topics this week")
    return Response(png, media_type="image/png", headers={"Cache-Control": "public, max-age=3600"})
