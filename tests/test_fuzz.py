"""Fuzzing the site (issue 10, "keep them from coming back"): about two minutes on 2 cores.

* The JSON API from its own OpenAPI schema (``/openapi.json``) with schemathesis, signed
  in (session cookie + CSRF header, so the write handlers are really reached) and not.
* The HTML forms and pages (sign in/up, submit, search, digest, vote, hide, ...) with
  hypothesis-made values, signed in as an admin with a valid CSRF token and anonymous.

Every answer must be below 500, carry no traceback, and no marker sent in the input may
come back unescaped in HTML. Runs are bounded (fixed example counts) and derandomized,
so a failure reproduces; each fuzzed request names itself in the assertion message.
"""

from __future__ import annotations

import re
import zlib
from urllib.parse import quote

import pytest
import schemathesis
from schemathesis import GenerationMode
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paperwire.store import accounts
from paperwire.store.db import connect
from paperwire.web import security
from digest_support import SmtpServer
from web_support import csrf_from, demo_db, free_port, settings_for

API_EXAMPLES = 20
FORM_EXAMPLES = 250

FUZZ = settings(max_examples=API_EXAMPLES, derandomize=True, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))
FORMS = settings(max_examples=FORM_EXAMPLES, derandomize=True, deadline=None, database=None,
                 suppress_health_check=list(HealthCheck))
PAGES = settings(FORMS, max_examples=400)  # GETs are cheap (many are cache hits)

# What a crash page or a debug page would show.
TRACE = re.compile(r"Traceback \(most recent call last\)|File \"[^\"]+\.py\", line \d+|sqlite3\.\w+Error|"
                   r"jinja2\.exceptions|pydantic_core|Internal Server Error")
PASSWORD = "correct horse battery"


class Site:
    """One app on a real SQLite copy of the demo database, plus signed-in and anonymous clients."""

    def __init__(self, tmp_path, db=None, smtp_port=None):
        from paperwire.web.app import create_app

        self.db = db or demo_db(tmp_path)
        # The test client's peer is 127.0.0.1, a trusted proxy here, so each example can come
        # from its own X-Forwarded-For address: the per-address limits do not turn the whole
        # run into 429s, and the forwarded-address parsing is fuzzed too.
        self.app = create_app(settings_for(self.db, trusted_proxies="127.0.0.1", smtp_port=smtp_port or free_port(),
                                           smtp_timeout=1.0))
        conn = connect(self.db)
        accounts.create_user(conn, "fuzzadmin", "fuzzadmin@example.org", security.hash_password(PASSWORD),
                             is_admin=True)
        conn.close()
        self.anon = TestClient(self.app, client=("127.0.0.1", 50000), raise_server_exceptions=False)
        self.user = TestClient(self.app, client=("127.0.0.1", 50001), raise_server_exceptions=False)
        tok = csrf_from(self.user.get("/login").text)
        r = self.user.post("/login", data={"login": "fuzzadmin", "password": PASSWORD, "csrf_token": tok},
                           follow_redirects=False)
        assert r.status_code == 303, r.text[:300]
        self.user_csrf = csrf_from(self.user.get("/submit").text)
        self.user_api_csrf = self.user.get("/api/v1/csrf").json()["csrfToken"]
        self.anon_csrf = csrf_from(self.anon.get("/login").text)
        self.forms, self.pages = discover(self.app)

    def close(self):
        self.anon.close()
        self.user.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    s = Site(tmp_path_factory.mktemp("fuzz"))
    yield s
    s.close()


def check(response, what: str, markers: tuple[str, ...] = ()) -> None:
    """The three promises: no 5xx, no traceback, no unescaped reflection in HTML."""
    body = response.text
    assert response.status_code < 500, f"{what}: {response.status_code}\n{body[:800]}"
    assert not TRACE.search(body), f"{what}: stack text sent to the client\n{body[:800]}"
    if "html" in response.headers.get("content-type", ""):
        for m in markers:
            assert m not in body, f"{what}: {m!r} came back unescaped"


# ---------------------------------------------------------------- the API, from its schema

