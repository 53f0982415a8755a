"""Parsing OAI-PMH ListRecords (arXiv / arXivRaw), the arXiv API Atom feed, and
``paperwire import`` of a saved OAI-PMH dump."""

from __future__ import annotations

import pytest

from harvest_support import FIXTURES, fixture_bytes
from paperwire.ingest import BadRecord
from paperwire.sources import detect_format, import_files
from paperwire.sources.arxiv_api import ApiXMLError, parse_feed
from paperwire.sources.oai_pmh import OaiXMLError, parse_page, split_authors
from paperwire.store import papers as store

OAI = FIXTURES / "oai"


def test_arxivraw_page_fields_versions_and_token():
    page = parse_page(fixture_bytes("oai/listrecords_arxivraw_page1.xml"), "page1")
    assert page.token == "6051132|1001"
    assert page.token_attrs == {"cursor": "0", "completeListSize": "5"}
    assert page.max_datestamp == "2026-11-20"
    recs = {r.arxiv_id: r for r in page.items}
    assert set(recs) == {"0704.0002", "2611.01234", "2611.02345"}
    r = recs["2611.01234"]
    assert r.version == 2
    assert r.title == "Sparse Mixture-of-Experts Retrieval for Long-Context Question Answering"
    assert r.authors == ["Ana Lima", "Bo Chen", "Chloé Durand"]  # affiliations dropped
    assert r.categories == ["cs.CL", "cs.IR", "cs.LG"]
    assert r.published == "2026-11-02T17:59:03Z" and r.updated == "2026-11-19T09:12:44Z"
    assert r.doi == "10.18653/v1/2026.acl-long.1" and r.journal_ref == "Proceedings of ACL 2026"
    assert "&" in r.abstract and "<1/3>" in r.abstract
    assert recs["2611.02345"].authors == ["Jörg Müller", "C. Balázs"]


def test_last_page_empty_token_and_deleted_record():
    page = parse_page(fixture_bytes("oai/listrecords_arxivraw_page2.xml"), "page2")
    assert page.token is None
    assert [(d.arxiv_id, d.datestamp) for d in page.deleted] == [("2611.00999", "2026-11-21")]
    assert [r.arxiv_id for r in page.items] == ["cs/0112017"]
    assert page.max_datestamp == "2026-11-21"


def test_arxiv_format_has_dates_but_no_version():
    page = parse_page(fixture_bytes("oai/listrecords_arxiv.xml"), "arxiv")
    recs = {r.arxiv_id: r for r in page.items}
    r = recs["0704.0001"]
    assert r.version is None
    assert r.published == "2007-04-02T00:00:00Z" and r.updated == "2007-07-24T00:00:00Z"
    assert r.authors == ["C. Balázs", "E. L. Berger", "P. M. Nadolsky", "C.-P. Yuan"]
    assert recs["2611.03456"].authors == ["Ngozi Okafor", "John Smith Jr"]
    assert page.token is None  # <resumptionToken ...></resumptionToken> ends the list


def test_missing_fields_are_reported_with_page_line_and_identifier():
    page = parse_page(fixture_bytes("oai/missing_fields.xml"), "http://x/oai page 1")
    bad = [i for i in page.items if isinstance(i, BadRecord)]
    good = [i for i in page.items if not isinstance(i, BadRecord)]
    assert [g.arxiv_id for g in good] == ["2611.04003"]
    assert [str(b) for b in bad] == [
        "http://x/oai page 1:6: oai:arXiv.org:2611.04001: missing title",
        "http://x/oai page 1:10: oai:arXiv.org:2611.04002: no <metadata>",
    ]


def test_oai_errors_are_returned_not_raised():
    page = parse_page(fixture_bytes("oai/no_records_match.xml"))
    assert page.error_code == "noRecordsMatch" and page.items == []
    assert parse_page(fixture_bytes("oai/bad_resumption_token.xml")).error_code == "badResumptionToken"


def test_malformed_xml_names_origin_and_line():
    with pytest.raises(OaiXMLError) as exc:
        parse_page(fixture_bytes("oai/malformed.xml"), "page 7")
    assert str(exc.value).startswith("page 7:31: malformed XML")


def test_entity_bomb_is_refused_not_expanded():
    with pytest.raises(OaiXMLError) as exc:
        parse_page(fixture_bytes("oai/entity_bomb.xml"), "bomb")
    assert "refused unsafe XML" in str(exc.value)


def test_not_an_oai_document():
    with pytest.raises(OaiXMLError, match="not an OAI-PMH response"):
        parse_page(b"<html><body>maintenance</body></html>", "x")


def test_split_authors():
    assert split_authors("A. Smith (MIT and (CSAIL)), B. Jones and C. Wu") == ["A. Smith", "B. Jones", "C. Wu"]


def test_arxiv_api_feed():
    feed = parse_feed(fixture_bytes("oai/arxiv_api_feed.xml"))
    r = feed.records["2611.05555"]
    assert r.version == 3 and r.categories == ["cs.LG", "cs.CL"]
    assert r.title.startswith("Submitted by a Reader") and r.authors == ["Priya Raman", "Tom Baker"]
    assert r.doi == "10.1000/xyz123" and r.comments == "9 pages"
    with pytest.raises(ApiXMLError, match="refused unsafe XML"):
        parse_feed(fixture_bytes("oai/entity_bomb.xml"))
    with pytest.raises(ApiXMLError, match="malformed"):
        parse_feed(b"<feed")


def test_import_saved_dump_via_cli_format(conn, tmp_path):
    assert detect_format(OAI / "listrecords_arxivraw_page1.xml") == "oai-pmh"
    report = import_files(conn, [OAI / "listrecords_arxivraw_page1.xml", OAI / "listrecords_arxivraw_page2.xml",
                                 OAI / "missing_fields.xml"], progress=False)
    assert report.added == 5
    # two broken records + one deletion, each named by file:line and identifier
    reasons = [str(e) for e in report.errors]
    assert report.skipped == 3
    assert any("missing_fields.xml:6: oai:arXiv.org:2611.04001: missing title" in r for r in reasons)
    assert any("listrecords_arxivraw_page2.xml" in r and "2611.00999: deleted upstream" in r for r in reasons)
    assert store.get_paper(conn, "2611.01234")["version"] == 2


def test_import_bomb_and_malformed_files_are_clear_errors(conn):
    report = import_files(conn, [OAI / "entity_bomb.xml"], fmt="oai-pmh", progress=False)
    assert report.added == 0 and report.skipped == 1
    assert "entity_bomb.xml:2: refused unsafe XML" in str(report.errors[0])
    report = import_files(conn, [OAI / "malformed.xml"], fmt="oai-pmh", progress=False)
    # records before the break are kept (non-strict import), the break is reported with its line
    assert report.added == 1 and "malformed.xml:31: malformed XML" in str(report.errors[-1])
