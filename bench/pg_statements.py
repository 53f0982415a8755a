"""Store statements per request on PostgreSQL: what a search or a home page sends the server.

    cd bench && PYTHONPATH=../tests python pg_statements.py [--papers 600]

A throwaway cluster (tests/pg_support.py), a small synthetic store with a lexical index, the
real app in-process (page cache off). After a warm-up request per route, every statement the
node's connections execute is counted over three requests per route. Each statement is a
network round trip on PostgreSQL (about 0.1-0.2 ms of node and server CPU together), where on
SQLite the same read is an in-process page read.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

ROUTES = {
    "search": ["/api/papers/search?q=" + urllib.parse.quote(q) for q in ("paper graphs", "neutrino mass", "quantum gravity")],
    "home": ["/?v=1", "/?v=2", "/?v=3"],
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--papers", type=int, default=600)
    args = ap.parse_args()

    from fastapi.testclient import TestClient
    from pg_support import PgCluster, pg_bin_dir

    from paperwire.index.build import update_index
    from paperwire.settings import Settings
    from paperwire.sources import import_files
    from paperwire.store import dialect
    from paperwire.store.db import connect
    from paperwire.web.app import create_app

    cluster = PgCluster(pg_bin_dir()).start()
    try:
        url = cluster.create_database()
        conn = connect(url)
        snap = Path(tempfile.mkdtemp()) / "s.jsonl"
        snap.write_text("\n".join(json.dumps({
            "id": f"2403.{i:05d}", "title": f"Paper {i} on graphs and neutrino mass {i % 17}",
            "abstract": f"Abstract {i} on quantum gravity.", "authors": "Ada Lovelace", "categories": "cs.LG",
            "versions": [{"version": "v1", "created": "Mon, 04 Mar 2024 10:00:00 GMT"}]})
            for i in range(1, args.papers + 1)) + "\n")
        import_files(conn, [snap], progress=False)
        update_index(conn, semantic=False)
        conn.close()
        app = create_app(Settings(db_path=url, secret_key="x" * 40, embedder="none"), cache=False)
        real = dialect.PgConnection.execute
        report = {}
        with TestClient(app) as client:
            for name, urls in ROUTES.items():
                for u in urls:
                    assert client.get(u + "&warm=1").status_code == 200
                seen: collections.Counter = collections.Counter()

                def counting(self, sql, params=None, _seen=seen):
                    _seen[" ".join(sql.split())[:80]] += 1
                    return real(self, sql, params)

                dialect.PgConnection.execute = counting
                try:
                    for u in urls:
                        assert client.get(u).status_code == 200
                finally:
                    dialect.PgConnection.execute = real
                report[name] = {"statements_per_request": round(sum(seen.values()) / len(urls), 2),
                                "by_statement": dict(seen.most_common())}
        print(json.dumps(report, indent=1))
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