def _api_operations(site):
    schema = schemathesis.openapi.from_asgi("/openapi.json", site.app)
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("signed_in", [False, True], ids=["anonymous", "signed-in"])
def test_api_from_its_schema(site, signed_in):
    """Every operation of /openapi.json, API_EXAMPLES cases each (schemathesis' generators
    driven by hypothesis here: its pytest plugin's lazy fixtures do not run on pytest 9)."""
    failures = []
    operations = _api_operations(site)
    assert len(operations) >= 10
    for op in operations:
        @FUZZ
        @given(case=_strategy(op))
        def run(case):
            _call(case, site, signed_in=signed_in)
        try:
            run()
        except AssertionError as exc:
            failures.append(f"{op.label}: {str(exc)[:1500]}")
    assert not failures, "\n\n".join(failures)


def _strategy(op):
    """Valid and invalid requests (schemathesis' positive and negative modes), and valid
    ones about a paper that exists, so the handlers past the 404 are reached too."""
    strategies = [op.as_strategy(GenerationMode.POSITIVE)]
    try:
        strategies.append(op.as_strategy(GenerationMode.NEGATIVE))
    except Exception:  # noqa: BLE001 - an operation without anything to make invalid
        pass
    names = {p.name for p in op.iter_parameters()}
    if "paper_id" in names:
        strategies.append(op.as_strategy(GenerationMode.POSITIVE, path_parameters={"paper_id": "0704.0001"}))
    return st.one_of(strategies)


def _call(case, site, *, signed_in: bool) -> None:
    client = site.user if signed_in else site.anon
    headers = {"X-Forwarded-For": _addr(case)}
    if signed_in:
        headers["X-CSRF-Token"] = site.user_api_csrf
    response = case.call(headers=headers, cookies=dict(client.cookies))
    who = "signed-in" if signed_in else "anonymous"
    what = f"{who} {case.method} {case.formatted_path} {case.query or ''} {str(case.body)[:200]!r}"
    assert response.status_code < 500, f"{what}: {response.status_code}\n{response.text[:800]}"
    assert not TRACE.search(response.text), f"{what}: stack text\n{response.text[:800]}"


def _addr(case) -> str:
    h = zlib.crc32(repr((case.path_parameters, case.query, str(case.body))).encode()) & 0xFFFFFF
    return f"10.{h >> 16}.{(h >> 8) & 255}.{h & 255}"


# ---------------------------------------------------------------- the HTML forms and pages

# Field values: the usual hostile kinds, each carrying a marker that must never come back raw.
_junk = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=300),
    st.sampled_from(["", " ", "0", "-1", "é", "\x00", "%00", "../../etc/passwd", "javascript:alert(1)",
                     "-quark year:2007", "author:", "cat:cs.LG -x", '"unclosed', "a" * 5000, "2401.00001",
                     "0704.0001", "hep-th/9901001", "daily", "weekly", "a@b.co", "1e309", "NaN"]),
)


@st.composite
def value(draw, marker_id):
    base = draw(_junk)
    if draw(st.booleans()):
        return base
    marker = f"<pwfz{marker_id}"
    wrap = draw(st.sampled_from(["{m}>", "\"'>{m}>", "'{m} x='", "{b}{m}>{b}"]))
    return wrap.format(m=marker, b=base[:50])


# Routes whose handlers read the form themselves (no FastAPI Form parameters to discover).
MANUAL_FORMS = {
    "/digest/subscribe": ["email", "frequency", "top_n", "personal", "authors", "categories", "queries"],
    "/digest/confirm": ["token"],
    "/digest/manage": ["token", "frequency", "top_n", "authors", "categories", "queries"],
    "/digest/unsubscribe": ["token"],
    "/for-you/topics": ["topic", "action", "next"],
}
EXTRA_GETS = {
    "/search": ["q", "mode", "sort", "page", "year", "author", "cat", "dismissed"],
    "/": ["sort", "page", "dismissed"],
    "/trending": ["page", "dismissed"],
    "/feeds/search.atom": ["q"],
}


