"""Atom feeds: the newest day, trending, and any search (``/feeds/search.atom?q=``)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import datetime, timezone

from fastapi import APIRouter, Request
from fastapi.responses import Response

from paperwire import feed, latex, rank
from paperwire.web import searching
from paperwire.web.context import cached_page, cached_search, conn, state
from paperwire.web.pages import trending_now
from paperwire.web.security import http_url

router = APIRouter(prefix="/feeds")
ATOM_NS = "http://www.w3.org/2005/Atom"
ATOM = "application/atom+xml; charset=utf-8"
# Characters XML 1.0 forbids (abstracts do contain stray control characters).
_BAD_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(text: str | None) -> str:
    return _BAD_XML.sub("", text or "")


def _stamp(p: dict) -> str:
    s = p.get("updated") or p.get("listed_at") or p.get("published") or p.get("first_seen")
    if not s:
        return p["feed_date"] + "T00:00:00Z"
    return s if s.endswith("Z") or "+" in s[10:] else s + "Z"


def atom(request: Request, title: str, self_path: str, papers: list[dict]) -> Response:
    base = state(request).settings.base_url.rstrip("/")
    ET.register_namespace("", ATOM_NS)
    root = ET.Element(f"{{{ATOM_NS}}}feed")

    def sub(parent, tag, text=None, **attrs):
        el = ET.SubElement(parent, f"{{{ATOM_NS}}}{tag}", attrs)
        if text is not None:
            el.text = _clean(text)
        return el

    sub(root, "title", f"paperwire: {title}")
    sub(root, "id", base + self_path)
    sub(root, "link", rel="self", href=base + self_path, type="application/atom+xml")
    sub(root, "link", rel="alternate", href=base + "/", type="text/html")
    newest = max((_stamp(p) for p in papers), default=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
    sub(root, "updated", newest)
    sub(root, "generator", "paperwire")
    for p in papers:
        e = sub(root, "entry")
        sub(e, "title", latex.to_text(p["title"]))  # Atom text: LaTeX rendered, math as written
        url = f"{base}/papers/{p['paper_id']}"
        sub(e, "id", url)
        sub(e, "link", rel="alternate", href=url, type="text/html")
        if http_url(p.get("pdf_url")):
            sub(e, "link", rel="related", href=http_url(p["pdf_url"]), type="application/pdf")
        sub(e, "updated", _stamp(p))
        if p.get("published"):
            sub(e, "published", _stamp({"updated": p["published"], "feed_date": p["feed_date"]}))
        for name in p.get("authors") or ["Unknown"]:
            sub(sub(e, "author"), "name", name)
        for cat in p.get("categories") or []:
            sub(e, "category", term=_clean(cat))
        sub(e, "summary", latex.to_text(p.get("abstract")), type="text")
    body = b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="utf-8")
    return Response(body, media_type=ATOM)


@router.get("/daily.atom", include_in_schema=False)
def daily(request: Request):
    def build():
        c = conn(request)
        latest = feed.latest_feed_date(c)
        papers = feed.papers_between(c, latest, latest, sort="date", limit=100) if latest else []
        return atom(request, f"papers of {latest}" if latest else "daily papers", "/feeds/daily.atom", papers)
    return cached_page(request, build)


@router.get("/trending.atom", include_in_schema=False)
def trending(request: Request):
    def build():
        c = conn(request)
        return atom(request, "trending", "/feeds/trending.atom", rank.trending(c, now=trending_now(c), limit=50))
    return cached_page(request, build, time_bucket=True)


@router.get("/search.atom", include_in_schema=False)
async def search(request: Request, q: str = "", sort: str = "date"):
    def build():
        try:
            res = searching.run_search(conn(request), q, limit=50, sort=sort if sort in searching.SORTS else "date")
        except searching.SearchInputError as exc:
            return Response(f"{exc}\n", status_code=422, media_type="text/plain; charset=utf-8")
        from urllib.parse import quote

        return atom(request, f"search: {q}", f"/feeds/search.atom?q={quote(q)}", [h.paper for h in res.hits])
    return await cached_search(request, build)
