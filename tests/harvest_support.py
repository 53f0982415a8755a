"""Test helpers for the harvest area: a real HTTP server on 127.0.0.1 that plays an
OAI-PMH 2.0 repository (arXiv / arXivRaw metadata), the arXiv API and an
HF-compatible ``/api/daily_papers`` endpoint. Also used by bench/harvest_freshness.py.

Responses are written here following the OAI-PMH 2.0 protocol: ListRecords pages
with resumption tokens (empty token on the last page), ``noRecordsMatch`` and
``badResumptionToken`` errors, ``<header status="deleted">`` records.
"""

from __future__ import annotations

import itertools
import json
import random
import threading
import time
from dataclasses import dataclass, field
from email.utils import format_datetime
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape, quoteattr

FIXTURES = Path(__file__).parent / "fixtures"
OAI_HEAD = ('<?xml version="1.0" encoding="UTF-8"?>\n<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="http://www.openarchives.org/OAI/2.0/ '
            'http://www.openarchives.org/OAI/2.0/OAI-PMH.xsd">\n')
Response = tuple  # (status, headers dict, body bytes)


@dataclass
class Request:
    path: str
    params: dict
    headers: dict
    at: float


class LocalServer:
    """``ThreadingHTTPServer`` in a daemon thread; ``handler(path, params) -> (status, headers, body)``."""

    def __init__(self, handler: Callable[[str, dict], Response]):
        self.handler = handler
        self.requests: list[Request] = []
        outer = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802
                parts = urlsplit(self.path)
                params = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
                outer.requests.append(Request(parts.path, params, dict(self.headers), time.monotonic()))
                status, headers, body = outer.handler(parts.path, params)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                import sys

                if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
                    super().handle_error(request, client_address)  # a killed client is expected

        self.httpd = Server(("127.0.0.1", 0), H)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> "LocalServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def xml_response(body: str, status: int = 200, headers: dict | None = None) -> Response:
    return status, {"Content-Type": "text/xml; charset=utf-8", **(headers or {})}, body.encode("utf-8")


def json_response(obj, status: int = 200) -> Response:
    return status, {"Content-Type": "application/json"}, json.dumps(obj).encode()


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


# --- OAI-PMH documents ---------------------------------------------------------------------------


def record_xml(rec: dict, prefix: str = "arXivRaw") -> str:
    """One ``<record>``; ``rec`` keys: id, datestamp, sets, deleted, title, abstract, authors (list),
    categories (str), versions [(n, datetime)], doi, journal_ref, comments, license."""
    sets = "".join(f"<setSpec>{escape(s)}</setSpec>" for s in rec.get("sets", ["cs"]))
    status = ' status="deleted"' if rec.get("deleted") else ""
    head = (f'<record>\n<header{status}>\n <identifier>oai:arXiv.org:{rec["id"]}</identifier>\n'
            f' <datestamp>{rec["datestamp"]}</datestamp>\n {sets}\n</header>\n')
    if rec.get("deleted"):
        return head + "</record>\n"
    opt = ""
    for key, tag in (("comments", "comments"), ("journal_ref", "journal-ref"), ("doi", "doi"), ("license", "license")):
        if rec.get(key):
            opt += f"<{tag}>{escape(rec[key])}</{tag}>"
    versions = rec["versions"]
    if prefix == "arXivRaw":
        vx = "".join(f'<version version="v{n}"><date>{format_datetime(d, usegmt=True)}</date><size>{100 + n}kb</size>'
                     f"<source_type>D</source_type></version>" for n, d in versions)
        meta = (f'<arXivRaw xmlns="http://arxiv.org/OAI/arXivRaw/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
                f'xsi:schemaLocation="http://arxiv.org/OAI/arXivRaw/ http://arxiv.org/OAI/arXivRaw.xsd">\n'
                f'<id>{rec["id"]}</id><submitter>{escape(rec["authors"][0] if rec["authors"] else "anon")}</submitter>{vx}'
                f'<title>{escape(rec["title"])}</title><authors>{escape(", ".join(rec["authors"]))}</authors>'
                f'<categories>{escape(rec["categories"])}</categories>{opt}<abstract>{escape(rec["abstract"])}</abstract>'
                f"</arXivRaw>")
    else:
        authors = "".join(
            f"<author><keyname>{escape(a.split()[-1])}</keyname><forenames>{escape(' '.join(a.split()[:-1]))}</forenames></author>"
            if len(a.split()) > 1 else f"<author><keyname>{escape(a)}</keyname></author>" for a in rec["authors"])
        upd = f"<updated>{versions[-1][1]:%Y-%m-%d}</updated>" if len(versions) > 1 else ""
        meta = (f'<arXiv xmlns="http://arxiv.org/OAI/arXiv/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
                f'xsi:schemaLocation="http://arxiv.org/OAI/arXiv/ http://arxiv.org/OAI/arXiv.xsd">\n'
                f'<id>{rec["id"]}</id><created>{versions[0][1]:%Y-%m-%d}</created>{upd}<authors>{authors}</authors>'
                f'<title>{escape(rec["title"])}</title><categories>{escape(rec["categories"])}</categories>{opt}'
                f'<abstract>{escape(rec["abstract"])}</abstract></arXiv>')
    return head + f"<metadata>\n{meta}\n</metadata>\n</record>\n"


