"""The rest of HF's papers API: the paper as Markdown (``/papers/{id}.md``, ``Accept:
text/markdown``; huggingface_hub's ``read_paper``), ``/api/papers`` by cursor, 400 for a
bad date/week/month (the client's ``BadRequestError``) and search ``limit`` up to 120."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx
import pytest

from paperwire import latex
from paperwire.store.db import connect
from web_support import HOSTILE_ID, demo_db, live_server, make_client

pytest.importorskip("huggingface_hub")

CLIENT = r"""
import json
from huggingface_hub import HfApi
from huggingface_hub.errors import BadRequestError, HfHubHTTPError
api = HfApi()
out = {"md": api.read_paper("0704.0001"), "hostile": api.read_paper(%(hostile)r)}
try:
    api.read_paper("9999.99999")
    out["missing"] = "no error"
except HfHubHTTPError as exc:
    out["missing"] = exc.response.status_code
bad = {}
for kw in ({"date": "2025-13-45"}, {"date": "yesterday"}, {"week": "2025-W99"}, {"month": "2025-00"},
           {"date": "2" * 300}, {"date": "2007-04-15", "week": "2007-W15"}):
    try:
        list(api.list_daily_papers(**kw))
        bad[json.dumps(kw)[:60]] = "no error"
    except BadRequestError as exc:
        bad[json.dumps(kw)[:60]] = exc.response.status_code
out["bad"] = bad
out["search120"] = len(list(api.list_papers(query="quantum", limit=120)))
out["newest120"] = len(list(api.list_papers(limit=120)))
print(json.dumps(out))
"""


def test_huggingface_hub_read_paper_bad_periods_and_limit(tmp_path):
    db = demo_db(tmp_path)
    conn = connect(db)
    row = conn.execute("SELECT title, abstract, authors FROM papers WHERE paper_id='0704.0001'").fetchone()
    with live_server(db) as url:
        env = dict(os.environ, HF_ENDPOINT=url, HF_HUB_DISABLE_TELEMETRY="1")
        env.pop("HF_TOKEN", None)
        proc = subprocess.run([sys.executable, "-c", CLIENT % {"hostile": HOSTILE_ID}], env=env,
                              capture_output=True, text=True, timeout=180)
        assert proc.returncode == 0, proc.stderr[-3000:]
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        over = httpx.get(f"{url}/api/papers/search", params={"q": "quantum", "limit": 121})
    md = out["md"]
    assert md.startswith("# " + latex.to_text(row[0]).split()[0])
    assert "## Abstract" in md and latex.to_text(row[1])[:60].replace("[", "\\[") in md
    assert json.loads(row[2])[0] in md and "https://arxiv.org/abs/0704.0001" in md
    hostile = out["hostile"]
    assert "<script>" not in hostile and "\\<script\\>" in hostile  # escaped: inert as Markdown
    assert "](javascript" not in hostile
    assert out["missing"] == 404
    assert set(out["bad"].values()) == {400}, out["bad"]
    assert out["search120"] > 100 and out["newest120"] == 120
    assert over.status_code == 422


def test_markdown_by_accept_header_and_hidden_papers(tmp_path):
    db = demo_db(tmp_path)
    client = make_client(db)
    by_accept = client.get("/papers/0704.0001", headers={"Accept": "text/markdown"})
    assert by_accept.status_code == 200
    assert by_accept.headers["content-type"].startswith("text/markdown")
    assert by_accept.text == client.get("/papers/0704.0001.md").text
    html = client.get("/papers/0704.0001")
    assert html.headers["content-type"].startswith("text/html")  # the cache keeps them apart
    assert client.get("/papers/0704.0001", headers={"Accept": "text/markdown"}).text.startswith("# ")
    connect(db).execute("UPDATE papers SET hidden=1 WHERE paper_id='0704.0002'")
    assert client.get("/papers/0704.0002.md").status_code == 404
    assert client.get("/papers/9999.99999.md").status_code == 404


def test_all_papers_by_cursor(tmp_path):
    db = demo_db(tmp_path)
    conn = connect(db)
    conn.execute("UPDATE papers SET hidden=1 WHERE paper_id='0704.0003'")
    expected = [r[0] for r in conn.execute(
        "SELECT paper_id FROM papers WHERE hidden=0 ORDER BY COALESCE(published,'') DESC, id DESC")]
    client = make_client(db)
    seen, url, pages = [], "/api/papers?limit=37", 0
    while url:
        resp = client.get(url)
        assert resp.status_code == 200
        seen += [p["id"] for p in resp.json()]
        pages += 1
        nxt = resp.headers.get("x-next-cursor")
        if nxt:
            assert 'rel="next"' in resp.headers["link"] and nxt in resp.headers["link"]
        url = f"/api/papers?limit=37&cursor={nxt}" if nxt else None
    assert seen == expected and "0704.0003" not in seen
    assert pages == -(-len(expected) // 37)
    first = client.get("/api/papers?limit=3").json()
    assert [p["id"] for p in first] == expected[:3]
    assert {"id", "title", "summary", "authors", "publishedAt", "upvotes"} <= set(first[0])
    for bad in ("nonsense!!", "AAAA", "x" * 201):
        r = client.get("/api/papers", params={"cursor": bad})
        assert r.status_code in (400, 422) and "error" in r.json()
    assert client.get("/api/papers", params={"cursor": "bm9wZQ"}).status_code == 400
    assert client.get("/api/papers?limit=0").status_code == 422


def test_hf_cli_papers_read(tmp_path):
    import shutil

    hf_cli = shutil.which("hf", path=os.path.dirname(sys.executable)) or shutil.which("hf")
    if hf_cli is None:
        pytest.skip("the hf command of huggingface_hub is not installed")
    db = demo_db(tmp_path)
    with live_server(db) as url:
        env = dict(os.environ, HF_ENDPOINT=url, HF_HUB_DISABLE_TELEMETRY="1", NO_COLOR="1")
        env.pop("HF_TOKEN", None)
        proc = subprocess.run([hf_cli, "papers", "read", "0704.0001"], env=env, capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert proc.stdout.strip() == httpx.get(f"{url}/papers/0704.0001.md").text.strip()
        assert "## Abstract" in proc.stdout
        missing = subprocess.run([hf_cli, "papers", "read", "9999.99999"], env=env, capture_output=True, text=True,
                                 timeout=120)
        assert missing.returncode != 0
