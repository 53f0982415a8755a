"""Forms: sign up, sign in, sign out, upvote, submit a paper, hide a paper (admins).

Every POST checks the CSRF token first. Redirect targets (``next``) must be
local paths, so a link cannot bounce a user to another site after login.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from paperwire.store import accounts
from paperwire.web import security
from paperwire.web.context import check_csrf, conn, current_user, render, state
from paperwire.web.pages import error_page, lookup_paper

router = APIRouter()


def safe_next(target: str | None, default: str = "/") -> str:
    """Only same-site paths: ``/x`` yes, ``//evil``, ``/\\evil`` and ``https://`` no."""
    if not target or not target.startswith("/") or target.startswith("//") or target.startswith("/\\"):
        return default
    if any(c in target for c in "\r\n\t"):
        return default
    return target


def client_ip(request: Request) -> str:
    """The client's address (behind a trusted proxy, the one it forwarded: web/guard.py)."""
    return request.client.host if request.client else "unknown"


def csrf_failed(request: Request) -> Response:
    return error_page(request, 403, "Form expired",
                      "This form has expired or did not come from this site. Go back, reload the page and try again.")


def too_many(request: Request, wait: float, template: str, ctx: dict) -> Response:
    ctx = dict(ctx, error=f"Too many attempts. Try again in {int(wait) + 1} seconds.")
    resp = render(request, template, ctx, status=429)
    resp.headers["Retry-After"] = str(int(wait) + 1)
    return resp


def start_session(request: Request, user_id: int, target: str) -> Response:
    st = state(request)
    token = security.new_token()
    accounts.create_session(conn(request), user_id, token, days=security.SESSION_DAYS)
    resp = RedirectResponse(target, status_code=303)
    resp.set_cookie(security.SESSION_COOKIE, token, max_age=86400 * security.SESSION_DAYS,
                    **security.cookie_kwargs(st.https))
    # This browser is now a known device of the account (see login()).
    if security.known_device(st.settings.secret_key, request.cookies.get(security.DEVICE_COOKIE), user_id) is None:
        resp.set_cookie(security.DEVICE_COOKIE, security.new_device_cookie(st.settings.secret_key, user_id),
                        max_age=86400 * security.DEVICE_DAYS, **security.cookie_kwargs(st.https))
    # A fresh CSRF secret per session: tokens seen before login are useless after it.
    resp.set_cookie(security.CSRF_COOKIE, security.new_token(), max_age=86400 * 30,
                    **security.cookie_kwargs(st.https))
    return resp


# ---------------------------------------------------------------- sign up / in / out

@router.get("/signup", include_in_schema=False)
def signup_form(request: Request, next: str = "/"):
    return render(request, "signup.html", {"next_url": safe_next(next), "form": {}})


@router.post("/signup", include_in_schema=False)
def signup(request: Request, username: str = Form(""), email: str = Form(""), password: str = Form(""),
           csrf_token: str = Form(""), next: str = Form("/")):
    if not check_csrf(request, csrf_token):
        return csrf_failed(request)
    ctx = {"next_url": safe_next(next), "form": {"username": username, "email": email}}
    wait = accounts.rate_hit(conn(request), f"signup:{client_ip(request)}",
                             limit=security.SIGNUP_LIMIT, window_s=security.SIGNUP_WINDOW_S)
    if wait:
        return too_many(request, wait, "signup.html", ctx)
    username, email = username.strip(), email.strip()
    problem = security.validate_signup(username, email, password)
    if problem:
        return render(request, "signup.html", dict(ctx, error=problem), status=422)
    try:
        user_id = accounts.create_user(conn(request), username, email, security.hash_password(password))
    except accounts.AccountError as exc:
        return render(request, "signup.html", dict(ctx, error=str(exc).capitalize() + "."), status=422)
    from paperwire.web.settings_routes import send_signup_verification

    send_signup_verification(request, user_id)  # the verification mail (never fails the sign-up)
    return start_session(request, user_id, ctx["next_url"])


@router.get("/login", include_in_schema=False)
def login_form(request: Request, next: str = "/"):
    return render(request, "login.html", {"next_url": safe_next(next), "form": {}})


