"""Account settings beyond F1's /settings (data, delete): profile and avatar, password,
e-mail address and its verification, API tokens; and the signed-out pages of password
reset and e-mail verification.

Every POST checks the CSRF token first (or a write-scope API token: context.check_csrf).
Logic lives in :mod:`paperwire.accounts`; this module parses forms and renders.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response

from paperwire.accounts import account, links, profiles
from paperwire.accounts import tokens as api_tokens
from paperwire.store import accounts as account_sql
from paperwire.web import security
from paperwire.web.account_routes import client_ip, csrf_failed
from paperwire.web.context import JSONResponse, check_csrf, conn, current_user, render, state

router = APIRouter()

# The avatar form may carry a little more than the default body limit: files up to
# profiles.MAX_UPLOAD_BYTES get this route's own message, bigger ones the guard's 413.
AVATAR_BODY_LIMIT = profiles.MAX_UPLOAD_BYTES + 512 * 1024
FORGOT_LIMIT, FORGOT_WINDOW_S = 5, 3600  # reset mails per address and per account an hour
VERIFY_LIMIT = 5


def install(app, st) -> None:
    """Add the routes and raise the body limit of the avatar upload."""
    from paperwire.web import guard

    guard.BODY_LIMITS["/settings/avatar"] = AVATAR_BODY_LIMIT
    app.include_router(router)


def _settings(request: Request):
    return state(request).settings


def _login(target: str) -> Response:
    return RedirectResponse(f"/login?next={quote(target)}", status_code=303)


def _form_user(request: Request, token: str, target: str):
    if not check_csrf(request, token):
        return None, csrf_failed(request)
    user = current_user(request)
    if user is None:
        return None, _login(target)
    return user, None


def _page(request: Request, template: str, ctx: dict, status: int = 200) -> Response:
    return render(request, template, ctx, status=status)


def _account_ctx(request: Request, user: dict, **extra) -> dict:
    c = conn(request)
    full = account_sql.get_user(c, user["id"])
    return {"title": "Sign-in and e-mail", "verified": account.is_verified(c, full), "email": full["email"],
            "message": request.query_params.get("done", "")[:100], **extra}


# ---------------------------------------------------------------- profile and avatar

@router.get("/settings/profile", include_in_schema=False)
def profile_page(request: Request):
    user = current_user(request)
    if user is None:
        return _login("/settings/profile")
    return _page(request, "settings_profile.html", {
        "title": "Your profile", "prefs": profiles.get_settings(conn(request), user["id"]),
        "message": request.query_params.get("done", "")[:100]})


@router.post("/settings/profile", include_in_schema=False)
def profile_save(request: Request, bio: str = Form(""), public_upvotes: str = Form(""), csrf_token: str = Form("")):
    user, error = _form_user(request, csrf_token, "/settings/profile")
    if error:
        return error
    try:
        profiles.save_settings(conn(request), user["id"], bio=bio, public_upvotes=bool(public_upvotes))
    except profiles.ProfileError as exc:
        return _page(request, "settings_profile.html", {
            "title": "Your profile", "error": str(exc),
            "prefs": {"bio": bio[:profiles.MAX_BIO * 2], "public_upvotes": bool(public_upvotes)}}, status=422)
    return RedirectResponse("/settings/profile?done=saved", status_code=303)


@router.post("/settings/avatar", include_in_schema=False)
async def avatar_upload(request: Request, file: UploadFile = File(None), action: str = Form("upload"),
                        csrf_token: str = Form("")):
    user, error = _form_user(request, csrf_token, "/settings/profile")
    if error:
        return error
    c = conn(request)
    if action == "remove":
        profiles.remove_avatar(c, user["id"])
        return RedirectResponse("/settings/profile?done=avatar-removed", status_code=303)
    data = b""
    if file is not None:
        data = await file.read(profiles.MAX_UPLOAD_BYTES + 1)  # one byte over the cap is enough to refuse
        await file.close()
    try:
        profiles.set_avatar(c, user["id"], data)
    except profiles.ProfileError as exc:
        status = 413 if len(data) > profiles.MAX_UPLOAD_BYTES else 422
        return _page(request, "settings_profile.html", {
            "title": "Your profile", "error": str(exc), "prefs": profiles.get_settings(c, user["id"])},
            status=status)
    return RedirectResponse("/settings/profile?done=avatar", status_code=303)


# ---------------------------------------------------------------- password and e-mail

@router.get("/settings/account", include_in_schema=False)
def account_page(request: Request):
    user = current_user(request)
    if user is None:
        return _login("/settings/account")
    return _page(request, "settings_account.html", _account_ctx(request, user))


@router.post("/settings/password", include_in_schema=False)
def password_change(request: Request, current: str = Form(""), new: str = Form(""), csrf_token: str = Form("")):
    user, error = _form_user(request, csrf_token, "/settings/account")
    if error:
        return error
    c = conn(request)
    full = account_sql.get_user(c, user["id"])
    wait = account_sql.rate_hit(c, f"password-change:{user['id']}", limit=security.LOGIN_LIMIT,
                                window_s=security.LOGIN_WINDOW_S)
    if wait:
        return _page(request, "settings_account.html", _account_ctx(
            request, user, error=f"Too many attempts. Try again in {int(wait) + 1} seconds."), status=429)
    ok, _ = security.verify_password(full["password_hash"], current[:security.MAX_PASSWORD])
    if not ok:
        return _page(request, "settings_account.html", _account_ctx(
            request, user, error="Your current password is not right."), status=422)
    problem = _password_problem(new)
    if problem:
        return _page(request, "settings_account.html", _account_ctx(request, user, error=problem), status=422)
    account.change_password(c, user["id"], security.hash_password(new))
    # Every session ended (others may be a thief's); this browser gets a new one.
    from paperwire.web.account_routes import start_session

    return start_session(request, user["id"], "/settings/account?done=password")


def _password_problem(password: str) -> str | None:
    if len(password or "") < security.MIN_PASSWORD:
        return f"Passwords need at least {security.MIN_PASSWORD} characters."
    if len(password) > security.MAX_PASSWORD:
        return "That password is too long."
    return None


@router.post("/settings/email", include_in_schema=False)
def email_change(request: Request, email: str = Form(""), password: str = Form(""), csrf_token: str = Form("")):
    user, error = _form_user(request, csrf_token, "/settings/account")
    if error:
        return error
    c = conn(request)
    email = email.strip()
    full = account_sql.get_user(c, user["id"])
    if not security.EMAIL_RE.match(email) or len(email) > 254:
        return _page(request, "settings_account.html", _account_ctx(
            request, user, error="Please enter a valid e-mail address."), status=422)
    ok, _ = security.verify_password(full["password_hash"], password[:security.MAX_PASSWORD])
    if not ok:
        return _page(request, "settings_account.html", _account_ctx(
            request, user, error="Your password is not right."), status=422)
    if account_sql.rate_hit(c, f"email-change:{user['id']}", limit=VERIFY_LIMIT, window_s=3600):
        return _page(request, "settings_account.html", _account_ctx(
            request, user, error="Too many change requests; try again in an hour."), status=429)
    try:
        account.request_email_change(c, _settings(request), full, email)
    except (account.AccountError, links.MailError) as exc:
        return _page(request, "settings_account.html", _account_ctx(request, user, error=str(exc)), status=422)
    return _page(request, "settings_account.html", _account_ctx(
        request, user, message=f"We sent a link to {email}. Your address changes when you open it."))


@router.get("/settings/email/confirm", include_in_schema=False)
def email_confirm(request: Request, token: str = ""):
    try:
        user = account.confirm_email_change(conn(request), _settings(request), token)
    except links.LinkError as exc:
        return _page(request, "error.html", {"title": "Link not valid", "message": str(exc).capitalize() + "."},
                     status=400)
    return _page(request, "error.html", {"title": "Address changed",
                                         "message": f"Your account now uses {user['email']}."})


@router.post("/settings/verify", include_in_schema=False)
def verify_resend(request: Request, csrf_token: str = Form("")):
    user, error = _form_user(request, csrf_token, "/settings/account")
    if error:
        return error
    c = conn(request)
    if account_sql.rate_hit(c, f"verify:{user['id']}", limit=VERIFY_LIMIT, window_s=3600):
        return _page(request, "settings_account.html", _account_ctx(
            request, user, error="Too many mails; try again in an hour."), status=429)
    try:
        account.send_verification(c, _settings(request), account_sql.get_user(c, user["id"]))
    except links.MailError as exc:
        return _page(request, "settings_account.html", _account_ctx(request, user, error=str(exc)), status=503)
    return _page(request, "settings_account.html", _account_ctx(
        request, user, message="We sent you a new verification link."))


@router.get("/verify-email", include_in_schema=False)
def verify_email(request: Request, token: str = ""):
    try:
        user = account.verify_email(conn(request), _settings(request), token)
    except links.LinkError as exc:
        return _page(request, "error.html", {"title": "Link not valid", "message": str(exc).capitalize() + "."},
                     status=400)
    return _page(request, "error.html", {"title": "Address confirmed",
                                         "message": f"Thanks, {user['username']}: {user['email']} is confirmed."})


def send_signup_verification(request: Request, user_id: int) -> None:
    """Called by the sign-up form: mail the verification link; a mail server that is
    down does not fail the sign-up (the settings page offers to resend)."""
    c = conn(request)
    user = account_sql.get_user(c, user_id)
    if user is None:
        return
    try:
        account.send_verification(c, _settings(request), user)
    except links.MailError:
        pass


# ---------------------------------------------------------------- password reset (signed out)

@router.get("/password/forgot", include_in_schema=False)
def forgot_page(request: Request):
    return _page(request, "password_forgot.html", {"title": "Forgot your password?"})


@router.post("/password/forgot", include_in_schema=False)
def forgot(request: Request, login: str = Form(""), csrf_token: str = Form("")):
    if not check_csrf(request, csrf_token):
        return csrf_failed(request)
    c = conn(request)
    login = login.strip()[:254]
    ctx = {"title": "Forgot your password?", "login": login}
    for key in (f"forgot-ip:{client_ip(request)}", f"forgot-user:{login.lower()}"):
        wait = account_sql.rate_hit(c, key, limit=FORGOT_LIMIT, window_s=FORGOT_WINDOW_S)
        if wait:
            resp = _page(request, "password_forgot.html",
                         dict(ctx, error=f"Too many requests. Try again in {int(wait) + 1} seconds."), status=429)
            resp.headers["Retry-After"] = str(int(wait) + 1)
            return resp
    try:
        account.request_reset(c, _settings(request), login)
    except links.MailError as exc:
        return _page(request, "password_forgot.html", dict(ctx, error=str(exc)), status=503)
    # The same answer whether or not the account exists.
    return _page(request, "password_forgot.html", dict(
        ctx, sent=True, message="If an account has that name or address, a reset link is on its way to its "
                                "e-mail address. It works once, for one hour."))


@router.get("/password/reset", include_in_schema=False)
def reset_page(request: Request, token: str = ""):
    try:
        user = account.check_reset(conn(request), _settings(request), token)
    except links.LinkError as exc:
        return _page(request, "error.html", {"title": "Link not valid", "message": str(exc).capitalize() + "."},
                     status=400)
    return _page(request, "password_reset.html", {"title": "Choose a new password", "token": token,
                                                  "username": user["username"]})


@router.post("/password/reset", include_in_schema=False)
def reset(request: Request, token: str = Form(""), password: str = Form(""), csrf_token: str = Form("")):
    if not check_csrf(request, csrf_token):
        return csrf_failed(request)
    problem = _password_problem(password)
    c = conn(request)
    if problem:
        try:
            user = account.check_reset(c, _settings(request), token)
        except links.LinkError as exc:
            return _page(request, "error.html", {"title": "Link not valid", "message": str(exc).capitalize() + "."},
                         status=400)
        return _page(request, "password_reset.html", {"title": "Choose a new password", "token": token,
                                                      "username": user["username"], "error": problem}, status=422)
    try:
        user = account.reset_password(c, _settings(request), token, security.hash_password(password))
    except links.LinkError as exc:
        return _page(request, "error.html", {"title": "Link not valid", "message": str(exc).capitalize() + "."},
                     status=400)
    resp = RedirectResponse("/login?reset=1", status_code=303)
    resp.delete_cookie(security.SESSION_COOKIE, path="/")
    return resp


# ---------------------------------------------------------------- API tokens

@router.get("/settings/tokens", include_in_schema=False)
def tokens_page(request: Request):
    user = current_user(request)
    if user is None:
        return _login("/settings/tokens")
    return _page(request, "settings_tokens.html", {"title": "API tokens",
                                                   "tokens": api_tokens.list_tokens(conn(request), user["id"])})


@router.post("/settings/tokens", include_in_schema=False)
def tokens_create(request: Request, name: str = Form(""), scope: str = Form("read"), csrf_token: str = Form("")):
    user, error = _form_user(request, csrf_token, "/settings/tokens")
    if error:
        return error
    c = conn(request)
    try:
        made = api_tokens.create_token(c, user["id"], scope, name)
    except api_tokens.TokenError as exc:
        return _page(request, "settings_tokens.html", {"title": "API tokens", "error": str(exc).capitalize() + ".",
                                                       "tokens": api_tokens.list_tokens(c, user["id"])}, status=422)
    # Shown once, in this answer only: never cached, never in a redirect URL.
    resp = _page(request, "settings_tokens.html", {"title": "API tokens", "new_token": made,
                                                   "tokens": api_tokens.list_tokens(c, user["id"])})
    resp.headers["Cache-Control"] = "no-store"
    return resp


@router.post("/settings/tokens/{token_id}/revoke", include_in_schema=False)
def tokens_revoke(request: Request, token_id: str, csrf_token: str = Form("")):
    user, error = _form_user(request, csrf_token, "/settings/tokens")
    if error:
        return error
    try:
        api_tokens.revoke_token(conn(request), user["id"], token_id)
    except api_tokens.TokenError as exc:
        return _page(request, "settings_tokens.html", {
            "title": "API tokens", "error": str(exc).capitalize() + ".",
            "tokens": api_tokens.list_tokens(conn(request), user["id"])}, status=404)
    return RedirectResponse("/settings/tokens", status_code=303)


@router.get("/api/whoami-v2", tags=["HF-compatible"], summary="Who the token or session belongs to")
def whoami(request: Request):
    """HF's ``whoami`` (``huggingface_hub.HfApi().whoami(token=...)``): 401 without a live token or session."""
    user = current_user(request)
    if user is None:
        return JSONResponse({"error": "Invalid user token."}, status_code=401)
    scope = user.get("token_scope")
    return JSONResponse({
        "type": "user", "id": str(user["id"]), "name": user["username"], "fullname": user["username"],
        "email": user["email"], "isPro": False, "orgs": [],
        "avatarUrl": f"/u/{quote(user['username'])}/avatar",
        "auth": {"type": "access_token" if scope else "session",
                 "accessToken": {"role": scope or "write", "displayName": ""}},
    })
