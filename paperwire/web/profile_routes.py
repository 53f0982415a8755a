"""Public profiles (``/u/NAME``, ``/u/NAME/avatar``), the admin's users, hidden papers
and audit log pages, and ``GET /api/papers`` (every paper, newest first, by cursor)."""

from __future__ import annotations

import base64
import binascii
from urllib.parse import quote

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from paperwire.accounts import admin, profiles
from paperwire.store import accounts
from paperwire.store import profiles as profile_sql
from paperwire.web import hf
from paperwire.web.account_routes import csrf_failed
from paperwire.web.context import JSONResponse, check_csrf, conn, current_user, render, state
from paperwire.web.pages import error_page, lookup_paper

router = APIRouter()


def install(app, st) -> None:
    app.include_router(router)


# ---------------------------------------------------------------- profiles

@router.get("/u/{username}", include_in_schema=False)
def profile_page(request: Request, username: str):
    data = profiles.profile(conn(request), username[:64])
    if data is None:
        return error_page(request, 404, "No such user", f"There is no user {username[:64]!r} here.")
    user = current_user(request)
    rowids = [p["id"] for p in data["submitted"] + data["upvoted"]]
    voted = accounts.user_votes(conn(request), user["id"], rowids) if user else set()
    return render(request, "profile.html", {"profile": data, "voted": voted})


@router.get("/u/{username}/avatar", include_in_schema=False)
def avatar(request: Request, username: str):
    found = profiles.avatar(conn(request), username[:64])
    if found is None:
        return Response(status_code=404)
    body, media_type, etag = found
    etag = f'"{etag}"'
    headers = {"ETag": etag, "Cache-Control": "public, max-age=300",
               # The SVG identicon is ours, but an image URL must never run script if opened directly.
               "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; sandbox"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)


# ---------------------------------------------------------------- admin

def _admin_page(request: Request):
    user = current_user(request)
    if user is None:
        return None, RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
    if not user["is_admin"]:
        return None, error_page(request, 403, "Not allowed", "Only admins can see this page.")
    return user, None


def _admin_form(request: Request, token: str):
    if not check_csrf(request, token):
        return None, csrf_failed(request)
    return _admin_page(request)


@router.get("/admin/users", include_in_schema=False)
def users_page(request: Request, q: str = Query("", max_length=100)):
    user, error = _admin_page(request)
    if error:
        return error
    return render(request, "admin_users.html", {"users": admin.users(conn(request), user, q), "q": q,
                                                "message": request.query_params.get("done", "")[:200]})


@router.post("/admin/users/{username}", include_in_schema=False)
def users_action(request: Request, username: str, action: str = Form(""), reason: str = Form(""),
                 csrf_token: str = Form("")):
    user, error = _admin_form(request, csrf_token)
    if error:
        return error
    try:
        if action == "ban":
            message = admin.ban(conn(request), user, username, reason)
        elif action == "unban":
            message = admin.unban(conn(request), user, username, reason)
        else:
            return error_page(request, 422, "Not possible", "Unknown action.")
    except admin.AdminError as exc:
        return error_page(request, 422, "Not possible", str(exc).capitalize() + ".")
    return RedirectResponse(f"/admin/users?done={quote(message)}", status_code=303)


@router.get("/admin/hidden", include_in_schema=False)
def hidden_page(request: Request):
    user, error = _admin_page(request)
    if error:
        return error
    return render(request, "admin_hidden.html", {"papers": admin.hidden_papers(conn(request), user),
                                                 "message": request.query_params.get("done", "")[:200]})


@router.post("/admin/hidden", include_in_schema=False)
def hidden_action(request: Request, paper: str = Form(""), action: str = Form("unhide"), csrf_token: str = Form("")):
    user, error = _admin_form(request, csrf_token)
    if error:
        return error
    found = lookup_paper(request, paper[:200]) if paper else None
    if found is None:
        return error_page(request, 404, "Paper not found", f"There is no paper {paper[:100]!r} here.")
    message = admin.set_paper_hidden(conn(request), user, found, action == "hide")
    return RedirectResponse(f"/admin/hidden?done={quote(message)}", status_code=303)


@router.get("/admin/audit", include_in_schema=False)
def audit_page(request: Request):
    user, error = _admin_page(request)
    if error:
        return error
    return render(request, "admin_audit.html", {"entries": admin.audit_log(conn(request), user)})


# ---------------------------------------------------------------- every paper, by cursor

class CursorError(ValueError):
    pass


def encode_cursor(paper: dict) -> str:
    raw = f"{paper.get('published') or ''}|{paper['id']}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str) -> tuple[str, int]:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        published, _, rowid = raw.rpartition("|")
        value = int(rowid)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise CursorError("cursor is not one this server gave out") from None
    if not 0 < value < 2**62 or len(published) > 40:
        raise CursorError("cursor is not one this server gave out")
    return published, value


@router.get("/api/papers", tags=["HF-compatible"], summary="Every paper, newest first")
def all_papers(request: Request, cursor: str | None = Query(None, max_length=200),
               limit: int = Query(50, ge=1, le=100)):
    """Visible papers by publication date, newest first, as HF paper objects. The next
    page is in the ``Link: <...>; rel="next"`` header (which ``huggingface_hub`` follows)
    and in ``X-Next-Cursor``; the last page has neither."""
    try:
        after = decode_cursor(cursor) if cursor else None
    except CursorError as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)

    def build():
        base = state(request).settings.base_url.rstrip("/")
        rows = profile_sql.papers_page(conn(request), after, limit + 1)
        page, more = rows[:limit], len(rows) > limit
        headers = {}
        if more:
            nxt = encode_cursor(page[-1])
            headers["X-Next-Cursor"] = nxt
            headers["Link"] = f'<{base}/api/papers?cursor={nxt}&limit={limit}>; rel="next"'
        return JSONResponse([hf.paper_object(p, base) for p in page], headers=headers)
    return build()  # not cached_page: its cache keeps only X- headers, and Link matters here
