"""SQL for a reader's library: saved papers, notes, read state, tags, folders.

Every write here runs inside the caller's transaction (``paperwire.library`` opens
it) and the caller bumps ``user_revs`` in that same transaction with
:func:`bump_user_rev`, so a cached "For you" model keyed on the revision is never
stale. Upserts use ``ON CONFLICT ... DO NOTHING`` (SQLite and PostgreSQL), which
is what makes a re-run import or a repeated click change nothing.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Iterable, Sequence

from paperwire.model import utcnow_iso

_CHUNK = 500


def _chunks(values: Sequence, n: int = _CHUNK):
    for i in range(0, len(values), n):
        yield values[i : i + n]


def _marks(n: int) -> str:
    return ",".join("?" * n)


# ---------------------------------------------------------------- revision

def bump_user_rev(conn: sqlite3.Connection, user_id: int) -> None:
    """Increment the user's revision (the For-you model and page key on it)."""
    conn.execute(
        "INSERT INTO user_revs (user_id, rev) VALUES (?, 1) "
        "ON CONFLICT (user_id) DO UPDATE SET rev = user_revs.rev + 1",
        (user_id,),
    )


def user_rev(conn: sqlite3.Connection, user_id: int) -> int:
    """The user's current revision (0 before any library, feedback or follow write)."""
    row = conn.execute("SELECT rev FROM user_revs WHERE user_id=?", (user_id,)).fetchone()
    return int(row[0]) if row else 0


# ---------------------------------------------------------------- items

def saved_rowids(conn: sqlite3.Connection, user_id: int) -> list[int]:
    """Internal row ids of every paper in the user's library, oldest save first."""
    return [r[0] for r in conn.execute(
        "SELECT paper FROM library_items WHERE user_id=? ORDER BY saved_at, paper", (user_id,))]


def saved_among(conn: sqlite3.Connection, user_id: int, rowids: Sequence[int]) -> set[int]:
    """Which of the given papers the user has saved."""
    out: set[int] = set()
    for part in _chunks(list(rowids)):
        out.update(r[0] for r in conn.execute(
            f"SELECT paper FROM library_items WHERE user_id=? AND paper IN ({_marks(len(part))})",
            (user_id, *part)))
    return out


def insert_items(conn: sqlite3.Connection, user_id: int, rowids: Iterable[int], source: str,
                 now: str | None = None) -> int:
    """Save papers (already saved ones keep their date and note). Returns how many were new."""
    now = now or utcnow_iso()
    added = 0
    for rowid in rowids:
        cur = conn.execute(
            "INSERT INTO library_items (user_id, paper, saved_at, source) VALUES (?,?,?,?) "
            "ON CONFLICT (user_id, paper) DO NOTHING",
            (user_id, rowid, now, source),
        )
        added += cur.rowcount
    return added


def delete_items(conn: sqlite3.Connection, user_id: int, rowids: Iterable[int]) -> int:
    """Remove papers from the library (their folder links, tags and note go with them)."""
    removed = 0
    for rowid in rowids:
        removed += conn.execute("DELETE FROM library_items WHERE user_id=? AND paper=?", (user_id, rowid)).rowcount
    return removed


def get_item(conn: sqlite3.Connection, user_id: int, rowid: int) -> dict | None:
    row = conn.execute("SELECT * FROM library_items WHERE user_id=? AND paper=?", (user_id, rowid)).fetchone()
    return dict(row) if row else None


def update_note(conn: sqlite3.Connection, user_id: int, rowid: int, note: str) -> bool:
    cur = conn.execute("UPDATE library_items SET note=? WHERE user_id=? AND paper=? AND note<>?",
                       (note, user_id, rowid, note))
    return cur.rowcount > 0


def fill_empty_note(conn: sqlite3.Connection, user_id: int, rowid: int, note: str) -> bool:
    """Set the note only where there is none yet (imports never overwrite a reader's note)."""
    cur = conn.execute("UPDATE library_items SET note=? WHERE user_id=? AND paper=? AND note=''",
                       (note, user_id, rowid))
    return cur.rowcount > 0


