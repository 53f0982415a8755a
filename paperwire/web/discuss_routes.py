"""Discussion pages and API: comments on paper pages, notifications, moderation, Atom.

Thin adapters over :mod:`paperwire.discuss`. HTML forms need the session and the
form's CSRF token; API writes need the session and the ``X-CSRF-Token`` header
(checked by :class:`paperwire.web.guard.RequestGuard` before the body is read, and
again in :func:`api_writer`, where a Bearer-token path will slot in).
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from urllib.parse import quote

from fastapi import APIRouter, BackgroundTasks, Body, FastAPI, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from paperwire.discuss import comments as dc
from paperwire.discuss import mail as dmail
from paperwire.discuss import markdown, moderation
from paperwire.model import utcnow_iso
from paperwire.store import discuss as dsql
from paperwire.store.db import connect
from paperwire.web.account_routes import csrf_failed, safe_next
from paperwire.web.context import api_writer
from paperwire.web.context import JSONResponse, cached_page, check_csrf, conn, current_user, render, state
from paperwire.web.hf import _iso, _user
from paperwire.web.pages import error_page, lookup_paper

log = logging.getLogger(__name__)
router = APIRouter()
api_router = APIRouter(prefix="/api/v1")
ATOM_NS = "http://www.w3.org/2005/Atom"


def install(app: FastAPI, st) -> None:
    """Register the routes (before the pages' ``/papers/{id}`` catch-all) and the
    template helpers: ``discussion_for(request, paper)`` and ``unread_count(user)``."""

    def discussion_for(request: Request, paper: dict) -> dict:
        user = current_user(request)
        threads = dc.thread(st.conn(), paper["id"], user)
        return {"threads": threads, "count": dc.count_shown(threads), "max_chars": markdown.MAX_CHARS,
                "banned": bool(user and dsql.is_banned(st.conn(), user["id"])),
                "url": "/papers/" + quote(paper["paper_id"], safe="/")}

    def unread_count(user) -> int:
        if not isinstance(user, dict) or "id" not in user:
            return 0
        return dsql.unread_count(st.conn(), user["id"])

    st.env.globals.update(discussion_for=discussion_for, unread_count=unread_count)
    app.include_router(api_router)
    app.include_router(router)


def _login(next_url: str) -> Response:
    return RedirectResponse(f"/login?next={quote(next_url)}", status_code=303)


def _problem(request: Request, exc: dc.DiscussError) -> Response:
    titles = {404: "Not found", 403: "Not allowed", 413: "Comment too long", 429: "Slow down"}
    resp = error_page(request, exc.status, titles.get(exc.status, "Not possible"), str(exc).capitalize() + ".")
    if isinstance(exc, dc.RateLimited):
        resp.headers["Retry-After"] = str(int(exc.wait) + 1)
    return resp


def _form_user(request: Request, token: str, back: str):
    if not check_csrf(request, token):
        return None, csrf_failed(request)
    user = current_user(request)
    if user is None:
        return None, _login(back)
    return user, None


def _comment_url(c: dict) -> str:
    return "/papers/" + quote(c["paper_public"], safe="/") + f"#c{c['id']}"


def _notify(request: Request):
    settings = state(request).settings

    def on_notify(c, notification_id: int, recipient_id: int, comment: dict) -> None:
        dmail.compose(c, settings, notification_id, recipient_id, comment)
    return on_notify


def send_reply_mail(settings) -> None:
    """Deliver queued reply mail now (after the response); the worker retries what is left."""
    c = connect(settings.db_path)
    try:
        dmail.deliver_pending(c, settings)
    except Exception:  # noqa: BLE001 - mail stays queued for the worker
        log.warning("reply mail left queued", exc_info=True)
    finally:
        c.close()


async def _after_post(request: Request, background: BackgroundTasks, posted: dc.Posted) -> None:
    if not posted.notifications:
        return
    settings = state(request).settings
    if dmail.outbox.uses_outbox(settings):  # a table write: before answering, so the outbox shows it
        await run_in_threadpool(send_reply_mail, settings)
    else:
        background.add_task(send_reply_mail, settings)


# ---------------------------------------------------------------- HTML forms

@router.post("/papers/{paper_id:path}/comments", include_in_schema=False)
async def comment_form(request: Request, background: BackgroundTasks, paper_id: str, text: str = Form(""),
                       parent: str = Form(""), csrf_token: str = Form("")):
    back = "/papers/" + quote(paper_id, safe="/")
    user, error = _form_user(request, csrf_token, back)
    if error:
        return error
    paper = await run_in_threadpool(lookup_paper, request, paper_id)
    if paper is None:
        return error_page(request, 404, "Paper not found", f"There is no paper {paper_id[:100]!r} here.")
    try:
        posted = await run_in_threadpool(lambda: dc.post(conn(request), user, paper, text, parent or None,
                                                         on_notify=_notify(request)))
    except dc.DiscussError as exc:
        return _problem(request, exc)
    await _after_post(request, background, posted)
    return RedirectResponse(_comment_url(posted.comment), status_code=303)


@router.post("/comments/{comment_id}/edit", include_in_schema=False)
def edit_form(request: Request, comment_id: str, text: str = Form(""), csrf_token: str = Form("")):
    user, error = _form_user(request, csrf_token, "/")
    if error:
        return error
    try:
        c = dc.edit(conn(request), user, comment_id, text)
    except dc.DiscussError as exc:
        return _problem(request, exc)
    return RedirectResponse(_comment_url(c), status_code=303)


@router.post("/comments/{comment_id}/delete", include_in_schema=False)
def delete_form(request: Request, comment_id: str, csrf_token: str = Form("")):
    user, error = _form_user(request, csrf_token, "/")
    if error:
        return error
    try:
        c = dc.delete(conn(request), user, comment_id)
    except dc.DiscussError as exc:
        return _problem(request, exc)
    return RedirectResponse(_comment_url(c), status_code=303)


@router.post("/comments/{comment_id}/upvote", include_in_schema=False)
def upvote_form(request: Request, comment_id: str, action: str = Form("up"), csrf_token: str = Form("")):
    user, error = _form_user(request, csrf_token, "/")
    if error:
        return error
    try:
        dc.vote(conn(request), user, comment_id, action != "down")
        c = dc.visible_comment(conn(request), comment_id, user)
    except dc.DiscussError as exc:
        return _problem(request, exc)
    return RedirectResponse(_comment_url(c), status_code=303)


@router.post("/comments/{comment_id}/report", include_in_schema=False)
def report_form(request: Request, comment_id: str, reason: str = Form(""), csrf_token: str = Form("")):
    user, error = _form_user(request, csrf_token, "/")
    if error:
        return error
    try:
        c = dc.visible_comment(conn(request), comment_id, user)
        dc.report(conn(request), user, comment_id, reason)
    except dc.DiscussError as exc:
        return _problem(request, exc)
    return render(request, "discuss_message.html", {
        "title": "Thanks for the report", "message": "A moderator will look at this comment.",
        "back": _comment_url(c)})


@router.get("/comments/{comment_id}", include_in_schema=False)
def comment_link(request: Request, comment_id: str):
    try:
        c = dc.visible_comment(conn(request), comment_id, current_user(request))
    except dc.DiscussError as exc:
        return _problem(request, exc)
    return RedirectResponse(_comment_url(c), status_code=303)


# ---------------------------------------------------------------- notifications

@router.get("/notifications", include_in_schema=False)
def notifications_page(request: Request):
    user = current_user(request)
    if user is None:
        return _login("/notifications")
    c = conn(request)
    items = dsql.notifications_for(c, user["id"])
    unread = sum(1 for n in items if n["read_at"] is None)
    resp = render(request, "notifications.html", {"items": items, "unread": unread,
                                                  "prefs": dmail.prefs(c, user["id"])})
    resp.headers["Cache-Control"] = "private, no-store"
    return resp


@router.post("/notifications/read", include_in_schema=False)
def notifications_read(request: Request, csrf_token: str = Form("")):
    user, error = _form_user(request, csrf_token, "/notifications")
    if error:
        return error
    dsql.mark_read(conn(request), user["id"], utcnow_iso())
    return RedirectResponse("/notifications", status_code=303)


@router.post("/notifications/settings", include_in_schema=False)
def notifications_settings(request: Request, email_replies: str = Form(""), csrf_token: str = Form("")):
    user, error = _form_user(request, csrf_token, "/notifications")
    if error:
        return error
    dmail.set_email_replies(conn(request), user["id"], email_replies in ("1", "on", "yes", "true"))
    return RedirectResponse("/notifications", status_code=303)


@router.get("/notifications/unsubscribe", include_in_schema=False)
def unsubscribe_page(request: Request, token: str = ""):
    try:
        dmail.read_token(conn(request), state(request).settings, token[:500])
    except dmail.TokenError as exc:
        return error_page(request, 400, "Link not valid", str(exc).capitalize() + ".")
    return render(request, "discuss_unsubscribe.html", {"token": token, "done": False})


@router.post("/notifications/unsubscribe", include_in_schema=False)
def unsubscribe_post(request: Request, token: str = ""):
    """One click (RFC 8058: the mail client POSTs ``List-Unsubscribe=One-Click`` to the
    link), or the button on the page. The signed token is the authority: no session."""
    try:
        uid = dmail.read_token(conn(request), state(request).settings, token[:500])
    except dmail.TokenError as exc:
        return error_page(request, 400, "Link not valid", str(exc).capitalize() + ".")
    dmail.set_email_replies(conn(request), uid, False)
    return render(request, "discuss_unsubscribe.html", {"token": token, "done": True})


# ---------------------------------------------------------------- moderation

@router.get("/admin/moderation", include_in_schema=False)
def moderation_page(request: Request):
    user = current_user(request)
    if user is None:
        return _login("/admin/moderation")
    try:
        data = moderation.queue(conn(request), user)
    except dc.DiscussError as exc:
        return _problem(request, exc)
    resp = render(request, "discuss_moderation.html", {**data, "flash": request.query_params.get("done", "")[:200]})
    resp.headers["Cache-Control"] = "private, no-store"
    return resp


@router.post("/admin/moderation", include_in_schema=False)
def moderation_post(request: Request, action: str = Form(""), target: str = Form(""), reason: str = Form(""),
                    next: str = Form(""), csrf_token: str = Form("")):
    user, error = _form_user(request, csrf_token, "/admin/moderation")
    if error:
        return error
    try:
        message = moderation.act(conn(request), user, action, target, reason)
    except dc.DiscussError as exc:
        return _problem(request, exc)
    back = safe_next(next, "")
    if back:
        return RedirectResponse(back, status_code=303)
    return RedirectResponse("/admin/moderation?done=" + quote(message), status_code=303)


# ---------------------------------------------------------------- Atom

@router.get("/papers/{paper_id:path}/discussion.atom", include_in_schema=False)
def discussion_atom(request: Request, paper_id: str):
    def build():
        paper = lookup_paper(request, paper_id)
        if paper is None or paper.get("hidden"):
            return Response("no such paper\n", status_code=404, media_type="text/plain; charset=utf-8")
        return _atom(request, paper, dc.thread(conn(request), paper["id"], None))
    return cached_page(request, build)


def _atom(request: Request, paper: dict, threads: list[dict]) -> Response:
    from paperwire import latex
    from paperwire.web.feeds import ATOM, _clean

    base = state(request).settings.base_url.rstrip("/")
    page = base + "/papers/" + quote(paper["paper_id"], safe="/")
    ET.register_namespace("", ATOM_NS)
    root = ET.Element(f"{{{ATOM_NS}}}feed")

    def sub(parent, tag, text=None, **attrs):
        el = ET.SubElement(parent, f"{{{ATOM_NS}}}{tag}", attrs)
        if text is not None:
            el.text = _clean(text)
        return el

    title = latex.to_text(paper["title"])
    sub(root, "title", f"paperwire: discussion of {title}")
    sub(root, "id", page + "/discussion.atom")
    sub(root, "link", rel="self", href=page + "/discussion.atom", type="application/atom+xml")
    sub(root, "link", rel="alternate", href=page + "#discussion", type="text/html")
    shown = [c for t in threads for c in [t, *t["replies"]] if c["state"] == "shown"]
    shown.sort(key=lambda c: c["id"], reverse=True)
    stamps = [c["edited_at"] or c["created_at"] for c in shown]
    sub(root, "updated", _iso(max(stamps)) if stamps else _iso(paper.get("first_seen")) or "1970-01-01T00:00:00Z")
    sub(root, "generator", "paperwire")
    for c in shown[:200]:
        e = sub(root, "entry")
        who = c["author"] or "deleted user"
        sub(e, "title", f"{who}: {markdown.plain(c['raw'], 80)}")
        sub(e, "id", f"{base}/comments/{c['id']}")
        sub(e, "link", rel="alternate", href=f"{page}#c{c['id']}", type="text/html")
        sub(e, "published", _iso(c["created_at"]))
        sub(e, "updated", _iso(c["edited_at"] or c["created_at"]))
        sub(sub(e, "author"), "name", who)
        sub(e, "content", c["html"], type="html")  # sanitised HTML, escaped once more by the XML writer
    body = b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="utf-8")
    return Response(body, media_type=ATOM)


# ---------------------------------------------------------------- API

def hf_comment(c: dict, base: str) -> dict:
    """One comment in the shape of Hugging Face's paper discussions."""
    author = _user(c["author"]) if c.get("author") else {"name": "deleted", "fullname": "deleted user",
                                                         "avatarUrl": "", "type": "user", "_id": "deleted"}
    if author:
        author["avatarUrl"] = f"{base}/static/favicon.svg"
    latest = {"raw": c["raw"], "html": c["html"], "updatedAt": _iso(c.get("edited_at") or c["created_at"])}
    out = {
        "id": str(c["id"]), "author": author, "createdAt": _iso(c["created_at"]), "type": "comment",
        "data": {"edited": bool(c.get("edited_at")), "hidden": c["state"] == "hidden",
                 "deleted": c["state"] == "deleted", "numEdits": int(c.get("num_edits") or 0),
                 "latest": latest, "reactions": []},
        "upvotes": int(c.get("upvotes") or 0),
        "parentId": str(c["parent"]) if c.get("parent") else None,
    }
    if "replies" in c and not c.get("parent"):
        out["replies"] = [hf_comment(r, base) for r in c["replies"]]
    return out


def api_comments(request: Request, paper: dict) -> list[dict]:
    """``comments[]`` of ``GET /api/papers/{id}?field=comments`` (top level, replies nested)."""
    base = state(request).settings.base_url.rstrip("/")
    return [hf_comment(t, base) for t in dc.thread(conn(request), paper["id"], current_user(request))]


def _api_paper(request: Request, paper_id: str):
    paper = lookup_paper(request, paper_id)
    if paper is None or paper.get("hidden"):
        return None, JSONResponse({"error": f"paper {paper_id[:100]!r} not found"}, status_code=404)
    return paper, None


@api_router.get("/papers/{paper_id:path}/comments", tags=["paperwire"], summary="A paper's discussion")
def api_list(request: Request, paper_id: str):
    """The discussion in Hugging Face's comment shape (as ``?field=comments`` on the paper)."""
    def build():
        paper, error = _api_paper(request, paper_id)
        if error:
            return error
        items = api_comments(request, paper)
        return JSONResponse({"comments": items, "numComments": int(paper.get("num_comments") or 0),
                             "discussionId": paper["paper_id"]})
    return cached_page(request, build)


@api_router.post("/papers/{paper_id:path}/comments", tags=["paperwire"], summary="Comment on a paper",
                 status_code=201)
async def api_post(request: Request, background: BackgroundTasks, paper_id: str,
                   text: str = Body(..., embed=True, description="Markdown, at most 20,000 characters"),
                   parent: str | None = Body(None, embed=True, max_length=20,
                                             description="id of the comment replied to")):
    """``{"text": "...", "parent": "12"?}``: the new comment (HF shape), 201. A reply to a
    reply attaches to the top-level comment."""
    user, error = api_writer(request)
    if error:
        return error
    paper, error = await run_in_threadpool(_api_paper, request, paper_id)
    if error:
        return error
    try:
        posted = await run_in_threadpool(lambda: dc.post(conn(request), user, paper, text, parent,
                                                         on_notify=_notify(request)))
    except dc.DiscussError as exc:
        headers = {"Retry-After": str(int(exc.wait) + 1)} if isinstance(exc, dc.RateLimited) else None
        return JSONResponse({"error": str(exc)}, status_code=exc.status, headers=headers)
    await _after_post(request, background, posted)
    c = dict(posted.comment, state="shown", num_edits=0)
    base = state(request).settings.base_url.rstrip("/")
    return JSONResponse({"comment": hf_comment(c, base), "numComments": dsql_count(request, paper["id"]),
                         "discussionId": paper["paper_id"]}, status_code=201)


def dsql_count(request: Request, paper_rowid: int) -> int:
    """The paper's ``num_comments`` now (after a write)."""
    from paperwire.store.papers import get_papers_by_rowid

    row = get_papers_by_rowid(conn(request), [paper_rowid]).get(paper_rowid) or {}
    return int(row.get("num_comments") or 0)

