"""Profiles at /u/NAME (identicon or uploaded avatar, sanitised bio, submitted papers,
public folders, upvotes only when made public) and avatar uploads: resized, EXIF gone,
and refusals (not an image, too large, decompression bomb) that leave nothing behind."""

from __future__ import annotations

import io
import struct
import tempfile
import zlib

import pytest
from PIL import Image

from paperwire import library
from paperwire.accounts import profiles
from paperwire.store import accounts
from paperwire.store.db import connect
from web_support import csrf_from, demo_db, make_client, signup

PAPER = "0704.0001"


def png_bytes(w=64, h=48, color=(200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (w, h), color).save(out, "PNG")
    return out.getvalue()


def jpeg_with_exif() -> bytes:
    im = Image.new("RGB", (300, 200), (10, 120, 200))
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"        # Make
    exif[0x0112] = 6                  # Orientation: rotate 90
    out = io.BytesIO()
    im.save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()


def bomb_png(w: int, h: int) -> bytes:
    """A tiny PNG whose header claims ``w`` x ``h`` pixels (IHDR patched, CRC fixed)."""
    data = bytearray(png_bytes(1, 1))
    ihdr = 8 + 8  # signature, then length+type of IHDR
    data[ihdr:ihdr + 8] = struct.pack(">II", w, h)
    crc = zlib.crc32(bytes(data[12:ihdr + 13])) & 0xFFFFFFFF
    data[ihdr + 13:ihdr + 17] = struct.pack(">I", crc)
    return bytes(data)


def test_identicon_is_stable_svg():
    a, b = profiles.identicon_svg("alice"), profiles.identicon_svg("alice")
    assert a == b and a.startswith("<svg") and a != profiles.identicon_svg("bob")
    assert "<script" not in a


def test_process_avatar_resizes_strips_exif_and_refuses_bad_files():
    png = profiles.process_avatar(jpeg_with_exif())
    im = Image.open(io.BytesIO(png))
    assert im.format == "PNG" and im.size == (profiles.AVATAR_SIZE, profiles.AVATAR_SIZE)
    assert not im.getexif() and b"SecretCam" not in png and not im.info.get("exif")
    with pytest.raises(profiles.ProfileError, match="not an image"):
        profiles.process_avatar(b"%PDF-1.4 definitely not an image" * 10)
    with pytest.raises(profiles.ProfileError, match="too large"):
        profiles.process_avatar(b"\x89PNG" + b"0" * profiles.MAX_UPLOAD_BYTES)
    with pytest.raises(profiles.ProfileError, match="too big"):
        profiles.process_avatar(bomb_png(5000, 5000))       # over our pixel cap, under Pillow's
    with pytest.raises(profiles.ProfileError, match="too big"):
        profiles.process_avatar(bomb_png(40000, 40000))     # Pillow's DecompressionBombError
    with pytest.raises(profiles.ProfileError, match="Choose an image"):
        profiles.process_avatar(b"")
    truncated = png_bytes(200, 200)[:-40]
    with pytest.raises(profiles.ProfileError):
        profiles.process_avatar(truncated)


def test_avatar_upload_and_refusals_over_http(tmp_path, monkeypatch):
    db = demo_db(tmp_path)
    spool = tmp_path / "spool"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))  # where upload bodies would spill
    client = make_client(db)
    signup(client, "alice")
    before = sorted(p.name for p in tmp_path.iterdir() if p.name != "spool")
    page = client.get("/settings/profile")
    token = csrf_from(page.text)
    ident = client.get("/u/alice/avatar")
    assert ident.status_code == 200 and ident.headers["content-type"].startswith("image/svg+xml")
    conn = connect(db)
    cases = [
        ("notes.png", b"this is text, not a picture\n" * 50, 422, "not an image we can read"),
        ("big.png", b"\x89PNG\r\n\x1a\n" + b"\0" * (profiles.MAX_UPLOAD_BYTES + 10), 413, "too large"),
        ("bomb.png", bomb_png(40000, 40000), 422, "too big"),
        ("wide.png", bomb_png(6000, 6000), 422, "too big"),
    ]
    for name, body, status, words in cases:
        resp = client.post("/settings/avatar", data={"csrf_token": token, "action": "upload"},
                           files={"file": (name, body, "image/png")})
        assert resp.status_code == status, (name, resp.status_code)
        assert words in resp.text, name
        assert conn.execute("SELECT COUNT(*) FROM user_avatars").fetchone()[0] == 0
    # Far over the cap: the guard refuses the body itself.
    huge = client.post("/settings/avatar", data={"csrf_token": token},
                       files={"file": ("huge.png", b"0" * (4 * 1024 * 1024), "image/png")})
    assert huge.status_code == 413
    # Without the CSRF token: refused before anything is read.
    assert client.post("/settings/avatar", files={"file": ("a.png", png_bytes(), "image/png")}).status_code == 403
    assert list(spool.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "spool") == before
    # A real image is kept as a 256x256 PNG without EXIF.
    ok = client.post("/settings/avatar", data={"csrf_token": token, "action": "upload"},
                     files={"file": ("me.jpg", jpeg_with_exif(), "image/jpeg")}, follow_redirects=False)
    assert ok.status_code == 303
    got = client.get("/u/alice/avatar")
    assert got.headers["content-type"] == "image/png" and b"SecretCam" not in got.content
    assert Image.open(io.BytesIO(got.content)).size == (256, 256)
    assert client.get("/u/alice/avatar", headers={"If-None-Match": got.headers["etag"]}).status_code == 304
    client.post("/settings/avatar", data={"csrf_token": token, "action": "remove"})
    assert client.get("/u/alice/avatar").headers["content-type"].startswith("image/svg+xml")
    assert client.get("/u/nobody/avatar").status_code == 404


