"""The "For you" pages, forms and JSON API; Follow buttons; mail one-click links.

* ``GET /for-you`` (day | week | month window), ``GET /for-you/topics`` (cold start);
* form POSTs (CSRF first, then the session; 303 back): ``/for-you/feedback``,
  ``/for-you/topics``, ``/follow``, ``/for-you/feed-token``;
* ``GET /for-you/feed/{token}.atom``: the private Atom feed (the token is the credential;
  only its sha256 is stored; a new token revokes the old one);
* ``GET/POST /for-you/mail?token=``: signed digest links: GET shows a button, POST acts;
* ``/api/v1/for-you``, ``/api/v1/for-you/to-rate``, ``/api/v1/feedback``, ``/api/v1/follows``:
  writes need the session plus the ``X-CSRF-Token`` header.

Nothing here goes through the anonymous page cache: every page is one reader's.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, quote, urlencode

from fastapi import APIRouter, Body, Form, Request
from fastapi.responses import RedirectResponse, Response

from paperwire import recommend as rec
from paperwire.recommend import mail_links
from paperwire.web.account_routes import csrf_failed, safe_next
from paperwire.web.context import api_error as _err, api_reader as _reader, api_writer as _writer
from paperwire.web.context import (JSONResponse, check_csrf, conn, current_user, dismissed_of, render, state)
from paperwire.web.pages import error_page

router = APIRouter()
PAGE_SIZE = 30
WINDOWS = {"day": "Today", "week": "This week", "month": "This month"}
HIDDEN_LIMIT = 200  # the hidden-papers page lists the newest this many
RATE_UNTIL = 10  # offer "rate these 10" until the reader has this many positive signals


def _login(target: str) -> Response:
    return RedirectResponse(f"/login?next={quote(target)}", status_code=303)


def _form_user(request: Request, token: str, next_url: str = "/for-you"):
    if not check_csrf(request, token):
        return None, csrf_failed(request)
    user = current_user(request)
    if user is None:
        return None, _login(safe_next(next_url, "/for-you"))
    return user, None


def _window(raw: str | None) -> str:
    return raw if raw in WINDOWS else "week"


def _page(raw: str | None) -> int:
    try:
        return min(max(int(raw or 1), 1), 1000)
    except ValueError:
        return 1


def _no_store(resp: Response) -> Response:
    resp.headers["Cache-Control"] = "private, no-store"
    return resp


# ---------------------------------------------------------------- pages

@router.get("/for-you", include_in_schema=False)
def foryou_page(request: Request):
    user = current_user(request)
    if user is None:
        return _login("/for-you")
    c = conn(request)
    window = _window(request.query_params.get("window"))
    page = _page(request.query_params.get("page"))
    sig = rec.signals(c, user["id"])
    res = rec.recommend(c, user["id"], window=window, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE, sig=sig)
    rate = rec.to_rate(c, user["id"]) if len(sig.positives) < RATE_UNTIL else []
    shown = {p["id"] for p in res.picks}
    rate = [p for p in rate if p["id"] not in shown][:10]
    from paperwire.store import accounts

    voted = accounts.user_votes(c, user["id"], [p["id"] for p in res.picks + rate])
    return _no_store(render(request, "foryou.html", {
        "picks": res.picks, "info": res.info, "window": window, "windows": WINDOWS, "page": page,
        "has_more": len(res.picks) == PAGE_SIZE, "rate": rate, "follows": sig.follows,
        "voted": voted, "positives": len(sig.positives), "feed_url": request.query_params.get("feed_url"),
        "has_feed": rec.has_feed_token(c, user["id"]),
    }))


@router.get("/for-you/topics", include_in_schema=False)
def topics_page(request: Request, q: str = ""):
    user = current_user(request)
    if user is None:
        return _login("/for-you/topics")
    c = conn(request)
    hits, error = [], None
    q = q.strip()[:250]
    if q:
        try:
            from paperwire.index.search import search

            hits = [h.paper for h in search(c, q, mode="hybrid", limit=10, with_snippets=False).hits if h.paper]
        except ValueError as exc:  # QueryError: a message for people
            error = str(exc)
        except Exception:  # an unbuilt index must not break the page
            error = "Search is not available right now."
    follows = rec.follows(c, user["id"])
    followed = {(f["kind"], f["value"]) for f in follows}
    return _no_store(render(request, "foryou_topics.html", {
        "topics": rec.topic_choices(c), "follows": follows, "followed": followed, "q": q, "hits": hits,
        "error": error, "voted": set(),
    }))


# ---------------------------------------------------------------- forms

@router.post("/for-you/feedback", include_in_schema=False)
def feedback_form(request: Request, paper: str = Form(""), kind: str = Form("not_interested"),
                  action: str = Form("add"), next: str = Form("/for-you"), csrf_token: str = Form("")):
    user, error = _form_user(request, csrf_token, next)
    if error:
        return error
    if kind not in ("not_interested", "more_like_this"):
        return error_page(request, 422, "Not possible", "Unknown feedback.")
    fn = rec.not_interested if kind == "not_interested" else rec.more_like_this
    try:
        fn(conn(request), user["id"], paper, undo=action == "undo")
    except rec.RecommendError as exc:
        return error_page(request, 404, "Not found", str(exc).capitalize() + ".")
    target = _without_param(safe_next(next, "/for-you"), "dismissed")
    if kind == "not_interested" and action != "undo":
        # Back to the page, whose notice (base.html) offers an Undo for the paper just hidden.
        target += ("&" if "?" in target else "?") + urlencode({"dismissed": paper[:100]})
    return RedirectResponse(target, status_code=303)


def _without_param(target: str, name: str) -> str:
    """``target`` (a local path with a query) without the query parameter ``name``."""
    path, _, query = target.partition("?")
    if not query:
        return target
    kept = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != name]
    return path + ("?" + urlencode(kept) if kept else "")


@router.get("/for-you/hidden", include_in_schema=False)
def hidden_page(request: Request):
    """The papers this reader marked not interested, newest first, each with its undo."""
    user = current_user(request)
    if user is None:
        return _login("/for-you/hidden")
    c = conn(request)
    from paperwire.store import accounts
    from paperwire.store.papers import get_papers_by_rowid

    rowids_all = rec.dismissed_in_order(c, user["id"])
    rowids = rowids_all[::-1][:HIDDEN_LIMIT]
    by_rowid = get_papers_by_rowid(c, rowids)
    papers = [by_rowid[r] for r in rowids if r in by_rowid]
    return _no_store(render(request, "foryou_hidden.html", {
        "papers": papers, "voted": accounts.user_votes(c, user["id"], [p["id"] for p in papers]),
        "total": len(rowids_all), "limit": HIDDEN_LIMIT}))


@router.post("/for-you/topics", include_in_schema=False)
async def topics_form(request: Request):
    form = await request.form()
    user, error = _form_user(request, str(form.get("csrf_token", "")), "/for-you/topics")
    if error:
        return error
    c = conn(request)
    problems = []
    items = [("category", v) for v in form.getlist("category")]
    for kind, field in (("keyword", "keywords"), ("author", "authors")):
        items += [(kind, v) for v in str(form.get(field, "")).split(",") if v.strip()]
    for kind, value in items[:100]:
        try:
            rec.follow(c, user["id"], kind, str(value))
        except rec.RecommendError as exc:
            problems.append(str(exc))
    if problems:
        return error_page(request, 422, "Some topics were not added", "; ".join(problems[:5]))
    return RedirectResponse("/for-you", status_code=303)


@router.post("/follow", include_in_schema=False)
def follow_form(request: Request, kind: str = Form(""), value: str = Form(""), action: str = Form("follow"),
                next: str = Form("/for-you/topics"), csrf_token: str = Form("")):
    user, error = _form_user(request, csrf_token, next)
    if error:
        return error
    try:
        rec.follow(conn(request), user["id"], kind, value, undo=action == "unfollow")
    except rec.RecommendError as exc:
        return error_page(request, 422, "Not possible", str(exc).capitalize() + ".")
    return RedirectResponse(safe_next(next, "/for-you/topics"), status_code=303)


@router.post("/for-you/feed-token", include_in_schema=False)
def feed_token_form(request: Request, action: str = Form("new"), csrf_token: str = Form("")):
    user, error = _form_user(request, csrf_token)
    if error:
        return error
    c = conn(request)
    if action == "revoke":
        rec.revoke_feed_token(c, user["id"])
        return RedirectResponse("/for-you", status_code=303)
    token = rec.new_feed_token(c, user["id"])
    url = state(request).settings.base_url.rstrip("/") + f"/for-you/feed/{token}.atom"
    # Shown once, on this page only (no redirect: the secret stays out of history and logs).
    return _no_store(render(request, "foryou_feed.html", {"feed_url": url}))


@router.get("/for-you/feed/{token}.atom", include_in_schema=False)
def foryou_atom(request: Request, token: str):
    from paperwire.web.feeds import atom

    c = conn(request)
    uid = rec.user_for_feed_token(c, token)
    if uid is None:
        return error_page(request, 404, "Not found", "No such feed (the link may have been revoked).")
    res = rec.recommend(c, uid, window="week", limit=50)
    resp = atom(request, "For you", f"/for-you/feed/{token}.atom", res.picks)
    resp.headers["Cache-Control"] = "private, no-cache"
    resp.headers["X-Robots-Tag"] = "noindex"
    return resp


# ---------------------------------------------------------------- mail one-click links

def _mail_token(request: Request, token: str):
    try:
        return mail_links.read_link_token(state(request).settings.secret_key, token), None
    except mail_links.LinkError as exc:
        return None, error_page(request, 400, "Link not valid", str(exc).capitalize() + ".")


@router.get("/for-you/mail", include_in_schema=False)
def mail_link_page(request: Request, token: str = ""):
    value, error = _mail_token(request, token)
    if error:
        return error
    _, paper_id, action = value
    from paperwire.store.papers import get_paper

    paper = get_paper(conn(request), paper_id)
    return _no_store(render(request, "foryou_mail.html", {"token": token, "paper": paper, "paper_id": paper_id,
                                                          "action": action, "label": mail_links.ACTIONS[action],
                                                          "done": False}))


@router.post("/for-you/mail", include_in_schema=False)
def mail_link_act(request: Request, token: str = Form("")):
    # The signed token is the credential (a mail link works without a session), so no CSRF.
    value, error = _mail_token(request, token)
    if error:
        return error
    uid, paper_id, action = value
    try:
        mail_links.perform(conn(request), uid, paper_id, action)
    except ValueError as exc:  # LibraryError / RecommendError: the paper is gone
        return error_page(request, 404, "Not found", str(exc).capitalize() + ".")
    from paperwire.store.papers import get_paper

    return _no_store(render(request, "foryou_mail.html", {"token": "", "paper": get_paper(conn(request), paper_id),
                                                          "paper_id": paper_id, "action": action,
                                                          "label": mail_links.ACTIONS[action], "done": True}))


# ---------------------------------------------------------------- JSON API

def _hit(p: dict) -> dict:
    return {"id": p["paper_id"], "title": p["title"], "score": p["score"], "why": p["why"],
            "whyPapers": [{"id": b["paper_id"], "title": b["title"]} for b in p.get("why_papers") or []],
            "publishedAt": p.get("published"), "authors": p.get("authors") or [],
            "categories": p.get("categories") or []}


@router.get("/api/v1/for-you", tags=["paperwire"], summary="Papers picked for you")
def api_foryou(request: Request, window: str = "week", limit: int = 30, offset: int = 0):
    """``{"hits": [{"id", "title", "score", "why", ...}], "mode": "model"|"cold", ...}``."""
    user, error = _reader(request)
    if error:
        return error
    if window not in rec.WINDOW_DAYS:
        return _err(422, f"window must be one of {', '.join(rec.WINDOW_DAYS)}")
    if not 1 <= limit <= 100 or not 0 <= offset <= 10000:
        return _err(422, "limit must be 1-100 and offset 0-10000")
    res = rec.recommend(conn(request), user["id"], window=window, limit=limit, offset=offset)
    return _no_store(JSONResponse({"hits": [_hit(p) for p in res.picks], "mode": res.info["mode"], "window": window,
                                   "since": res.info["since"], "until": res.info["until"]}))


@router.get("/api/v1/for-you/to-rate", tags=["paperwire"], summary="Papers the model is least sure of")
def api_to_rate(request: Request):
    user, error = _reader(request)
    if error:
        return error
    papers = rec.to_rate(conn(request), user["id"])
    return _no_store(JSONResponse({"papers": [{"id": p["paper_id"], "title": p["title"]} for p in papers]}))


@router.post("/api/v1/feedback", tags=["paperwire"], summary="Not interested / more like this (or undo)")
def api_feedback(request: Request, paper: str = Body(..., embed=True, max_length=300),
                 kind: str = Body("not_interested", embed=True), undo: bool = Body(False, embed=True)):
    user, error = _writer(request)
    if error:
        return error
    if kind not in ("not_interested", "more_like_this"):
        return _err(422, "kind must be not_interested or more_like_this")
    fn = rec.not_interested if kind == "not_interested" else rec.more_like_this
    try:
        changed = fn(conn(request), user["id"], paper, undo=undo)
    except rec.RecommendError as exc:
        return _err(404, str(exc))
    return {"paper": paper, "kind": kind, "undone": undo, "changed": changed}


@router.get("/api/v1/follows", tags=["paperwire"], summary="What you follow")
def api_follows(request: Request):
    user, error = _reader(request)
    if error:
        return error
    return _no_store(JSONResponse({"follows": rec.follows(conn(request), user["id"])}))


@router.post("/api/v1/follows", tags=["paperwire"], summary="Follow (or unfollow) a category, author or keyword")
def api_follow(request: Request, kind: str = Body(..., embed=True, max_length=20),
               value: str = Body(..., embed=True, max_length=300), undo: bool = Body(False, embed=True)):
    user, error = _writer(request)
    if error:
        return error
    try:
        changed = rec.follow(conn(request), user["id"], kind, value, undo=undo)
    except rec.RecommendError as exc:
        return _err(422, str(exc))
    return {"follows": rec.follows(conn(request), user["id"]), "changed": changed}


def install(app, st) -> None:
    """Add the routes and the template global the Follow buttons use."""

    def following(user, kind, value) -> bool:
        # One follows query per request and user, memoised on the request's user dict.
        if not user or not isinstance(user, dict):
            return False
        cache = user.get("_follows")
        if cache is None:
            cache = {(f["kind"], f["value"]) for f in rec.follows(st.conn(), user["id"])}
            user["_follows"] = cache
        if kind == "author":
            from paperwire.model import normalize_title

            value = normalize_title(value)
        return (kind, value) in cache

    def dismissed(user, rowid) -> bool:
        if not user or not isinstance(user, dict) or not isinstance(rowid, int):
            return False
        return rowid in dismissed_of(st.conn(), user)

    def undo_paper(user, request):
        # The paper named by ``?dismissed=`` after a "Not interested" click, while it is
        # still dismissed: base.html shows the notice with its Undo on whatever page it was.
        ident = (request.query_params.get("dismissed") or "")[:100] if request is not None else ""
        if not ident or not user or not isinstance(user, dict) or not ident.isprintable():
            return None  # (a NUL byte is no paper id, and PostgreSQL refuses it in a parameter)
        from paperwire.store.papers import get_paper

        paper = get_paper(st.conn(), ident)
        return paper if paper is not None and dismissed(user, paper["id"]) else None

    st.env.globals["fy_following"] = following
    st.env.globals["fy_dismissed"] = dismissed
    st.env.globals["fy_undo_paper"] = undo_paper
    app.include_router(router)
