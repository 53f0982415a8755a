"""Staying fresh: incremental OAI-PMH harvesting, submitted ids via the arXiv API,
and the Hugging Face daily-papers list.

Fetching is done by :class:`PoliteFetcher` around one injected ``httpx.Client``
(tests pass one pointed at a local server, or an ``httpx.MockTransport``);
parsing lives in :mod:`paperwire.sources`. Politeness follows arXiv's terms:
one connection, at least ``settings.harvest_delay`` seconds between requests,
``503`` + ``Retry-After`` honoured, bounded exponential back-off on errors and a
User-Agent naming ``settings.contact_email``.

Resumability: each OAI-PMH page is imported in ONE transaction together with
the cursor it leads to (the next resumption token, the newest datestamp seen),
so after a crash or SIGKILL the stored cursor describes exactly what the store
holds and a rerun continues with the next page. Imports are idempotent, so
overlap (re-fetching a page, or a day of datestamps) never duplicates papers.
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Callable

import httpx

from paperwire import __version__
from paperwire.ingest import BadRecord, ImportReport, import_records
from paperwire.model import PaperRecord, utcnow_iso
from paperwire.settings import Settings
from paperwire.sources.oai_pmh import OaiXMLError, parse_page
from paperwire.store import harvest as hsql
from paperwire.store.db import transaction

METADATA_PREFIXES = ("arXivRaw", "arXiv")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class HarvestError(Exception):
    """A harvest step failed; the message is for people. The stored cursor is unchanged."""


def user_agent(settings: Settings) -> str:
    """``paperwire/<version> (+<site>; mailto:<contact>)``: arXiv asks harvesters to be reachable."""
    return f"paperwire/{__version__} (+{settings.base_url}; mailto:{settings.contact_email})"


def make_client(settings: Settings) -> httpx.Client:
    """One keep-alive connection, generous read timeout (OAI pages can be slow to build)."""
    return httpx.Client(
        headers={"User-Agent": user_agent(settings)},
        timeout=httpx.Timeout(120.0, connect=20.0),
        limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
        follow_redirects=True,
    )


class PoliteFetcher:
    """GET with a minimum gap between requests, Retry-After and bounded back-off.

    ``sleep`` and ``clock`` are injectable so tests can prove the waits without
    waiting. ``waits`` lists every pause taken (seconds), for reports and tests.
    """

    def __init__(self, settings: Settings, client: httpx.Client | None = None, *, delay: float | None = None,
                 max_retries: int = 5, backoff: float = 5.0, max_backoff: float = 300.0,
                 max_retry_after: float = 3600.0, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic):
        self.settings = settings
        self.client = client if client is not None else make_client(settings)
        self._owns_client = client is None
        self.delay = settings.harvest_delay if delay is None else delay
        self.max_retries, self.backoff, self.max_backoff = max_retries, backoff, max_backoff
        self.max_retry_after = max_retry_after
        self.sleep, self.clock = sleep, clock
        self.headers = {"User-Agent": user_agent(settings)}
        self.last_done: float | None = None
        self.requests = 0
        self.waits: list[float] = []

    def close(self) -> None:
        if self._owns_client:
            self.client.close()

    def _pause(self, seconds: float) -> None:
        if seconds > 0:
            self.waits.append(seconds)
            self.sleep(seconds)

    def _wait_turn(self) -> None:
        if self.last_done is not None:
            self._pause(self.delay - (self.clock() - self.last_done))

    def get(self, url: str, params: dict) -> httpx.Response:
        """The response of a successful GET; raises :class:`HarvestError` when retries run out."""
        failures = 0
        while True:
            self._wait_turn()
            self.requests += 1
            try:
                resp = self.client.get(url, params=params, headers=self.headers)
                resp.read()
            except httpx.TransportError as exc:
                self.last_done = self.clock()
                failures += 1
                if failures > self.max_retries:
                    raise HarvestError(f"{url}: {type(exc).__name__}: {exc} (gave up after {failures} tries)") from None
                self._pause(self._backoff(failures))
                continue
            self.last_done = self.clock()
            status = resp.status_code
            if status in (429, 503) or status >= 500:
                failures += 1
                if failures > self.max_retries:
                    raise HarvestError(f"{resp.url}: HTTP {status} (gave up after {failures} tries)")
                wait = retry_after(resp)
                if wait is None:
                    wait = self._backoff(failures)
                elif wait > self.max_retry_after:
                    raise HarvestError(f"{resp.url}: HTTP {status}, server asks to retry after {wait:.0f}s; try later")
                # Retry-After counts from the 503; _wait_turn tops it up to the delay if shorter.
                self._pause(wait)
                continue
            if status >= 400:
                raise HarvestError(f"{resp.url}: HTTP {status}: {resp.text[:200]}")
            return resp

    def _backoff(self, failures: int) -> float:
        return min(self.max_backoff, max(self.backoff, self.delay) * 2 ** (failures - 1))


def retry_after(resp: httpx.Response) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date), if any."""
    raw = resp.headers.get("Retry-After")
    if not raw:
        return None
    raw = raw.strip()
    if raw.isdigit():
        return float(raw)
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