def _routes(routes, prefix=""):
    """(path, route) of every route, through included routers (flat in older FastAPI,
    lazily included in newer)."""
    for r in routes:
        if hasattr(r, "original_router"):
            ctx = getattr(r, "include_context", None)
            yield from _routes(r.original_router.routes, prefix + (getattr(ctx, "prefix", "") or ""))
        elif hasattr(r, "routes") and not hasattr(r, "dependant") and not hasattr(r, "app"):
            yield from _routes(r.routes, prefix)
        else:
            yield prefix + getattr(r, "path", ""), r


def discover(app) -> tuple[dict, dict]:
    """The site's HTML form routes (POST, with their field names) and pages (GET, with
    their query parameters), so routes added later are fuzzed too."""
    forms, pages = dict(MANUAL_FORMS), dict(EXTRA_GETS)
    for path, route in _routes(app.routes):
        methods = getattr(route, "methods", None) or set()
        dep = getattr(route, "dependant", None)
        if dep is None or path.startswith(("/api/", "/static")) or path in ("/openapi.json", "/docs"):
            continue
        if "POST" in methods:
            fields = [p.name for p in dep.body_params if p.name != "csrf_token"]
            forms.setdefault(path, fields)
        if "GET" in methods:
            pages.setdefault(path, [p.name for p in dep.query_params])
    return forms, pages


def fill_path(path: str, junk: str) -> str:
    path = re.sub(r"\{paper_id(:path)?\}", "0704.0001", path)
    return re.sub(r"\{[^}]+\}", lambda m: quote(junk, safe="") or "1", path)


@st.composite
def form_case(draw, routes):
    n = draw(st.integers(0, 10**6))
    path = draw(st.sampled_from(sorted(routes)))
    fields = {f: draw(value(n)) for f in routes[path] if draw(st.integers(0, 4))}
    path = fill_path(path, draw(st.sampled_from(["1", "0", "-1", "999999999999", "x", "é", "<pwfz"])))
    signed_in = draw(st.booleans())
    csrf = draw(st.sampled_from(["valid", "valid", "valid", "missing", "junk"]))
    junk_csrf = draw(value(n))
    multipart = draw(st.sampled_from([False, False, False, "fields", "files"]))
    return n, path, fields, signed_in, csrf, junk_csrf, multipart


@FORMS
@given(st.data())
def test_html_forms(site, draw):
    data = draw.draw(form_case(site.forms))
    n, path, fields, signed_in, csrf, junk_csrf, multipart = data
    client = site.user if signed_in else site.anon
    if csrf == "valid":
        fields["csrf_token"] = site.user_csrf if signed_in else site.anon_csrf
    elif csrf == "junk":
        fields["csrf_token"] = junk_csrf
    headers = {"X-Forwarded-For": f"10.1.{n % 250}.{n // 250 % 250}"}
    files = None
    if multipart == "files":  # every non-CSRF field as an uploaded file, where the handler wants text
        files = {k: ("f.txt", v.encode("utf-8", "replace")) for k, v in fields.items() if k != "csrf_token"}
        fields = {k: v for k, v in fields.items() if k == "csrf_token"}
    elif multipart == "fields":
        files = {"unused": ("f.txt", b"x")}  # forces multipart/form-data for the text fields
    r = client.post(path, data=fields, files=files, headers=headers, follow_redirects=False)
    check(r, f"{'user' if signed_in else 'anon'} POST {path} {fields!r:.300}", (f"<pwfz{n}",))
    if path == "/logout" and signed_in and csrf == "valid":
        _sign_in_again(site)


def test_route_discovery_finds_the_forms(site):
    for path in ("/login", "/signup", "/logout", "/submit", "/papers/{paper_id:path}/upvote",
                 "/papers/{paper_id:path}/hide", "/digest/subscribe", "/digest/unsubscribe"):
        assert path in site.forms, sorted(site.forms)
    assert "login" in site.forms["/login"] and "arxiv_id" in site.forms["/submit"]
    assert {"/search", "/", "/login", "/digest"} <= set(site.pages)