def update_read(conn: sqlite3.Connection, user_id: int, rowid: int, read: bool, now: str | None = None) -> bool:
    if read:
        cur = conn.execute("UPDATE library_items SET read_at=? WHERE user_id=? AND paper=? AND read_at IS NULL",
                           (now or utcnow_iso(), user_id, rowid))
    else:
        cur = conn.execute("UPDATE library_items SET read_at=NULL WHERE user_id=? AND paper=? AND read_at IS NOT NULL",
                           (user_id, rowid))
    return cur.rowcount > 0


# ---------------------------------------------------------------- tags

def insert_tag(conn: sqlite3.Connection, user_id: int, rowid: int, tag: str) -> bool:
    cur = conn.execute("INSERT INTO library_tags (user_id, paper, tag) VALUES (?,?,?) "
                       "ON CONFLICT (user_id, paper, tag) DO NOTHING", (user_id, rowid, tag))
    return cur.rowcount > 0


def delete_tag(conn: sqlite3.Connection, user_id: int, rowid: int, tag: str) -> bool:
    cur = conn.execute("DELETE FROM library_tags WHERE user_id=? AND paper=? AND tag=?", (user_id, rowid, tag))
    return cur.rowcount > 0


def user_tags(conn: sqlite3.Connection, user_id: int) -> list[dict]:
    """Every tag of the user with how many papers carry it, by name."""
    return [{"tag": r[0], "count": r[1]} for r in conn.execute(
        "SELECT tag, COUNT(*) FROM library_tags WHERE user_id=? GROUP BY tag ORDER BY lower(tag), tag", (user_id,))]


