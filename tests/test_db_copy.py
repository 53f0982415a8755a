"""``paperwire db copy SRC DST``: the demo instance moved SQLite -> PostgreSQL (and SQLite ->
SQLite, PostgreSQL -> SQLite), table by table equal, resumable after SIGKILL at random
points, the destination searchable and writable afterwards.

Real SQLite files in tmp_path, the throwaway PostgreSQL cluster of tests/pg_support.py,
the CLI run as a subprocess (``python -m paperwire``).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from paperwire.store import copy_schema
from paperwire.store.copy import table_rows
from paperwire.store.db import connect

ROOT = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------- the instance

def build_instance(path: Path) -> dict:
    """The demo corpus plus one of everything a live instance holds: users, votes, a
    session and API token, a confirmed subscription with a digest in its ledger,
    embeddings and similar lists (fake embedder), a library with folder and tags,
    feedback and follows, a comment thread with a vote and a report, a rate counter."""
    from paperwire.accounts import tokens
    from paperwire.demo import load_demo
    from paperwire.digest import subscriptions as subs
    from paperwire.discuss import comments as dc
    from paperwire import library
    from paperwire.index.build import update_index
    from paperwire.index.embeddings import FakeEmbedder
    from paperwire.settings import load_settings
    from paperwire.store import accounts, feedback
    from paperwire.store import digest as dsql
    from paperwire.store.db import transaction
    from paperwire.store.papers import get_paper, newest_papers

    conn = connect(path)
    load_demo(conn, progress=False)
    update_index(conn, embedder=FakeEmbedder(dim=32))
    alice = accounts.create_user(conn, "alice", "alice@example.org", "pbkdf2$x")
    bob = accounts.create_user(conn, "Bob", "bob@example.org", "pbkdf2$y", is_admin=True)
    papers = newest_papers(conn, limit=5)
    p0, p1 = (get_paper(conn, p["paper_id"]) for p in papers[:2])
    accounts.set_vote(conn, alice, p0["id"], True)
    accounts.set_vote(conn, bob, p0["id"], True)
    accounts.set_vote(conn, bob, p1["id"], True)
    accounts.create_session(conn, alice, "cookie-alice")
    tokens.create_token(conn, alice, "write", "laptop")
    accounts.rate_hit(conn, "login:127.0.0.1", limit=10, window_s=60)
    settings = load_settings(path)
    sub = subs.subscribe(conn, settings, "alice@example.org", subs.Preferences(categories=["cs.LG"]),
                         confirmed=True).subscription
    with transaction(conn):
        dsql.insert_send(conn, subscription=sub["id"], kind="digest", period="daily:2025-01-02",
                         recipient=sub["email"], message_id="<d1@paperwire.test>", papers=[p0["id"], p1["id"]],
                         message=b"Subject: digest\r\n\r\n\x00\xffbytes", now="2025-01-02T07:00:00+00:00")
    library.save(conn, alice, p0["paper_id"])
    library.save(conn, alice, p1["paper_id"])
    library.add_tags(conn, alice, p0["paper_id"], ["to-read", "graphs"])
    library.set_note(conn, alice, p0["paper_id"], "a note with ünïcode and 'quotes'")
    folder = library.create_folder(conn, alice, "Reading group")
    library.add_to_folder(conn, alice, folder["id"], p1["paper_id"])
    feedback.insert_feedback(conn, alice, p1["id"], "not_interested")
    feedback.insert_follow(conn, alice, "category", "cs.LG", "Machine learning")
    users = {u: accounts.get_user(conn, uid) for u, uid in (("alice", alice), ("bob", bob))}
    top = dc.post(conn, users["alice"], p0, "First **comment** with $x^2$")
    reply = dc.post(conn, users["bob"], p0, "A reply", parent=top.comment["id"])
    dc.vote(conn, users["bob"], top.comment["id"], True)
    dc.report(conn, users["bob"], reply.comment["id"], "spam?")
    info = {"voted": p0["paper_id"], "title": p0["title"], "alice": alice, "bob": bob}
    conn.close()
    return info


@pytest.fixture(scope="module")
def instance(tmp_path_factory):
    """A SQLite file holding the instance (built once; tests copy from it, never write it)."""
    folder = tmp_path_factory.mktemp("instance")
    path = folder / "source.db"
    info = build_instance(path)
    return path, info


# ---------------------------------------------------------------- helpers

def run_cli(*args, env=None, timeout=180):
    """``python -m paperwire ARGS`` (no $PAPERWIRE_DB: every store is named on the line)."""
    full = {k: v for k, v in os.environ.items() if k not in ("PAPERWIRE_DB", "PAPERWIRE_DB_COPY_CRASH_AT")}
    full.update(env or {})
    return subprocess.run([sys.executable, "-m", "paperwire", *args], capture_output=True, text=True,
                          timeout=timeout, env=full, cwd=ROOT)


# The tables a live instance must carry over; the copy discovers the rest from the schema.
MUST_COPY = {"papers", "paper_authors", "paper_categories", "users", "votes", "sessions", "api_tokens",
             "digest_subscriptions", "digest_sends", "digest_sent_papers", "embedding_models", "embeddings",
             "search_similar", "library_items", "library_tags", "library_folders", "library_folder_items",
             "feedback", "follows", "comments", "comment_votes", "comment_reports", "notifications",
             "rate_events", "user_revs", "meta"}


def copy_plans(src, dst) -> list:
    """The copy's own table plans from ``src`` to ``dst``."""
    a, b = connect(src), connect(dst)
    try:
        return copy_schema.plan_copy(a, b)
    finally:
        a.close()
        b.close()


