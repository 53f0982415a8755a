"""The library's JSON API under ``/api/v1/library`` (and ``/api/v1/me/data``).

Reads need the session cookie; writes need the session plus the ``X-CSRF-Token``
header (``GET /api/v1/csrf``), like every other write of the API. Papers are named
by their public id in JSON bodies (ids such as ``hep-th/9901001`` hold slashes, so
they stay out of paths). Another user's folder is a 404, never a 403.
"""

from __future__ import annotations

from fastapi import APIRouter, Body, File, Form, Query, Request, UploadFile
from fastapi.responses import Response

from paperwire import library as lib
from paperwire.library import exporting, importing, userdata
from paperwire.web.context import api_error as _err, api_reader as _reader, api_writer as _writer
from paperwire.web.context import JSONResponse, conn, current_user

router = APIRouter(tags=["library"])


def _fail(exc: lib.LibraryError) -> JSONResponse:
    return _err(404 if isinstance(exc, lib.NotFound) else 422, str(exc))


def public_paper(p: dict) -> dict:
    """A saved paper in API answers."""
    return {"id": p["paper_id"], "title": p["title"], "authors": p.get("authors", []),
            "published": p.get("published"), "arxiv_id": p.get("arxiv_id"), "saved_at": p["saved_at"],
            "read": p["read"], "read_at": p["read_at"], "note": p["note"], "tags": p["tags"],
            "folders": [{"id": f["id"], "name": f["name"], "slug": f["slug"]} for f in p["folders"]]}


@router.get("/library", summary="Your saved papers (search, filter, sort)")
def list_items(request: Request, q: str = Query("", max_length=200), folder: str = Query("", max_length=200),
               tag: str = Query("", max_length=200), read: str = Query("", pattern="^(|read|unread)$"),
               sort: str = Query("saved", pattern="^(saved|saved_asc|published|title)$"),
               limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0, le=1_000_000)):
    user, error = _reader(request)
    if error:
        return error
    try:
        res = lib.list_library(conn(request), user["id"], q=q, folder_ident=folder or None, tag=tag or None,
                               read={"read": True, "unread": False}.get(read), sort=sort, limit=limit, offset=offset)
    except lib.LibraryError as exc:
        return _fail(exc)
    return {"papers": [public_paper(p) for p in res["papers"]], "total": res["total"]}


@router.post("/library/save", summary="Save a paper (or, with saved=false, remove it)")
def save(request: Request, paper: str = Body(..., embed=True, max_length=300), saved: bool = Body(True, embed=True)):
    user, error = _writer(request)
    if error:
        return error
    try:
        changed = (lib.save if saved else lib.unsave)(conn(request), user["id"], paper)
        pid = lib.resolve(conn(request), paper)["paper_id"] if saved else paper
    except lib.LibraryError as exc:
        return _fail(exc)
    return {"paper": pid, "saved": saved, "changed": changed}


@router.post("/library/note", summary="Set the private note of a saved paper")
def note(request: Request, paper: str = Body(..., embed=True, max_length=300),
         note: str = Body("", embed=True, max_length=lib.MAX_NOTE)):
    user, error = _writer(request)
    if error:
        return error
    try:
        return {"paper": paper, "note": lib.set_note(conn(request), user["id"], paper, note)}
    except lib.LibraryError as exc:
        return _fail(exc)


@router.post("/library/read", summary="Mark a saved paper read or unread")
def read(request: Request, paper: str = Body(..., embed=True, max_length=300), read: bool = Body(True, embed=True)):
    user, error = _writer(request)
    if error:
        return error
    try:
        return {"paper": paper, "read": lib.set_read(conn(request), user["id"], paper, read)}
    except lib.LibraryError as exc:
        return _fail(exc)


@router.post("/library/tags", summary="Add or remove tags of a saved paper")
def tags(request: Request, paper: str = Body(..., embed=True, max_length=300),
         add: list[str] = Body([], embed=True, max_length=50), remove: list[str] = Body([], embed=True, max_length=50)):
    user, error = _writer(request)
    if error:
        return error
    c = conn(request)
    try:
        current = lib.add_tags(c, user["id"], paper, add) if add else None
        for t in remove:
            current = lib.remove_tag(c, user["id"], paper, t)
        if current is None:
            current = lib.add_tags(c, user["id"], paper, [])
    except lib.LibraryError as exc:
        return _fail(exc)
    return {"paper": paper, "tags": current}


@router.get("/library/tags", summary="Your tags with counts")
def all_tags(request: Request):
    user, error = _reader(request)
    return error or {"tags": lib.tags(conn(request), user["id"])}


@router.get("/library/folders", summary="Your folders")
def folders(request: Request):
    user, error = _reader(request)
    return error or {"folders": lib.folders(conn(request), user["id"])}