def list_records_xml(records: list[dict], prefix: str, request: dict, token: str | None,
                     cursor: int, complete: int) -> str:
    attrs = "".join(f" {k}={quoteattr(v)}" for k, v in request.items())
    tok = (f'<resumptionToken cursor="{cursor}" completeListSize="{complete}">{escape(token)}</resumptionToken>'
           if token else f'<resumptionToken cursor="{cursor}" completeListSize="{complete}"/>')
    body = "".join(record_xml(r, prefix) for r in records)
    return (OAI_HEAD + f"<responseDate>{datetime.now(timezone.utc):%Y-%m-%dT%H:%M:%SZ}</responseDate>\n"
            f'<request{attrs}>http://export.arxiv.org/oai2</request>\n<ListRecords>\n{body}{tok}\n</ListRecords>\n</OAI-PMH>\n')


def error_xml(code: str, message: str) -> str:
    return (OAI_HEAD + f"<responseDate>{datetime.now(timezone.utc):%Y-%m-%dT%H:%M:%SZ}</responseDate>\n"
            f'<request verb="ListRecords">http://export.arxiv.org/oai2</request>\n'
            f'<error code="{code}">{escape(message)}</error>\n</OAI-PMH>\n')


@dataclass
class FakeRepository:
    """An OAI-PMH repository over ``records`` (dicts for :func:`record_xml`).

    Hooks: ``before(page_no, params)`` may return a response to send instead
    (503s, malformed pages); ``block_page`` makes that page wait for ``release``
    (and sets ``reached``) so a test can kill the harvester mid-run.
    """

    records: list[dict]
    page_size: int = 3
    before: Callable[[int, dict], Response | None] | None = None
    block_page: int | None = None
    release: threading.Event = field(default_factory=threading.Event)
    reached: threading.Event = field(default_factory=threading.Event)
    tokens: dict = field(default_factory=dict)
    _seq: itertools.count = field(default_factory=itertools.count)

    def handle(self, path: str, params: dict) -> Response:
        if params.get("verb") != "ListRecords":
            return xml_response(error_xml("badVerb", "only ListRecords here"))
        if "resumptionToken" in params:
            state = self.tokens.get(params["resumptionToken"])
            if state is None:
                return xml_response(error_xml("badResumptionToken", "The value of the resumptionToken argument is invalid or expired."))
            query, offset = state
        else:
            query = {k: params[k] for k in ("metadataPrefix", "set", "from", "until") if params.get(k)}
            if query.get("metadataPrefix") not in ("arXiv", "arXivRaw"):
                return xml_response(error_xml("cannotDisseminateFormat", "unknown metadataPrefix"))
            offset = 0
        page_no = offset // self.page_size + 1
        if self.before:
            alt = self.before(page_no, params)
            if alt is not None:
                return alt
        if self.block_page == page_no:
            self.reached.set()
            self.release.wait(60)
        matching = self.select(query)
        if not matching:
            return xml_response(error_xml("noRecordsMatch", "The combination of the values of the from, until, set and "
                                          "metadataPrefix arguments results in an empty list."))
        chunk = matching[offset : offset + self.page_size]
        nxt = offset + self.page_size
        token = None
        if nxt < len(matching):
            token = f"{next(self._seq)}|{nxt}"
            self.tokens[token] = (query, nxt)
        return xml_response(list_records_xml(chunk, query["metadataPrefix"], params, token, offset, len(matching)))

    def select(self, query: dict) -> list[dict]:
        out = []
        for r in self.records:
            if query.get("set") and not any(s == query["set"] or s.startswith(query["set"] + ":") for s in r.get("sets", ["cs"])):
                continue
            if query.get("from") and r["datestamp"] < query["from"]:
                continue
            if query.get("until") and r["datestamp"] > query["until"]:
                continue
            out.append(r)
        return sorted(out, key=lambda r: (r["datestamp"], r["id"]))


