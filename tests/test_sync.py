"""Submissions via the arXiv API, HF daily papers, and ``run_sync`` / ``paperwire sync``,
all against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import sys

import httpx
import pytest

from harvest_support import (
    FakeRepository, LocalServer, api_handler, fixture_bytes, hf_handler, router, simple_records,
)
from paperwire.harvest import HarvestError, PoliteFetcher, fetch_submissions, sync_hf
from paperwire.settings import Settings
from paperwire.store import papers as store
from paperwire.store import submissions as subs
from paperwire.sync import harvest_lock, run_sync

HF_DAY = "2026-11-20"


def hf_days():
    return {HF_DAY: json.loads(fixture_bytes("hf/daily_papers_2026-11-20.json"))}


API_PAPER = {"id": "2611.05555v3", "title": "Tiny Recurrent Models Beat Transformers on Counting",
             "summary": "We show tiny recurrent models count better.", "authors": ["Priya Raman", "Tom Baker"],
             "categories": ["cs.LG", "cs.CL"], "published": "2026-11-09T12:00:00Z", "updated": "2026-11-18T17:05:01Z"}


def make_settings(db_path, url, **kw) -> Settings:
    return Settings(db_path=db_path, oai_base_url=url + "/oai", arxiv_api_url=url + "/api/query", hf_base_url=url,
                    harvest_delay=0.0, harvest_sets="cs", embedder="fake", **kw)


def statuses(conn) -> dict:
    return {r["arxiv_id"]: (r["status"], r["error"]) for r in conn.execute("SELECT * FROM submissions")}


def test_fetch_submissions_done_failed_and_invalid(conn, db_path):
    for a in ("2611.05555", "2611.07777", "not-an-id"):
        subs.queue_submission(conn, a, None)
    with LocalServer(api_handler({"2611.05555": API_PAPER})) as srv:
        out = fetch_submissions(conn, make_settings(db_path, srv.url))
        assert srv.requests[0].params["id_list"] == "2611.05555,2611.07777"
    assert (out["done"], out["failed"], out["added"]) == (1, 2, 1)
    st = statuses(conn)
    assert st["2611.05555"] == ("done", None)
    assert st["2611.07777"] == ("failed", "not found on arXiv")
    assert st["not-an-id"][0] == "failed" and "not an arXiv id" in st["not-an-id"][1]
    p = store.get_paper(conn, "2611.05555")
    assert p["version"] == 3 and p["categories"] == ["cs.LG", "cs.CL"]
    assert subs.pending_submissions(conn) == []


def test_fetch_submissions_network_failure_leaves_queue(conn, db_path):
    subs.queue_submission(conn, "2611.05555", None)
    s = make_settings(db_path, "http://127.0.0.1:9")
    fetcher = PoliteFetcher(s, httpx.Client(timeout=2), max_retries=1, backoff=0.01)
    out = fetch_submissions(conn, s, fetcher=fetcher)
    assert out["done"] == 0 and "left queued" in out["errors"][0]
    assert statuses(conn)["2611.05555"][0] == "queued"


def test_sync_hf_paginates_and_keeps_upvotes_and_submitter(conn, db_path):
    with LocalServer(hf_handler(hf_days())) as srv:
        rep = sync_hf(conn, make_settings(db_path, srv.url), date=HF_DAY, page_size=2)
        assert [r.params["p"] for r in srv.requests] == ["0", "1"]
        assert all(r.params["date"] == HF_DAY for r in srv.requests)
    assert (rep["entries"], rep["added"], rep["pages"]) == (3, 3, 2)
    p = store.get_paper(conn, "2611.01234")
    assert (p["upvotes"], p["submitted_by"], p["num_comments"]) == (57, "akhaliq", 3)
    assert p["listed_at"] == "2026-11-20T01:12:44Z"


def test_sync_hf_server_ignoring_paging_stops(conn, db_path):
    entries = hf_days()[HF_DAY]
    with LocalServer(lambda p, q: (200, {"Content-Type": "application/json"}, json.dumps(entries).encode())) as srv:
        rep = sync_hf(conn, make_settings(db_path, srv.url), date=HF_DAY, page_size=3)
        assert len(srv.requests) == 2  # second page repeats the first: stop
    assert rep["added"] == 3


def test_sync_hf_bad_response(conn, db_path):
    with LocalServer(lambda p, q: (200, {"Content-Type": "application/json"}, b'{"error": "x"')) as srv:
        with pytest.raises(HarvestError, match="not JSON"):
            sync_hf(conn, make_settings(db_path, srv.url), date=HF_DAY)
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        sync_hf(conn, make_settings(db_path, "http://127.0.0.1:9"), date="yesterday")


def test_cli_sync_hf(db_path):
    from click.testing import CliRunner

    from paperwire.cli import cli

    with LocalServer(hf_handler(hf_days())) as srv:
        r = CliRunner().invoke(cli, ["--db", str(db_path), "sync-hf", "--date", HF_DAY, "--base-url", srv.url],
                               env={"PAPERWIRE_HARVEST_DELAY": "0"})
    assert r.exit_code == 0, r.output
    assert "3 entries: 3 added" in r.output


def _full_server(repo):
    return router({"/oai": repo.handle, "/api/query": api_handler({"2611.05555": API_PAPER}),
                   "/api/daily_papers": hf_handler({HF_DAY: hf_days()[HF_DAY]})})


def test_run_sync_end_to_end_index_and_search(conn, db_path, monkeypatch):
    repo = FakeRepository(simple_records(5, title="Harvested paper {i} about quantum error correction"), page_size=2)
    subs.queue_submission(conn, "2611.05555", None)
    with LocalServer(_full_server(repo)) as srv:
        s = make_settings(db_path, srv.url)
        monkeypatch.setattr("paperwire.harvest.datetime", _FixedDate)
        out = run_sync(conn, s)
    assert out["ok"], out["errors"]
    assert out["harvest"][0]["added"] == 5 and out["submissions"]["done"] == 1
    assert out["hf"]["added"] == 3 and out["changed"] == 9
    idx = out["index"]
    assert isinstance(idx, dict) and "lexical" in idx
    try:
        from paperwire.index.search import search
    except ImportError:
        pytest.skip("search not available yet")
    res = search(conn, "quantum error correction", mode="lexical", limit=10)
    assert {h.paper_id for h in res.hits} >= {"2611.00001", "2611.00005"}


class _FixedDate(__import__("datetime").datetime):
    @classmethod
    def now(cls, tz=None):
        return cls(2026, 11, 20, 8, 0, tzinfo=tz)


def test_run_sync_reports_index_skipped_when_missing(conn, db_path, monkeypatch):
    repo = FakeRepository(simple_records(2))
    monkeypatch.setitem(sys.modules, "paperwire.index.build", None)  # import fails
    with LocalServer(_full_server(repo)) as srv:
        out = run_sync(conn, make_settings(db_path, srv.url), hf=False)
    assert out["ok"] and out["index"].startswith("index skipped")


def test_run_sync_one_failing_step_does_not_stop_the_rest(conn, db_path):
    handler = router({"/oai": lambda p, q: (500, {}, b"down"), "/api/daily_papers": hf_handler(hf_days())})
    with LocalServer(handler) as srv:
        s = make_settings(db_path, srv.url)
        fetcher = PoliteFetcher(s, httpx.Client(), max_retries=1, backoff=0.01)
        out = run_sync(conn, s, fetcher=fetcher, index=False)
    assert not out["ok"] and "harvest cs" in out["errors"][0] and "HTTP 500" in out["errors"][0]


def test_run_sync_refuses_to_run_twice(conn, db_path):
    s = make_settings(db_path, "http://127.0.0.1:9")
    with harvest_lock(db_path):
        out = run_sync(conn, s)
    assert not out["ok"] and "another harvest is running" in out["errors"][0]


def test_cli_sync_json_exit_codes(db_path):
    from click.testing import CliRunner

    from paperwire.cli import cli

    repo = FakeRepository(simple_records(3))
    with LocalServer(_full_server(repo)) as srv:
        env = {"PAPERWIRE_HARVEST_DELAY": "0", "PAPERWIRE_OAI_BASE_URL": srv.url + "/oai",
               "PAPERWIRE_ARXIV_API_URL": srv.url + "/api/query", "PAPERWIRE_HF_BASE_URL": srv.url,
               "PAPERWIRE_EMBEDDER": "fake", "PAPERWIRE_HARVEST_SETS": "cs"}
        r = CliRunner().invoke(cli, ["--db", str(db_path), "sync", "--no-hf", "--json"], env=env)
        assert r.exit_code == 0, r.output
        out = json.loads(r.output)
        assert out["ok"] and out["harvest"][0]["added"] == 3
        env["PAPERWIRE_OAI_BASE_URL"] = srv.url + "/nothing-here"
        r = CliRunner().invoke(cli, ["--db", str(db_path), "sync", "--no-hf", "--no-index"], env=env)
        assert r.exit_code == 1 and "HTTP 404" in r.output


def test_run_sync_hf_none_is_skipped(conn, db_path):
    repo = FakeRepository(simple_records(1))
    with LocalServer(_full_server(repo)) as srv:
        s = make_settings(db_path, srv.url)
        s.hf_base_url = "none"
        out = run_sync(conn, s, index=False)
        assert not any(r.path.startswith("/api/daily_papers") for r in srv.requests)
    assert out["ok"] and out["hf"] is None


def test_harvested_metadata_outranks_hf_and_hf_keeps_upvotes_fresh(conn, db_path):
    oai_rec = simple_records(1, start=1234, title="Sparse MoE Retrieval for Long-Context QA (arXiv title)")[0]
    repo = FakeRepository([oai_rec])
    days = hf_days()
    with LocalServer(router({"/oai": repo.handle, "/api/daily_papers": hf_handler(days)})) as srv:
        s = make_settings(db_path, srv.url)
        sync_hf(conn, s, date=HF_DAY)
        from paperwire.harvest import harvest

        harvest(conn, s, set_spec="cs")
        p = store.get_paper(conn, "2611.01234")
        assert p["title"] == "Sparse MoE Retrieval for Long-Context QA (arXiv title)" and p["upvotes"] == 57
        days[HF_DAY][0]["paper"]["upvotes"] = 80
        sync_hf(conn, s, date=HF_DAY)
    p = store.get_paper(conn, "2611.01234")
    assert p["title"] == "Sparse MoE Retrieval for Long-Context QA (arXiv title)" and p["upvotes"] == 80