def tags_of(conn: sqlite3.Connection, user_id: int, rowids: Sequence[int]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for part in _chunks(list(rowids)):
        for paper, tag in conn.execute(
                f"SELECT paper, tag FROM library_tags WHERE user_id=? AND paper IN ({_marks(len(part))}) "
                "ORDER BY lower(tag), tag", (user_id, *part)):
            out.setdefault(paper, []).append(tag)
    return out


# ---------------------------------------------------------------- folders

def insert_folder(conn: sqlite3.Connection, user_id: int, name: str, slug: str, now: str | None = None) -> int:
    cur = conn.execute("INSERT INTO library_folders (user_id, name, slug, created_at) VALUES (?,?,?,?)",
                       (user_id, name, slug, now or utcnow_iso()))
    return cur.lastrowid


def folder_slugs(conn: sqlite3.Connection, user_id: int) -> set[str]:
    return {r[0] for r in conn.execute("SELECT slug FROM library_folders WHERE user_id=?", (user_id,))}


def get_folder(conn: sqlite3.Connection, folder_id: int) -> dict | None:
    row = conn.execute("SELECT * FROM library_folders WHERE id=?", (folder_id,)).fetchone()
    return dict(row) if row else None


def find_folder(conn: sqlite3.Connection, user_id: int, ident: str) -> dict | None:
    """A folder of the user by slug, else by exact name, else by case-insensitive name."""
    for sql in ("SELECT * FROM library_folders WHERE user_id=? AND slug=?",
                "SELECT * FROM library_folders WHERE user_id=? AND name=? ORDER BY id",
                "SELECT * FROM library_folders WHERE user_id=? AND lower(name)=lower(?) ORDER BY id"):
        row = conn.execute(sql, (user_id, ident)).fetchone()
        if row:
            return dict(row)
    return None


def folder_by_token(conn: sqlite3.Connection, token: str) -> dict | None:
    row = conn.execute("SELECT * FROM library_folders WHERE share_token=?", (token,)).fetchone()
    return dict(row) if row else None


def list_folders(conn: sqlite3.Connection, user_id: int) -> list[dict]:
    """The user's folders with their paper counts, by name."""
    rows = conn.execute(
        "SELECT f.*, (SELECT COUNT(*) FROM library_folder_items i WHERE i.folder_id=f.id) AS count "
        "FROM library_folders f WHERE f.user_id=? ORDER BY lower(f.name), f.id", (user_id,))
    return [dict(r) for r in rows]


def update_folder(conn: sqlite3.Connection, folder_id: int, **values) -> bool:
    """Set ``name``, ``slug``, ``is_public`` or ``share_token`` of a folder."""
    allowed = {k: v for k, v in values.items() if k in ("name", "slug", "is_public", "share_token")}
    if not allowed:
        return False
    sets = ", ".join(f"{k}=?" for k in allowed)
    cur = conn.execute(f"UPDATE library_folders SET {sets} WHERE id=?", (*allowed.values(), folder_id))
    return cur.rowcount > 0


def delete_folder(conn: sqlite3.Connection, folder_id: int) -> bool:
    """Delete a folder; its papers stay in the library."""
    return conn.execute("DELETE FROM library_folders WHERE id=?", (folder_id,)).rowcount > 0


def insert_folder_item(conn: sqlite3.Connection, folder_id: int, user_id: int, rowid: int,
                       now: str | None = None) -> bool:
    cur = conn.execute("INSERT INTO library_folder_items (folder_id, user_id, paper, added_at) VALUES (?,?,?,?) "
                       "ON CONFLICT (folder_id, paper) DO NOTHING", (folder_id, user_id, rowid, now or utcnow_iso()))
    return cur.rowcount > 0


def delete_folder_item(conn: sqlite3.Connection, folder_id: int, rowid: int) -> bool:
    cur = conn.execute("DELETE FROM library_folder_items WHERE folder_id=? AND paper=?", (folder_id, rowid))
    return cur.rowcount > 0


def folders_of(conn: sqlite3.Connection, user_id: int, rowids: Sequence[int]) -> dict[int, list[dict]]:
    out: dict[int, list[dict]] = {}
    for part in _chunks(list(rowids)):
        for r in conn.execute(
                "SELECT i.paper, f.id, f.name, f.slug FROM library_folder_items i "
                "JOIN library_folders f ON f.id=i.folder_id "
                f"WHERE i.user_id=? AND i.paper IN ({_marks(len(part))}) ORDER BY lower(f.name), f.id",
                (user_id, *part)):
            out.setdefault(r[0], []).append({"id": r[1], "name": r[2], "slug": r[3]})
    return out


# ---------------------------------------------------------------- listing

SORTS = {
    "saved": "li.saved_at DESC, li.paper DESC",
    "saved_asc": "li.saved_at ASC, li.paper ASC",
    "published": "p.published DESC, li.paper DESC",
    "title": "lower(p.title) ASC, li.paper ASC",
}


def _like(text: str) -> str:
    return "%" + text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def list_items(conn: sqlite3.Connection, user_id: int, *, words: Sequence[str] = (), folder_id: int | None = None,
               tag: str | None = None, read: bool | None = None, sort: str = "saved",
               limit: int | None = 50, offset: int = 0) -> tuple[list[dict], int]:
    """(rows, total) of the user's saved papers, joined with the paper row.

    ``words`` must all occur (case-insensitive substring) in the title, abstract,
    authors, note or a tag: a library is small, so a scan of it is fast and finds
    what the reader typed, stems and all.
    """
    where = ["li.user_id=?"]
    args: list = [user_id]
    for w in words:
        pat = _like(w)
        where.append(
            "(lower(p.title) LIKE ? ESCAPE '\\' OR lower(p.abstract) LIKE ? ESCAPE '\\' "
            "OR lower(p.authors) LIKE ? ESCAPE '\\' OR lower(li.note) LIKE ? ESCAPE '\\' "
            "OR lower(p.paper_id) LIKE ? ESCAPE '\\' "
            "OR EXISTS (SELECT 1 FROM library_tags t WHERE t.user_id=li.user_id AND t.paper=li.paper "
            "AND lower(t.tag) LIKE ? ESCAPE '\\'))")
        args += [pat] * 6
    if folder_id is not None:
        where.append("EXISTS (SELECT 1 FROM library_folder_items fi WHERE fi.folder_id=? AND fi.paper=li.paper)")
        args.append(folder_id)
    if tag is not None:
        where.append("EXISTS (SELECT 1 FROM library_tags t WHERE t.user_id=li.user_id AND t.paper=li.paper AND t.tag=?)")
        args.append(tag)
    if read is True:
        where.append("li.read_at IS NOT NULL")
    elif read is False:
        where.append("li.read_at IS NULL")
    cond = " AND ".join(where)
    total = conn.execute(f"SELECT COUNT(*) FROM library_items li JOIN papers p ON p.id=li.paper WHERE {cond}",
                         args).fetchone()[0]
    sql = (f"SELECT p.*, li.saved_at AS lib_saved_at, li.read_at AS lib_read_at, li.note AS lib_note, "
           f"li.source AS lib_source FROM library_items li JOIN papers p ON p.id=li.paper "
           f"WHERE {cond} ORDER BY {SORTS.get(sort, SORTS['saved'])}")
    page_args = list(args)
    if limit is not None:
        sql += " LIMIT ? OFFSET ?"
        page_args += [int(limit), int(offset)]
    return conn.execute(sql, page_args).fetchall(), int(total)


def folder_papers(conn: sqlite3.Connection, folder_id: int, limit: int = 500) -> list[sqlite3.Row]:
    """Paper rows of a folder, newest addition first (public pages and their Atom feed)."""
    return conn.execute(
        "SELECT p.*, i.added_at AS lib_added_at FROM library_folder_items i JOIN papers p ON p.id=i.paper "
        "WHERE i.folder_id=? AND p.hidden=0 ORDER BY i.added_at DESC, i.paper DESC LIMIT ?",
        (folder_id, limit)).fetchall()


# ---------------------------------------------------------------- matching (imports)

def rowids_by_arxiv(conn: sqlite3.Connection, arxiv_ids: Sequence[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for part in _chunks(list(dict.fromkeys(arxiv_ids))):
        out.update((r[0], r[1]) for r in conn.execute(
            f"SELECT arxiv_id, id FROM papers WHERE arxiv_id IN ({_marks(len(part))})", part))
    return out


def rowids_by_doi(conn: sqlite3.Connection, dois: Sequence[str]) -> dict[str, int]:
    """Lower-cased DOI -> row id (first paper by row id where several share a DOI)."""
    out: dict[str, int] = {}
    for part in _chunks(list(dict.fromkeys(d.lower() for d in dois))):
        for doi, rowid in conn.execute(
                f"SELECT lower(doi), id FROM papers WHERE lower(doi) IN ({_marks(len(part))}) ORDER BY id", part):
            out.setdefault(doi, rowid)
    return out


def rowids_by_title_norm(conn: sqlite3.Connection, norms: Sequence[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for part in _chunks(list(dict.fromkeys(n for n in norms if n))):
        for norm, rowid in conn.execute(
                f"SELECT title_norm, id FROM papers WHERE title_norm IN ({_marks(len(part))}) ORDER BY id", part):
            out.setdefault(norm, rowid)
    return out


def rowid_by_paper_id(conn: sqlite3.Connection, paper_id: str) -> int | None:
    row = conn.execute("SELECT id FROM papers WHERE paper_id=?", (paper_id,)).fetchone()
    return row[0] if row else None


# ---------------------------------------------------------------- pending (imported, not here yet)

def insert_pending(conn: sqlite3.Connection, user_id: int, arxiv_id: str, source: str, tags: list[str],
                   note: str, folder_id: int | None, now: str | None = None) -> bool:
    cur = conn.execute(
        "INSERT INTO library_pending (user_id, arxiv_id, source, tags, note, folder_id, created_at) "
        "VALUES (?,?,?,?,?,?,?) ON CONFLICT (user_id, arxiv_id) DO NOTHING",
        (user_id, arxiv_id, source, json.dumps(tags, ensure_ascii=False), note, folder_id, now or utcnow_iso()))
    return cur.rowcount > 0


def arrived_pending(conn: sqlite3.Connection, user_id: int) -> list[dict]:
    """Pending entries of the user whose paper is in the store now (with its row id)."""
    rows = conn.execute(
        "SELECT lp.*, p.id AS rowid FROM library_pending lp JOIN papers p ON p.arxiv_id=lp.arxiv_id "
        "WHERE lp.user_id=?", (user_id,)).fetchall()
    out = []
    for r in rows:
        d = dict(r)
        d["tags"] = json.loads(d["tags"])
        out.append(d)
    return out


def delete_pending(conn: sqlite3.Connection, user_id: int, arxiv_id: str) -> None:
    conn.execute("DELETE FROM library_pending WHERE user_id=? AND arxiv_id=?", (user_id, arxiv_id))


def pending_rows(conn: sqlite3.Connection, user_id: int) -> list[dict]:
    return [dict(r) for r in conn.execute(
        "SELECT arxiv_id, source, tags, note, created_at FROM library_pending WHERE user_id=? ORDER BY arxiv_id",
        (user_id,))]


# ---------------------------------------------------------------- a user's data

def library_dump(conn: sqlite3.Connection, user_id: int) -> dict:
    """Everything the library stores for a user, as plain rows (for "Download my data")."""
    items = [dict(r) for r in conn.execute(
        "SELECT p.paper_id, p.title, li.saved_at, li.read_at, li.note, li.source FROM library_items li "
        "JOIN papers p ON p.id=li.paper WHERE li.user_id=? ORDER BY li.saved_at, li.paper", (user_id,))]
    tags = [dict(r) for r in conn.execute(
        "SELECT p.paper_id, t.tag FROM library_tags t JOIN papers p ON p.id=t.paper WHERE t.user_id=? "
        "ORDER BY p.paper_id, t.tag", (user_id,))]
    folders = [dict(r) for r in conn.execute(
        "SELECT id, name, slug, is_public, share_token, created_at FROM library_folders WHERE user_id=? ORDER BY id",
        (user_id,))]
    links = [dict(r) for r in conn.execute(
        "SELECT i.folder_id, p.paper_id, i.added_at FROM library_folder_items i JOIN papers p ON p.id=i.paper "
        "WHERE i.user_id=? ORDER BY i.folder_id, i.added_at", (user_id,))]
    return {"items": items, "tags": tags, "folders": folders, "folder_items": links,
            "pending_imports": pending_rows(conn, user_id)}


def account_row(conn: sqlite3.Connection, user_id: int) -> dict | None:
    row = conn.execute("SELECT id, username, email, is_admin, created_at FROM users WHERE id=?", (user_id,)).fetchone()
    return dict(row) if row else None


def user_vote_rows(conn: sqlite3.Connection, user_id: int) -> list[dict]:
    return [dict(r) for r in conn.execute(
        "SELECT p.paper_id, v.created_at FROM votes v JOIN papers p ON p.id=v.paper WHERE v.user_id=? "
        "ORDER BY v.created_at", (user_id,))]


def feedback_rows(conn: sqlite3.Connection, user_id: int) -> dict:
    """The user's feedback, follows and private-feed tokens (when made; hashes are not exported)."""
    feedback = [dict(r) for r in conn.execute(
        "SELECT p.paper_id, f.kind, f.created_at FROM feedback f JOIN papers p ON p.id=f.paper WHERE f.user_id=? "
        "ORDER BY f.created_at, p.paper_id", (user_id,))]
    follows = [dict(r) for r in conn.execute(
        "SELECT kind, value, label, created_at FROM follows WHERE user_id=? ORDER BY kind, value", (user_id,))]
    tokens = [dict(r) for r in conn.execute(
        "SELECT purpose, created_at FROM feed_tokens WHERE user_id=? ORDER BY created_at", (user_id,))]
    return {"feedback": feedback, "follows": follows, "feed_tokens": tokens}


def delete_user(conn: sqlite3.Connection, user_id: int) -> bool:
    """Delete a user and everything that is theirs, in the caller's transaction.

    Their upvotes are taken back first (``papers.local_upvotes`` counts vote rows);
    their digest subscriptions go too, so no more mail reaches a deleted account.
    The rest (sessions, library, feedback, follows, tokens) cascades from ``users``.
    """
    conn.execute(
        "UPDATE papers SET local_upvotes = local_upvotes - 1 "
        "WHERE id IN (SELECT paper FROM votes WHERE user_id=?) AND local_upvotes > 0", (user_id,))
    conn.execute("DELETE FROM votes WHERE user_id=?", (user_id,))
    conn.execute("DELETE FROM digest_subscriptions WHERE user_id=?", (user_id,))
    conn.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key='web_rev'")
    return conn.execute("DELETE FROM users WHERE id=?", (user_id,)).rowcount > 0