# --- realistic records from the shared arXiv samples ----------------------------------------------

_PREFIXES = ["", "Revisiting ", "Towards ", "On ", "Scaling ", "Learning ", "Rethinking ", "A Note on "]


def sample_records(n: int, *, shared: Path, start: str = "2026-11-01", days: int = 10, seed: int = 0,
                   id_prefix: str = "2611") -> list[dict]:
    """``n`` OAI records built from the real arXiv samples in ``shared/data/arxiv``:
    real titles/abstracts/authors/categories, new ids ``<id_prefix>.NNNNN``, varied titles,
    datestamps spread over ``days`` days, 1-3 versions."""
    from paperwire.sources.arxiv_snapshot import parse_csv, parse_jsonl

    data = shared / "data" / "arxiv"
    pool = [r for r in parse_jsonl(data / "arxiv-metadata-200.jsonl") if hasattr(r, "title")]
    csv_path = data / "arxiv-metadata-2000.csv"
    if csv_path.exists():
        pool += [r for r in parse_csv(csv_path) if hasattr(r, "title")]
    pool = list({r.arxiv_id: r for r in pool}.values())  # the two samples overlap
    rng = random.Random(seed)
    day0 = datetime.strptime(start, "%Y-%m-%d").replace(tzinfo=timezone.utc)
    out = []
    for i in range(n):
        src = pool[i % len(pool)]
        rnd = i // len(pool)
        title = (_PREFIXES[rnd % len(_PREFIXES)] + src.title) if rnd else src.title
        if rnd >= len(_PREFIXES):
            title += f" ({rnd // len(_PREFIXES) + 1})"
        abstract = src.abstract
        if rnd:
            sents = abstract.split(". ")
            rng.shuffle(sents)
            abstract = ". ".join(sents)
        d = rng.randrange(days)
        created = day0 + timedelta(days=d, seconds=rng.randrange(86400))
        nver = rng.choice([1, 1, 1, 2, 3])
        versions = [(v + 1, created + timedelta(days=2 * v)) for v in range(nver)]
        cats = " ".join(src.categories) or "cs.LG"
        out.append({
            "id": f"{id_prefix}.{i + 1:05d}", "datestamp": f"{(created + timedelta(days=2 * (nver - 1))):%Y-%m-%d}",
            "sets": [cats.split()[0].split(".")[0]], "title": title, "abstract": abstract, "authors": src.authors or ["Anonymous"],
            "categories": cats, "versions": versions, "doi": src.doi, "journal_ref": src.journal_ref,
            "comments": src.comments, "license": src.license,
        })
    return out


