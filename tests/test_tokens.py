"""Personal API tokens: stored hashed, shown once, Bearer reads and writes (no CSRF for
writes), read scope cannot write (403), revoked at once (401), last_used recorded; the
CLI contract; and the real huggingface_hub client's whoami with token=."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import httpx
import pytest
from click.testing import CliRunner

from paperwire.accounts import tokens
from paperwire.store import accounts
from paperwire.store.db import connect
from web_support import csrf_from, demo_db, live_server, make_client, signup

PAPER = "0704.0001"


def _user(conn, name="alice"):
    return accounts.create_user(conn, name, f"{name}@example.org", "x")


def test_tokens_are_hashed_listed_and_revoked(tmp_path):
    conn = connect(tmp_path / "t.db")
    uid = _user(conn)
    made = tokens.create_token(conn, uid, "write", "laptop")
    assert made["token"].startswith("pw_") and len(made["token"]) > 40
    stored = conn.execute("SELECT token_hash, prefix FROM api_tokens").fetchone()
    assert stored[0] == hashlib.sha256(made["token"].encode()).hexdigest()
    assert made["token"] not in json.dumps([dict(r) for r in conn.execute("SELECT * FROM api_tokens")])
    [row] = tokens.list_tokens(conn, uid)
    assert row["scope"] == "write" and row["name"] == "laptop" and row["last_used"] is None and "token" not in row
    who = tokens.authenticate(conn, made["token"])
    assert who["id"] == uid and who["token_scope"] == "write"
    assert tokens.list_tokens(conn, uid)[0]["last_used"] is not None
    assert tokens.authenticate(conn, made["token"] + "x") is None
    assert tokens.authenticate(conn, "") is None
    tokens.revoke_token(conn, uid, made["id"])
    assert tokens.authenticate(conn, made["token"]) is None
    with pytest.raises(tokens.TokenError):
        tokens.revoke_token(conn, uid, made["id"])  # already revoked
    other = _user(conn, "bob")
    second = tokens.create_token(conn, uid, "read")
    with pytest.raises(tokens.TokenError):
        tokens.revoke_token(conn, other, second["id"])  # not bob's
    with pytest.raises(tokens.TokenError):
        tokens.create_token(conn, uid, "admin")


def test_bearer_scopes_and_revocation_over_http(tmp_path):
    db = demo_db(tmp_path)
    conn = connect(db)
    uid = _user(conn)
    write = tokens.create_token(conn, uid, "write")["token"]
    read = tokens.create_token(conn, uid, "read")
    with live_server(db) as url:
        w = {"Authorization": f"Bearer {write}"}
        r = {"Authorization": f"Bearer {read['token']}"}
        # A write with a write token and no cookie, no CSRF header: accepted.
        resp = httpx.post(f"{url}/api/v1/papers/{PAPER}/upvote", json={"up": True}, headers=w)
        assert resp.status_code == 200, resp.text
        assert resp.json()["voted"] is True
        assert conn.execute("SELECT COUNT(*) FROM votes WHERE user_id=?", (uid,)).fetchone()[0] == 1
        # A form route too (no csrf_token field).
        resp = httpx.post(f"{url}/library/save", data={"paper": PAPER, "next": "/"}, headers=w)
        assert resp.status_code == 303, resp.text[:300]
        assert conn.execute("SELECT COUNT(*) FROM library_items WHERE user_id=?", (uid,)).fetchone()[0] == 1
        # The read token reads as the user...
        me = httpx.get(f"{url}/api/whoami-v2", headers=r)
        assert me.status_code == 200 and me.json()["name"] == "alice"
        assert me.json()["auth"]["accessToken"]["role"] == "read"
        # ...but cannot write: 403, nothing changes.
        resp = httpx.post(f"{url}/api/v1/papers/{PAPER}/upvote", json={"up": False}, headers=r)
        assert resp.status_code == 403 and "read-only" in resp.json()["error"]
        resp = httpx.post(f"{url}/library/save", data={"paper": PAPER, "action": "unsave"}, headers=r)
        assert resp.status_code == 403
        assert conn.execute("SELECT COUNT(*) FROM votes WHERE user_id=?", (uid,)).fetchone()[0] == 1
        # Revoked: 401 on the very next request, on any route, cached page or not.
        assert httpx.get(f"{url}/api/papers/{PAPER}", headers=r).status_code == 200
        tokens.revoke_token(conn, uid, read["id"])
        for path in ("/api/whoami-v2", f"/api/papers/{PAPER}", "/", f"/papers/{PAPER}"):
            resp = httpx.get(url + path, headers=r)
            assert resp.status_code == 401, path
            assert resp.headers.get("www-authenticate") == "Bearer"
        assert httpx.get(f"{url}/api/whoami-v2", headers={"Authorization": "Bearer pw_nope"}).status_code == 401
        # Anonymous and Basic credentials (a proxy's) are not tokens.
        assert httpx.get(f"{url}/api/whoami-v2").status_code == 401
        assert httpx.get(f"{url}/api/papers/{PAPER}", headers={"Authorization": "Basic eDp5"}).status_code == 200
    assert tokens.list_tokens(conn, uid)[1]["last_used"] is not None  # the write token, used above


def test_tokens_settings_page_creates_shows_once_and_revokes(tmp_path):
    db = demo_db(tmp_path)
    client = make_client(db)
    signup(client, "carol")
    page = client.get("/settings/tokens")
    assert page.status_code == 200
    # No CSRF token: refused.
    assert client.post("/settings/tokens", data={"scope": "write"}).status_code == 403
    resp = client.post("/settings/tokens", data={"scope": "write", "name": "script",
                                                 "csrf_token": csrf_from(page.text)})
    assert resp.status_code == 200 and resp.headers["cache-control"] == "no-store"
    token = resp.text.split('class="new-token">', 1)[1].split("<", 1)[0]
    assert token.startswith("pw_")
    again = client.get("/settings/tokens")
    assert token not in again.text and token[:9] in again.text  # shown once; the prefix stays
    conn = connect(db)
    [row] = conn.execute("SELECT id FROM api_tokens").fetchall()
    bare = make_client(db)
    assert bare.get("/api/whoami-v2", headers={"Authorization": f"Bearer {token}"}).json()["name"] == "carol"
    resp = client.post(f"/settings/tokens/{row[0]}/revoke", data={"csrf_token": csrf_from(again.text)},
                       follow_redirects=False)
    assert resp.status_code == 303
    assert bare.get("/api/whoami-v2", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_cli_token_create_list_revoke(tmp_path):
    from paperwire.cli import cli

    db = tmp_path / "c.db"
    conn = connect(db)
    _user(conn, "dave")
    runner = CliRunner()
    out = runner.invoke(cli, ["--db", str(db), "token", "create", "--user", "dave", "--scope", "write", "--json"])
    assert out.exit_code == 0, out.output
    token = json.loads(out.stdout)["token"]
    assert list(json.loads(out.stdout)) == ["token"]
    assert tokens.authenticate(conn, token)["token_scope"] == "write"
    out = runner.invoke(cli, ["--db", str(db), "token", "list", "--user", "dave", "--json"])
    [row] = json.loads(out.stdout)
    assert row["scope"] == "write" and token not in out.stdout
    out = runner.invoke(cli, ["--db", str(db), "token", "revoke", "--user", "dave", str(row["id"])])
    assert out.exit_code == 0 and tokens.authenticate(conn, token) is None
    out = runner.invoke(cli, ["--db", str(db), "token", "revoke", "--user", "dave", str(row["id"])])
    assert out.exit_code == 1 and "no live token" in out.output
    out = runner.invoke(cli, ["--db", str(db), "token", "create", "--user", "nobody"])
    assert out.exit_code == 1 and "no user 'nobody'" in out.output
    out = runner.invoke(cli, ["--db", str(db), "token", "create", "--user", "dave", "--scope", "admin"])
    assert out.exit_code == 2


WHOAMI = r"""
import json, sys
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError
api = HfApi()
out = {"me": api.whoami(token=sys.argv[1])["name"]}
try:
    api.whoami(token=sys.argv[2])
    out["revoked"] = "no error"