@router.post("/library/folders", summary="Create a folder")
def create_folder(request: Request, name: str = Body(..., embed=True, max_length=400)):
    user, error = _writer(request)
    if error:
        return error
    try:
        return JSONResponse(lib.create_folder(conn(request), user["id"], name), status_code=201)
    except lib.LibraryError as exc:
        return _fail(exc)


@router.get("/library/folders/{folder_id}", summary="One of your folders with its papers")
def get_folder(request: Request, folder_id: int):
    user = current_user(request)
    if user is None:
        return _err(404, "no such folder")
    c = conn(request)
    try:
        f = lib.folder(c, user["id"], folder_id)
        res = lib.list_library(c, user["id"], folder_ident=f["id"], limit=None)
    except lib.LibraryError as exc:
        return _fail(exc)
    return {"folder": next(x for x in lib.folders(c, user["id"]) if x["id"] == f["id"]),
            "papers": [public_paper(p) for p in res["papers"]]}


@router.post("/library/folders/{folder_id}", summary="Rename a folder, or make it public / private")
def update_folder(request: Request, folder_id: int, name: str | None = Body(None, embed=True, max_length=400),
                  public: bool | None = Body(None, embed=True)):
    user, error = _writer(request)
    if error:
        return error
    c = conn(request)
    try:
        out = lib.folder(c, user["id"], folder_id)
        if name is not None:
            out = lib.rename_folder(c, user["id"], folder_id, name)
        if public is not None:
            out = lib.set_folder_public(c, user["id"], folder_id, public)
    except lib.LibraryError as exc:
        return _fail(exc)
    return next(x for x in lib.folders(c, user["id"]) if x["id"] == out["id"])


@router.delete("/library/folders/{folder_id}", summary="Delete a folder (its papers stay saved)")
def delete_folder(request: Request, folder_id: int):
    user, error = _writer(request)
    if error:
        return error
    try:
        lib.delete_folder(conn(request), user["id"], folder_id)
    except lib.LibraryError as exc:
        return _fail(exc)
    return {"deleted": folder_id}


@router.post("/library/folders/{folder_id}/papers", summary="Put a paper in a folder (or, with in=false, take it out)")
def place(request: Request, folder_id: int, paper: str = Body(..., embed=True, max_length=300),
          inside: bool = Body(True, embed=True, alias="in")):
    user, error = _writer(request)
    if error:
        return error
    try:
        fn = lib.add_to_folder if inside else lib.remove_from_folder
        changed = fn(conn(request), user["id"], folder_id, paper)
    except lib.LibraryError as exc:
        return _fail(exc)
    return {"folder": folder_id, "paper": paper, "in": inside, "changed": changed}


@router.get("/library/shared/{token}", summary="A shared (public) folder")
def shared(request: Request, token: str):
    try:
        f, papers = lib.public_folder(conn(request), token)
    except lib.NotFound:
        return _err(404, "no such folder")
    return {"folder": {"name": f["name"], "slug": f["slug"]},
            "papers": [{"id": p["paper_id"], "title": p["title"], "authors": p["authors"],
                        "published": p.get("published")} for p in papers]}


@router.post("/library/import", summary="Import BibTeX, RIS, CSL-JSON or a list of arXiv ids / DOIs")
async def import_file(request: Request, file: UploadFile = File(...), folder: str = Form("", max_length=400)):
    user, error = _writer(request)
    if error:
        return error
    data = await file.read(importing.MAX_BYTES + 1)
    name = (file.filename or "upload").replace("\\", "/").rsplit("/", 1)[-1][:100]
    try:
        text = importing.decode_bytes(data, name)
        report = importing.import_text(conn(request), user["id"], text, name=name, folder=folder.strip() or None)
    except importing.ImportRefused as exc:
        return _err(422, str(exc))
    except lib.LibraryError as exc:
        return _fail(exc)
    return report.to_dict()


@router.get("/library/export", summary="Export your library or a folder")
def export(request: Request, format: str = Query("bibtex", pattern="^(bibtex|ris|csl-json)$"),
           folder: str = Query("", max_length=200)):
    user, error = _reader(request)
    if error:
        return error
    try:
        text = exporting.export_library(conn(request), user["id"], format, folder or None)
    except lib.LibraryError as exc:
        return _fail(exc)
    return Response(text, media_type=exporting.MEDIA[format][0], headers={"Cache-Control": "private, no-store"})


@router.get("/me/data", summary="Everything stored about you (Download my data)")
def my_data(request: Request):
    user, error = _reader(request)
    return error or JSONResponse(userdata.export_user_data(conn(request), user["id"]),
                                 headers={"Cache-Control": "private, no-store"})
