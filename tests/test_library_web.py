"""The library on the site (TestClient over the real app and a real SQLite file): Save
buttons, /library, CSRF on every write, shared folders and their Atom feed, 404 for
other readers' folders, import/export downloads, download my data, delete my account."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import quote

import pytest

from web_support import csrf_from, demo_db, make_client, signup

FIX = Path(__file__).resolve().parent / "fixtures" / "library"
PASSWORD = "correct horse battery"


@pytest.fixture
def db(tmp_path):
    return demo_db(tmp_path)


def api_headers(client) -> dict:
    return {"X-CSRF-Token": client.get("/api/v1/csrf").json()["csrfToken"]}


def form_token(client, path: str = "/library") -> str:
    return csrf_from(client.get(path).text)


def test_save_button_on_cards_and_paper_page_without_js(db):
    c = make_client(db)
    anon = c.get("/").text
    assert 'class="save-btn" href="/login?next=' in anon  # signed out: a link to sign in
    signup(c, "alice")
    home = c.get("/")
    assert home.text.count('action="/library/save"') >= 20
    token = csrf_from(home.text)
    r = c.post("/library/save", data={"paper": "0704.0002", "action": "save", "next": "/", "csrf_token": token},
               follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"
    page = c.get("/papers/0704.0002").text
    m = re.search(r'<form action="/library/save".*?</form>', page, re.S)
    assert 'value="unsave"' in m.group(0) and ">Saved</button>" in m.group(0)
    # Undo without JS: the same button, now "unsave".
    r = c.post("/library/save", data={"paper": "0704.0002", "action": "unsave", "next": "//evil.example",
                                      "csrf_token": token}, follow_redirects=False)
    assert r.headers["location"] == "/library"  # never an off-site redirect
    assert c.get("/api/v1/library").json()["total"] == 0


def test_every_write_needs_csrf(db):
    c = make_client(db)
    signup(c, "alice")
    h = api_headers(c)
    assert c.post("/api/v1/library/save", json={"paper": "0704.0001"}, headers=h).status_code == 200
    fid = c.post("/api/v1/library/folders", json={"name": "F"}, headers=h).json()["id"]
    forms = [("/library/save", {"paper": "0704.0003"}), ("/library/note", {"paper": "0704.0001", "note": "x"}),
             ("/library/read", {"paper": "0704.0001"}), ("/library/tags", {"paper": "0704.0001", "add": "t"}),
             ("/library/place", {"paper": "0704.0001", "folder": str(fid)}), ("/library/folders", {"name": "G"}),
             (f"/library/folders/{fid}", {"action": "share"}), ("/settings/delete", {"password": PASSWORD})]
    for path, data in forms:
        for token in (None, "0" * 64):
            body = dict(data, **({"csrf_token": token} if token else {}))
            r = c.post(path, data=body, follow_redirects=False)
            assert r.status_code == 403, (path, r.status_code)
    r = c.post("/library/import", data={}, files={"file": ("a.txt", b"0704.0005\n")}, follow_redirects=False)
    assert r.status_code == 403
    apis = [("post", "/api/v1/library/save", {"paper": "0704.0003"}),
            ("post", "/api/v1/library/note", {"paper": "0704.0001", "note": "x"}),
            ("post", "/api/v1/library/read", {"paper": "0704.0001", "read": True}),
            ("post", "/api/v1/library/tags", {"paper": "0704.0001", "add": ["t"]}),
            ("post", "/api/v1/library/folders", {"name": "G"}),
            ("post", f"/api/v1/library/folders/{fid}", {"public": True}),
            ("post", f"/api/v1/library/folders/{fid}/papers", {"paper": "0704.0001"}),
            ("delete", f"/api/v1/library/folders/{fid}", None)]
    for method, path, body in apis:
        r = c.request(method.upper(), path, json=body, headers={"X-CSRF-Token": "nope"})
        assert r.status_code == 403, path
    r = c.post("/api/v1/library/import", files={"file": ("a.txt", b"0704.0005\n")})
    assert r.status_code == 403
    lib = c.get("/api/v1/library").json()
    assert [p["id"] for p in lib["papers"]] == ["0704.0001"]
    p = lib["papers"][0]
    assert (p["note"], p["tags"], p["read"], p["folders"]) == ("", [], False, [])
    assert [f["name"] for f in c.get("/api/v1/library/folders").json()["folders"]] == ["F"]
    assert c.get("/api/v1/library/folders").json()["folders"][0]["is_public"] is False


def test_library_page_forms_filters_and_escaping(db):
    c = make_client(db)
    signup(c, "alice")
    token = form_token(c)
    for pid in ("0704.0001", "0704.0002", "0704.0004"):
        c.post("/library/save", data={"paper": pid, "csrf_token": token, "next": "/"})
    xss_note, xss_folder, xss_tag = "<img src=x onerror=alert(1)>", "<script>alert(2)</script>", '"><svg onload=alert(3)>'
    c.post("/library/note", data={"paper": "0704.0001", "note": xss_note, "csrf_token": token})
    c.post("/library/tags", data={"paper": "0704.0001", "add": xss_tag, "csrf_token": token})
    c.post("/library/read", data={"paper": "0704.0002", "read": "1", "csrf_token": token})
    r = c.post("/library/folders", data={"name": xss_folder, "csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    slug = r.headers["location"].split("folder=")[1]
    fid = c.get("/api/v1/library/folders").json()["folders"][0]["id"]
    c.post("/library/place", data={"paper": "0704.0004", "folder": str(fid), "csrf_token": token})
    page = c.get("/library").text
    for raw in (xss_note, xss_folder, xss_tag):
        assert raw not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and "&lt;script&gt;alert(2)&lt;/script&gt;" in page
    assert page.count('class="card lib-item') == 3
    unread = c.get("/library?read=unread").text
    assert unread.count('class="card lib-item') == 2 and "/papers/0704.0002" not in unread
    assert c.get("/library?q=onerror").text.count('class="card lib-item') == 1  # notes are searched
    assert c.get(f"/library?folder={slug}").text.count('class="card lib-item') == 1
    assert c.get("/library?folder=nope").status_code == 404
    titles = re.findall(r'<h2 class="card-title"><a class="math-text" href="/papers/([^"]+)"',
                        c.get("/library?sort=title").text)
    assert titles == ["0704.0004", "0704.0001", "0704.0002"]


def test_shared_folder_page_atom_and_private_404(db):
    alice, bob, anon = make_client(db), make_client(db), make_client(db)
    signup(alice, "alice")
    signup(bob, "bob")
    h = api_headers(alice)
    fid = alice.post("/api/v1/library/folders", json={"name": "Graphs & <friends>"}, headers=h).json()["id"]
    alice.post(f"/api/v1/library/folders/{fid}/papers", json={"paper": "0704.0002"}, headers=h)
    # Private: 404 to everyone but alice, on every route.
    for client in (bob, anon):
        assert client.get(f"/library/folders/{fid}").status_code == 404
        assert client.get(f"/api/v1/library/folders/{fid}").status_code == 404
        hb = api_headers(client)
        assert client.post(f"/api/v1/library/folders/{fid}", json={"public": True}, headers=hb).status_code in (401, 404)
    assert bob.post(f"/api/v1/library/folders/{fid}", json={"public": True}, headers=api_headers(bob)).status_code == 404
    assert alice.get(f"/library/folders/{fid}", follow_redirects=False).status_code == 303
    shared = alice.post(f"/api/v1/library/folders/{fid}", json={"public": True}, headers=h).json()
    token = shared["share_token"]
    page = anon.get(f"/shared/{token}")
    assert page.status_code == 200 and "Graphs &amp; &lt;friends&gt;" in page.text and "/papers/0704.0002" in page.text
    assert page.headers["cache-control"] == "no-cache"
    feed = anon.get(f"/shared/{token}.atom")
    assert feed.headers["content-type"].startswith("application/atom+xml")
    root = ET.fromstring(feed.content)
    ns = {"a": "http://www.w3.org/2005/Atom"}
    assert root.find("a:title", ns).text.endswith("Graphs & <friends>")
    assert [e.find("a:title", ns).text for e in root.findall("a:entry", ns)] == ["Sparsity-certifying Graph Decompositions"]
    assert anon.get(f"/api/v1/library/shared/{token}").json()["papers"][0]["id"] == "0704.0002"
    # Still private to bob's API for writing, still 404 for his folder routes.
    assert bob.get(f"/api/v1/library/folders/{fid}").status_code == 404
    alice.post(f"/api/v1/library/folders/{fid}", json={"public": False}, headers=h)
    assert anon.get(f"/shared/{token}").status_code == 404
    assert anon.get(f"/shared/{token}.atom").status_code == 404
    assert anon.get("/shared/not-a-token").status_code == 404


def test_import_export_pages(db):
    c = make_client(db)
    signup(c, "alice")
    token = form_token(c)
    r = c.post("/library/import", data={"csrf_token": token, "folder": "Zotero"},
               files={"file": ("My Library.bib", (FIX / "zotero.bib").read_bytes(), "application/x-bibtex")})
    assert r.status_code == 200
    assert "doe_future_2024" in r.text and "knuth_art_1997" in r.text and "Line 69" in r.text
    assert "2401.77777 is queued" in r.text
    r = c.post("/library/import", data={"csrf_token": token},
               files={"file": ("photo.jpg", b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4, "image/jpeg")})
    assert r.status_code == 422 and "binary" in r.text
    api = c.post("/api/v1/library/import", headers=api_headers(c),
                 files={"file": ("zotero.ris", (FIX / "zotero.ris").read_bytes(), "application/x-research-info-systems")})
    assert api.status_code == 200 and api.json()["malformed"][0]["line"] == 34
    exp = c.get("/library/export?format=bibtex&folder=zotero")
    assert exp.status_code == 200 and "attachment" in exp.headers["content-disposition"]
    assert exp.text.count("@") == 5
    assert c.get("/library/export?format=csl-json").json()[0]["id"]
    assert c.get("/library/export?format=exe").status_code == 422
    assert c.get("/api/v1/library/export?format=ris").text.startswith("TY  - ")


def test_download_my_data_and_delete_account(db):
    c, other = make_client(db), make_client(db)
    signup(c, "alice")
    signup(other, "bob")
    h = api_headers(c)
    c.post("/api/v1/library/save", json={"paper": "0704.0001"}, headers=h)
    c.post("/api/v1/library/note", json={"paper": "0704.0001", "note": "private"}, headers=h)
    data = c.get("/settings/data")
    assert data.status_code == 200 and "attachment" in data.headers["content-disposition"]
    body = data.json()
    assert body["account"]["username"] == "alice" and body["library"]["items"][0]["note"] == "private"
    assert "password_hash" not in data.text
    assert c.get("/api/v1/me/data").json()["library"]["items"][0]["paper_id"] == "0704.0001"
    assert make_client(db).get("/settings/data", follow_redirects=False).status_code == 303
    token = form_token(c, "/settings/delete")
    wrong = c.post("/settings/delete", data={"password": "not it at all", "csrf_token": token})
    assert wrong.status_code == 403 and c.get("/api/v1/library").json()["total"] == 1
    r = c.post("/settings/delete", data={"password": PASSWORD, "csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    assert c.get("/api/v1/library").status_code == 401  # the session died with the account
    login = make_client(db)
    page = login.get("/login")
    r = login.post("/login", data={"login": "alice", "password": PASSWORD, "csrf_token": csrf_from(page.text),
                                   "next": "/"}, follow_redirects=False)
    assert r.status_code != 303
    assert other.get("/api/v1/library").json()["total"] == 0  # bob is untouched


def test_forms_and_api_with_hostile_values_never_500(db):
    """Hypothesis-made notes, tags, folder names, paper ids and folder ids, signed in with
    a valid token: never a 500, never a traceback, never the marker back unescaped."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    c = make_client(db)
    signup(c, "alice")
    token = form_token(c)
    h = api_headers(c)
    c.post("/api/v1/library/save", json={"paper": "0704.0001"}, headers=h)
    fid = c.post("/api/v1/library/folders", json={"name": "F"}, headers=h).json()["id"]
    text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=300)
    marker = "<i>pw-marker</i>"

    @settings(max_examples=25, derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(value=text, paper=st.one_of(st.just("0704.0001"), text), folder=st.one_of(
        st.just(str(fid)), st.integers(-2**70, 2**70).map(str), text))
    def run(value, paper, folder):
        value = value + marker
        for path, data in [("/library/note", {"paper": paper, "note": value}),
                           ("/library/tags", {"paper": paper, "add": value, "remove": value}),
                           ("/library/place", {"paper": paper, "folder": folder}),
                           ("/library/folders", {"name": value}),
                           ("/library/save", {"paper": paper, "next": value})]:
            r = c.post(path, data=dict(data, csrf_token=token))
            assert r.status_code < 500, (path, data)
            assert marker not in r.text, (path, data)
        for path, body in [("/api/v1/library/note", {"paper": paper, "note": value}),
                           ("/api/v1/library/tags", {"paper": paper, "add": [value]}),
                           ("/api/v1/library/save", {"paper": paper})]:
            assert c.post(path, json=body, headers=h).status_code < 500, (path, body)
        v, f = quote(value, safe=""), quote(folder, safe="")
        for path in (f"/library?q={v}&folder={f}&tag={v}", f"/library/folders/{f}",
                     f"/api/v1/library/folders/{f}", f"/shared/{v}", f"/library/export?folder={f}"):
            r = c.get(path)
            assert r.status_code < 500, path
            assert marker not in r.text or "json" in r.headers.get("content-type", "") \
                or "bibtex" in r.headers.get("content-type", ""), path

    run()


def test_big_uploads_up_to_the_cap(db):
    """A 3 MB id list (over the site's default body limit) imports; past the 20 MB cap is refused."""
    c = make_client(db)
    signup(c, "alice")
    token = form_token(c)
    big = b"# padding line to make the file big\n" * 90_000 + b"0704.0001\n0704.0002\n"
    assert len(big) > 3_000_000
    r = c.post("/library/import", data={"csrf_token": token}, files={"file": ("ids.txt", big, "text/plain")})
    assert r.status_code == 200, r.text[:300]
    assert c.get("/api/v1/library").json()["total"] == 2
    huge = b"0" * (21 * 1024 * 1024)
    r = c.post("/api/v1/library/import", headers=api_headers(c), files={"file": ("huge.txt", huge, "text/plain")})
    err = r.json()["error"]
    assert r.status_code in (413, 422) and ("MB" in err or "MiB" in err), (r.status_code, err)
    assert c.get("/api/v1/library").json()["total"] == 2