@dataclass
class HarvestReport:
    """What one harvest of one list did."""

    job: str
    set_spec: str | None
    from_date: str | None = None
    until: str | None = None
    status: str = "running"  # done | empty | partial
    resumed: bool = False
    restarts: int = 0  # runs restarted after an expired resumption token
    pages: int = 0
    records: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    stale: int = 0  # arXiv-format records older than the stored paper (not applied)
    deleted: int = 0
    hidden: int = 0
    errors: list[str] = field(default_factory=list)
    changed_ids: list[str] = field(default_factory=list)
    last_datestamp: str | None = None

    def absorb(self, rep: ImportReport) -> None:
        self.added += rep.added
        self.updated += rep.updated
        self.unchanged += rep.unchanged + rep.duplicates  # a record twice in one harvest: seen, unchanged
        self.skipped += rep.skipped
        self.errors.extend(str(e) for e in rep.errors[: max(0, 1000 - len(self.errors))])
        self.changed_ids.extend(rep.changed_ids)

    def to_dict(self, with_ids: bool = False) -> dict:
        d = asdict(self)
        if not with_ids:
            d["changed"] = len(d.pop("changed_ids"))
        return d


def check_date(value: str | None, what: str) -> str | None:
    """Validate an OAI-PMH day-granularity date (``YYYY-MM-DD``)."""
    if value is None:
        return None
    if not _DATE.match(value):
        raise ValueError(f"{what} must be YYYY-MM-DD, got {value!r}")
    datetime.strptime(value, "%Y-%m-%d")
    return value


def harvest(conn, settings: Settings, *, set_spec: str | None = None, from_date: str | None = None,
            until: str | None = None, metadata_prefix: str = "arXivRaw", base_url: str | None = None,
            client: httpx.Client | None = None, fetcher: PoliteFetcher | None = None,
            max_pages: int | None = None, on_page: Callable[[HarvestReport], None] | None = None) -> HarvestReport:
    """Harvest one OAI-PMH list (``ListRecords`` for one set) into the store.

    Without ``from_date``: resume an interrupted run from its stored resumption
    token, else start from the newest datestamp of the last finished run (the
    whole list the first time). Raises :class:`HarvestError` on a failure that
    retries did not fix; what was committed stays, with its cursor.
    """
    if metadata_prefix not in METADATA_PREFIXES:
        raise ValueError(f"metadata prefix must be one of {', '.join(METADATA_PREFIXES)}")
    check_date(from_date, "--from")
    check_date(until, "--until")
    if from_date and until and from_date > until:
        raise ValueError(f"--from {from_date} is after --until {until}")
    base_url = base_url or settings.oai_base_url
    job = hsql.job_key(base_url, metadata_prefix, set_spec)
    own = fetcher is None
    fetcher = fetcher or PoliteFetcher(settings, client)
    try:
        return _harvest(conn, job, base_url, metadata_prefix, set_spec, from_date, until, fetcher, max_pages, on_page)
    finally:
        if own:
            fetcher.close()


