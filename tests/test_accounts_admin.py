"""Admin: the users page (ban / unban: a banned account cannot sign in or write, its
sessions and tokens end), the hidden papers list (unhide) and the audit log."""

from __future__ import annotations

from paperwire.accounts import tokens
from paperwire.store import accounts
from paperwire.store.db import connect
from web_support import csrf_from, demo_db, make_client, signup

PASSWORD = "correct horse battery"


def _login(client, login, password=PASSWORD):
    page = client.get("/login")
    return client.post("/login", data={"login": login, "password": password, "csrf_token": csrf_from(page.text)},
                       follow_redirects=False)


def test_ban_and_unban_from_the_users_page(tmp_path):
    db = demo_db(tmp_path)
    admin = make_client(db)
    signup(admin, "root")
    conn = connect(db)
    accounts.set_admin(conn, "root")
    mallory = make_client(db)
    signup(mallory, "mallory")
    uid = accounts.find_user(conn, "mallory")["id"]
    token = tokens.create_token(conn, uid, "write")["token"]
    # Not for everyone.
    assert mallory.get("/admin/users").status_code == 403
    assert make_client(db).get("/admin/users", follow_redirects=False).status_code == 303
    page = admin.get("/admin/users")
    assert page.status_code == 200 and "mallory" in page.text
    assert admin.post("/admin/users/mallory", data={"action": "ban"}).status_code == 403  # no CSRF
    assert mallory.post("/admin/users/root", data={"action": "ban", "csrf_token": csrf_from(page.text)}
                        ).status_code in (403, 422)
    resp = admin.post("/admin/users/mallory", data={"action": "ban", "reason": "spam",
                                                    "csrf_token": csrf_from(page.text)}, follow_redirects=False)
    assert resp.status_code == 303
    assert "banned" in admin.get("/admin/users").text
    # The session ended, sign-in is refused, the token is dead, writes fail.
    assert mallory.get("/settings/account", follow_redirects=False).status_code == 303
    refused = _login(make_client(db), "mallory")
    assert refused.status_code == 403 and "banned" in refused.text
    bearer = {"Authorization": f"Bearer {token}"}
    bare = make_client(db)
    assert bare.post("/api/v1/papers/0704.0001/upvote", json={"up": True}, headers=bearer).status_code == 401
    assert conn.execute("SELECT COUNT(*) FROM votes WHERE user_id=?", (uid,)).fetchone()[0] == 0
    # Admins cannot be banned; a second ban says so.
    again = admin.post("/admin/users/mallory", data={"action": "ban", "csrf_token": csrf_from(page.text)})
    assert again.status_code == 422 and "already banned" in again.text
    assert admin.post("/admin/users/root", data={"action": "ban", "csrf_token": csrf_from(page.text)}
                      ).status_code == 422
    # Unban: sign-in works again (old tokens stay revoked).
    admin.post("/admin/users/mallory", data={"action": "unban", "csrf_token": csrf_from(page.text)})
    assert _login(make_client(db), "mallory").status_code == 303
    assert bare.get("/api/whoami-v2", headers=bearer).status_code == 401
    log = admin.get("/admin/audit").text
    assert log.count("audit-action") >= 2 and ">ban<" in log and ">unban<" in log and "spam" in log
    rows = [tuple(r) for r in conn.execute("SELECT action, target_kind, admin_name FROM admin_audit ORDER BY id")]
    assert rows == [("ban", "user", "root"), ("unban", "user", "root")]


def test_hidden_papers_list_and_unhide(tmp_path):
    db = demo_db(tmp_path)
    admin = make_client(db)
    signup(admin, "root")
    conn = connect(db)
    accounts.set_admin(conn, "root")
    paper = conn.execute("SELECT id FROM papers WHERE paper_id='0704.0001'").fetchone()[0]
    accounts.set_hidden(conn, paper, True)
    page = admin.get("/admin/hidden")
    assert page.status_code == 200 and 'data-paper="0704.0001"' in page.text
    assert make_client(db).get("/api/papers/0704.0001").status_code == 404
    resp = admin.post("/admin/hidden", data={"paper": "0704.0001", "action": "unhide",
                                             "csrf_token": csrf_from(page.text)}, follow_redirects=False)
    assert resp.status_code == 303
    assert 'data-paper="0704.0001"' not in admin.get("/admin/hidden").text
    assert make_client(db).get("/api/papers/0704.0001").status_code == 200
    assert conn.execute("SELECT action, target_id FROM admin_audit").fetchall()[0][:] == ("unhide-paper", "0704.0001")
    assert admin.post("/admin/hidden", data={"paper": "nope", "csrf_token": csrf_from(page.text)}).status_code == 404