except HfHubHTTPError as exc:
    out["revoked"] = exc.response.status_code
print(json.dumps(out))
"""


def test_huggingface_hub_whoami_with_token(tmp_path):
    pytest.importorskip("huggingface_hub")
    db = demo_db(tmp_path)
    conn = connect(db)
    uid = _user(conn, "erin")
    good = tokens.create_token(conn, uid, "read")["token"]
    dead = tokens.create_token(conn, uid, "read")
    tokens.revoke_token(conn, uid, dead["id"])
    with live_server(db) as url:
        env = dict(os.environ, HF_ENDPOINT=url, HF_HUB_OFFLINE="0", HF_HUB_DISABLE_TELEMETRY="1")
        env.pop("HF_TOKEN", None)
        proc = subprocess.run([sys.executable, "-c", WHOAMI, good, dead["token"]], env=env, capture_output=True,
                              text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"me": "erin", "revoked": 401}


def test_write_token_comments_through_the_api_and_odd_headers_are_refused(tmp_path):
    db = demo_db(tmp_path)
    conn = connect(db)
    uid = _user(conn, "fay")
    write = tokens.create_token(conn, uid, "write")["token"]
    read = tokens.create_token(conn, uid, "read")["token"]
    client = make_client(db)
    r = client.post(f"/api/v1/papers/{PAPER}/comments", json={"text": "Posted by a *script*"},
                    headers={"Authorization": f"Bearer {write}"})
    assert r.status_code in (200, 201), r.text
    assert conn.execute("SELECT raw FROM comments WHERE user_id=?", (uid,)).fetchone()[0] == "Posted by a *script*"
    r = client.post(f"/api/v1/papers/{PAPER}/comments", json={"text": "nope"},
                    headers={"Authorization": f"Bearer {read}"})
    assert r.status_code == 403
    assert conn.execute("SELECT COUNT(*) FROM comments WHERE user_id=?", (uid,)).fetchone()[0] == 1
    for value in ("Bearer", "Bearer ", "bearer " + "x" * 5000, "Bearer pw_\u00e9\u00e9", "BEARER  " + write + "x"):
        resp = client.get("/api/whoami-v2", headers={"Authorization": value.encode("utf-8")})
        assert resp.status_code == 401, value[:20]
    # A session cookie plus a bad token: the token decides (401), it never falls back.
    signup(client, "gus")
    assert client.get("/api/whoami-v2").json()["name"] == "gus"
    assert client.get("/api/whoami-v2", headers={"Authorization": "Bearer pw_wrong"}).status_code == 401
    page = client.get("/settings/tokens")
    assert client.post("/settings/tokens", data={"scope": "read", "csrf_token": csrf_from(page.text)},
                       headers={"Authorization": "Bearer pw_wrong"}).status_code == 401