def table_contents(target, plans=None) -> dict[str, list]:
    """Every table of ``plans`` (default: all of the store's own) in the store at ``target``,
    each as a sorted list of rows: the comparison itself is done in Python."""
    plans = plans or copy_plans(target, target)
    conn = connect(target)
    try:
        out = {}
        for plan in plans:
            rows = list(table_rows(conn, plan))
            if plan.name == "meta":
                rows = [r for r in rows if r[0] != copy_schema.PROGRESS_KEY]
            out[plan.name] = sorted(rows, key=repr)
        return out
    finally:
        conn.close()


def assert_same_content(src, dst, *, skip=()):
    """``dst`` holds exactly the rows of ``src``, table by table (``meta``: every source key,
    equal; the destination may keep keys of its own)."""
    plans = copy_plans(src, dst)
    a, b = table_contents(src, plans), table_contents(dst, plans)
    assert MUST_COPY <= set(a), sorted(MUST_COPY - set(a))
    nonempty = {t for t, rows in a.items() if rows}
    assert MUST_COPY <= nonempty, f"the instance lacks rows in {sorted(MUST_COPY - nonempty)}"
    for table in a:
        if table in skip:
            continue
        if table == "meta":
            assert set(a[table]) <= set(b[table]), (set(a[table]) - set(b[table]))
            continue
        assert len(a[table]) == len(b[table]), f"{table}: {len(a[table])} rows, copied {len(b[table])}"
        assert a[table] == b[table], f"{table}: rows differ"
    return a


def summary_rows(stdout: str) -> dict[str, tuple[int, int, str]]:
    out = {}
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[1].isdigit() and parts[2].isdigit():
            out[parts[0]] = (int(parts[1]), int(parts[2]), " ".join(parts[3:]))
    return out


def search_ids(target: str, query: str, mode: str = "lexical") -> list[str]:
    import json

    r = run_cli("--db", target, "search", "--mode", mode, "--json", query)
    assert r.returncode == 0, r.stderr
    return [h["id"] for h in json.loads(r.stdout)]


def assert_writable(target: str, info: dict) -> None:
    """New rows get fresh ids (sequences moved past the copied ones) and votes count."""
    from paperwire.store import accounts, discuss
    from paperwire.store.db import transaction
    from paperwire.store.papers import get_paper

    conn = connect(target)
    try:
        uid = accounts.create_user(conn, "carol", "carol@example.org", "pbkdf2$z")
        assert uid > max(info["alice"], info["bob"])
        paper = get_paper(conn, info["voted"])
        before = paper["local_upvotes"]
        accounts.set_vote(conn, uid, paper["id"], True)
        assert get_paper(conn, info["voted"])["local_upvotes"] == before + 1 == 3
        with transaction(conn):
            cid = discuss.insert_comment(conn, paper=paper["id"], parent=None, user_id=uid, raw="new",
                                         html="<p>new</p>", now="2025-01-03T00:00:00+00:00")
        assert cid == 3  # after the two copied comments
    finally:
        conn.close()


# ---------------------------------------------------------------- SQLite -> PostgreSQL