def _sign_in_again(site):
    tok = csrf_from(site.user.get("/login").text)
    r = site.user.post("/login", data={"login": "fuzzadmin", "password": PASSWORD, "csrf_token": tok},
                       headers={"X-Forwarded-For": "10.200.0.1"}, follow_redirects=False)
    assert r.status_code == 303
    site.user_csrf = csrf_from(site.user.get("/submit").text)
    site.user_api_csrf = site.user.get("/api/v1/csrf").json()["csrfToken"]


@st.composite
def get_case(draw, routes):
    n = draw(st.integers(0, 10**6))
    path = draw(st.sampled_from(sorted(routes)))
    params = {f: draw(value(n)) for f in routes[path] if draw(st.integers(0, 3))}
    path = fill_path(path, draw(value(n)))
    return n, path, params, draw(st.booleans())


@PAGES
@given(st.data())
def test_html_pages_with_odd_parameters(site, draw):
    data = draw.draw(get_case(site.pages))
    n, path, params, signed_in = data
    client = site.user if signed_in else site.anon
    query = "&".join(f"{quote(k)}={quote(v, safe='')}" for k, v in params.items())
    r = client.get(f"{path}?{query}", follow_redirects=False)
    check(r, f"{'user' if signed_in else 'anon'} GET {path}?{query[:300]}", (f"<pwfz{n}",))


@FORMS
@given(st.text(max_size=60), st.sampled_from(["", "/upvote", "/hide", ".bib", "/similar"]))
def test_odd_paper_ids(site, ident, suffix):
    for client in (site.anon, site.user):
        r = client.get("/papers/" + quote(ident, safe="/") + suffix, follow_redirects=False)
        check(r, f"GET /papers/{ident!r}{suffix}")
        marker = "<pwfzid"
        r = client.get("/papers/" + quote(marker + ident, safe="") + suffix, follow_redirects=False)
        check(r, f"GET /papers/<marker>{ident!r}{suffix}", (marker,))


ODD_GETS = [
    "/search?q=%ff%fe", "/?page=99999999999999999999", "/?page=-5", "/papers/%ff", "/papers/%00", "/search?q=%00",
    "/search?q=a&page=1e9", "/search?q=a&format=json", "/?format=json&page=abc", "/papers/date/9999-99-99",
    "/papers/week/2026-W99", "/papers/month/2026-13", "/papers/date/2026-02-30?format=json", "/authors/%ff",
    "/authors/" + "a" * 5000, "/feeds/search.atom?q=%ff", "/api/papers/search?q=%ff", "/api/daily_papers?date=%ff",
    "/papers/..%2f..%2fetc", "/search?q=" + "(" * 200, "/search?q=author:%22", "/search?q=year:99999999999999999999",
    "/search?q=-quark%20year:2007", "/api/papers/search?q=-quark%20year:2007", "/feeds/search.atom?q=-quark%20year:2007",
    "/static/../../etc/passwd", "/digest/confirm?token=" + "a" * 10000, "/outbox/99999999999999999999999",
]
ODD_BODIES = [
    (b"a=%ff&csrf_token=%ff%fe&&&=&", "application/x-www-form-urlencoded"),
    (b"--x\r\nbroken", "multipart/form-data; boundary=x"),
    (b"--x\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n", "multipart/form-data; boundary=x"),
    (b'{"login": 1}', "application/json"),
    (b"\xff\xfe\x00", "text/plain; charset=utf-16"),
]


