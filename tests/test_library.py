"""The library's logic on a real SQLite file with the demo corpus: saving, notes, tags,
folders, listing, user revisions, import (BibTeX, RIS, CSL-JSON, id lists), export,
the user's data and deleting an account."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from paperwire import library as lib
from paperwire.library import exporting, importing, userdata
from paperwire.library.parsing import parse_text
from paperwire.store import accounts
from paperwire.store import library as store
from paperwire.store.db import connect
from web_support import demo_db

FIX = Path(__file__).resolve().parent / "fixtures" / "library"


@pytest.fixture
def conn(tmp_path):
    c = connect(demo_db(tmp_path))
    yield c
    c.close()


@pytest.fixture
def uid(conn):
    return accounts.create_user(conn, "alice", "alice@example.org", "x")


def state(conn, uid) -> dict:
    """The library as a comparable value (everything but timestamps)."""
    res = lib.list_library(conn, uid, sort="title", limit=None)
    return {p["paper_id"]: (p["note"], tuple(p["tags"]), tuple(f["name"] for f in p["folders"]), p["read"])
            for p in res["papers"]}


def test_save_unsave_idempotent_and_rev(conn, uid):
    assert store.user_rev(conn, uid) == 0
    assert lib.save(conn, uid, "0704.0002") is True
    rev = store.user_rev(conn, uid)
    assert rev == 1
    assert lib.save(conn, uid, "arXiv:0704.0002v1") is False  # same paper, any id form
    assert store.user_rev(conn, uid) == rev  # nothing changed, nothing bumped
    assert lib.saved_rowids(conn, uid) == [lib.resolve(conn, "0704.0002")["id"]]
    assert lib.unsave(conn, uid, "0704.0002") is True
    assert store.user_rev(conn, uid) == rev + 1
    assert lib.saved_rowids(conn, uid) == []
    with pytest.raises(lib.NotFound):
        lib.save(conn, uid, "9999.99999")


def test_note_read_tags(conn, uid):
    lib.save(conn, uid, "0704.0001")
    with pytest.raises(lib.NotFound):
        lib.set_note(conn, uid, "0704.0002", "not saved")
    assert lib.set_note(conn, uid, "0704.0001", "  <b>mine</b>\x00 ") == "<b>mine</b>"
    with pytest.raises(lib.LibraryError):
        lib.set_note(conn, uid, "0704.0001", "x" * (lib.MAX_NOTE + 1))
    assert lib.add_tags(conn, uid, "0704.0001", ["qcd, to read", "qcd"]) == ["qcd", "to read"]
    with pytest.raises(lib.LibraryError):
        lib.clean_tag("   ")
    assert lib.remove_tag(conn, uid, "0704.0001", "qcd") == ["to read"]
    lib.set_read(conn, uid, "0704.0001", True)
    p = lib.list_library(conn, uid)["papers"][0]
    assert (p["note"], p["tags"], p["read"]) == ("<b>mine</b>", ["to read"], True)
    assert lib.list_library(conn, uid, read=False)["total"] == 0
    lib.set_read(conn, uid, "0704.0001", False)
    assert lib.list_library(conn, uid, read=False)["total"] == 1


def test_folders_search_filter_sort(conn, uid):
    for pid in ("0704.0001", "0704.0002", "0704.0004", "0704.0006"):
        lib.save(conn, uid, pid)
    f = lib.create_folder(conn, uid, "Reading group: graphs")
    g = lib.create_folder(conn, uid, "Reading group: graphs")  # same name, distinct slug
    assert (f["slug"], g["slug"]) == ("reading-group-graphs", "reading-group-graphs-2")
    lib.add_to_folder(conn, uid, f["id"], "0704.0002")
    lib.add_to_folder(conn, uid, f["slug"], "0704.0004")
    lib.add_to_folder(conn, uid, g["id"], "0704.0002")  # a paper in several folders
    lib.add_to_folder(conn, uid, g["id"], "0704.0007")  # saves it too
    assert len(lib.saved_rowids(conn, uid)) == 5
    in_f = lib.list_library(conn, uid, folder_ident=f["slug"], sort="title")["papers"]
    assert [p["paper_id"] for p in in_f] == ["0704.0004", "0704.0002"]  # "A determinant" < "Sparsity"
    assert {x["name"] for x in in_f[1]["folders"]} == {"Reading group: graphs"}
    assert len(in_f[1]["folders"]) == 2
    lib.add_tags(conn, uid, "0704.0006", ["cold atoms"])
    lib.set_note(conn, uid, "0704.0001", "diphoton background for the Higgs")
    assert [p["paper_id"] for p in lib.list_library(conn, uid, q="higgs")["papers"]] == ["0704.0001"]
    assert [p["paper_id"] for p in lib.list_library(conn, uid, q="COLD")["papers"]] == ["0704.0006"]
    assert [p["paper_id"] for p in lib.list_library(conn, uid, q="Streinu graph")["papers"]] == ["0704.0002"]
    assert lib.list_library(conn, uid, q="100%_")["total"] == 0  # LIKE wildcards are literal
    assert [p["paper_id"] for p in lib.list_library(conn, uid, tag="cold atoms")["papers"]] == ["0704.0006"]
    titles = [p["title"] for p in lib.list_library(conn, uid, sort="title")["papers"]]
    assert titles == sorted(titles, key=str.lower)
    pub = [p["published"] for p in lib.list_library(conn, uid, sort="published")["papers"]]
    assert pub == sorted(pub, reverse=True)
    renamed = lib.rename_folder(conn, uid, f["id"], "Graphs")
    assert renamed["slug"] == "graphs"
    lib.remove_from_folder(conn, uid, "graphs", "0704.0004")
    assert lib.list_library(conn, uid, folder_ident="graphs")["total"] == 1
    lib.delete_folder(conn, uid, "graphs")
    assert len(lib.saved_rowids(conn, uid)) == 5  # papers stay saved
    with pytest.raises(lib.NotFound):
        lib.folder(conn, uid, "graphs")
    # Unsaving removes the paper from every folder (FK cascade).
    lib.unsave(conn, uid, "0704.0002")
    assert [p["paper_id"] for p in lib.list_library(conn, uid, folder_ident=g["id"])["papers"]] == ["0704.0007"]


def test_other_users_folder_is_not_found_and_sharing(conn, uid):
    bob = accounts.create_user(conn, "bob", "bob@example.org", "x")
    f = lib.create_folder(conn, uid, "Secret")
    lib.add_to_folder(conn, uid, f["id"], "0704.0001")
    with pytest.raises(lib.NotFound):
        lib.folder(conn, bob, f["id"])
    with pytest.raises(lib.NotFound):
        lib.add_to_folder(conn, bob, f["id"], "0704.0002")
    shared = lib.set_folder_public(conn, uid, f["id"], True)
    token = shared["share_token"]
    assert len(token) >= 20
    folder, papers = lib.public_folder(conn, token)
    assert folder["name"] == "Secret" and [p["paper_id"] for p in papers] == ["0704.0001"]
    lib.set_folder_public(conn, uid, f["id"], False)
    with pytest.raises(lib.NotFound):
        lib.public_folder(conn, token)
    assert lib.set_folder_public(conn, uid, f["id"], True)["share_token"] == token  # the old link revives


def test_import_zotero_bibtex(conn, uid):
    report = importing.import_file(conn, uid, FIX / "zotero.bib")
    assert report.format == "bibtex"
    assert report.entries == 8
    assert (report.matched, report.added) == (5, 5)
    assert [m["line"] for m in report.malformed] == [69]
    assert report.malformed[0]["key"] == "broken_entry_2007"
    assert {u["key"] for u in report.unmatched} == {"doe_future_2024", "knuth_art_1997"}
    assert report.queued == ["2401.77777"]
    got = state(conn, uid)
    # eprint (0704.0006), arxiv.org/abs URL (0704.0002), DOI (0704.0001, 0704.0007), title (0704.0004)
    assert set(got) == {"0704.0001", "0704.0002", "0704.0004", "0704.0006", "0704.0007"}
    assert got["0704.0001"][1] == ("diphoton", "reading-group")
    assert got["0704.0002"][0] == "Comment: To appear in Graphs and Combinatorics"
    pending = conn.execute("SELECT arxiv_id, user_id FROM submissions WHERE status='queued'").fetchall()
    assert [tuple(r) for r in pending] == [("2401.77777", uid)]
    rev = store.user_rev(conn, uid)
    again = importing.import_file(conn, uid, FIX / "zotero.bib")
    assert (again.added, again.already) == (0, 5)
    assert state(conn, uid) == got
    assert store.user_rev(conn, uid) == rev  # nothing changed
    assert conn.execute("SELECT COUNT(*) FROM submissions").fetchone()[0] == 1


def test_import_ris_keeps_readers_note(conn, uid):
    lib.save(conn, uid, "0704.0008")
    lib.set_note(conn, uid, "0704.0008", "my own note")
    report = importing.import_file(conn, uid, FIX / "zotero.ris", folder="From Zotero")
    assert report.format == "ris"
    assert [(m["line"], m["key"]) for m in report.malformed] == [(34, "mendeley-harvey2007")]
    assert {(u["line"], u["key"]) for u in report.unmatched} == {(50, None), (57, "bishop2006")}
    assert report.queued == ["2402.88888"]
    got = state(conn, uid)
    assert set(got) == {"0704.0002", "0704.0008", "0704.0016"}
    assert got["0704.0008"][0] == "my own note"  # an import never overwrites a note
    assert got["0704.0008"][1] == ("shock physics", "to-read")
    assert got["0704.0002"][0] == ""  # Zotero's "arXiv:... [math]" N1 is no note
    assert all(folders == ("From Zotero",) for _, _, folders, _ in got.values())
    importing.import_file(conn, uid, FIX / "zotero.ris", folder="From Zotero")
    assert state(conn, uid) == got
    assert len(lib.folders(conn, uid)) == 1


def test_import_csl_json_and_id_list(conn, uid, tmp_path):
    csl = tmp_path / "lib.json"
    csl.write_text(json.dumps([
        {"id": "http://zotero.org/users/1/items/ABC", "type": "article", "title": "Sparsity-certifying Graph Decompositions",
         "URL": "http://arxiv.org/abs/0704.0002", "number": "arXiv:0704.0002", "keyword": "graphs, pebble games"},
        {"id": "x2", "type": "article-journal", "title": "Something else", "DOI": "10.1103/PHYSREVD.76.013009"},
        {"id": "x3", "type": "book", "author": [{"family": "Nobody"}]},
        "not an object",
    ], indent=2))
    r = importing.import_file(conn, uid, csl)
    assert r.format == "csl-json" and r.matched == 2  # the DOI matches case-insensitively
    assert [m["key"] for m in r.malformed] == ["x3", None]
    assert r.malformed[0]["line"] == 16  # where the item's object starts
    assert state(conn, uid)["0704.0002"][1] == ("graphs", "pebble games")
    ids = tmp_path / "ids.txt"
    ids.write_text("# my reading list\n0704.0003\nhttps://arxiv.org/abs/0704.0005v2\n"
                   "https://doi.org/10.1103/PhysRevA.75.043613\nnot an id\n2409.99999\n")
    r = importing.import_file(conn, uid, ids)
    assert r.format == "ids"
    assert (r.matched, r.queued, [m["line"] for m in r.malformed]) == (3, ["2409.99999"], [5])
    assert {"0704.0003", "0704.0005", "0704.0006"} <= set(state(conn, uid))


@pytest.mark.parametrize("content, message", [
    (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8, "binary"),
    (b"Dear Sir or Madam,\nplease find attached my thesis.\nRegards\n", "not a bibliography"),
    (b"   \n\n", "empty"),
    (b"[1, 2", "not valid JSON"),
    (b'{"hello": "world"}', "not CSL-JSON"),
])
def test_refused_files_write_nothing(conn, uid, tmp_path, content, message):
    path = tmp_path / "lib.bib"
    path.write_bytes(content)
    before = (store.user_rev(conn, uid), conn.execute("SELECT COUNT(*) FROM submissions").fetchone()[0])
    with pytest.raises(importing.ImportRefused) as exc:
        importing.import_file(conn, uid, path, folder="Imported")
    assert message in str(exc.value) and "\n" not in str(exc.value) and "lib.bib" in str(exc.value)
    assert lib.saved_rowids(conn, uid) == [] and lib.folders(conn, uid) == []
    assert (store.user_rev(conn, uid), conn.execute("SELECT COUNT(*) FROM submissions").fetchone()[0]) == before


def test_size_cap(conn, uid, tmp_path):
    path = tmp_path / "big.txt"
    path.write_text("0704.0001\n" * 2000)
    with pytest.raises(importing.ImportRefused, match="over the"):
        importing.import_file(conn, uid, path, max_bytes=10_000)
    assert lib.saved_rowids(conn, uid) == []


def test_bibtex_parsing_details():
    fmt, entries, bad = parse_text(
        "@article{a, title={{\\\"U}ber {G}raphs}, journal={arXiv preprint arXiv:0704.0002}}\n"
        "@misc{b, title={X}, eprint={math/0309136v2}, archivePrefix={arXiv}}\n"
        "@misc{c, title={Y}, eprint={1234.5678}, archivePrefix={HAL}}\n"
        "@misc{a, title={dup}}\n")
    assert fmt == "bibtex"
    assert [(e.key, e.arxiv_id) for e in entries] == [("a", "0704.0002"), ("b", "math/0309136"), ("c", None)]
    assert entries[0].title == "Uber Graphs"
    assert len(bad) == 1 and "duplicate" in bad[0].message and bad[0].line == 4


def test_export_round_trip(conn, uid, tmp_path):
    importing.import_file(conn, uid, FIX / "zotero.bib")
    lib.set_note(conn, uid, "0704.0006", "50% {braces} & $math$\nsecond line")
    lib.add_tags(conn, uid, "0704.0006", ["snake_case & 100%", "c#"])
    f = lib.create_folder(conn, uid, "Two")
    lib.add_to_folder(conn, uid, f["id"], "0704.0006")
    lib.add_to_folder(conn, uid, f["id"], "0704.0002")
    before = state(conn, uid)
    bob = accounts.create_user(conn, "bob", "bob@example.org", "x")
    for fmt in exporting.FORMATS:
        text = exporting.export_library(conn, uid, fmt)
        path = tmp_path / f"export.{fmt}"
        path.write_text(text)
        r = importing.import_file(conn, bob, path)
        assert r.format == fmt and r.malformed == [] and r.unmatched == []
        assert r.matched == 5
        got = state(conn, bob)
        assert set(got) == set(before)
        assert {k: v[1] for k, v in got.items()} == {k: v[1] for k, v in before.items()}  # tags survive
        for pid in got:
            lib.unsave(conn, bob, pid)
    import bibtexparser

    bib = bibtexparser.parse_string(exporting.export_library(conn, uid, "bibtex", folder="two"))
    assert len(bib.entries) == 2 and not bib.failed_blocks
    with pytest.raises(lib.NotFound):
        exporting.export_library(conn, uid, "ris", folder="no such folder")


def test_user_data_and_delete_account(conn, uid):
    bob = accounts.create_user(conn, "bob", "bob@example.org", "x")
    lib.save(conn, uid, "0704.0001")
    lib.save(conn, bob, "0704.0001")
    lib.add_tags(conn, uid, "0704.0001", ["t"])
    f = lib.create_folder(conn, uid, "F")
    lib.add_to_folder(conn, uid, f["id"], "0704.0001")
    rowid = lib.resolve(conn, "0704.0001")["id"]
    accounts.set_vote(conn, uid, rowid, True)
    conn.execute("INSERT INTO feedback (user_id, paper, kind, created_at) VALUES (?, ?, 'not_interested', 'now')",
                 (uid, lib.resolve(conn, "0704.0003")["id"]))
    conn.execute("INSERT INTO follows (user_id, kind, value, created_at) VALUES (?, 'category', 'hep-ph', 'now')", (uid,))
    from paperwire import recommend

    feed_token = recommend.new_feed_token(conn, uid)
    bob_token = recommend.new_feed_token(conn, bob)
    data = userdata.export_user_data(conn, uid)
    assert data["for_you"]["private_feed_active"] is True and feed_token not in json.dumps(data)
    json.dumps(data)  # JSON-able
    # The recommend area may register a richer "feedback" section; either way the rows are in.
    dumped = json.dumps(data)
    assert "0704.0003" in json.dumps(data["feedback"]) and "not_interested" in dumped and "hep-ph" in dumped
    assert data["account"]["username"] == "alice" and "password_hash" not in data["account"]
    assert [i["paper_id"] for i in data["library"]["items"]] == ["0704.0001"]
    assert data["library"]["tags"] == [{"paper_id": "0704.0001", "tag": "t"}]
    assert data["votes"][0]["paper_id"] == "0704.0001"
    userdata.register_section("extra", lambda c, u: {"user": u})
    try:
        assert userdata.export_user_data(conn, uid)["extra"] == {"user": uid}
    finally:
        userdata._SECTIONS.pop("extra")
    votes_before = conn.execute("SELECT local_upvotes FROM papers WHERE id=?", (rowid,)).fetchone()[0]
    assert userdata.delete_account(conn, uid)
    assert accounts.get_user(conn, uid) is None
    for table in ("library_items", "library_tags", "library_folders", "library_folder_items", "user_revs", "votes",
                  "feedback", "follows", "sessions", "library_pending", "feed_tokens"):
        assert conn.execute(f"SELECT COUNT(*) FROM {table} WHERE user_id=?", (uid,)).fetchone()[0] == 0, table
    assert conn.execute("SELECT local_upvotes FROM papers WHERE id=?", (rowid,)).fetchone()[0] == votes_before - 1
    assert recommend.user_for_feed_token(conn, feed_token) is None  # the private feed URL is dead
    assert lib.saved_rowids(conn, bob) == [rowid]  # other readers keep theirs
    assert recommend.user_for_feed_token(conn, bob_token) == bob
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_queued_imports_join_the_library_when_harvested(conn, uid, tmp_path):
    from paperwire.ingest import import_records
    from paperwire.model import PaperRecord

    path = tmp_path / "ids.bib"
    path.write_text("@misc{later, title={Arrives Later}, eprint={2401.77777}, archivePrefix={arXiv}, "
                    "keywords={soon}, annote={read first}}\n@misc{here, title={x}, eprint={0704.0001}}\n")
    r = importing.import_file(conn, uid, path, folder="Inbox")
    assert r.queued == ["2401.77777"] and set(state(conn, uid)) == {"0704.0001"}
    importing.import_file(conn, uid, path, folder="Inbox")  # a rerun queues nothing twice
    assert conn.execute("SELECT COUNT(*) FROM library_pending").fetchone()[0] == 1
    assert userdata.export_user_data(conn, uid)["library"]["pending_imports"][0]["arxiv_id"] == "2401.77777"
    import_records(conn, [PaperRecord(title="Arrives Later", abstract="A", source="test", arxiv_id="2401.77777",
                                      published="2024-01-02T00:00:00Z")])
    rev = store.user_rev(conn, uid)
    got = state(conn, uid)
    assert got["2401.77777"] == ("read first", ("soon",), ("Inbox",), False)
    assert store.user_rev(conn, uid) == rev + 1
    assert conn.execute("SELECT COUNT(*) FROM library_pending").fetchone()[0] == 0
    assert state(conn, uid) == got and store.user_rev(conn, uid) == rev + 1  # once only


def test_match_order_is_arxiv_id_then_doi_then_title(conn, uid, tmp_path):
    """Each entry names three different papers: the arXiv id wins over the DOI, and the DOI
    over the title (a swapped order would save other papers)."""
    csl = tmp_path / "order.json"
    csl.write_text(json.dumps([
        {"id": "a", "type": "article", "URL": "http://arxiv.org/abs/0704.0002",
         "DOI": "10.1103/PhysRevD.76.013009", "title": "Sparsity-certifying Graph Decompositions"},
        {"id": "b", "type": "article", "DOI": "10.1103/PhysRevD.76.013009",
         "title": "Sparsity-certifying Graph Decompositions"},
    ]))
    first = json.loads(csl.read_text())[:1]
    one = tmp_path / "one.json"
    one.write_text(json.dumps(first))
    r = importing.import_file(conn, uid, one)
    assert r.matched == 1 and set(state(conn, uid)) == {"0704.0002"}  # not 0704.0001 by its DOI
    r = importing.import_file(conn, uid, csl)
    assert r.matched == 2 and set(state(conn, uid)) == {"0704.0002", "0704.0001"}  # b: the DOI, not the title