def test_copy_sqlite_to_postgres_equal_searchable_writable(instance, pg_url):
    from paperwire.store import accounts
    from paperwire.store.copy import node_cache_dirs
    from paperwire.store.digest import get_send_for_period

    src, info = instance
    # A stale replica of an older database of the same name on this node must not survive.
    conn = connect(pg_url)
    stale = node_cache_dirs(conn)[0]
    conn.close()
    stale.mkdir(parents=True, exist_ok=True)
    (stale / "paperwire-rev").write_text("999999")

    r = run_cli("db", "copy", str(src), pg_url, "--verify")
    assert r.returncode == 0, r.stderr
    rows = summary_rows(r.stdout)
    assert rows["papers"][:2] == (2498, 2498) and rows["papers"][2] == "ok"
    assert all(v[2] == "ok" for v in rows.values()) and MUST_COPY <= set(rows)
    assert "search_fts" not in rows  # FTS5 is SQLite's index; tantivy replicas serve PostgreSQL
    assert "Traceback" not in r.stderr and "hunter2" not in r.stdout
    assert not stale.exists()

    assert_same_content(src, pg_url)
    conn = connect(pg_url)
    try:
        alice = accounts.find_user(conn, "alice")
        assert alice["id"] == info["alice"] and alice["email"] == "alice@example.org"
        sub_id = conn.execute("SELECT id FROM digest_subscriptions").fetchone()[0]
        send = get_send_for_period(conn, sub_id, "daily:2025-01-02")
        assert bytes(send["message"]).endswith(b"\x00\xffbytes")
    finally:
        conn.close()
    # The generated secret key travels too: sessions and links in mails already sent stay valid.
    from paperwire.settings import secret_key_file
    from paperwire.store.meta import get_meta

    conn = connect(pg_url)
    try:
        assert get_meta(conn, "secret_key") == secret_key_file(src).read_text().strip()
    finally:
        conn.close()
    assert search_ids(pg_url, info["title"])[0] == info["voted"]
    assert info["voted"] in search_ids(pg_url, info["title"], mode="hybrid")[:3]
    assert_writable(pg_url, info)
    # A real web node on the copy: the HF-compatible API finds the paper, with its votes.
    import httpx
    from web_support import live_server

    with live_server(pg_url) as base:
        hits = httpx.get(f"{base}/api/papers/search", params={"q": info["title"]}, timeout=30).json()
        assert hits[0]["paper"]["id"] == info["voted"]
        paper = httpx.get(f"{base}/api/papers/{info['voted']}", timeout=30).json()
        assert paper["upvotes"] == 3  # two copied votes and the one cast on the copy


