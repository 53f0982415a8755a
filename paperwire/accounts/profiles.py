"""Public profiles at ``/u/NAME``: avatar, bio, submitted papers, comments, public
folders and (if the user says so) upvotes.

Avatars are a generated identicon (SVG, from the username) unless the user uploads an
image. An upload is checked before anything is kept: at most :data:`MAX_UPLOAD_BYTES`,
an image Pillow can read (PNG, JPEG, GIF or WebP), at most :data:`MAX_PIXELS` pixels
(read from the header, before decoding: a decompression bomb is refused without being
expanded; Pillow's own ``DecompressionBombWarning`` is an error here too). It is then
turned upright, cropped square, resized to :data:`AVATAR_SIZE` and re-encoded as PNG,
which drops EXIF and every other metadata chunk. The result lives in the database
(``user_avatars``), so a refused upload leaves nothing anywhere.
"""

from __future__ import annotations

import hashlib
import io
import sqlite3
import warnings

from paperwire.model import utcnow_iso
from paperwire.store import profiles as sql
from paperwire.store.db import transaction

MAX_UPLOAD_BYTES = 2 * 1024 * 1024
MAX_PIXELS = 4096 * 4096
AVATAR_SIZE = 256
MAX_BIO = 2000
FORMATS = ("PNG", "JPEG", "GIF", "WEBP")


class ProfileError(ValueError):
    """A profile change that is refused; the message is for people."""


# ---------------------------------------------------------------- avatars

