"""/map, /trends and /api/v1/map over real SQLite stores: the API contract and paging,
highlights (search, today, library), and the empty states (never an error)."""

from __future__ import annotations

import io
import re

import pytest

pytest.importorskip("umap")

from paperwire.index.build import embed_missing  # noqa: E402
from paperwire.index.embeddings import FakeEmbedder  # noqa: E402
from paperwire.topics import map as topic_map  # noqa: E402

from topics_support import make_corpus  # noqa: E402
from web_support import make_client, signup  # noqa: E402


@pytest.fixture(scope="module")
def mapped(tmp_path_factory):
    db = tmp_path_factory.mktemp("mapweb") / "map.db"
    conn = make_corpus(db, per_topic=40, burst=8)
    embed_missing(conn, FakeEmbedder(64))
    topic_map.build_map(conn, seed=0)
    from paperwire.index.build import update_index

    update_index(conn, semantic=False)  # the lexical index, for the search highlight
    conn.close()
    return db


def test_api_map_contract_and_paging(mapped):
    c = make_client(mapped)
    seen, cursor, pages = [], None, 0
    while True:
        r = c.get("/api/v1/map", params={"limit": 50, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
        body = r.json()
        assert set(body) >= {"points", "clusters"}
        for p in body["points"]:
            assert set(p) >= {"id", "x", "y", "cluster"}
            assert isinstance(p["id"], str) and 0 <= p["x"] <= 1 and 0 <= p["y"] <= 1 and isinstance(p["cluster"], int)
        for cl in body["clusters"]:
            assert set(cl) >= {"id", "label", "size"} and cl["label"] and cl["size"] > 0
        ids = {cl["id"] for cl in body["clusters"]}
        assert all(p["cluster"] in ids for p in body["points"])
        fine_parents = {f["parent"] for f in body["fine_clusters"]}
        assert fine_parents <= ids
        seen += [p["id"] for p in body["points"]]
        pages += 1
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert pages == 3 and len(seen) == len(set(seen)) == 128 == body["total"]
    assert sum(cl["size"] for cl in body["clusters"]) == 128
    # compact form: the same points
    r = c.get("/api/v1/map/points").json()
    assert r["ids"] == seen and len(r["xy"]) == 2 * len(seen) and len(r["c"]) == len(seen)
    assert all(0 <= v <= 65535 for v in r["xy"])
    for bad in ("cursor=x", "limit=-", "limit=1e9"):
        r = c.get("/api/v1/map?" + bad)
        assert r.status_code == 400 and "error" in r.json()


def test_highlights_today_search_library(mapped):
    c = make_client(mapped)
    today = c.get("/api/v1/map/highlight?set=today").json()
    assert today["day"] and len(today["ids"]) >= 1
    all_ids = set(c.get("/api/v1/map/points").json()["ids"])
    assert set(today["ids"]) <= all_ids
    r = c.get("/api/v1/map/highlight", params={"set": "search", "q": "galaxy telescope"})
    assert r.status_code == 200
    hits = r.json()["ids"]
    assert hits and all(h.startswith("astro-") for h in hits[:5]), hits[:5]
    assert c.get("/api/v1/map/highlight?set=search&q=").status_code == 400
    # A long query is cut at a word boundary, as the search page cuts it, and the note says so.
    long_q = "galaxy telescope " * 20
    long = c.get("/api/v1/map/highlight", params={"set": "search", "q": long_q}).json()
    assert long["ids"] and long["q"] == ("galaxy telescope " * 14).strip() + " galaxy"
    assert long["note"].startswith(f"the query was cut to {len(long['q'])} characters")
    page = c.get("/map", params={"q": long_q}).text
    assert f'value="{long["q"]}"' in page and 'maxlength="2000"' in page
    assert c.get("/api/v1/map/highlight?set=library").status_code == 401
    signup(c, "mapper")
    from paperwire import library
    from paperwire.store.db import connect

    conn = connect(mapped)
    uid = conn.execute("SELECT id FROM users WHERE username='mapper'").fetchone()[0]
    library.save(conn, uid, "bio-3")
    conn.close()
    lib = c.get("/api/v1/map/highlight?set=library")
    assert lib.status_code == 200 and lib.json()["ids"] == ["bio-3"]
    page = c.get("/map").text
    assert 'id="map-library"' in page  # the library toggle is there when signed in


def test_map_and_trends_pages(mapped):
    c = make_client(mapped)
    r = c.get("/map")
    assert r.status_code == 200
    assert '<canvas id="map-canvas"' in r.text and 'src="/static/map.js' in r.text
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", r.text)  # no inline script (CSP script-src 'self')
    assert "cdn" not in r.text.lower()
    assert 'href="/map"' in r.text  # linked from the header
    js = c.get("/static/map.js")
    assert js.status_code == 200 and "http://" not in js.text and "https://" not in js.text  # nothing remote
    t = c.get("/trends")
    assert t.status_code == 200 and "Rising this week" in t.text and t.text.count("<svg") == 4
    assert 'id="upvotes-weekly"><svg' in t.text
    png = c.get("/trends/rising.png")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    from PIL import Image

    assert Image.open(io.BytesIO(png.content)).format == "PNG"


@pytest.mark.parametrize("embedded", [False, True])
def test_empty_states_are_pages_not_errors(tmp_path, embedded):
    db = tmp_path / "tiny.db"
    conn = make_corpus(db, per_topic=8)  # 24 papers: a few dozen
    if embedded:
        embed_missing(conn, FakeEmbedder(64))
    conn.close()
    c = make_client(db)
    r = c.get("/map")
    assert r.status_code == 200 and "No map yet" in r.text and "map.js" not in r.text
    assert ("Only 24 papers" if embedded else "No paper has an embedding") in r.text
    t = c.get("/trends")
    assert t.status_code == 200 and "No trends yet" in t.text
    api = c.get("/api/v1/map").json()
    assert api["points"] == [] and api["clusters"] == [] and api["empty"]
    assert c.get("/api/v1/map/points").json()["ids"] == []
    assert c.get("/api/v1/map/highlight?set=today").json()["ids"] == []
    assert c.get("/trends/rising.png").status_code == 200
