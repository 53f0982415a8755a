"""Hostile import input (issue 10): gzip bombs, huge fields, script URLs, broken or
binary lines. Each is a ``file:line`` skip (or, with --strict, an abort with nothing
written), never a crash, and memory stays flat."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from paperwire.ingest import StrictImportError
from paperwire.model import FIELD_LIMITS, PaperRecord, safe_url
from paperwire.sources import detect_format, import_files
from paperwire.sources.base import MAX_LINE_BYTES, UnreadableFile
from paperwire.store import papers as store

ROOT = Path(__file__).resolve().parent.parent


def snapshot_line(i: int, **over) -> str:
    rec = {"id": f"2401.{i:05d}", "title": f"Paper number {i}", "abstract": "An abstract. " * 5,
           "authors": "A. Author", "categories": "cs.LG",
           "versions": [{"version": "v1", "created": "Mon, 1 Jan 2024 10:00:00 GMT"}],
           "update_date": "2024-01-02", "authors_parsed": [["Author", "A.", ""]]}
    rec.update(over)
    return json.dumps(rec)


def hf_entry(pid: str, **paper) -> dict:
    return {"paper": {"id": pid, "title": f"Paper {pid}", "summary": "A summary of the paper.",
                      "authors": [{"name": "A. Author"}], "publishedAt": "2024-03-11T12:00:02.000Z",
                      "upvotes": 3, **paper},
            "publishedAt": "2024-03-12T02:40:10.000Z", "numComments": 1}


def errors(report) -> list[str]:
    return [str(e) for e in report.errors]


# ------------------------------------------------------------------ gzip bombs

BOMB_NULS = 256 * 2**20  # 256 MiB of NULs on one line: ~250 KB of gzip

_CHILD = """
import json, sys
def hwm_kib():
    return int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1])