def test_deleting_an_account_keeps_comments_as_deleted_user_and_drops_tokens(tmp_path):
    from paperwire.accounts import profiles
    from paperwire.discuss import comments
    from paperwire.library.userdata import delete_account
    from paperwire.store.papers import get_paper

    db = demo_db(tmp_path)
    conn = connect(db)
    uid = accounts.create_user(conn, "leaver", "leaver@example.org", "x")
    other = accounts.create_user(conn, "stayer", "stayer@example.org", "x")
    user = {**accounts.get_user(conn, uid)}
    paper = get_paper(conn, "0704.0001")
    top = comments.post(conn, user, paper, "My comment stays").comment
    comments.post(conn, accounts.get_user(conn, other), paper, "A reply", parent=top["id"])
    token = tokens.create_token(conn, uid, "write")["token"]
    profiles.save_settings(conn, uid, bio="hello", public_upvotes=True)
    profiles.set_avatar(conn, uid, __import__("test_accounts_profile").png_bytes())
    assert delete_account(conn, uid)
    assert tokens.authenticate(conn, token) is None
    for table in ("api_tokens", "user_profiles", "user_avatars", "email_verifications"):
        assert conn.execute(f"SELECT COUNT(*) FROM {table} WHERE user_id=?", (uid,)).fetchone()[0] == 0, table
    kept = conn.execute("SELECT user_id, raw FROM comments WHERE id=?", (top["id"],)).fetchone()
    assert kept[0] is None and kept[1] == "My comment stays"
    page = make_client(db).get("/papers/0704.0001")
    assert "deleted user" in page.text and "My comment stays" in page.text and "A reply" in page.text


def test_every_new_form_checks_csrf(tmp_path):
    """Each POST of the accounts area, signed in but without the form's CSRF token: 403."""
    db = demo_db(tmp_path)
    client = make_client(db)
    signup(client, "root")
    conn = connect(db)
    accounts.set_admin(conn, "root")
    before = conn.execute("SELECT password_hash, email FROM users WHERE username='root'").fetchone()
    posts = {
        "/settings/profile": {"bio": "x"}, "/settings/avatar": {"action": "remove"},
        "/settings/password": {"current": PASSWORD, "new": "a new password"},
        "/settings/email": {"email": "new@example.org", "password": PASSWORD}, "/settings/verify": {},
        "/settings/tokens": {"scope": "write"}, "/settings/tokens/1/revoke": {},
        "/password/forgot": {"login": "root"}, "/password/reset": {"token": "x", "password": "a new password"},
        "/admin/users/root": {"action": "ban"}, "/admin/hidden": {"paper": "0704.0001", "action": "hide"},
    }
    for path, data in posts.items():
        resp = client.post(path, data=data, follow_redirects=False)
        assert resp.status_code == 403, path
        assert "did not come from this site" in resp.text, path
    assert conn.execute("SELECT password_hash, email FROM users WHERE username='root'").fetchone() == before
    for table in ("api_tokens", "user_profiles", "admin_audit"):
        assert conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] == 0, table
    assert conn.execute("SELECT hidden FROM papers WHERE paper_id='0704.0001'").fetchone()[0] == 0


def test_hiding_from_the_paper_page_is_audited(tmp_path):
    db = demo_db(tmp_path)
    admin = make_client(db)
    signup(admin, "root")
    conn = connect(db)
    accounts.set_admin(conn, "root")
    page = admin.get("/papers/0704.0001")
    resp = admin.post("/papers/0704.0001/hide", data={"action": "hide", "csrf_token": csrf_from(page.text)},
                      follow_redirects=False)
    assert resp.status_code == 303
    assert 'data-paper="0704.0001"' in admin.get("/admin/hidden").text
    assert tuple(conn.execute("SELECT action, target_kind, target_id FROM admin_audit").fetchone()) == (
        "hide-paper", "paper", "0704.0001")
    assert "hide-paper" in admin.get("/admin/audit").text