def _harvest(conn, job, base_url, prefix, set_spec, from_date, until, fetcher, max_pages, on_page) -> HarvestReport:
    state = hsql.get_state(conn, job)
    explicit = from_date is not None or until is not None
    report = HarvestReport(job=job, set_spec=set_spec)
    if (state and state["run_status"] == "running" and state["run_token"]
            and (not explicit or (from_date, until) == (state["run_from"], state["run_until"]))):
        token, run_from, run_until = state["run_token"], state["run_from"], state["run_until"]
        report.resumed = True
    else:
        token = None
        # An explicit window is taken as given (--until alone: everything up to that day);
        # otherwise continue from the newest datestamp of the last finished run.
        run_from = from_date if explicit else (state or {}).get("last_datestamp")
        run_until = until
        hsql.start_run(conn, job, base_url, prefix, set_spec, run_from, run_until)
    report.from_date, report.until = run_from, run_until

    while True:
        if token:
            params = {"verb": "ListRecords", "resumptionToken": token}
        else:
            params = {"verb": "ListRecords", "metadataPrefix": prefix}
            for k, v in (("set", set_spec), ("from", run_from), ("until", run_until)):
                if v:
                    params[k] = v
        origin = f"{base_url} page {report.pages + 1}" + (f" (resumptionToken {token})" if token else "")
        try:
            resp = fetcher.get(base_url, params)
            page = parse_page(resp.content, origin)
        except (HarvestError, OaiXMLError) as exc:
            hsql.set_error(conn, job, str(exc))
            raise HarvestError(str(exc)) from None

        if page.error_code == "noRecordsMatch":
            with transaction(conn):
                hsql.finish_run(conn, job)
            report.status = "empty" if report.pages == 0 else "done"
            break
        if page.error_code == "badResumptionToken" and token and report.restarts < 2:
            # Tokens expire (hours); the records before it are committed and imports are
            # idempotent, so restarting the run from its own 'from' loses nothing.
            report.restarts += 1
            hsql.start_run(conn, job, base_url, prefix, set_spec, run_from, run_until)
            token = None
            continue
        if page.error_code:
            msg = f"{origin}: OAI-PMH error {page.error_code}: {page.error_message}"
            hsql.set_error(conn, job, msg)
            raise HarvestError(msg)

        if page.token and page.token == token:
            msg = f"{origin}: the repository returned the same resumption token again; stopping to avoid a loop"
            hsql.set_error(conn, job, msg)
            raise HarvestError(msg)
        _commit_page(conn, job, prefix, page, report)
        if on_page:
            on_page(report)
        if not page.token:
            report.status = "done"
            break
        token = page.token
        if max_pages and report.pages >= max_pages:
            report.status = "partial"
            break
    report.last_datestamp = (hsql.get_state(conn, job) or {}).get("last_datestamp")
    return report


def _commit_page(conn, job: str, prefix: str, page, report: HarvestReport) -> None:
    """Records, deletions and the cursor of one page: all or nothing."""
    items = page.items
    with transaction(conn):
        if prefix == "arXiv":
            items = _drop_stale(conn, items, report)
        rep = import_records(conn, items, track_changes=True)
        present = [r.arxiv_id for r in items if isinstance(r, PaperRecord) and r.arxiv_id]
        hsql.clear_deletions(conn, present)
        deleted = [(d.arxiv_id, d.datestamp) for d in page.deleted if d.arxiv_id]
        report.hidden += hsql.record_deletions(conn, deleted)
        hsql.save_page(conn, job, token=page.token, max_datestamp=page.max_datestamp, records=page.records_seen)
        if not page.token:
            hsql.finish_run(conn, job)
    report.pages += 1
    report.records += page.records_seen
    report.deleted += len(page.deleted)
    report.absorb(rep)


def _drop_stale(conn, items: list, report: HarvestReport) -> list:
    """The ``arXiv`` format has no version numbers: keep a record only if it is not older
    (by its ``updated`` date) than the stored paper."""
    recs = [r for r in items if isinstance(r, PaperRecord) and r.arxiv_id]
    stored = hsql.stored_versions(conn, (r.arxiv_id for r in recs))
    out = []
    for r in items:
        if isinstance(r, PaperRecord) and r.arxiv_id in stored:
            _, stored_updated = stored[r.arxiv_id]
            if stored_updated and r.updated and r.updated < stored_updated:
                report.stale += 1
                continue
        out.append(r)
    return out


# --- submitted ids: the arXiv API ---------------------------------------------------------------