def test_copy_killed_at_random_points_then_resumed(instance, pg_url):
    """SIGKILL mid-batch, right after a commit and at a random moment, several times:
    each rerun resumes, and the last ends with the source's counts and rows, no duplicates."""
    src, info = instance
    seed = int(os.environ.get("PAPERWIRE_TEST_SEED", time.time_ns() % 100_000))
    rng = random.Random(seed)
    args = ("db", "copy", str(src), pg_url, "--batch", "50")  # about 800 batches
    kills = 0
    for point in ("batch", "commit", "batch", "commit", "batch"):
        r = run_cli(*args, env={"PAPERWIRE_DB_COPY_CRASH_AT": f"{point}:{rng.randint(1, 60)}"})
        assert r.returncode == -signal.SIGKILL, (seed, r.returncode, r.stderr)
        assert "Traceback" not in r.stderr, (seed, r.stderr)
        kills += 1
    # And once at a random moment (the rest of the copy takes about a second).
    full = {k: v for k, v in os.environ.items() if k != "PAPERWIRE_DB"}
    proc = subprocess.Popen([sys.executable, "-m", "paperwire", *args], cwd=ROOT, env=full,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(rng.uniform(0.5, 1.5))
    proc.send_signal(signal.SIGKILL)
    kills += proc.wait() == -signal.SIGKILL
    r = run_cli(*args)
    assert r.returncode == 0, (seed, r.stderr)
    assert r.stdout.splitlines()[-1].startswith("resumed: ")
    assert all(v[0] == v[1] and v[2] == "ok" for v in summary_rows(r.stdout).values()), (seed, r.stdout)
    assert_same_content(src, pg_url)
    # Once complete, a rerun copies nothing and checks again.
    again = run_cli(*args, "--verify")
    assert again.returncode == 0, again.stderr
    assert "copied 0 rows" in again.stdout
    # The secret key carried into meta by the completed run is the destination's own key:
    # the rerun's report still shows every table (meta included) equal to the source.
    assert all(v[0] == v[1] and v[2] == "ok" for v in summary_rows(again.stdout).values()), again.stdout
    assert_writable(pg_url, info)


# ---------------------------------------------------------------- SQLite -> SQLite, PostgreSQL -> SQLite

def test_copy_sqlite_to_sqlite_with_fts(instance, tmp_path):
    src, info = instance
    dst = tmp_path / "moved" / "copy.db"
    r = run_cli("db", "copy", str(src), str(dst), "--verify", "--batch", "700")
    assert r.returncode == 0, r.stderr
    rows = summary_rows(r.stdout)
    assert rows["search_fts"] == (2498, 2498, "ok")
    assert_same_content(src, dst)
    from paperwire.settings import secret_key_file

    assert secret_key_file(dst).read_text() == secret_key_file(src).read_text()
    assert secret_key_file(dst).stat().st_mode & 0o077 == 0
    assert search_ids(str(dst), info["title"])[0] == info["voted"]
    assert search_ids(str(dst), '"reasoning challenge" -knowledge') != search_ids(str(dst), '"reasoning challenge"')
    assert_writable(str(dst), info)


def test_copy_postgres_to_sqlite_rebuilds_fts(instance, pg_url, tmp_path):
    src, info = instance
    assert run_cli("db", "copy", str(src), pg_url).returncode == 0
    back = tmp_path / "back.db"
    r = run_cli("db", "copy", pg_url, str(back), "--verify")
    assert r.returncode == 0, r.stderr
    assert "lexical index rebuilt on the destination: 2498 papers" in r.stdout
    # The lexical bookkeeping is rebuilt from papers, not copied; it ends up the same.
    a = assert_same_content(src, back, skip={"search_state"})
    b = table_contents(back)
    for table in ("search_docs", "search_terms"):
        assert a[table] == b[table], table
    assert dict(b["search_state"])["lexical_rev"] == dict(a["search_state"])["lexical_rev"]
    assert search_ids(str(back), info["title"])[0] == info["voted"]
    # A rerun finds the copy complete, and the rebuilt index state is not a "difference".
    again = run_cli("db", "copy", pg_url, str(back), "--verify")
    assert again.returncode == 0, again.stderr
    assert "copied 0 rows" in again.stdout and "rebuilt on the destination: 0 papers" in again.stdout


# ---------------------------------------------------------------- refusals and errors

def test_refuses_a_destination_with_other_data(instance, tmp_path):
    src, _ = instance
    other = tmp_path / "other.db"
    conn = connect(other)
    from paperwire.store import accounts

    accounts.create_user(conn, "mallory", "m@example.org", "x")
    conn.close()
    r = run_cli("db", "copy", str(src), str(other))
    assert r.returncode == 1
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and "is not empty (users: 1 rows)" in err[0] and "--replace" in err[0], r.stderr
    assert "Traceback" not in r.stderr

    # A partial copy of another source is refused too; --replace starts over.
    half = tmp_path / "half.db"
    killed = run_cli("db", "copy", str(other), str(half), "--batch", "1",
                     env={"PAPERWIRE_DB_COPY_CRASH_AT": "commit:2"})
    assert killed.returncode == -signal.SIGKILL
    r = run_cli("db", "copy", str(src), str(half))
    assert r.returncode == 1 and "holds a copy of another store" in r.stderr and str(other) in r.stderr
    r = run_cli("db", "copy", str(src), str(half), "--replace", "--verify")
    assert r.returncode == 0, r.stderr
    assert_same_content(src, half)
    assert "mallory" not in {row[1] for row in table_contents(half)["users"]}


def test_a_changed_source_is_a_mismatch(instance, tmp_path):
    src, _ = instance
    mine = tmp_path / "src.db"
    shutil.copy(src, mine)
    dst = tmp_path / "dst.db"
    assert run_cli("db", "copy", str(mine), str(dst)).returncode == 0
    from paperwire.store import accounts

    conn = connect(mine)
    accounts.create_user(conn, "late", "late@example.org", "x")
    conn.close()
    r = run_cli("db", "copy", str(mine), str(dst))
    assert r.returncode == 1
    assert "users" in summary_rows(r.stdout) and summary_rows(r.stdout)["users"][:2] == (3, 2)
    assert "Error: the copy does not match its source: users (row count differs: source 3, destination 2)" in r.stderr


def test_bad_stores_give_one_line(instance, tmp_path):
    src, _ = instance
    r = run_cli("db", "copy", str(src), "postgresql://bob:hunter2@127.0.0.1:1/paperdb")
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "host 127.0.0.1" in lines[0] and "port 1" in lines[0] and "database paperdb" in lines[0]
    assert "hunter2" not in r.stderr + r.stdout and "Traceback" not in r.stderr
    r = run_cli("db", "copy", str(tmp_path / "missing.db"), str(tmp_path / "x.db"))
    assert r.returncode == 1 and r.stderr.strip() == f"Error: source database not found: {tmp_path / 'missing.db'}"
    assert not (tmp_path / "missing.db").exists()
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 100)
    r = run_cli("db", "copy", str(junk), str(tmp_path / "y.db"))
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and "not a paperwire SQLite database" in r.stderr
    r = run_cli("db", "copy", str(src), str(src))
    assert r.returncode == 1 and "the same database" in r.stderr


def test_one_copy_into_a_destination_at_a_time(instance, tmp_path):
    from paperwire.store.locks import exclusive

    src, _ = instance
    dst = tmp_path / "dst.db"
    with exclusive(str(dst), "db-copy"):
        r = run_cli("db", "copy", str(src), str(dst))
    assert r.returncode == 1 and "another db copy into" in r.stderr and "Traceback" not in r.stderr
    assert run_cli("db", "copy", str(src), str(dst)).returncode == 0
