"""What a new user meets first: dated listing pages and the demo's feed, CLI lines,
a busy port, ``--db`` after the command, submitting a known paper, /docs.

Real files, real SQLite databases, real subprocesses and sockets; the demo corpus
where it matters.
"""

from __future__ import annotations

import ast
import gzip
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from paperwire.demo import demo_files
from paperwire.ingest import BadRecord, import_records
from paperwire.model import PaperRecord
from paperwire.sources import import_files, listing
from paperwire.store import papers as store
from paperwire.store.db import connect
from web_support import csrf_from, demo_db, make_client, signup

ROOT = Path(__file__).resolve().parent.parent
ABSTRACT = ("We study a problem that matters and propose a method that works better than the previous ones "
            "on every benchmark we tried, with a careful analysis of why it works and when it does not.")


def page(path: Path, *blocks: str, day: str | None = "Mar 11", mtime: datetime | None = None) -> Path:
    """A listing page in the seed files' shape: chrome, a date line, title/abstract pairs."""
    head = ["new", "", "Get trending papers in your email inbox!", "", "Subscribe", "", "byAK and the research community", ""]
    if day:
        head += [day, ""]
    body = []
    for b in blocks:
        body += [b, ""]
    path.write_text("\n".join(head + body) + "\n", encoding="utf-8")
    if mtime:
        os.utime(path, (mtime.timestamp(), mtime.timestamp()))
    return path


def paper(title: str) -> list[str]:
    return [title, f"{title}: {ABSTRACT}"]


def at(y, m, d) -> datetime:
    return datetime(y, m, d, 12, tzinfo=timezone.utc)


def records(path: Path, **kw) -> list:
    return list(listing.parse(path, **kw))


# ---------------------------------------------------------------- listing pages carry their date

def test_page_date_takes_the_year_from_the_file_time_or_year(tmp_path):
    p = page(tmp_path / "p.txt", *paper("Alpha"), *paper("Beta"), mtime=at(2026, 12, 2))
    recs = records(p)
    assert [r.listed_at for r in recs] == ["2026-03-11T00:00:00Z"] * 2
    # Saved before Mar 11 of its year: the latest Mar 11 not after that is last year's.
    os.utime(p, (at(2026, 3, 10).timestamp(),) * 2)
    assert {r.listed_at for r in records(p)} == {"2025-03-11T00:00:00Z"}
    os.utime(p, (datetime(2026, 3, 11, 0, 5, tzinfo=timezone.utc).timestamp(),) * 2)
    assert {r.listed_at for r in records(p)} == {"2026-03-11T00:00:00Z"}  # the day itself counts
    assert {r.listed_at for r in records(p, year=2019)} == {"2019-03-11T00:00:00Z"}
    stated = page(tmp_path / "s.txt", *paper("Gamma"), day="March 11, 2021", mtime=at(2026, 12, 2))
    assert records(stated, year=2019)[0].listed_at == "2021-03-11T00:00:00Z"  # a stated year wins


