"""The library's pages and forms: Save buttons, /library, shared folders, settings/data.

Every form POST checks the CSRF token before anything else and answers with a
303 back to a local page (``safe_next``), so it all works without JavaScript;
``static/library.js`` turns the Save buttons into in-place toggles with undo.
Private things answer 404 to anyone but their owner, so their existence leaks
nothing. Nothing here goes through the anonymous page cache: a shared folder can
change at any moment and its page must not be served stale.
"""

from __future__ import annotations

from math import ceil
from urllib.parse import quote, urlencode

from fastapi import APIRouter, FastAPI, File, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response

from paperwire import library as lib
from paperwire.library import exporting, importing, userdata
from paperwire.web import security
from paperwire.web.account_routes import csrf_failed, safe_next
from paperwire.web.context import check_csrf, conn, current_user, render, state
from paperwire.web.pages import error_page

router = APIRouter()
PAGE_SIZE = 30


def install(app: FastAPI, st) -> None:
    """Add the library's routes (pages and API) and the template global the Save buttons use."""
    from paperwire.web import library_api

    def saved(user, rowid) -> bool:
        # One query per request and user: the whole set of saved row ids, memoised on the
        # request's user dict (current_user builds it once per request).
        if not user or not isinstance(rowid, int):
            return False
        cache = user.get("_library_saved") if isinstance(user, dict) else None
        if cache is None:
            cache = set(lib.saved_rowids(st.conn(), user["id"]))
            if isinstance(user, dict):
                user["_library_saved"] = cache
        return rowid in cache

    st.env.globals["lib_saved"] = saved
    try:
        from paperwire.web.guard import BODY_LIMITS
    except ImportError:  # no request guard in this build: nothing to raise
        pass
    else:
        # Library files may be up to importing.MAX_BYTES; multipart framing adds a little.
        for prefix in ("/library/import", "/api/v1/library/import"):
            BODY_LIMITS[prefix] = importing.MAX_BYTES + 64 * 1024
    app.include_router(library_api.router, prefix="/api/v1")
    app.include_router(router)


def _login_redirect(target: str) -> Response:
    return RedirectResponse(f"/login?next={quote(target)}", status_code=303)


def _back(next_url: str, default: str = "/library") -> Response:
    return RedirectResponse(safe_next(next_url, default), status_code=303)


def _form_user(request: Request, token: str, next_url: str = "/library"):
    """(user, error response) for a form POST: CSRF first, then the session."""
    if not check_csrf(request, token):
        return None, csrf_failed(request)
    user = current_user(request)
    if user is None:
        return None, _login_redirect(safe_next(next_url, "/library"))
    return user, None


def _problem(request: Request, exc: lib.LibraryError) -> Response:
    if isinstance(exc, lib.NotFound):
        return error_page(request, 404, "Not found", str(exc).capitalize() + ".")
    return error_page(request, 422, "Not possible", str(exc).capitalize() + ".")


# ---------------------------------------------------------------- save / unsave (every card)

@router.post("/library/save", include_in_schema=False)
def save_form(request: Request, paper: str = Form(""), action: str = Form("save"), next: str = Form("/"),
              csrf_token: str = Form("")):
    user, error = _form_user(request, csrf_token, next)
    if error:
        return error
    try:
        if action == "unsave":
            lib.unsave(conn(request), user["id"], paper)
        else:
            lib.save(conn(request), user["id"], paper)
    except lib.LibraryError as exc:
        return _problem(request, exc)
    return _back(next, "/library")


# ---------------------------------------------------------------- the library page

def _read_filter(raw: str | None) -> bool | None:
    return {"read": True, "unread": False}.get(raw or "")


