"""Freshness benchmark: N new papers from an OAI-PMH endpoint to searchable.

A local HTTP server on 127.0.0.1 serves ListRecords pages (arXivRaw, 1,000
records a page like arXiv) generated from the real samples in
``../shared/data/arxiv`` (real titles/abstracts/authors, new ids, varied
titles). The harvester runs with delay 0 (benchmark only; real arXiv needs 3 s
a page: 10 pages = 30 s of politeness, not counted here), then the search index
is brought up to date: lexical FTS5, embeddings (real int8 ONNX MiniLM on CPU
unless --embedder says otherwise), similar-paper lists.

    python bench/harvest_freshness.py                # 10,000 records, onnx embedder
    python bench/harvest_freshness.py -n 2000 --embedder fake

Prints one JSON object (and a Markdown table row with --markdown).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from harvest_support import LocalServer, list_records_xml, sample_records  # noqa: E402


class TimedFetcher:
    """Wraps PoliteFetcher.get to split network time from parse+import time."""

    def __init__(self, inner):
        self.inner, self.seconds, self.bytes = inner, 0.0, 0

    def get(self, url, params):
        t = time.perf_counter()
        resp = self.inner.get(url, params)
        self.seconds += time.perf_counter() - t
        self.bytes += len(resp.content)
        return resp

    def close(self):
        self.inner.close()


def prerender(records: list[dict], page_size: int) -> list[bytes]:
    """All pages rendered up front, so the server costs nothing during the timed run."""
    pages = []
    for i in range(0, len(records), page_size):
        nxt = i + page_size
        token = f"bench|{nxt}" if nxt < len(records) else None
        req = {"verb": "ListRecords", "metadataPrefix": "arXivRaw", "set": "cs"} if i == 0 else \
            {"verb": "ListRecords", "resumptionToken": f"bench|{i}"}
        pages.append(list_records_xml(records[i:nxt], "arXivRaw", req, token, i, len(records)).encode())
    return pages


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=10_000)
    ap.add_argument("--page-size", type=int, default=1000)
    ap.add_argument("--embedder", default="onnx", help="onnx | torch | fake | none (lexical only)")
    ap.add_argument("--shared", default=os.environ.get("PAPERWIRE_SHARED", str(ROOT.parent / "shared")))
    ap.add_argument("--db", help="database file (default: a fresh temporary one)")
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()

    from paperwire.harvest import PoliteFetcher, harvest

    cpu: dict = {}

    def log(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)
    from paperwire.settings import Settings
    from paperwire.sources.oai_pmh import parse_page
    from paperwire.store.db import connect

    t = time.perf_counter()
    records = sample_records(args.n, shared=Path(args.shared), seed=1)
    pages = prerender(records, args.page_size)
    gen_s = time.perf_counter() - t

    def handle(path, params):
        tok = params.get("resumptionToken")
        k = 0 if not tok else int(tok.split("|")[1]) // args.page_size
        return 200, {"Content-Type": "text/xml; charset=utf-8"}, pages[k]

    tmp = tempfile.TemporaryDirectory()
    db = Path(args.db) if args.db else Path(tmp.name) / "bench.db"
    conn = connect(db)
    settings = Settings(db_path=db, harvest_delay=0.0)
    result: dict = {"records": args.n, "pages": len(pages), "page_bytes_total": sum(map(len, pages)),
                    "embedder": args.embedder, "generate_s": round(gen_s, 2)}

    with LocalServer(handle) as srv:
        fetcher = TimedFetcher(PoliteFetcher(settings, delay=0.0))
        t0, c0 = time.perf_counter(), time.process_time()
        rep = harvest(conn, settings, set_spec="cs", base_url=srv.url + "/oai", fetcher=fetcher)
        harvest_s = time.perf_counter() - t0
        cpu["harvest_cpu_s"] = round(time.process_time() - c0, 2)  # includes the in-process server thread
        log(f"harvest: {rep.added} added in {harvest_s:.1f}s")
        fetcher.close()
    # parse-only pass over the same bytes, to split the harvest time
    t = time.perf_counter()
    for i, p in enumerate(pages):
        parse_page(p, f"page {i + 1}")
    parse_s = time.perf_counter() - t
    result.update(harvest_s=round(harvest_s, 2), fetch_s=round(fetcher.seconds, 2), parse_s=round(parse_s, 2),
                  import_s=round(harvest_s - fetcher.seconds - parse_s, 2), added=rep.added, skipped=rep.skipped,
                  harvest_records_per_s=round(args.n / harvest_s, 1))

    index_steps: dict = {}
    c1 = time.process_time()
    t1 = time.perf_counter()
    try:
        from paperwire.index import build
    except ImportError as exc:
        result["index"] = f"missing: {exc}"
    else:
        t, c = time.perf_counter(), time.process_time()
        lex = build.update_lexical(conn)
        index_steps["lexical_s"] = round(time.perf_counter() - t, 2)
        cpu["lexical_cpu_s"] = round(time.process_time() - c, 2)
        log(f"lexical: {index_steps['lexical_s']}s")
        if args.embedder != "none":
            from paperwire.index.embeddings import get_embedder

            emb = get_embedder(args.embedder)
            t, c = time.perf_counter(), time.process_time()
            e = build.update_embeddings(conn, emb, progress=sys.stderr.isatty())
            index_steps["embed_s"] = round(time.perf_counter() - t, 2)
            cpu["embed_cpu_s"] = round(time.process_time() - c, 2)
            log(f"embeddings: {index_steps['embed_s']}s")
            index_steps["embedded"] = e.get("embedded")
            index_steps["model"] = emb.name
            t, c = time.perf_counter(), time.process_time()
            build.update_similar(conn, emb.name)
            index_steps["similar_s"] = round(time.perf_counter() - t, 2)
            cpu["similar_cpu_s"] = round(time.process_time() - c, 2)
            log(f"similar: {index_steps['similar_s']}s")
        # a final update_index call must find nothing left to do (the contract sync uses)
        t = time.perf_counter()
        again = build.update_index(conn, embedder=None if args.embedder == "none" else emb,
                                   semantic=args.embedder != "none")
        index_steps["update_index_noop_s"] = round(time.perf_counter() - t, 2)
        index_steps["lexical_indexed"] = lex.get("indexed")
        del again
    index_s = time.perf_counter() - t1
    total = harvest_s + index_s
    cpu["total_cpu_s"] = round(cpu["harvest_cpu_s"] + time.process_time() - c1, 2)
    # CPU seconds over the cores used are what a dedicated machine would need at best;
    # on a shared machine the wall clock mostly measures the neighbours.
    result.update(cpu)
    result.update(index_steps, index_s=round(index_s, 2), total_s=round(total, 2),
                  end_to_end_records_per_s=round(args.n / total, 1))

    # searchable? look up a few harvested titles
    try:
        from paperwire.index.search import search

        probe = [records[i] for i in (0, args.n // 2, args.n - 1)]
        mode = "lexical" if args.embedder == "none" else "hybrid"
        found = 0
        for r in probe:
            res = search(conn, " ".join(r["title"].split()[:8])[:200], mode=mode, limit=10,
                         **({"embedder": emb} if args.embedder != "none" else {}))
            found += any(h.paper_id == r["id"] for h in res.hits)
        result["search_probe"] = f"{found}/{len(probe)} found ({mode})"
    except Exception as exc:  # noqa: BLE001 - report, the timings stand
        result["search_probe"] = f"error: {type(exc).__name__}: {exc}"

    steps = {k: result.get(k, 0) for k in ("fetch_s", "parse_s", "import_s", "lexical_s", "embed_s", "similar_s")}
    result["dominant_step"] = max(steps, key=steps.get)
    result["machine"] = (f"{os.cpu_count()} cores, no GPU, Python {platform.python_version()}, "
                         f"load average at end {os.getloadavg()[0]:.1f} (shared machine)")
    result["date"] = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    conn.close()
    print(json.dumps(result, indent=2))
    if args.markdown:
        print(f"| {args.n} | {args.embedder} | {result['harvest_s']} | {result.get('lexical_s')} | "
              f"{result.get('embed_s', '-')} | {result.get('similar_s', '-')} | {result['total_s']} | "
              f"{result['end_to_end_records_per_s']} | {result['dominant_step']} |")


if __name__ == "__main__":
    main()