from paperwire.sources import import_files
from paperwire.store.db import connect
conn = connect(sys.argv[1])
before = hwm_kib()
report = import_files(conn, [sys.argv[2]], progress=False)
print(json.dumps({"before": before, "after": hwm_kib(), "report": report.to_dict()}))
"""


def write_bomb(path: Path, nuls: int = BOMB_NULS) -> Path:
    """A gzipped JSON-lines file: a good line, one huge line of NULs, a good line."""
    with gzip.open(path, "wb", compresslevel=1) as gz:
        gz.write((snapshot_line(1) + "\n").encode())
        block = bytes(2**20)
        for _ in range(nuls // len(block)):
            gz.write(block)
        gz.write(b"\n" + (snapshot_line(3) + "\n").encode())
    return path


def test_gzip_bomb_line_is_skipped_in_flat_memory(tmp_path):
    bomb = write_bomb(tmp_path / "bomb.jsonl.gz")
    assert bomb.stat().st_size < 2 * 2**20  # small on disk ...
    out = subprocess.run([sys.executable, "-c", _CHILD, str(tmp_path / "b.db"), str(bomb)],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    rep = got["report"]
    assert (rep["added"], rep["skipped"]) == (2, 1)
    assert rep["errors"] == [f"{bomb}:2: line too long ({BOMB_NULS + 1:,} bytes; the limit is {MAX_LINE_BYTES:,})"]
    # ... 256 MiB when unpacked; the importer's peak memory grew by a few line buffers at most.
    growth_mib = (got["after"] - got["before"]) / 1024
    assert growth_mib < 3 * MAX_LINE_BYTES / 2**20 + 16, growth_mib


def test_gzip_bomb_under_strict_aborts_with_nothing_written(conn, tmp_path):
    bomb = write_bomb(tmp_path / "bomb.jsonl.gz", nuls=MAX_LINE_BYTES + 2**20)
    with pytest.raises(StrictImportError, match=rf"{bomb}:2: line too long"):
        import_files(conn, [bomb], strict=True, progress=False)
    assert store.count_papers(conn) == 0


def test_over_long_lines_in_csv_and_in_the_middle_of_a_record(conn, tmp_path):
    header = "id,title,abstract,versions,update_date\n"
    good = "704.0001,Good title,An abstract,\"[{'version': 'v1', 'created': 'Mon, 2 Apr 2007 19:18:42 GMT'}]\",5/13/2015\n"
    long_line = "704.0002,Long," + "x" * (MAX_LINE_BYTES + 10) + ",[],5/13/2015\n"
    # A quoted field over three lines whose middle line is over-long: that record goes.
    spanning = '704.0003,Spanning,"first line\n' + "y" * (MAX_LINE_BYTES + 10) + '\nlast line",[],5/13/2015\n'
    last = good.replace("704.0001,Good title", "704.0004,Last title")
    path = tmp_path / "snap.csv"
    path.write_text(header + good + long_line + spanning + last)
    report = import_files(conn, [path], progress=False)
    assert (report.added, report.skipped) == (2, 2), errors(report)
    assert errors(report)[0].startswith(f"{path}:3: line too long (")
    assert errors(report)[1].startswith(f"{path}:4: line 5: line too long (")
    assert store.get_paper(conn, "0704.0004")["title"] == "Last title"


# ------------------------------------------------------------------ field sizes

def test_over_long_fields_are_skipped_with_file_and_line(conn, tmp_path):
    big_title = "t" * 3_000_000  # under the line limit, far over the title limit
    lines = [
        snapshot_line(1),
        snapshot_line(2, title=big_title),
        snapshot_line(3, abstract="word " * 20_000),
        snapshot_line(4, comments="c" * 10_000),
        snapshot_line(5, authors_parsed=[["Name", str(i), ""] for i in range(25_000)]),
        snapshot_line(6, categories="cs.LG " + "x" * 100),
        snapshot_line(7, title="Wrapped\n   " * 200),  # long only because of wrapping: kept
        snapshot_line(8, versions=[{"version": "v" + "9" * 30, "created": "Mon, 1 Jan 2024 10:00:00 GMT"}]),
        snapshot_line(9, title=["not", "text"]),
        snapshot_line(10, categories=["cs.LG"]),
        "[" * 100_000 + "]" * 100_000,
    ]
    path = tmp_path / "big.jsonl"
    path.write_text("\n".join(lines) + "\n")
    report = import_files(conn, [path], progress=False)
    got = errors(report)
    assert report.added == 2 and report.skipped == 9, got
    expect = {
        2: f"title too long (3,000,000 characters; the limit is {FIELD_LIMITS['title']:,})",
        3: f"abstract too long (100,000 characters; the limit is {FIELD_LIMITS['abstract']:,})",
        4: f"comments too long (10,000 characters; the limit is {FIELD_LIMITS['comments']:,})",
        5: "too many authors (25,000; the limit is 20,000)",
        6: "category too long (100 characters; the limit is 64)",
        8: "version out of range",
        9: "title is not text",
        10: "",  # a list where a string belongs: some message, not a crash
        11: "invalid JSON",
    }
    assert [int(e.split(":")[1]) for e in got] == sorted(expect)
    for e in got:
        assert e.startswith(f"{path}:") and expect[int(e.split(":")[1])] in e
    assert store.get_paper(conn, "2401.00007")["title"].startswith("Wrapped Wrapped")


def test_hf_counts_and_oai_text_out_of_range(conn, tmp_path):
    hf = tmp_path / "daily.json"
    hf.write_text(json.dumps([hf_entry("2403.00001"), hf_entry("2403.00002", upvotes=10**30),
                              hf_entry("2403.00003", upvotes=1e400), hf_entry("2403.00004", upvotes=-5)]))
    report = import_files(conn, [hf], progress=False)
    assert report.added == 1 and report.skipped == 3, errors(report)
    assert all("upvotes" in e or "OverflowError" in e or "infinity" in e for e in errors(report))

    title = "T" * 300_000
    oai = tmp_path / "dump.xml"
    oai.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/">'
        "<ListRecords>" + "".join(
            f"<record><header><identifier>oai:arXiv.org:2101.0000{i}</identifier><datestamp>2021-01-05"
            f"</datestamp></header><metadata><arXiv><id>2101.0000{i}</id><title>{t}</title>"
            "<abstract>An abstract.</abstract></arXiv></metadata></record>\n"
            for i, t in ((1, "Fine"), (2, title), (3, "Also fine")))
        + "<resumptionToken/></ListRecords></OAI-PMH>\n")
    report = import_files(conn, [oai], progress=False)
    assert report.added == 2 and report.skipped == 1
    assert errors(report)[0].startswith(f"{oai}:")
    assert "oai:arXiv.org:2101.00002: <title> too long (300,000 characters" in errors(report)[0]


# ------------------------------------------------------------------ links

def test_only_http_links_are_kept_at_import(conn, tmp_path):
    cases = {
        "2403.00001": ("https://github.com/example/code", "http://example.org/project"),
        "2403.00002": ("javascript:alert(document.cookie)", "data:text/html,<script>alert(1)</script>"),
        "2403.00003": (" JaVaScRiPt:alert(1)", "vbscript:msgbox(1)"),
        "2403.00004": ("//evil.example/x", "https:alert(1)"),
        "2403.00005": ("java\tscript:alert(1)", "https://ok.example/a b"),
        "2403.00006": ({"url": "https://x"}, ["https://y"]),
    }
    path = tmp_path / "daily.json"
    path.write_text(json.dumps([hf_entry(pid, githubRepo=c, projectPage=p) for pid, (c, p) in cases.items()]))
    report = import_files(conn, [path], progress=False)
    assert report.added == 6 and report.skipped == 0
    got = {pid: (store.get_paper(conn, pid)["code_url"], store.get_paper(conn, pid)["project_url"]) for pid in cases}
    assert got.pop("2403.00001") == cases["2403.00001"]
    assert set(got.values()) == {(None, None)}
    assert safe_url("HTTPS://Example.org/x") == "HTTPS://Example.org/x"
    rec = PaperRecord(title="t", code_url="javascript:x", project_url="https://p.example")
    assert (rec.code_url, rec.project_url) == (None, "https://p.example")


# ------------------------------------------------------------------ broken and binary lines

def test_first_line_broken_json_names_the_line(conn, tmp_path):
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"id": "2401.00001", "title": "Cut off\n{not json either\n')
    with pytest.raises(UnreadableFile, match=rf"^{broken}:1: invalid JSON"):
        detect_format(broken)
    r = subprocess.run([sys.executable, "-m", "paperwire", "--db", str(tmp_path / "c.db"), "import", str(broken)],
                       capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 1 and f"{broken}:1: invalid JSON" in r.stderr and "Traceback" not in r.stderr

    # Broken first line, good ones after: the format comes from those, line 1 is skipped.
    partly = tmp_path / "partly.jsonl"
    partly.write_text('{"id": "2401.00001", "title": "Cut off\n' + snapshot_line(2) + "\n" + snapshot_line(3) + "\n")
    report = import_files(conn, [partly], progress=False)
    assert report.added == 2 and errors(report) == [f"{partly}:1: invalid JSON: Invalid control character at"]

    # A JSON document that is simply of another kind keeps its message.
    other = tmp_path / "other.json"
    other.write_text('{\n  "kind": "settings",\n  "value": 3\n}\n')
    with pytest.raises(UnreadableFile, match="JSON, but not a format paperwire knows"):
        detect_format(other)


@pytest.mark.parametrize("gz", [False, True])
def test_nul_and_non_utf8_lines_skip_only_those_lines(conn, tmp_path, gz):
    lines = [snapshot_line(1).encode(), snapshot_line(2).encode().replace(b"Paper", b"Pa\x00per"),
             snapshot_line(3).encode(), snapshot_line(4).encode().replace(b"Paper", b"Pa\xff\xfeper"),
             b"\x00" * 5000, snapshot_line(6).encode()]
    data = b"\n".join(lines) + b"\n"
    path = tmp_path / ("nul.jsonl.gz" if gz else "nul.jsonl")
    path.write_bytes(gzip.compress(data) if gz else data)
    assert detect_format(path) == "arxiv-jsonl"
    report = import_files(conn, [path], progress=False)
    assert report.added == 3
    assert errors(report) == [f"{path}:2: binary data (a NUL byte) in the line",
                              f"{path}:4: not UTF-8 text (byte {lines[3].index(bytes([255])) + 1} of the line)",
                              f"{path}:5: binary data (a NUL byte) in the line"]
    # A NUL on the first line: the format comes from the next one.
    first = tmp_path / "first.jsonl"
    first.write_bytes(b"\x00\x00" + data)
    assert detect_format(first) == "arxiv-jsonl"
    # A real binary file is still refused as a whole.
    blob = tmp_path / "blob.jsonl"
    blob.write_bytes(b"\x1f\x00\x02{" * 5000)
    with pytest.raises(UnreadableFile, match="binary file"):
        detect_format(blob)


def test_csv_literals_and_listing_pages_have_limits(conn, tmp_path, shared_dir, monkeypatch):
    from paperwire.sources import listing
    from paperwire.sources.base import MAX_LITERAL_CHARS

    header = "id,title,abstract,versions,update_date,authors_parsed\n"
    huge = "[" + "['A', 'B', '']," * (MAX_LITERAL_CHARS // 14) + "]"
    path = tmp_path / "lit.csv"
    path.write_text(header + f'704.0001,Fine,Abstract,[],5/13/2015,"[[\'B\', \'A.\', \'\']]"\n'
                    + f'704.0002,Huge,Abstract,[],5/13/2015,"{huge}"\n')
    report = import_files(conn, [path], fmt="arxiv-csv", progress=False)
    assert report.added == 1
    assert errors(report) == [f"{path}:3: authors_parsed too long ({len(huge):,} characters; "
                              f"the limit is {MAX_LITERAL_CHARS:,})"]

    # A listing page is held whole while it is parsed: past its size limit, the rest is refused.
    page = next(p for p in sorted((shared_dir / "seeds").iterdir()) if p.is_file())
    monkeypatch.setattr(listing, "MAX_PAGE_BYTES", 2000)
    report = import_files(conn, [page], fmt="listing", progress=False)
    assert any("file too long for this format (more than 2,000 bytes)" in e for e in errors(report)), errors(report)
    assert all(e.startswith(f"{page}:") for e in errors(report))


def test_truncated_gzip_is_a_skip_at_the_line_it_stops(conn, tmp_path):
    data = "".join(snapshot_line(i) + "\n" for i in range(1, 401)).encode()
    packed = gzip.compress(data)
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(packed[: len(packed) // 2])  # cut in the middle of the stream
    report = import_files(conn, [path], progress=False)
    assert 0 < report.added < 400 and report.skipped == 1
    (err,) = errors(report)
    assert err.startswith(f"{path}:{report.added + 1}: unreadable compressed data after line {report.added:,}"), err

    hf = tmp_path / "daily.json.gz"
    hf.write_bytes(gzip.compress(json.dumps([hf_entry(f"2403.{i:05d}") for i in range(200)]).encode())[:300])
    report = import_files(conn, [hf], fmt="hf-daily", progress=False)
    assert report.added == 0 and errors(report) == [f"{hf}:1: unreadable compressed data (Compressed file ended "
                                                    "before the end-of-stream marker was reached)"]