@router.get("/library", include_in_schema=False)
def library_page(request: Request, q: str = "", folder: str = "", tag: str = "", read: str = "",
                 sort: str = "saved", page: int = 1):
    user = current_user(request)
    if user is None:
        return _login_redirect(request.url.path + ("?" + request.url.query if request.url.query else ""))
    c = conn(request)
    sort = sort if sort in lib.SORTS else "saved"
    page = min(max(page, 1), 10_000)
    q = q[:200]
    try:
        current = lib.folder(c, user["id"], folder) if folder else None
    except lib.NotFound:
        return error_page(request, 404, "Not found", "No such folder.")
    res = lib.list_library(c, user["id"], q=q, folder_ident=current["id"] if current else None,
                           tag=tag[:lib.MAX_TAG] or None, read=_read_filter(read), sort=sort,
                           limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    folders = lib.folders(c, user["id"])
    if current:
        current = next((f for f in folders if f["id"] == current["id"]), None)
    params = {k: v for k, v in {"q": q, "folder": folder, "tag": tag, "read": read, "sort": sort}.items() if v}
    base = state(request).settings.base_url.rstrip("/")
    return render(request, "library.html", {
        "title": "Your library", "papers": res["papers"], "total": res["total"], "lib_q": q,
        "folder_param": folder, "current": current, "folders": folders, "tags": lib.tags(c, user["id"]),
        "tag": tag, "read": read, "sort": sort, "sorts": SORT_LABELS, "page": page,
        "pages": max(1, ceil(res["total"] / PAGE_SIZE)), "params": urlencode(params) + "&" if params else "",
        "base": base, "here": request.url.path + ("?" + request.url.query if request.url.query else ""),
        "formats": exporting.FORMATS,
    })


SORT_LABELS = {"saved": "Recently saved", "saved_asc": "Oldest saved", "published": "Newest published",
               "title": "Title"}


# ---------------------------------------------------------------- per-paper forms

@router.post("/library/note", include_in_schema=False)
def note_form(request: Request, paper: str = Form(""), note: str = Form(""), next: str = Form("/library"),
              csrf_token: str = Form("")):
    user, error = _form_user(request, csrf_token, next)
    if error:
        return error
    try:
        lib.set_note(conn(request), user["id"], paper, note)
    except lib.LibraryError as exc:
        return _problem(request, exc)
    return _back(next)


@router.post("/library/read", include_in_schema=False)
def read_form(request: Request, paper: str = Form(""), read: str = Form("1"), next: str = Form("/library"),
              csrf_token: str = Form("")):
    user, error = _form_user(request, csrf_token, next)
    if error:
        return error
    try:
        lib.set_read(conn(request), user["id"], paper, read not in ("0", "false", "unread", ""))
    except lib.LibraryError as exc:
        return _problem(request, exc)
    return _back(next)


@router.post("/library/tags", include_in_schema=False)
def tags_form(request: Request, paper: str = Form(""), add: str = Form(""), remove: str = Form(""),
              next: str = Form("/library"), csrf_token: str = Form("")):
    user, error = _form_user(request, csrf_token, next)
    if error:
        return error
    try:
        if add.strip():
            lib.add_tags(conn(request), user["id"], paper, [add])
        if remove:
            lib.remove_tag(conn(request), user["id"], paper, remove)
    except lib.LibraryError as exc:
        return _problem(request, exc)
    return _back(next)


@router.post("/library/place", include_in_schema=False)
def place_form(request: Request, paper: str = Form(""), folder: str = Form(""), action: str = Form("add"),
               next: str = Form("/library"), csrf_token: str = Form("")):
    """Put a saved paper in a folder, or take it out."""
    user, error = _form_user(request, csrf_token, next)
    if error:
        return error
    if not folder:
        return _back(next)
    try:
        if action == "remove":
            lib.remove_from_folder(conn(request), user["id"], folder, paper)
        else:
            lib.add_to_folder(conn(request), user["id"], folder, paper)
    except lib.LibraryError as exc:
        return _problem(request, exc)
    return _back(next)


# ---------------------------------------------------------------- folders

@router.post("/library/folders", include_in_schema=False)
def create_folder_form(request: Request, name: str = Form(""), csrf_token: str = Form("")):
    user, error = _form_user(request, csrf_token)
    if error:
        return error
    try:
        f = lib.create_folder(conn(request), user["id"], name)
    except lib.LibraryError as exc:
        return _problem(request, exc)
    return RedirectResponse(f"/library?folder={quote(f['slug'])}", status_code=303)


@router.post("/library/folders/{folder_id}", include_in_schema=False)
def folder_form(request: Request, folder_id: int, action: str = Form(""), name: str = Form(""),
                csrf_token: str = Form("")):
    """``action``: rename (with ``name``), delete, share, unshare."""
    user, error = _form_user(request, csrf_token)
    if error:
        return error
    c = conn(request)
    try:
        if action == "rename":
            f = lib.rename_folder(c, user["id"], folder_id, name)
        elif action == "delete":
            lib.delete_folder(c, user["id"], folder_id)
            return RedirectResponse("/library", status_code=303)
        elif action in ("share", "unshare"):
            f = lib.set_folder_public(c, user["id"], folder_id, action == "share")
        else:
            return error_page(request, 422, "Not possible", "Unknown folder action.")
    except lib.LibraryError as exc:
        return _problem(request, exc)
    return RedirectResponse(f"/library?folder={quote(f['slug'])}", status_code=303)


@router.get("/library/folders/{folder_id}", include_in_schema=False)
def folder_link(request: Request, folder_id: int):
    """The owner's link to a folder; to anyone else a folder that is not shared does not exist."""
    user = current_user(request)
    try:
        if user is None:
            raise lib.NotFound("no such folder")
        f = lib.folder(conn(request), user["id"], folder_id)
    except lib.NotFound:
        return error_page(request, 404, "Not found", "No such folder.")
    return RedirectResponse(f"/library?folder={quote(f['slug'])}", status_code=303)


@router.get("/shared/{token}.atom", include_in_schema=False)
def shared_atom(request: Request, token: str):
    from paperwire.web.feeds import atom

    try:
        f, papers = lib.public_folder(conn(request), token, limit=100)
    except lib.NotFound:
        return error_page(request, 404, "Not found", "No such folder.")
    resp = atom(request, f["name"], f"/shared/{token}.atom", papers)
    resp.headers["Cache-Control"] = "no-cache"
    return resp


@router.get("/shared/{token}", include_in_schema=False)
def shared_page(request: Request, token: str):
    """A shared folder: a public page anyone with the link can read."""
    try:
        f, papers = lib.public_folder(conn(request), token)
    except lib.NotFound:
        return error_page(request, 404, "Not found", "No such folder.")
    for p in papers:
        p["votes"] = (p.get("upvotes") or 0) + (p.get("local_upvotes") or 0)
    resp = render(request, "library_shared.html", {"folder": f, "papers": papers, "token": token, "voted": set()})
    resp.headers["Cache-Control"] = "no-cache"
    return resp


# ---------------------------------------------------------------- import / export

@router.post("/library/import", include_in_schema=False)
async def import_form(request: Request, file: UploadFile = File(None), folder: str = Form(""),
                      csrf_token: str = Form("")):
    user, error = _form_user(request, csrf_token)
    if error:
        return error
    if file is None or not file.filename:
        return error_page(request, 422, "Nothing to import", "Choose a BibTeX, RIS, CSL-JSON or id-list file.")
    data = await file.read(importing.MAX_BYTES + 1)
    name = (file.filename or "upload").replace("\\", "/").rsplit("/", 1)[-1][:100]
    try:
        text = importing.decode_bytes(data, name)
        report = importing.import_text(conn(request), user["id"], text, name=name, folder=folder.strip() or None)
    except importing.ImportRefused as exc:
        return error_page(request, 422, "Import refused", str(exc))
    except lib.LibraryError as exc:
        return _problem(request, exc)
    return render(request, "library_import.html", {"report": report})


@router.get("/library/export", include_in_schema=False)
def export_download(request: Request, format: str = "bibtex", folder: str = ""):
    user = current_user(request)
    if user is None:
        return _login_redirect("/library")
    if format not in exporting.FORMATS:
        return error_page(request, 422, "Unknown format", f"Formats: {', '.join(exporting.FORMATS)}.")
    try:
        text = exporting.export_library(conn(request), user["id"], format, folder or None)
    except lib.LibraryError as exc:
        return _problem(request, exc)
    media, ext = exporting.MEDIA[format]
    name = f"paperwire-{lib.slugify(folder) if folder else 'library'}.{ext}"
    return Response(text, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"',
                                                     "Cache-Control": "private, no-store"})