def test_gzipped_page_is_dated_by_its_gzip_header_not_the_install_time(tmp_path):
    text = page(tmp_path / "p.txt", *paper("Alpha"), day="Dec 30").read_bytes()
    gz = tmp_path / "p.txt.gz"
    with open(gz, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=int(at(2025, 1, 5).timestamp())) as fh:
        fh.write(text)
    os.utime(gz, (at(2031, 6, 1).timestamp(),) * 2)  # e.g. the day a package was installed
    assert listing.file_time(gz).date() == date(2025, 1, 5)
    assert records(gz)[0].listed_at == "2024-12-30T00:00:00Z"
    # A gzip header without a time (mtime=0) falls back to the file's time.
    with open(gz, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as fh:
        fh.write(text)
    os.utime(gz, (at(2031, 6, 1).timestamp(),) * 2)
    assert records(gz)[0].listed_at == "2030-12-30T00:00:00Z"


def test_bundled_demo_pages_keep_their_dates_whatever_the_file_times(tmp_path):
    seeds = [f for f in demo_files() if f.name.startswith("seeds-")]
    assert len(seeds) == 5
    days = {}
    for f in seeds:
        copy = tmp_path / f.name
        shutil.copy(f, copy)
        os.utime(copy, (at(2040, 1, 1).timestamp(),) * 2)
        days[f.name[6:9]] = {r.listed_at[:10] for r in listing.parse(copy) if isinstance(r, PaperRecord)}
    assert days == {"000": {"2026-03-11"}, "001": {"2026-03-17"}, "002": {"2026-03-11"}, "003": {"2026-11-22"},
                    "004": {"2026-03-14"}}  # 003 alone has no date line: the day its gzip header names


def test_undated_page_takes_the_latest_day_of_the_pages_imported_with_it(tmp_path, conn):
    from paperwire.sources import import_files

    today = at(2026, 12, 2)  # a fresh copy of the pages: every file time is "today"
    dated = [page(tmp_path / "a.txt", *paper("Alpha"), day="Mar 11", mtime=today),
             page(tmp_path / "b.txt", *paper("Beta"), day="Mar 17", mtime=today)]
    undated = page(tmp_path / "u.txt", *paper("Gamma"), *paper("Alpha"), day=None, mtime=today)
    import_files(conn, [*dated, undated], progress=False)
    days = dict(conn.execute("SELECT title, feed_date FROM papers").fetchall())
    # Gamma is only on the undated page: the newest dated page's day, not today; Alpha keeps
    # its earliest page's day.
    assert days == {"Alpha": "2026-03-11", "Beta": "2026-03-17", "Gamma": "2026-03-17"}


def test_undated_page_leap_day_and_impossible_dates(tmp_path):
    undated = page(tmp_path / "u.txt", *paper("Alpha"), day=None, mtime=at(2026, 5, 4))
    assert records(undated)[0].listed_at == "2026-05-04T00:00:00Z"
    leap = page(tmp_path / "l.txt", *paper("Alpha"), day="Feb 29", mtime=at(2026, 12, 2))
    assert records(leap)[0].listed_at == "2024-02-29T00:00:00Z"
    bad = page(tmp_path / "b.txt", *paper("Alpha"), day="Feb 30", mtime=at(2026, 12, 2))
    out = records(bad)
    assert isinstance(out[0], BadRecord) and str(out[0]) == f"{bad}:9: date line 'Feb 30' is not a calendar date"
    assert out[1].title == "Alpha" and out[1].listed_at == "2026-12-02T00:00:00Z"  # still imported, by file time
    assert isinstance(records(leap, year=2025)[0], BadRecord)


def test_a_second_date_line_dates_the_papers_after_it(tmp_path):
    p = page(tmp_path / "p.txt", *paper("Alpha"), "Mar 12", *paper("Beta"), mtime=at(2026, 12, 2))
    assert [(r.title, r.listed_at[:10]) for r in records(p)] == [("Alpha", "2026-03-11"), ("Beta", "2026-03-12")]


def _feed_dates(conn) -> dict[str, str]:
    return {r["title"]: r["feed_date"] for r in conn.execute("SELECT title, feed_date FROM papers")}


@pytest.mark.parametrize("order", ["later-first", "earlier-first"])
def test_paper_on_several_pages_takes_the_earliest_and_reimports_never_move_it(tmp_path, order):
    late = page(tmp_path / "late.txt", *paper("Shared"), *paper("Late only"), day="Mar 17", mtime=at(2026, 12, 2))
    early = page(tmp_path / "early.txt", *paper("Early only"), *paper("Shared"), day="Mar 11", mtime=at(2026, 12, 2))
    files = [late, early] if order == "later-first" else [early, late]
    conn = connect(tmp_path / "p.db")
    first = import_files(conn, files, progress=False)
    assert first.added == 3 and first.skipped == 0
    want = {"Shared": "2026-03-11", "Late only": "2026-03-17", "Early only": "2026-03-11"}
    assert _feed_dates(conn) == want
    for f in (late, early, late):  # each page again, alone and in turns: nothing flips
        again = import_files(conn, [f], progress=False)
        assert (again.added, again.updated, again.unchanged) == (0, 0, 2)
        assert _feed_dates(conn) == want
    # The arXiv record arrives (same title): the paper gets its id and keeps its listing day.
    rep = import_records(conn, [PaperRecord(title="Shared", abstract="The arXiv abstract of the shared paper.",
                                            source="arxiv-snapshot", arxiv_id="2603.01234",
                                            published="2026-03-09T17:00:00Z", authors=["A. Author"])])
    assert rep.updated == 1
    shared = store.get_paper(conn, "2603.01234")
    assert shared["feed_date"] == "2026-03-11" and shared["abstract"].startswith("The arXiv abstract")
    again = import_files(conn, files, progress=False)
    assert (again.added, again.updated) == (0, 0)
    assert store.get_paper(conn, "2603.01234")["abstract"].startswith("The arXiv abstract")
    conn.close()


# ---------------------------------------------------------------- the demo's feed

@pytest.fixture
def site(tmp_path):
    db = demo_db(tmp_path)
    with make_client(db) as client:
        client.db = db
        yield client


_NAV = re.compile(r'<a class="btn btn-ghost" rel="(prev|next)" href="/papers/date/([0-9-]+)"[^>]*>([^<]*)</a>')


def _nav(html: str) -> dict[str, tuple[str, str]]:
    return {rel: (day, text.strip()) for rel, day, text in _NAV.findall(html)}


def _short(day: str) -> str:
    d = date.fromisoformat(day)
    return f"{d:%b} {d.day}, {d.year}"


def test_demo_home_opens_on_the_newest_page_and_steps_through_days_with_papers(site):
    conn = connect(site.db)
    days = [r[0] for r in conn.execute("SELECT DISTINCT feed_date FROM papers WHERE hidden=0 ORDER BY 1 DESC")]
    listing_days = [r[0] for r in conn.execute(
        "SELECT DISTINCT feed_date FROM papers WHERE source='listing' ORDER BY 1 DESC")]
    # The undated seed page (003) takes the latest day of the pages imported with it.
    assert listing_days == ["2026-03-17", "2026-03-14", "2026-03-11"]
    assert days[:4] == [*listing_days, "2007-04-16"]  # no paper lands on "today"
    home = site.get("/")
    assert "March 17, 2026 · 229 papers" in home.text
    # Previous walks back through exactly the days that have papers, each link naming its day.
    current, html, seen = days[0], home.text, [days[0]]
    for _ in range(6):
        prev_day, text = _nav(html)["prev"]
        assert text == f"← {_short(prev_day)}"
        assert prev_day == days[len(seen)]
        html = site.get(f"/papers/date/{prev_day}").text
        count = conn.execute("SELECT COUNT(*) FROM papers WHERE feed_date=? AND hidden=0", (prev_day,)).fetchone()[0]
        assert f"· {count} paper" in html and count > 0
        next_day, text = _nav(html)["next"]
        assert (next_day, text) == (current, f"{_short(current)} →")
        current = prev_day
        seen.append(prev_day)
    data = site.get("/papers/date/2026-03-14?format=json").json()
    assert (data["previous"], data["next"], data["total"]) == ("2026-03-11", "2026-03-17", 99)
    conn.close()


# ---------------------------------------------------------------- CLI

def cli(*args, env=None, timeout=120):
    full = dict(os.environ, PAPERWIRE_EMBEDDER="none", **(env or {}))
    full.pop("PAPERWIRE_DB", None)
    full.update(env or {})
    return subprocess.run([sys.executable, "-m", "paperwire", *args], capture_output=True, text=True,
                          timeout=timeout, env=full)


def test_clip_cuts_at_a_word_boundary_with_an_ellipsis():
    from paperwire.cli.common import clip, clip_line

    title = "Energy-Based Concept Bottleneck Models: Unifying Prediction, Concept Intervention"
    assert clip(title, 200) == title
    assert clip(title, 40) == "Energy-Based Concept Bottleneck…"
    assert clip(title, 47) == "Energy-Based Concept Bottleneck Models…"  # no dangling colon
    assert clip("Supercalifragilisticexpialidocious-networks", 12) == "Supercalifr…"  # one long word: cut it
    line = clip_line("  1. [pw-123] ", title, "  (0.512)", width=60)
    assert len(line) <= 60 and line.endswith("…  (0.512)")


def test_cli_lists_clip_titles_to_the_terminal(tmp_path):
    db = tmp_path / "d.db"
    r = cli("--db", str(db), "demo", "--no-serve", env={"COLUMNS": "72"})
    assert r.returncode == 0, r.stderr
    conn = connect(db)
    titles = {p["paper_id"]: p["title"] for p in store.newest_papers(conn, 10)}
    rows = [line for line in r.stdout.splitlines() if line.startswith("2026-")]
    assert len(rows) == 10
    clipped = 0
    for line in rows:
        assert len(line) <= 72
        pid, shown = line.split()[1], line[31:]
        full = titles[pid]
        if shown.endswith("…"):
            clipped += 1
            kept = shown[:-1]
            assert full.startswith(kept) and full[len(kept)] in " ,;:.-–—("  # cut between words
        else:
            assert shown == full
    assert clipped >= 3
    assert cli("--db", str(db), "index", "--lexical-only", "--no-progress").returncode == 0
    search = cli("--db", str(db), "search", "concept bottleneck models", "--mode", "lexical", "--limit", "5",
                 env={"COLUMNS": "60"})
    assert search.returncode == 0, search.stderr
    hits = [line for line in search.stdout.splitlines() if re.match(r"^\s+\d+\. \[", line)]
    assert len(hits) == 5 and all(len(h) <= 60 for h in hits) and any("…  (" in h for h in hits)
    conn.close()


def test_db_option_after_the_command(tmp_path):
    db = tmp_path / "after.db"
    conn = connect(db)
    import_records(conn, [PaperRecord(title="Only paper", abstract=ABSTRACT, source="test", arxiv_id="2401.00001")])
    conn.close()
    r = cli("stats", "--json", "--db", str(db), env={"PAPERWIRE_DB": str(tmp_path / "other.db")})
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["papers"] == 1
    assert not (tmp_path / "other.db").exists()
    shown = cli("show", "2401.00001", "--db", str(db))
    assert shown.returncode == 0 and "Only paper" in shown.stdout
    users = cli("user", "list", "--json", "--db", str(db))  # a group's subcommand too
    assert users.returncode == 0 and json.loads(users.stdout) == []
    assert "--db" in cli("stats", "--help").stdout


def test_import_year_option(tmp_path):
    p = page(tmp_path / "p.txt", *paper("Alpha"), day="Jun 3", mtime=at(2026, 12, 2))
    db = tmp_path / "y.db"
    r = cli("--db", str(db), "import", str(p), "--year", "2023")
    assert r.returncode == 0, r.stderr
    conn = connect(db)
    assert _feed_dates(conn) == {"Alpha": "2023-06-03"}
    conn.close()
    bad = cli("--db", str(db), "import", str(p), "--year", "twenty")
    assert bad.returncode == 2 and "--year" in bad.stderr
    # The parser process of large imports gets the year too.
    conn = connect(tmp_path / "parallel.db")
    import_files(conn, [p], progress=False, parallel=True, year=2022)
    assert _feed_dates(conn) == {"Alpha": "2022-06-03"}
    conn.close()


@pytest.fixture
def busy_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


@pytest.mark.parametrize("command", [["serve"], ["demo"]])
def test_busy_port_is_one_line_and_a_nonzero_exit(tmp_path, busy_port, command):
    r = cli("--db", str(tmp_path / "b.db"), *command, "--port", str(busy_port), timeout=60)
    assert r.returncode == 1
    assert "Traceback" not in r.stderr and "uvicorn" not in r.stderr.lower()
    errors = [line for line in r.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1
    m = re.fullmatch(rf"Error: port {busy_port} is in use: try --port (\d+)", errors[0])
    assert m, errors
    with socket.socket() as s:  # the port it suggests is free
        s.bind(("127.0.0.1", int(m.group(1))))
    if command == ["demo"]:
        assert "demo corpus loaded" not in r.stdout  # it said so before loading anything


def test_make_demo_takes_port():
    make = shutil.which("make")
    if make is None:
        pytest.skip("make not installed")
    r = subprocess.run([make, "-n", "demo", "PORT=8001"], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert re.search(r"paperwire demo --host 127\.0\.0\.1 --port 8001$", r.stdout, re.M), r.stdout


# ---------------------------------------------------------------- submitting a known paper

def test_submitting_a_stored_arxiv_id_opens_the_paper(site):
    conn = connect(site.db)
    signup(site, "sub")
    tok = csrf_from(site.get("/submit").text)

    def submit(raw):
        return site.post("/submit", data={"arxiv_id": raw, "csrf_token": tok}, follow_redirects=False)

    # A listing paper (stored under its title hash) that the harvester has since matched to arXiv.
    row = conn.execute("SELECT paper_id, title FROM papers WHERE source='listing' ORDER BY id LIMIT 1").fetchone()
    import_records(conn, [PaperRecord(title=row["title"], abstract=ABSTRACT, source="arxiv-api",
                                      arxiv_id="2502.01234v2", published="2025-02-03T00:00:00Z")])
    for raw in ("2502.01234", "2502.01234v1", "https://arxiv.org/abs/2502.01234v2", "arxiv.org/pdf/2502.01234",
                "https://huggingface.co/papers/2502.01234", "https://www.arxiv.org/html/2502.01234v2"):
        r = submit(raw)
        assert (r.status_code, r.headers.get("location")) == (303, "/papers/2502.01234"), raw
    assert site.get(f"/papers/{row['paper_id']}", follow_redirects=False).headers["location"] == "/papers/2502.01234"
    # An arXiv id the store knows only as an alias.
    target = store.get_paper(conn, "0704.0002")
    store.add_alias(conn, "0704.9998v3", target["id"])
    assert submit("0704.9998").headers["location"] == "/papers/0704.0002"
    assert conn.execute("SELECT COUNT(*) FROM submissions").fetchone()[0] == 0  # nothing queued
    # A paper the admins hid is not queued again either, and is not opened for others.
    conn.execute("UPDATE papers SET hidden=1 WHERE paper_id='0704.0003'")
    r = submit("0704.0003")
    assert r.status_code == 422 and "hidden" in r.text
    assert conn.execute("SELECT COUNT(*) FROM submissions").fetchone()[0] == 0
    api = site.post("/api/v1/submissions", json={"arxiv_id": "arXiv:0704.0002v1"}, headers={"X-CSRF-Token": tok})
    assert api.status_code == 200 and api.json()["paper_id"] == "0704.0002" and api.json()["status"] == "known"
    assert submit("2511.00001").status_code == 200  # an unknown one is queued
    assert [tuple(r) for r in conn.execute("SELECT arxiv_id, status FROM submissions")] == [("2511.00001", "queued")]
    conn.close()


# ---------------------------------------------------------------- /docs

def test_docs_page_has_the_site_header_a_way_back_and_dark_mode(site):
    r = site.get("/docs")
    assert r.status_code == 200
    html = r.text
    assert '<header class="topbar">' in html and 'href="/">← Back to the papers</a>' in html
    assert "/static/swagger/swagger-ui-bundle.js" in html and "/static/site.css" in html
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
    assert scripts and all("src=" in attrs and not body.strip() for attrs, body in scripts)  # CSP: no inline
    assert "script-src 'self'" in r.headers["content-security-policy"]
    css = site.get(re.search(r'href="(/static/docs\.css[^"]*)"', html).group(1))
    assert css.status_code == 200 and "prefers-color-scheme: dark" in css.text


# ---------------------------------------------------------------- architecture

def test_store_imports_no_consumer():
    """store/ is the bottom layer: it may use the model and itself, nothing that uses it."""
    offenders = []
    for path in sorted((ROOT / "paperwire" / "store").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] if node.module != "paperwire" else [f"paperwire.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                if name.startswith("paperwire") and not name.startswith(("paperwire.store", "paperwire.model")):
                    offenders.append(f"{path.relative_to(ROOT)}: {name}")
    assert offenders == []


def test_feed_composition_ranks_above_the_store(tmp_path):
    from paperwire import feed

    conn = connect(tmp_path / "f.db")
    import_records(conn, [
        PaperRecord(title="Old but loved", abstract=ABSTRACT, source="hf-daily", arxiv_id="2603.00001",
                    listed_at="2026-03-11T00:00:00Z", upvotes=500),
        PaperRecord(title="New and quiet", abstract=ABSTRACT, source="hf-daily", arxiv_id="2603.00002",
                    listed_at="2026-03-11T20:00:00Z", upvotes=0),
    ])
    now = datetime(2026, 3, 12, tzinfo=timezone.utc)
    by_date = feed.papers_between(conn, "2026-03-11", "2026-03-11", sort="date")
    trending = feed.papers_between(conn, "2026-03-11", "2026-03-11", sort="trending", now=now)
    assert [p["paper_id"] for p in by_date] == ["2603.00002", "2603.00001"]
    assert [p["paper_id"] for p in trending] == ["2603.00001", "2603.00002"] and trending[0]["votes"] == 500
    conn.close()


CHROMIUM = "/usr/bin/chromium"


@pytest.mark.browser
@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} not installed")
def test_docs_in_a_dark_browser_keep_the_header_and_lead_back(tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    from web_support import live_server

    with live_server(demo_db(tmp_path)) as url, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            ctx = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme="dark")
            page = ctx.new_page()
            problems = []
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.goto(url + "/docs")
            page.wait_for_selector(".swagger-ui .info .title", timeout=20000)
            assert page.locator("header.topbar .brand").is_visible()
            body_bg = page.evaluate("getComputedStyle(document.body).backgroundColor")
            assert body_bg == "rgb(15, 18, 22)"  # the site's dark background
            assert "invert" in page.evaluate("getComputedStyle(document.querySelector('.docs-ui')).filter")
            assert page.locator(".opblock").count() >= 3
            shots = ROOT / "artifacts" / "screenshots"
            shots.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shots / "api-docs-dark.png"))  # for a human to look at
            page.click("text=← Back to the papers")
            page.wait_for_url(url + "/")
            assert page.locator("h1").first.inner_text() == "Daily papers"
            assert problems == []  # no CSP violation, no script error
        finally:
            browser.close()
