"""The OAI-PMH harvest loop against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json

import httpx
import pytest

from harvest_support import (
    FakeRepository, LocalServer, error_xml, fixture_bytes, simple_records, xml_response,
)
from paperwire.harvest import HarvestError, PoliteFetcher, harvest, user_agent
from paperwire.settings import Settings
from paperwire.store import harvest as hsql
from paperwire.store import papers as store


def settings_for(db_path, url, **kw) -> Settings:
    kw.setdefault("harvest_delay", 0.0)
    return Settings(db_path=db_path, oai_base_url=url + "/oai", contact_email="ops@example.org", **kw)


def paper_ids(conn) -> list[str]:
    return [r[0] for r in conn.execute("SELECT paper_id FROM papers ORDER BY paper_id")]


class FakeClock:
    """Injected clock + sleep: proves waits without waiting."""

    def __init__(self):
        self.t = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.slept.append(round(s, 3))
        self.t += s


def test_pages_with_resumption_tokens_and_incremental_rerun(conn, db_path):
    repo = FakeRepository(simple_records(8, datestamp="2026-11-19") + simple_records(3, start=100, datestamp="2026-11-20"),
                          page_size=3)
    with LocalServer(repo.handle) as srv:
        s = settings_for(db_path, srv.url)
        rep = harvest(conn, s, set_spec="cs")
        assert (rep.status, rep.pages, rep.added, rep.resumed) == ("done", 4, 11, False)
        assert len(paper_ids(conn)) == 11
        first = srv.requests[0]
        assert first.params == {"verb": "ListRecords", "metadataPrefix": "arXivRaw", "set": "cs"}
        assert all(set(r.params) == {"verb", "resumptionToken"} for r in srv.requests[1:])
        assert "mailto:ops@example.org" in first.headers["User-Agent"]
        state = hsql.get_state(conn, rep.job)
        assert state["last_datestamp"] == "2026-11-20" and state["run_status"] == "idle" and state["run_token"] is None

        # Next run starts from the last datestamp (inclusive: a day of overlap, idempotent).
        repo.records += simple_records(2, start=200, datestamp="2026-11-21")
        n = len(srv.requests)
        rep2 = harvest(conn, s, set_spec="cs")
        assert srv.requests[n].params["from"] == "2026-11-20"
        assert (rep2.added, rep2.unchanged) == (2, 3)
        assert len(paper_ids(conn)) == 13
        assert hsql.get_state(conn, rep.job)["last_datestamp"] == "2026-11-21"


def test_no_records_match_is_an_empty_success(conn, db_path):
    repo = FakeRepository(simple_records(2, datestamp="2026-11-10"))
    with LocalServer(repo.handle) as srv:
        rep = harvest(conn, settings_for(db_path, srv.url), set_spec="cs", from_date="2026-11-15")
    assert rep.status == "empty" and rep.pages == 0 and rep.added == 0
    state = hsql.get_state(conn, rep.job)
    assert state["run_status"] == "idle" and state["last_datestamp"] is None


def test_newer_version_updates_older_never_does(conn, db_path):
    repo = FakeRepository(simple_records(2, version=1, title="First title {i}"))
    with LocalServer(repo.handle) as srv:
        s = settings_for(db_path, srv.url)
        harvest(conn, s, set_spec="cs")
        repo.records = simple_records(2, version=2, title="Revised title {i}", datestamp="2026-11-21")
        rep = harvest(conn, s, set_spec="cs")
        assert rep.updated == 2
        p = store.get_paper(conn, "2611.00001")
        assert (p["version"], p["title"]) == (2, "Revised title 1")
        # a stale v1 record (e.g. a backfill of an old window) does not overwrite v2
        repo.records = simple_records(2, version=1, title="First title {i}", datestamp="2026-11-22")
        rep = harvest(conn, s, set_spec="cs")
        assert rep.unchanged == 2 and store.get_paper(conn, "2611.00001")["title"] == "Revised title 1"


def test_arxiv_format_keeps_dates_older_record_is_stale(conn, db_path):
    repo = FakeRepository(simple_records(1, version=2, title="New title {i}"))
    with LocalServer(repo.handle) as srv:
        s = settings_for(db_path, srv.url)
        harvest(conn, s, set_spec="cs", metadata_prefix="arXiv")
        p = store.get_paper(conn, "2611.00001")
        assert p["published"] == "2026-11-03T00:00:00Z" and p["updated"] == "2026-11-04T00:00:00Z"
        repo.records = simple_records(1, version=1, title="Old title {i}", datestamp="2026-11-21")
        rep = harvest(conn, s, set_spec="cs", metadata_prefix="arXiv")
        assert rep.stale == 1 and store.get_paper(conn, "2611.00001")["title"] == "New title 1"


def test_deleted_records_hide_papers_and_come_back(conn, db_path):
    recs = simple_records(3)
    repo = FakeRepository(recs, page_size=10)
    with LocalServer(repo.handle) as srv:
        s = settings_for(db_path, srv.url)
        harvest(conn, s, set_spec="cs")
        repo.records = [dict(recs[1], deleted=True, datestamp="2026-11-21")]
        rep = harvest(conn, s, set_spec="cs")
        assert (rep.deleted, rep.hidden, rep.added) == (1, 1, 0)
        assert store.get_paper(conn, "2611.00002")["hidden"] == 1
        assert hsql.deletion_count(conn) == 1
        repo.records = [dict(recs[1], datestamp="2026-11-22")]
        harvest(conn, s, set_spec="cs")
        assert store.get_paper(conn, "2611.00002")["hidden"] == 0 and hsql.deletion_count(conn) == 0


def test_missing_fields_skipped_and_reported(conn, db_path):
    body = fixture_bytes("oai/missing_fields.xml")
    with LocalServer(lambda p, q: (200, {"Content-Type": "text/xml"}, body)) as srv:
        rep = harvest(conn, settings_for(db_path, srv.url))
    assert (rep.added, rep.skipped) == (1, 2)
    assert rep.errors[0].endswith("page 1:6: oai:arXiv.org:2611.04001: missing title")
    assert "oai:arXiv.org:2611.04002: no <metadata>" in rep.errors[1]


@pytest.mark.parametrize("bad", ["malformed", "bomb"])
def test_malformed_or_bomb_page_fails_cleanly_cursor_unchanged(conn, db_path, bad):
    repo = FakeRepository(simple_records(9), page_size=3)
    body = fixture_bytes("oai/malformed.xml" if bad == "malformed" else "oai/entity_bomb.xml")
    repo.before = lambda page, params: xml_response(body.decode()) if page == 2 else None
    with LocalServer(repo.handle) as srv:
        s = settings_for(db_path, srv.url)
        with pytest.raises(HarvestError) as exc:
            harvest(conn, s, set_spec="cs")
        assert ("malformed XML" if bad == "malformed" else "refused unsafe XML") in str(exc.value)
        assert "page 2" in str(exc.value)
        state = hsql.get_state(conn, hsql.job_key(s.oai_base_url, "arXivRaw", "cs"))
        assert len(paper_ids(conn)) == 3  # page 1 only; nothing of the bad page
        assert state["run_status"] == "running" and state["run_pages"] == 1 and state["run_token"]
        assert state["last_error"]
        token = state["run_token"]
        # the server recovers: the rerun resumes at the stored token, ends with everything once
        repo.before = None
        n = len(srv.requests)
        rep = harvest(conn, s, set_spec="cs")
        assert rep.resumed and srv.requests[n].params["resumptionToken"] == token
        assert len(paper_ids(conn)) == 9 and rep.added == 6


def test_expired_token_restarts_from_stored_from(conn, db_path):
    repo = FakeRepository(simple_records(6), page_size=2)
    repo.before = lambda page, params: xml_response(error_xml("badVerb", "boom")) if page == 3 else None
    with LocalServer(repo.handle) as srv:
        s = settings_for(db_path, srv.url)
        with pytest.raises(HarvestError, match="OAI-PMH error badVerb"):
            harvest(conn, s, set_spec="cs", from_date="2026-11-01")
        repo.before = None
        repo.tokens.clear()  # the token expired meanwhile
        n = len(srv.requests)
        rep = harvest(conn, s, set_spec="cs")
        assert rep.restarts == 1
        assert srv.requests[n + 1].params.get("from") == "2026-11-01"  # restarted with the run's own 'from'
        assert len(paper_ids(conn)) == 6 and rep.status == "done"


def test_503_retry_after_and_delay_are_honoured_with_injected_clock(conn, db_path):
    repo = FakeRepository(simple_records(4), page_size=2)
    hits = {"n": 0}

    def before(page, params):
        hits["n"] += 1
        if hits["n"] == 1:
            return xml_response("<html>busy</html>", status=503, headers={"Retry-After": "7"})
        return None

    repo.before = before
    with LocalServer(repo.handle) as srv:
        s = settings_for(db_path, srv.url, harvest_delay=3.0)
        clock = FakeClock()
        fetcher = PoliteFetcher(s, httpx.Client(), sleep=clock.sleep, clock=clock)
        rep = harvest(conn, s, set_spec="cs", fetcher=fetcher)
    assert rep.added == 4 and len(srv.requests) == 3
    # 7 s for Retry-After (no extra delay on top), then 3 s before the second page
    assert clock.slept == [7.0, 3.0]


def test_real_delay_between_requests(conn, db_path):
    repo = FakeRepository(simple_records(6), page_size=2)
    with LocalServer(repo.handle) as srv:
        s = settings_for(db_path, srv.url, harvest_delay=0.15)
        harvest(conn, s, set_spec="cs")
        gaps = [b.at - a.at for a, b in zip(srv.requests, srv.requests[1:])]
    assert len(gaps) == 2 and min(gaps) >= 0.15


def test_bounded_retries_then_clear_error(conn, db_path):
    with LocalServer(lambda p, q: (500, {}, b"oops")) as srv:
        s = settings_for(db_path, srv.url)
        clock = FakeClock()
        fetcher = PoliteFetcher(s, httpx.Client(), sleep=clock.sleep, clock=clock, max_retries=3, backoff=2.0)
        with pytest.raises(HarvestError, match=r"HTTP 500 \(gave up after 4 tries\)"):
            harvest(conn, s, fetcher=fetcher)
        assert len(srv.requests) == 4 and clock.slept == [2.0, 4.0, 8.0]


def test_connection_refused_is_retried_then_reported(conn, db_path):
    s = settings_for(db_path, "http://127.0.0.1:9")  # discard port: nothing listens
    clock = FakeClock()
    fetcher = PoliteFetcher(s, httpx.Client(timeout=2), sleep=clock.sleep, clock=clock, max_retries=2, backoff=1.0)
    with pytest.raises(HarvestError, match="gave up after 3 tries"):
        harvest(conn, s, fetcher=fetcher)


def test_user_agent_names_contact(db_path):
    s = Settings(db_path=db_path, contact_email="me@uni.edu")
    assert "mailto:me@uni.edu" in user_agent(s) and user_agent(s).startswith("paperwire/")


def test_bad_dates_rejected(conn, db_path):
    s = settings_for(db_path, "http://127.0.0.1:9")
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        harvest(conn, s, from_date="21/11/2026")
    with pytest.raises(ValueError, match="after"):
        harvest(conn, s, from_date="2026-11-21", until="2026-11-01")


def test_cli_harvest_json(db_path, tmp_path):
    from click.testing import CliRunner

    from paperwire.cli import cli

    repo = FakeRepository(simple_records(5), page_size=2)
    with LocalServer(repo.handle) as srv:
        env = {"PAPERWIRE_HARVEST_DELAY": "0"}
        r = CliRunner().invoke(cli, ["--db", str(db_path), "harvest", "--set", "cs", "--base-url", srv.url + "/oai",
                                     "--json"], env=env)
        assert r.exit_code == 0, r.output
        out = json.loads(r.output)
        assert out["ok"] and out["sets"][0]["added"] == 5 and out["sets"][0]["pages"] == 3
        r = CliRunner().invoke(cli, ["--db", str(db_path), "harvest", "--set", "cs", "--base-url", srv.url + "/oai",
                                     "--from", "2026-13-01"], env=env)
        assert r.exit_code != 0 and "Error:" in r.output


def test_until_alone_is_a_backfill_window_and_max_pages_resumes(conn, db_path):
    repo = FakeRepository(simple_records(4, datestamp="2026-11-10") + simple_records(4, start=50, datestamp="2026-11-20"),
                          page_size=2)
    with LocalServer(repo.handle) as srv:
        s = settings_for(db_path, srv.url)
        harvest(conn, s, set_spec="cs", from_date="2026-11-20")
        assert len(paper_ids(conn)) == 4
        n = len(srv.requests)
        rep = harvest(conn, s, set_spec="cs", until="2026-11-15", max_pages=1)
        assert "from" not in srv.requests[n].params and srv.requests[n].params["until"] == "2026-11-15"
        assert rep.status == "partial" and len(paper_ids(conn)) == 6
        rep = harvest(conn, s, set_spec="cs", until="2026-11-15")  # same window: resumes
        assert rep.resumed and rep.status == "done" and len(paper_ids(conn)) == 8
        # the backfill did not move the incremental cursor backwards
        assert hsql.get_state(conn, rep.job)["last_datestamp"] == "2026-11-20"


def test_cli_harvest_status(db_path):
    from click.testing import CliRunner

    from paperwire.cli import cli

    repo = FakeRepository(simple_records(5), page_size=2)
    with LocalServer(repo.handle) as srv:
        env = {"PAPERWIRE_HARVEST_DELAY": "0"}
        args = ["--db", str(db_path), "harvest", "--set", "cs", "--base-url", srv.url + "/oai"]
        r = CliRunner().invoke(cli, args + ["--max-pages", "1"], env=env)
        assert r.exit_code == 0, r.output
        r = CliRunner().invoke(cli, ["--db", str(db_path), "harvest", "--status"])
        assert "interrupted run: 1 pages, 2 records committed" in r.output
        CliRunner().invoke(cli, args, env=env)
        r = CliRunner().invoke(cli, ["--db", str(db_path), "harvest", "--status"])
        assert "next incremental run from: 2026-11-20" in r.output and "interrupted" not in r.output


def test_repository_repeating_its_token_is_stopped(conn, db_path):
    body = fixture_bytes("oai/listrecords_arxivraw_page1.xml")
    with LocalServer(lambda p, q: (200, {"Content-Type": "text/xml"}, body)) as srv:
        with pytest.raises(HarvestError, match="same resumption token"):
            harvest(conn, settings_for(db_path, srv.url), set_spec="cs")
        assert len(srv.requests) == 2
    assert len(paper_ids(conn)) == 3  # the first page is kept, with its cursor