def fetch_submissions(conn, settings: Settings, *, client: httpx.Client | None = None,
                      fetcher: PoliteFetcher | None = None, limit: int = 500, batch: int = 50) -> dict:
    """Fetch queued submissions (``paperwire.store.submissions``) from the arXiv API.

    Found ids are imported and marked done in one transaction; unknown or invalid
    ids are marked failed; a network failure leaves the rest queued for next time.
    """
    from paperwire.model import parse_arxiv_id
    from paperwire.sources.arxiv_api import ApiXMLError, parse_feed
    from paperwire.store import submissions as subs

    out = {"queued": 0, "done": 0, "failed": 0, "added": 0, "updated": 0, "errors": [], "changed_ids": []}
    pending = subs.pending_submissions(conn, limit=limit)
    out["queued"] = len(pending)
    if not pending:
        return out
    wanted: list[tuple[dict, str]] = []
    for sub in pending:
        parsed = parse_arxiv_id(sub["arxiv_id"])
        if parsed is None:
            subs.mark_submission(conn, sub["id"], "failed", f"not an arXiv id: {sub['arxiv_id']!r}")
            out["failed"] += 1
        else:
            wanted.append((sub, parsed[0]))
    own = fetcher is None
    fetcher = fetcher or PoliteFetcher(settings, client)
    try:
        for i in range(0, len(wanted), batch):
            chunk = wanted[i : i + batch]
            ids = list(dict.fromkeys(a for _, a in chunk))
            try:
                resp = fetcher.get(settings.arxiv_api_url, {"id_list": ",".join(ids), "max_results": len(ids)})
                feed = parse_feed(resp.content, f"{settings.arxiv_api_url}?id_list=...")
            except (HarvestError, ApiXMLError) as exc:
                out["errors"].append(f"{exc} ({len(wanted) - i} submissions left queued)")
                break
            out["errors"].extend(str(b) for b in feed.bad)
            with transaction(conn):
                rep = import_records(conn, [feed.records[a] for a in ids if a in feed.records], track_changes=True)
                for sub, a in chunk:
                    if a in feed.records:
                        subs.mark_submission(conn, sub["id"], "done")
                        out["done"] += 1
                    else:
                        why = "; ".join(feed.api_errors) or "not found on arXiv"
                        subs.mark_submission(conn, sub["id"], "failed", why[:500])
                        out["failed"] += 1
            out["added"] += rep.added
            out["updated"] += rep.updated
            out["changed_ids"].extend(rep.changed_ids)
    finally:
        if own:
            fetcher.close()
    return out


# --- Hugging Face daily papers ------------------------------------------------------------------


def sync_hf(conn, settings: Settings, *, date: str | None = None, base_url: str | None = None,
            client: httpx.Client | None = None, fetcher: PoliteFetcher | None = None,
            page_size: int = 100, max_pages: int = 20) -> dict:
    """Import one day's list from ``<hf_base_url>/api/daily_papers?date=`` (upvotes, submitter).

    Pages with ``limit``/``p`` until a short or repeated page; everything is
    imported in one transaction. Raises :class:`HarvestError` on an unusable response.
    """
    import json

    from paperwire.sources.hf_daily import parse_text

    date = check_date(date, "--date") or datetime.now(timezone.utc).strftime("%Y-%m-%d")
    url = (base_url or settings.hf_base_url).rstrip("/") + "/api/daily_papers"
    own = fetcher is None
    fetcher = fetcher or PoliteFetcher(settings, client)
    items: list[PaperRecord | BadRecord] = []
    seen: set[str] = set()
    pages = 0
    try:
        for p in range(max_pages):
            origin = f"{url}?date={date}&p={p}"
            resp = fetcher.get(url, {"date": date, "limit": page_size, "p": p})
            pages += 1
            try:
                body = json.loads(resp.text)
            except ValueError as exc:
                raise HarvestError(f"{origin}: not JSON: {exc}") from None
            if not isinstance(body, list):
                raise HarvestError(f"{origin}: expected a JSON array of daily papers, got {type(body).__name__}")
            parsed = list(parse_text(resp.text, origin))
            fresh = [r for r in parsed if isinstance(r, BadRecord) or r.arxiv_id not in seen]
            if not any(isinstance(r, PaperRecord) for r in fresh):
                break  # empty page, or a server that ignores 'p' and repeats itself
            items.extend(fresh)
            seen.update(r.arxiv_id for r in fresh if isinstance(r, PaperRecord))
            if len(body) < page_size:
                break
    finally:
        if own:
            fetcher.close()
    with transaction(conn):
        rep = import_records(conn, items, track_changes=True)
    return {"date": date, "pages": pages, "entries": len(items), **rep.to_dict(), "changed_ids": rep.changed_ids,
            "synced_at": utcnow_iso()}