@router.post("/login", include_in_schema=False)
def login(request: Request, login: str = Form(""), password: str = Form(""), csrf_token: str = Form(""),
          next: str = Form("/")):
    if not check_csrf(request, csrf_token):
        return csrf_failed(request)
    c = conn(request)
    login = login.strip()[:254]
    ctx = {"next_url": safe_next(next), "form": {"login": login}}
    user = accounts.find_user(c, login) if login else None
    # A browser the owner signed in from before (known-device cookie) has its own budget
    # and skips the per-address and per-account ones: guesses from elsewhere, from however
    # many addresses, never lock the owner out there. Every other browser counts against
    # its address and the account (rate_hit records first, so parallel guesses count too).
    device = security.known_device(state(request).settings.secret_key,
                                   request.cookies.get(security.DEVICE_COOKIE), user["id"]) if user else None
    if device:
        limits = [(f"login-device:{user['id']}:{device}", security.DEVICE_LIMIT)]
    else:
        limits = [(f"login-ip:{client_ip(request)}", security.LOGIN_LIMIT),
                  (f"login-user:{user['id'] if user else login.lower()}", security.LOGIN_LIMIT)]
    for key, limit in limits:
        wait = accounts.rate_hit(c, key, limit=limit, window_s=security.LOGIN_WINDOW_S)
        if wait:
            return too_many(request, wait, "login.html", ctx)
    ok, new_hash = security.verify_password(user["password_hash"] if user else None, password[:security.MAX_PASSWORD])
    if not ok:
        return render(request, "login.html", dict(ctx, error="Wrong username or password."), status=401)
    from paperwire.accounts.admin import is_banned

    if is_banned(c, user["id"]):  # paperwire/accounts/admin.py: banned accounts cannot sign in
        return render(request, "login.html", dict(ctx, error="This account is banned."), status=403)
    if new_hash:
        accounts.set_password_hash(c, user["id"], new_hash)
    accounts.rate_clear(c, limits[-1][0])  # the account's (or device's) budget; the address keeps its count
    return start_session(request, user["id"], ctx["next_url"])


@router.post("/logout", include_in_schema=False)
def logout(request: Request, csrf_token: str = Form("")):
    if not check_csrf(request, csrf_token):
        return csrf_failed(request)
    token = request.cookies.get(security.SESSION_COOKIE)
    if token:
        accounts.delete_session(conn(request), token)
    resp = RedirectResponse("/", status_code=303)
    resp.delete_cookie(security.SESSION_COOKIE, path="/")
    return resp


# ---------------------------------------------------------------- upvote / hide

@router.post("/papers/{paper_id:path}/upvote", include_in_schema=False)
def upvote_form(request: Request, paper_id: str, csrf_token: str = Form(""), action: str = Form("up"),
                next: str = Form("")):
    if not check_csrf(request, csrf_token):
        return csrf_failed(request)
    user = current_user(request)
    if user is None:
        return RedirectResponse(f"/login?next={quote('/papers/' + paper_id)}", status_code=303)
    paper = lookup_paper(request, paper_id)
    if paper is None:
        return error_page(request, 404, "Paper not found", f"There is no paper {paper_id!r} here.")
    accounts.set_vote(conn(request), user["id"], paper["id"], action != "down")
    return RedirectResponse(safe_next(next, f"/papers/{paper['paper_id']}"), status_code=303)


@router.post("/papers/{paper_id:path}/hide", include_in_schema=False)
def hide_form(request: Request, paper_id: str, csrf_token: str = Form(""), action: str = Form("hide")):
    if not check_csrf(request, csrf_token):
        return csrf_failed(request)
    user = current_user(request)
    if not user or not user["is_admin"]:
        return error_page(request, 403, "Not allowed", "Only admins can hide papers.")
    paper = lookup_paper(request, paper_id)
    if paper is None:
        return error_page(request, 404, "Paper not found", f"There is no paper {paper_id!r} here.")
    from paperwire.accounts.admin import set_paper_hidden

    set_paper_hidden(conn(request), user, paper, action == "hide")  # with an admin_audit row
    return RedirectResponse(f"/papers/{paper['paper_id']}", status_code=303)


# ---------------------------------------------------------------- submit

def submit_arxiv_id(c, user: dict, raw: str) -> tuple[str, dict]:
    """Submit a paper by arXiv id or link: :func:`paperwire.submit.submit` (a paper the
    store has, under any of its ids, opens; an unknown one is queued)."""
    from paperwire.submit import submit as submit_paper

    return submit_paper(c, user, raw)


@router.get("/submit", include_in_schema=False)
def submit_form(request: Request):
    user = current_user(request)
    if user is None:
        return RedirectResponse("/login?next=/submit", status_code=303)
    return render(request, "submit.html", {"mine": accounts.user_submissions(conn(request), user["id"])})


@router.post("/submit", include_in_schema=False)
def submit(request: Request, arxiv_id: str = Form(""), csrf_token: str = Form("")):
    if not check_csrf(request, csrf_token):
        return csrf_failed(request)
    user = current_user(request)
    if user is None:
        return RedirectResponse("/login?next=/submit", status_code=303)
    c = conn(request)
    status, info = submit_arxiv_id(c, user, arxiv_id)
    if status == "known":
        return RedirectResponse(f"/papers/{info['paper_id']}", status_code=303)
    ctx = {"mine": accounts.user_submissions(c, user["id"]), "arxiv_id": arxiv_id}
    if status == "invalid":
        return render(request, "submit.html", dict(ctx, error=info["message"]), status=422)
    return render(request, "submit.html", dict(
        ctx, message=f"Thanks! arXiv:{info['arxiv_id']} is queued; it appears here after the next harvest."))