def test_odd_requests(site):
    """Hand-picked shapes the generators rarely make: bad percent-escapes, huge numbers,
    broken multipart, JSON to a form, odd methods, odd cookies."""
    for client in (site.anon, site.user):
        for path in ODD_GETS:
            for headers in ({}, {"Accept": "application/json"}):
                check(client.get(path, headers=headers, follow_redirects=False), f"GET {path[:200]} {headers}")
        for path in sorted(site.forms):
            path = fill_path(path, "1")
            for body, ctype in ODD_BODIES:
                r = client.post(path, content=body, headers={"Content-Type": ctype}, follow_redirects=False)
                check(r, f"POST {path} {body!r} as {ctype}")
        for method in ("PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"):
            for path in ("/", "/login", "/api/v1/submissions", "/digest/subscribe", "/papers/0704.0001/upvote"):
                r = client.request(method, path, headers={"X-CSRF-Token": site.user_api_csrf})
                check(r, f"{method} {path}")
    for cookies in ({"pw_session": "x" * 300}, {"pw_csrf": "a" * 300}, {"pw_device": "1.a.b"},
                    {"pw_device": "99999999999999999999999.a.b"}, {"pw_device": "..."}):
        with TestClient(site.app, cookies=cookies, raise_server_exceptions=False) as client:
            for path in ("/", "/login", "/submit"):
                check(client.get(path), f"GET {path} with {cookies}")
            r = client.post("/login", data={"login": "fuzzadmin", "password": "x", "csrf_token": "x"})
            check(r, f"POST /login with {cookies}")


def test_the_fuzzer_sees_a_real_reflection():
    """The reflection check can fail: an unescaped marker is caught."""
    class Fake:
        status_code = 200
        headers = {"content-type": "text/html"}
        text = "<p>you searched for <pwfz7></p>"
    with pytest.raises(AssertionError, match="unescaped"):
        check(Fake, "fake", ("<pwfz7",))
    Fake.text = "<p>you searched for &lt;pwfz7&gt;</p>"
    check(Fake, "fake", ("<pwfz7",))
    Fake.status_code, Fake.text = 500, "oops"
    with pytest.raises(AssertionError, match="500"):
        check(Fake, "fake")


# ---------------------------------------------------------------- the same site on PostgreSQL

# Text PostgreSQL refuses or reads specially where SQLite does not: a NUL byte (no text
# value may hold one), invalid UTF-8, LIKE and regex metacharacters, an out-of-range integer.
PG_HOSTILE = ["a\x00b", "%ED%A0%80", "%_\\*(", "-9223372036854775809"]


@pytest.mark.slow
def test_hostile_text_on_postgresql(pg_url, tmp_path):
    """Every discovered page parameter, path segment and form field, and the hand-picked odd
    requests, against the demo instance copied into PostgreSQL, anonymous and as an admin
    with a valid CSRF token: nothing answers 5xx."""
    from paperwire.index.build import update_index
    from paperwire.store.copy import copy_store

    src = demo_db(tmp_path)
    a, b = connect(src), connect(pg_url)
    try:
        assert copy_store(a, b, src_label="demo", dst_label="pg").ok
        update_index(b, semantic=False)
    finally:
        a.close()
        b.close()
    with SmtpServer() as smtp:  # mail works here: a 503 would be a mail server that is down
        _hostile_requests(Site(tmp_path, db=pg_url, smtp_port=smtp.port))


def _hostile_requests(site) -> None:
    try:
        for client, who in ((site.anon, "anon"), (site.user, "admin")):
            for path, params in sorted(site.pages.items()):
                for v in PG_HOSTILE:
                    raw = v if v.startswith("%") else quote(v, safe="")
                    target = fill_path(path, "1") + "?" + "&".join(f"{k}={raw}" for k in params)
                    check(client.get(target, follow_redirects=False), f"{who} GET {target}")
                    if "{" in path:
                        odd = re.sub(r"\{[^}]+\}", raw, path)
                        check(client.get(odd, follow_redirects=False), f"{who} GET {odd}")
            csrf = site.user_csrf if who == "admin" else site.anon_csrf
            for path, fields in sorted(site.forms.items()):
                if path == "/logout":
                    continue
                for v in PG_HOSTILE:
                    data = {f: v for f in fields} | {"csrf_token": csrf}
                    r = client.post(fill_path(path, "1"), data=data, follow_redirects=False)
                    check(r, f"{who} POST {path} {data!r:.200}")
            for path in ODD_GETS:
                check(client.get(path, follow_redirects=False), f"{who} GET {path[:200]}")
    finally:
        site.close()
