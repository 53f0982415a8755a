"""Acceptance: the real ``huggingface_hub`` client, pointed at a paperwire server with
HF_ENDPOINT, lists daily papers, reads a paper and searches.

The client runs in a subprocess because huggingface_hub reads HF_ENDPOINT at import time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from paperwire.store.db import connect
from web_support import demo_db, live_server

pytest.importorskip("huggingface_hub")

CLIENT = r"""
import json
from huggingface_hub import HfApi, constants

api = HfApi()
out = {"endpoint": constants.ENDPOINT}

def info(p):
    return {"id": p.id, "title": p.title, "summary": p.summary, "upvotes": p.upvotes,
            "authors": [a.name for a in (p.authors or [])],
            "published_at": p.published_at.isoformat() if p.published_at else None,
            "submitted_at": p.submitted_at.isoformat() if p.submitted_at else None,
            "submitted_by": p.submitted_by.username if p.submitted_by else None,
            "comments": p.comments}

out["daily"] = [info(p) for p in api.list_daily_papers(date="2007-04-15", limit=100)]
out["daily_trending"] = [info(p) for p in api.list_daily_papers(date="2007-04-13", sort="trending", limit=3)]
out["week"] = [info(p) for p in api.list_daily_papers(week="2007-W15", limit=5, p=1)]
out["month"] = [info(p) for p in api.list_daily_papers(month="2007-04", limit=10)]
out["latest"] = [info(p) for p in api.list_daily_papers(limit=5)]
out["by_submitter"] = [info(p) for p in api.list_daily_papers(month="2007-04", submitter="akhaliq")]
out["paper"] = info(api.paper_info("0704.0001"))
out["search"] = [info(p) for p in api.list_papers(query="quantum", limit=5)]
try:
    api.paper_info("9999.99999")
    out["missing"] = "no error"
except Exception as exc:  # HfHubHTTPError
    out["missing"] = getattr(getattr(exc, "response", None), "status_code", repr(exc))
print(json.dumps(out))
"""


def test_huggingface_hub_client_against_paperwire(tmp_path):
    db = demo_db(tmp_path)
    conn = connect(db)
    conn.execute("UPDATE papers SET upvotes=40, submitted_by='akhaliq' WHERE paper_id='0704.1843'")
    expected_day = [r[0] for r in conn.execute(
        "SELECT paper_id FROM papers WHERE feed_date='2007-04-15' AND hidden=0")]
    row = conn.execute("SELECT title, abstract, authors, published FROM papers WHERE paper_id='0704.0001'").fetchone()
    with live_server(db) as url:
        env = {**os.environ, "HF_ENDPOINT": url, "HF_HUB_OFFLINE": "0", "HF_HUB_DISABLE_TELEMETRY": "1",
               "HF_TOKEN": "", "HF_HOME": str(tmp_path / "hf")}
        env.pop("HF_TOKEN")
        proc = subprocess.run([sys.executable, "-c", CLIENT], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    assert out["endpoint"] == url

    assert sorted(p["id"] for p in out["daily"]) == sorted(expected_day)
    assert all(p["title"] and p["published_at"] and p["authors"] for p in out["daily"])
    assert out["daily_trending"][0]["id"] == "0704.1843"
    assert out["daily_trending"][0]["upvotes"] == 40
    assert out["daily_trending"][0]["submitted_by"] == "akhaliq"
    assert [p["id"] for p in out["by_submitter"]] == ["0704.1843"]
    assert len(out["week"]) == 5 and len(out["month"]) == 10 and len(out["latest"]) == 5

    paper = out["paper"]
    assert paper["id"] == "0704.0001"
    assert paper["title"] == row["title"] and paper["summary"] == row["abstract"]
    assert paper["authors"] == json.loads(row["authors"])
    assert paper["published_at"].startswith(row["published"][:19])

    assert 1 <= len(out["search"]) <= 5
    assert all("quantum" in (p["title"] + p["summary"]).lower() for p in out["search"])
    assert out["missing"] == 404