def identicon_svg(username: str, size: int = 5) -> str:
    """A GitHub-style symmetric 5x5 identicon for ``username``, as SVG text."""
    digest = hashlib.sha256(username.encode()).digest()
    hue = digest[0] * 360 // 256
    color = f"hsl({hue},55%,50%)"
    cells = []
    half = (size + 1) // 2
    bit = 0
    for x in range(half):
        for y in range(size):
            on = (digest[1 + bit // 8] >> (bit % 8)) & 1
            bit += 1
            if on:
                for cx in {x, size - 1 - x}:
                    cells.append(f'<rect x="{cx + 0.5}" y="{y + 0.5}" width="1" height="1"/>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {size + 1} {size + 1}" width="128" height="128">'
            f'<rect width="{size + 1}" height="{size + 1}" fill="#f0f0f0"/><g fill="{color}">{"".join(cells)}</g></svg>')


def process_avatar(data: bytes) -> bytes:
    """The PNG to keep for an uploaded image, or :class:`ProfileError` saying why not."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    if not data:
        raise ProfileError("Choose an image file to upload.")
    if len(data) > MAX_UPLOAD_BYTES:
        raise ProfileError(f"That file is too large: avatars can be at most {MAX_UPLOAD_BYTES // (1024 * 1024)} MB.")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            im = Image.open(io.BytesIO(data))
            if im.format not in FORMATS:
                raise ProfileError("That is not a PNG, JPEG, GIF or WebP image.")
            w, h = im.size
            if w * h > MAX_PIXELS or w < 1 or h < 1:
                raise ProfileError(f"That image is too big ({w}x{h} pixels); avatars can have at most "
                                   f"{MAX_PIXELS:,} pixels.")
            im.seek(0)
            im.load()
            im = ImageOps.exif_transpose(im)
            im = ImageOps.fit(im.convert("RGBA"), (AVATAR_SIZE, AVATAR_SIZE), Image.Resampling.LANCZOS)
        except ProfileError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ProfileError("That image is too big to be an avatar (it expands to too many pixels).") from None
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
            raise ProfileError("That file is not an image we can read (PNG, JPEG, GIF or WebP).") from None
    out = io.BytesIO()
    im.save(out, "PNG", optimize=True)  # a fresh PNG: no EXIF, no text chunks
    return out.getvalue()


def set_avatar(conn: sqlite3.Connection, user_id: int, data: bytes) -> str:
    """Check, convert and keep an uploaded avatar; returns its etag."""
    png = process_avatar(data)
    etag = hashlib.sha1(png).hexdigest()[:16]
    with transaction(conn):
        sql.set_avatar(conn, user_id, png, "image/png", etag, utcnow_iso())
        sql.bump(conn)
    return etag


def remove_avatar(conn: sqlite3.Connection, user_id: int) -> bool:
    """Back to the identicon."""
    with transaction(conn):
        gone = sql.delete_avatar(conn, user_id)
        sql.bump(conn)
    return gone


def avatar(conn: sqlite3.Connection, username: str) -> tuple[bytes, str, str] | None:
    """``(body, media type, etag)`` of a user's avatar (uploaded or identicon), None
    for an unknown name."""
    user = sql.user_by_name(conn, username)
    if user is None:
        return None
    row = sql.get_avatar(conn, user["id"])
    if row is not None:
        return bytes(row["image"]), row["media_type"], row["etag"]
    svg = identicon_svg(user["username"]).encode()
    return svg, "image/svg+xml", "id-" + hashlib.sha1(svg).hexdigest()[:12]


# ---------------------------------------------------------------- bio and settings

def render_bio(text: str) -> str:
    """Sanitised HTML for a bio: the comments' Markdown when the discussion area is
    there, else escaped paragraphs."""
    try:
        from paperwire.discuss import markdown
    except ImportError:
        markdown = None
    if markdown is not None:
        return markdown.render(text)
    from markupsafe import escape

    return "".join(f"<p>{escape(p)}</p>" for p in text.split("\n\n") if p.strip())


def get_settings(conn: sqlite3.Connection, user_id: int) -> dict:
    """``{"bio", "bio_html", "public_upvotes"}`` (defaults for a user who never saved)."""
    row = sql.get_profile(conn, user_id)
    if row is None:
        return {"bio": "", "bio_html": "", "public_upvotes": False}
    return {"bio": row["bio"], "bio_html": row["bio_html"], "public_upvotes": bool(row["public_upvotes"])}


def save_settings(conn: sqlite3.Connection, user_id: int, *, bio: str, public_upvotes: bool) -> None:
    """Store the bio (at most :data:`MAX_BIO` characters) and the upvotes setting."""
    bio = (bio or "").replace("\r\n", "\n").replace("\x00", "").strip()
    if len(bio) > MAX_BIO:
        raise ProfileError(f"A bio can be at most {MAX_BIO:,} characters (this one has {len(bio):,}).")
    with transaction(conn):
        sql.save_profile(conn, user_id, bio=bio, bio_html=render_bio(bio) if bio else "",
                         public_upvotes=public_upvotes, now=utcnow_iso())
        sql.bump(conn)


def profile(conn: sqlite3.Connection, username: str) -> dict | None:
    """Everything ``/u/NAME`` shows, or None for an unknown name."""
    user = sql.user_by_name(conn, username)
    if user is None:
        return None
    prefs = get_settings(conn, user["id"])
    comments: list[dict] = []
    try:
        from paperwire.store import discuss as discuss_sql

        comments = [c for c in discuss_sql.user_comments(conn, user["id"], 30)
                    if not c.get("deleted_at") and not c.get("hidden")]
    except (ImportError, sqlite3.OperationalError):
        comments = []
    from paperwire.accounts.admin import is_banned

    return {
        "username": user["username"],
        "joined": user["created_at"],
        "is_admin": bool(user["is_admin"]),
        "banned": is_banned(conn, user["id"]),
        "bio_html": prefs["bio_html"],
        "avatar_etag": sql.has_avatar(conn, user["id"]) or "id",
        "submitted": sql.submitted_papers(conn, user["username"]),
        "folders": sql.public_folders(conn, user["id"]),
        "comments": comments,
        "public_upvotes": prefs["public_upvotes"],
        "upvoted": sql.upvoted_papers(conn, user["id"]) if prefs["public_upvotes"] else [],
    }
