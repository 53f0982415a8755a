"""Digest pages: subscribe form, confirmation link, manage page, one-click unsubscribe.

Mounted by the site's app factory (``paperwire.web.app``); also works in any FastAPI
app whose ``app.state.settings`` holds :class:`~paperwire.settings.Settings`.

* ``GET /digest`` form, ``POST /digest/subscribe`` (CSRF) queues the confirmation mail
  and sends it after the response.
* ``GET /digest/confirm?token=`` shows a button; ``POST /digest/confirm`` confirms.
  Confirming takes a POST so mail scanners that fetch links do not subscribe
  anyone; the signed token is the proof, so no CSRF cookie is needed.
* ``GET/POST /digest/manage`` change what and how often (token + CSRF).
* ``GET /digest/unsubscribe?token=`` a confirmation page; ``POST`` the same URL
  unsubscribes at once: the RFC 8058 one-click endpoint that mail providers call
  with ``List-Unsubscribe=One-Click``, without cookies, CSRF token or login.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Iterator

from fastapi import APIRouter, BackgroundTasks, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from jinja2 import ChoiceLoader, Environment, FileSystemLoader

from paperwire.digest import outbox
from paperwire.digest import render as digest_render
from paperwire.digest.subscriptions import (
    Preferences,
    SubscriptionError,
    confirm,
    from_manage_token,
    links,
    subscribe,
    unsubscribe,
    update_preferences,
)
from paperwire.digest.tokens import TokenError
from paperwire.settings import Settings
from paperwire.store import accounts
from paperwire.store import outbox as outbox_sql
from paperwire.store.db import connect
from paperwire.web import security

log = logging.getLogger("paperwire.digest")
router = APIRouter(tags=["digest"])
MAX_FORM_BYTES = 64 * 1024
# Per client address: each accepted form sends a mail to a stranger's inbox.
SUBSCRIBE_LIMIT, SUBSCRIBE_WINDOW_S = 10, 3600


# ---------------------------------------------------------------- plumbing

def _site(request: Request):
    """The site's WebState when mounted in paperwire's app, else None."""
    return getattr(request.app.state, "pw", None)


def _settings(request: Request) -> Settings:
    st = _site(request)
    return st.settings if st is not None else request.app.state.settings


@contextlib.contextmanager
def _db(request: Request) -> Iterator:
    st = _site(request)
    if st is not None:
        yield st.conn()  # the site's per-thread connection
        return
    c = connect(_settings(request).db_path)
    try:
        yield c
    finally:
        c.close()


def _env(request: Request) -> tuple[Environment, str]:
    """Templates: inside the site, pages extend its ``base.html``; else a small standalone one."""
    st = _site(request)
    if st is None:
        return digest_render.env(), "page_standalone.html"
    env = getattr(st, "_digest_env", None)
    if env is None:
        # The site's templates win on a name clash; ours are all page_*.html / _prefs.html.
        env = st.env.overlay(loader=ChoiceLoader([st.env.loader, FileSystemLoader(str(digest_render.TEMPLATES))]))
        st._digest_env = env
    return env, "base.html"


def _csrf_value(request: Request) -> str:
    if _site(request) is not None:
        from paperwire.web.context import csrf_token

        return csrf_token(request)
    cookie = request.cookies.get(security.CSRF_COOKIE) or request.state._state.get("new_csrf")
    if not cookie or len(cookie) > 200:
        cookie = security.new_token()
        request.state.new_csrf = cookie
    return security.csrf_for(_settings(request).secret_key, cookie)


def _csrf_ok(request: Request, form) -> bool:
    if _site(request) is not None and request.headers.get("authorization"):
        from paperwire.web.context import token_scope  # a write-scope API token replaces CSRF (accounts)

        return token_scope(request) == "write"
    return security.csrf_ok(_settings(request).secret_key, request.cookies.get(security.CSRF_COOKIE),
                            form.get(security.CSRF_FIELD))


def _page(request: Request, template: str, ctx: dict, status: int = 200) -> HTMLResponse:
    env, layout = _env(request)
    full = {"layout": layout, "error": None, "manage_url": None, "outbox_url": None}
    st = _site(request)
    if st is not None:
        from paperwire.web.context import csrf_token, current_user

        full.update(request=request, user=current_user(request), csrf=lambda: csrf_token(request),
                    settings=st.settings, path=request.url.path, full_path=request.url.path)
    full.update(ctx)
    resp = HTMLResponse(env.get_template(template).render(full), status_code=status)
    resp.headers["Cache-Control"] = "private, no-store"
    resp.headers["Referrer-Policy"] = "no-referrer"  # tokens in URLs must not leak
    new = request.state._state.get("new_csrf")
    if new:
        resp.set_cookie(security.CSRF_COOKIE, new, max_age=86400 * 30,
                        **security.cookie_kwargs(_settings(request).base_url.startswith("https://")))
    return resp


def _message(request: Request, title: str, message: str, *, status: int = 200, error: bool = False,
             manage_url: str | None = None, outbox_url: str | None = None) -> HTMLResponse:
    return _page(request, "page_message.html", {"title": title, "message": message, "error": error,
                                                "manage_url": manage_url, "outbox_url": outbox_url}, status)


async def _form(request: Request):
    if int(request.headers.get("content-length") or 0) > MAX_FORM_BYTES:
        return None
    form = await request.form()
    # Text fields only: a multipart part with a filename is an UploadFile, which no
    # digest form has (and .strip() on it would be a 500). Last value wins, as in FormData.get.
    return {k: v for k, v in form.multi_items() if isinstance(v, str)}


def _prefs_from_form(form) -> Preferences:
    return Preferences(
        frequency=form.get("frequency") or "daily",
        top_n=form.get("top_n") or 0,
        personal=bool(form.get("personal")),
        authors=form.get("authors") or "",
        categories=form.get("categories") or "",
        queries=form.get("queries") or "",
    )


def _send_confirmations(settings: Settings) -> None:
    """Deliver queued confirmation mail (left queued on failure): after the response, or
    before it with the outbox transport, so the "check your inbox" page can link to it."""
    from paperwire.digest.send import DigestBusy, SmtpConfigError, deliver_confirmations

    c = connect(settings.db_path)
    try:
        deliver_confirmations(c, settings, lock_timeout=10)
    except (DigestBusy, SmtpConfigError) as exc:
        log.warning("confirmation mail queued, not sent now: %s", exc)
    finally:
        c.close()


def _current_email(request: Request) -> str:
    if _site(request) is None:
        return ""
    from paperwire.web.context import current_user

    user = current_user(request)
    return (user or {}).get("email", "") if isinstance(user, dict) else ""


# ---------------------------------------------------------------- routes

@router.get("/digest", response_class=HTMLResponse)
def subscribe_form(request: Request):
    return _page(request, "page_subscribe.html", {"csrf_value": _csrf_value(request), "prefs": Preferences(),
                                                  "email": _current_email(request)})


@router.post("/digest/subscribe", response_class=HTMLResponse)
async def subscribe_post(request: Request, background: BackgroundTasks):
    form = await _form(request)
    if form is None:
        return _message(request, "Too large", "That form was too large.", status=413, error=True)
    if not _csrf_ok(request, form):
        return _message(request, "Please try again", "The form expired (missing or wrong CSRF token); "
                        "reload the page and submit again.", status=403, error=True)
    settings = _settings(request)
    prefs = _prefs_from_form(form)
    email = (form.get("email") or "").strip()
    try:
        with _db(request) as c:
            ip = request.client.host if request.client else "unknown"
            wait = accounts.rate_hit(c, f"digest-subscribe:{ip}", limit=SUBSCRIBE_LIMIT, window_s=SUBSCRIBE_WINDOW_S)
            if wait:
                return _message(request, "Too many requests", f"Please try again in {int(wait // 60) + 1} minutes.",
                                status=429, error=True)
            res = subscribe(c, settings, email, prefs, source="web")
    except SubscriptionError as exc:
        return _page(request, "page_subscribe.html", {"csrf_value": _csrf_value(request), "prefs": prefs,
                                                      "email": email, "error": str(exc)}, status=400)
    kept = outbox.uses_outbox(settings)
    if res.send_id is not None:
        if kept:  # a table write, not a mail server: done before answering
            await run_in_threadpool(_send_confirmations, settings)
        else:
            background.add_task(_send_confirmations, settings)
    # The same answer whether or not the address was already subscribed: the
    # form must not tell strangers who subscribes.
    if kept and _outbox_allowed(request):
        return _message(request, "Check the outbox",
                        f"No mail server is set up here, so the message for {res.subscription['email']} is kept "
                        "in the outbox: open it and follow its link. Nothing else is sent until you do.",
                        outbox_url="/outbox")
    return _message(request, "Check your inbox",
                    f"If {res.subscription['email']} can receive mail, a message with a link is on its way. "
                    "Nothing else is sent until you follow it.")


@router.get("/digest/confirm", response_class=HTMLResponse)
def confirm_form(request: Request, token: str = ""):
    settings = _settings(request)
    from paperwire.digest.subscriptions import _by_token  # validation without side effects

    try:
        with _db(request) as c:
            sub = _by_token(c, settings, "confirm", token)
    except TokenError as exc:
        return _message(request, "Link not valid", str(exc), status=400, error=True)
    if sub["status"] == "active":
        return _message(request, "Already confirmed", f"{sub['email']} gets the {sub['frequency']} digest.",
                        manage_url=links(settings, sub)["manage_url"])
    return _page(request, "page_confirm.html", {"sub": sub, "token": token})


@router.post("/digest/confirm", response_class=HTMLResponse)
async def confirm_post(request: Request):
    form = await _form(request)
    token = (form or {}).get("token") or request.query_params.get("token", "")
    settings = _settings(request)
    try:
        with _db(request) as c:
            sub = confirm(c, settings, token)
    except TokenError as exc:
        return _message(request, "Link not valid", str(exc), status=400, error=True)
    return _message(request, "You're subscribed",
                    f"{sub['email']} will get the {sub['frequency']} digest. Each one has a link to change or "
                    "cancel it.", manage_url=links(settings, sub)["manage_url"])


@router.get("/digest/manage", response_class=HTMLResponse)
def manage_form(request: Request, token: str = ""):
    try:
        with _db(request) as c:
            sub = from_manage_token(c, _settings(request), token)
    except TokenError as exc:
        return _message(request, "Link not valid", str(exc), status=400, error=True)
    return _page(request, "page_manage.html", {"sub": sub, "token": token, "prefs": Preferences.of(sub),
                                               "csrf_value": _csrf_value(request), "saved": False})


@router.post("/digest/manage", response_class=HTMLResponse)
async def manage_post(request: Request):
    form = await _form(request)
    if form is None:
        return _message(request, "Too large", "That form was too large.", status=413, error=True)
    token = form.get("token") or ""
    settings = _settings(request)
    prefs = _prefs_from_form(form)
    try:
        with _db(request) as c:
            sub = from_manage_token(c, settings, token)
            if not _csrf_ok(request, form):
                return _page(request, "page_manage.html", {
                    "sub": sub, "token": token, "prefs": prefs, "csrf_value": _csrf_value(request), "saved": False,
                    "error": "The form expired (missing or wrong CSRF token); submit again."}, status=403)
            try:
                sub = update_preferences(c, settings, token, prefs)
            except SubscriptionError as exc:
                return _page(request, "page_manage.html", {"sub": sub, "token": token, "prefs": prefs,
                                                           "csrf_value": _csrf_value(request), "saved": False,
                                                           "error": str(exc)}, status=400)
    except TokenError as exc:
        return _message(request, "Link not valid", str(exc), status=400, error=True)
    return _page(request, "page_manage.html", {"sub": sub, "token": token, "prefs": Preferences.of(sub),
                                               "csrf_value": _csrf_value(request), "saved": True})


@router.get("/digest/unsubscribe", response_class=HTMLResponse)
def unsubscribe_form(request: Request, token: str = ""):
    settings = _settings(request)
    try:
        with _db(request) as c:
            sub = from_manage_token(c, settings, token)
    except TokenError as exc:
        return _message(request, "Link not valid", str(exc), status=400, error=True)
    return _page(request, "page_unsubscribe.html", {"sub": sub, "token": token,
                                                    "manage_url": links(settings, sub)["manage_url"]})


@router.post("/digest/unsubscribe", response_class=HTMLResponse)
async def unsubscribe_post(request: Request):
    """RFC 8058 one-click: no cookies, no CSRF, no login; the signed token is the authority."""
    form = await _form(request)
    token = request.query_params.get("token") or (form or {}).get("token") or ""
    settings = _settings(request)
    if not token.strip():  # without a token unsubscribe() would look up an address ("" -> SubscriptionError)
        return _message(request, "Link not valid", "This unsubscribe link has no token.", status=400, error=True)
    try:
        with _db(request) as c:
            sub = unsubscribe(c, settings, token=token)
    except (TokenError, SubscriptionError) as exc:
        return _message(request, "Link not valid", str(exc), status=400, error=True)
    return _message(request, "Unsubscribed", f"{sub['email']} will get no more digests.",
                    manage_url=links(settings, sub)["manage_url"])


# ---------------------------------------------------------------- the local outbox

OUTBOX_PAGE = 100


def _outbox_allowed(request: Request) -> bool:
    """Open to everyone in the demo (it has no real mail), else to admins only."""
    st = _site(request)
    if st is None:
        return False
    if st.demo:
        return True
    from paperwire.web.context import current_user

    user = current_user(request)
    return bool(user and user.get("is_admin"))


@router.get("/outbox", response_class=HTMLResponse)
def outbox_list(request: Request, page: int = 1):
    """Mail kept by the outbox transport, newest first (404 for those who may not see it)."""
    if not _outbox_allowed(request):
        raise HTTPException(404)
    page = min(max(page, 1), 10_000)
    with _db(request) as c:
        mails = outbox_sql.list_mail(c, limit=OUTBOX_PAGE, offset=(page - 1) * OUTBOX_PAGE)
        total = outbox_sql.count_mail(c)
    return _page(request, "page_outbox.html", {"mails": mails, "total": total, "page": page,
                                               "more": page * OUTBOX_PAGE < total,
                                               "active": outbox.uses_outbox(_settings(request))})


@router.get("/outbox/{mail_id}", response_class=HTMLResponse)
def outbox_mail(request: Request, mail_id: str):
    """One kept mail: headers and the plain-text part, escaped; this site's links clickable."""
    if not _outbox_allowed(request):
        raise HTTPException(404)
    raw = mail_id.endswith(".eml")
    ident = mail_id[:-4] if raw else mail_id
    if not (ident.isascii() and ident.isdigit()) or len(ident) > 18:  # "²".isdigit() is True
        raise HTTPException(404)
    with _db(request) as c:
        row = outbox_sql.get_mail(c, int(ident))
    if row is None:
        raise HTTPException(404)
    if raw:  # the whole message, as a download: never rendered by the browser
        return Response(bytes(row["message"]), media_type="message/rfc822", headers={
            "Content-Disposition": f'attachment; filename="outbox-{row["id"]}.eml"',
            "Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"})
    return _page(request, "page_outbox_mail.html", {"mail": outbox.mail_view(_settings(request), row)})