def test_profile_page_bio_submissions_folders_and_public_upvotes(tmp_path):
    db = demo_db(tmp_path)
    client = make_client(db)
    signup(client, "bob")
    conn = connect(db)
    uid = accounts.find_user(conn, "bob")["id"]
    conn.execute("UPDATE papers SET submitted_by='bob' WHERE paper_id=?", (PAPER,))
    voted_title = conn.execute("SELECT title FROM papers WHERE paper_id='0704.0002'").fetchone()[0]
    accounts.set_vote(conn, uid, conn.execute("SELECT id FROM papers WHERE paper_id='0704.0002'").fetchone()[0], True)
    library.save(conn, uid, PAPER)
    folder = library.create_folder(conn, uid, "Reading group")
    library.add_to_folder(conn, uid, folder["id"], PAPER)
    library.create_folder(conn, uid, "Private stuff")
    library.set_folder_public(conn, uid, folder["id"], True)
    page = client.get("/settings/profile")
    bio = "I like **graphs**. <script>window.x=1</script> [bad](javascript:alert(1)) [ok](https://example.org)"
    assert client.post("/settings/profile", data={"bio": bio}).status_code == 403
    resp = client.post("/settings/profile", data={"bio": bio, "csrf_token": csrf_from(page.text)},
                       follow_redirects=False)
    assert resp.status_code == 303
    anon = make_client(db)
    prof = anon.get("/u/bob")
    assert prof.status_code == 200
    assert "<strong>graphs</strong>" in prof.text and "<script>window.x" not in prof.text
    assert 'href="javascript' not in prof.text and 'href="https://example.org"' in prof.text
    assert f"/papers/{PAPER}" in prof.text  # submitted
    assert "Reading group" in prof.text and "Private stuff" not in prof.text
    assert "Upvoted papers" not in prof.text and voted_title not in prof.text
    client.post("/settings/profile", data={"bio": bio, "public_upvotes": "1", "csrf_token": csrf_from(page.text)})
    prof = anon.get("/u/bob")
    assert "Upvoted papers" in prof.text and "0704.0002" in prof.text
    too_long = client.post("/settings/profile", data={"bio": "x" * 2001, "csrf_token": csrf_from(page.text)})
    assert too_long.status_code == 422 and "at most 2,000" in too_long.text
    assert anon.get("/u/nobody").status_code == 404