def simple_records(n: int, *, start: int = 1, datestamp: str = "2026-11-20", prefix: str = "2611",
                   version: int = 1, title: str = "Paper number {i} on efficient retrieval") -> list[dict]:
    """Small synthetic records (fast, no shared data needed)."""
    base = datetime(2026, 11, 2, 12, 0, tzinfo=timezone.utc)
    return [{
        "id": f"{prefix}.{i:05d}", "datestamp": datestamp, "sets": ["cs"], "title": title.format(i=i),
        "abstract": f"We study problem {i} and report results on {i % 7} benchmarks.", "authors": [f"Author {i}", "Kim Lee"],
        "categories": "cs.LG cs.IR", "versions": [(v, base + timedelta(days=v)) for v in range(1, version + 1)],
    } for i in range(start, start + n)]


# --- HF daily papers and arXiv API ----------------------------------------------------------------


def hf_handler(days: dict[str, list]) -> Callable[[str, dict], Response]:
    """``/api/daily_papers?date=&limit=&p=`` over ``{date: [entries]}``."""

    def handle(path: str, params: dict) -> Response:
        if path != "/api/daily_papers":
            return json_response({"error": "not found"}, 404)
        entries = days.get(params.get("date", ""), [])
        limit = int(params.get("limit", 50))
        p = int(params.get("p", 0))
        return json_response(entries[p * limit : (p + 1) * limit])

    return handle


def atom_feed(entries: list[dict]) -> str:
    """arXiv API Atom feed; entries: id (with version), title, summary, authors, categories, published, updated."""
    out = ['<?xml version="1.0" encoding="UTF-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom" '
           'xmlns:arxiv="http://arxiv.org/schemas/atom" xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/">'
           '<title type="html">ArXiv Query</title><id>http://arxiv.org/api/x</id>'
           f'<opensearch:totalResults>{len(entries)}</opensearch:totalResults>']
    for e in entries:
        if e.get("error"):
            out.append(f'<entry><id>http://arxiv.org/api/errors#{escape(e["error"])}</id><title>Error</title>'
                       f'<summary>{escape(e["error"])}</summary></entry>')
            continue
        authors = "".join(f"<author><name>{escape(a)}</name></author>" for a in e["authors"])
        cats = "".join(f'<category term="{c}" scheme="http://arxiv.org/schemas/atom"/>' for c in e["categories"])
        out.append(f'<entry><id>http://arxiv.org/abs/{e["id"]}</id><updated>{e["updated"]}</updated>'
                   f'<published>{e["published"]}</published><title>{escape(e["title"])}</title>'
                   f'<summary>{escape(e["summary"])}</summary>{authors}'
                   f'<arxiv:primary_category term="{e["categories"][0]}" scheme="http://arxiv.org/schemas/atom"/>{cats}</entry>')
    out.append("</feed>")
    return "".join(out)


def api_handler(papers: dict[str, dict]) -> Callable[[str, dict], Response]:
    """``/api/query?id_list=a,b`` over ``{versionless id: entry dict}``; malformed ids get an error entry."""
    import re

    def handle(path: str, params: dict) -> Response:
        entries = []
        for raw in params.get("id_list", "").split(","):
            if not re.match(r"^(\d{4}\.\d{4,5}|[a-z\-]+(\.[A-Z]{2})?/\d{7})(v\d+)?$", raw):
                entries.append({"error": f"incorrect id format for {raw}"})
            elif raw in papers:
                entries.append(papers[raw])
        return xml_response(atom_feed(entries), headers={"Content-Type": "application/atom+xml; charset=utf-8"})

    return handle


def router(routes: dict[str, Callable[[str, dict], Response]]) -> Callable[[str, dict], Response]:
    """Dispatch by path prefix (longest first)."""
    keys = sorted(routes, key=len, reverse=True)

    def handle(path: str, params: dict) -> Response:
        for k in keys:
            if path.startswith(k):
                return routes[k](path, params)
        return 404, {"Content-Type": "text/plain"}, b"not found"

    return handle
