"""Every command on a PostgreSQL URL (issue 13: "the URL is the switch"): each one runs,
answers as on SQLite, and leaves nothing local (no folder named after the URL)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from harvest_support import FakeRepository, LocalServer, router, simple_records
from paperwire.cli import cli


def _run(db: str, *args: str, cwd, env=None):
    """The command in this process (as ``paperwire --db URL ...``); fails on a non-zero exit."""
    full = {"PAPERWIRE_EMBEDDER": "fake", "PAPERWIRE_HF_BASE_URL": "none", "PAPERWIRE_HARVEST_DELAY": "0",
            "PAPERWIRE_DB": None, **(env or {})}
    r = CliRunner().invoke(cli, ["--db", db, *args], env=full, catch_exceptions=False)
    assert r.exit_code == 0, f"paperwire {' '.join(args)}: {r.output}"
    return r


def test_every_command_works_on_a_postgresql_url(pg_url, tmp_path, monkeypatch):
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    repo = FakeRepository(simple_records(4, title="Paper number {i} on contrastive retrieval"))
    with LocalServer(router({"/oai": repo.handle})) as srv:
        oai = {"PAPERWIRE_OAI_BASE_URL": srv.url + "/oai", "PAPERWIRE_HARVEST_SETS": "cs"}
        harvested = _run(pg_url, "harvest", "--set", "cs", cwd=work, env=oai)
        assert "4 added" in harvested.output
        stats = json.loads(_run(pg_url, "stats", "--json", cwd=work).stdout)
        assert stats["papers"] == 4
        _run(pg_url, "sync", "--no-hf", cwd=work, env=oai)  # harvest (nothing new) + index
    _run(pg_url, "index", "--embedder", "fake", "--no-progress", cwd=work)
    hits = json.loads(_run(pg_url, "search", "contrastive retrieval", "--json", cwd=work).stdout)
    assert sorted(h["id"] for h in hits) == [f"2611.{i:05d}" for i in range(1, 5)]
    similar = _run(pg_url, "similar", "2611.00001", cwd=work).stdout
    assert "[2611.00004]" in similar and "[2611.00001]" not in similar
    _run(pg_url, "user", "create", "ada", "--email", "ada@example.org", "--password", "correct horse battery",
         cwd=work)
    assert "ada" in _run(pg_url, "user", "list", cwd=work).stdout
    token = json.loads(_run(pg_url, "token", "create", "--user", "ada", "--json", cwd=work).stdout)["token"]
    assert token
    lines = _run(pg_url, "export", cwd=work).stdout.strip().splitlines()
    assert len(lines) == 4 and json.loads(lines[0])["title"].startswith("Paper number")
    assert "@" in _run(pg_url, "export", "--format", "bibtex", cwd=work).stdout
    env = {"PAPERWIRE_MAIL_TRANSPORT": "outbox"}
    _run(pg_url, "digest", "subscribe", "reader@example.org", "--confirmed", cwd=work, env=env)
    _run(pg_url, "digest", "send", "--frequency", "daily", cwd=work, env=env)
    with LocalServer(router({"/oai": repo.handle})) as srv:
        env.update({"PAPERWIRE_OAI_BASE_URL": srv.url + "/oai", "PAPERWIRE_HARVEST_SETS": "cs",
                    "PAPERWIRE_SYNC_HOUR": "0", "PAPERWIRE_DIGEST_HOUR": "0"})
        _run(pg_url, "worker", "--once", cwd=work, env=env)
    assert list(work.iterdir()) == []  # nothing local, whatever the command