# ---------------------------------------------------------------- your data

@router.get("/settings", include_in_schema=False)
def settings_page(request: Request):
    user = current_user(request)
    if user is None:
        return _login_redirect("/settings")
    return render(request, "library_settings.html", {"title": "Your account", "error": None})


@router.get("/settings/data", include_in_schema=False)
def data_download(request: Request):
    """Everything stored about you, as one JSON file."""
    from paperwire.web.context import JSONResponse

    user = current_user(request)
    if user is None:
        return _login_redirect("/settings")
    data = userdata.export_user_data(conn(request), user["id"])
    return JSONResponse(data, headers={"Content-Disposition": 'attachment; filename="paperwire-my-data.json"',
                                       "Cache-Control": "private, no-store"})


@router.get("/settings/delete", include_in_schema=False)
def delete_page(request: Request):
    user = current_user(request)
    if user is None:
        return _login_redirect("/settings")
    return render(request, "library_settings.html", {"title": "Delete your account", "error": None, "confirm": True})


@router.post("/settings/delete", include_in_schema=False)
def delete_account(request: Request, password: str = Form(""), csrf_token: str = Form("")):
    user, error = _form_user(request, csrf_token, "/settings")
    if error:
        return error
    from paperwire.store import accounts

    c = conn(request)
    row = accounts.get_user(c, user["id"])
    ok, _ = security.verify_password(row["password_hash"] if row else None, password[:security.MAX_PASSWORD])
    if not ok:
        return render(request, "library_settings.html", {"title": "Delete your account", "confirm": True,
                                                          "error": "That password is not right."}, status=403)
    userdata.delete_account(c, user["id"])
    resp = RedirectResponse("/?deleted=1", status_code=303)
    resp.delete_cookie(security.SESSION_COOKIE, path="/")
    return resp
