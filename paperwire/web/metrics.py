"""``/metrics`` in the Prometheus text format (prometheus-client), and who may read it.

* Request metrics, written by :class:`paperwire.web.ops.OpsMiddleware`: a counter by
  method, route template and status, a latency histogram by route template, and the
  number of 503s answered because the store was down.
* Store gauges, read from the store at scrape time by whichever process answers: store
  up and revision, index revisions and lag (:func:`paperwire.readiness.index_state`),
  worker job rows by job and state, running jobs whose lease holds or ran out.
* With ``paperwire serve --workers N`` the workers share one port (SO_REUSEPORT), so a
  scraper reaches a random worker and cannot scrape them one by one: prometheus-client's
  multiprocess mode (:func:`prepare_multiprocess`) has every worker write its samples to
  files in ``PROMETHEUS_MULTIPROC_DIR``, and a scrape sums them all. Per-process facts
  (memory, CPU, GC, the page cache's size) are left out then: summed, they would mislead.
"""

from __future__ import annotations

import atexit
import hmac
import ipaddress
import logging
import os
import shutil
import tempfile
from pathlib import Path

from prometheus_client import (CollectorRegistry, Counter, Histogram, disable_created_metrics, generate_latest)
from prometheus_client.core import GaugeMetricFamily

from paperwire import __version__, readiness
from paperwire.store import health

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
METRICS_ALLOW_ENV = "PAPERWIRE_METRICS_ALLOW"
METRICS_TOKEN_ENV = "PAPERWIRE_METRICS_TOKEN"
DEFAULT_METRICS_ALLOW = "127.0.0.1/32, ::1/128"  # loopback: a Prometheus or agent on the node itself
_PROXY_HEADERS = frozenset({b"x-forwarded-for", b"forwarded", b"x-real-ip"})

# The request metrics of this process (in multiprocess mode the samples go
# to the shared files as well, and a scrape reads those instead).
disable_created_metrics()  # no *_created series: they double the output and nothing here reads them
REGISTRY = CollectorRegistry(auto_describe=True)
REQUESTS = Counter("paperwire_http_requests", "HTTP requests answered, by method, route template and status",
                   ["method", "route", "status"], registry=REGISTRY)
LATENCY = Histogram("paperwire_http_request_duration_seconds", "Time to answer a request, by route template",
                    ["route"], registry=REGISTRY,
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))
UNAVAILABLE = Counter("paperwire_store_unavailable_responses", "Requests answered 503 because the store was "
                      "unreachable or busy", registry=REGISTRY)
if not os.environ.get(MULTIPROC_ENV):  # per-process facts; meaningless summed over workers
    from prometheus_client import GCCollector, PlatformCollector, ProcessCollector

    ProcessCollector(registry=REGISTRY)
    PlatformCollector(registry=REGISTRY)
    GCCollector(registry=REGISTRY)


class MetricsAccess:
    """Who may read ``/metrics``: a direct client from ``PAPERWIRE_METRICS_ALLOW`` (default:
    loopback only; ``none`` for nobody) that did not come through a proxy, or anyone with
    ``Authorization: Bearer $PAPERWIRE_METRICS_TOKEN`` when that is set.

    A request carrying ``X-Forwarded-For``, ``Forwarded`` or ``X-Real-IP`` is never
    trusted by address: behind nginx on the same box every visitor's TCP peer is
    127.0.0.1, and the loopback default would otherwise publish the metrics to the world.
    """

    def __init__(self, networks: list, token: str = ""):
        self.networks = networks
        self.token = token.encode()

    @classmethod
    def from_env(cls) -> "MetricsAccess":
        """The rules from the environment; ValueError naming a bad network."""
        spec = os.environ.get(METRICS_ALLOW_ENV, DEFAULT_METRICS_ALLOW)
        nets = []
        for part in spec.replace(";", ",").split(","):
            part = part.strip()
            if not part or part.lower() == "none":
                continue
            try:
                nets.append(ipaddress.ip_network(part, strict=False))
            except ValueError:
                raise ValueError(f"{METRICS_ALLOW_ENV}: {part!r} is not an address or network") from None
        return cls(nets, os.environ.get(METRICS_TOKEN_ENV, ""))

    def allowed(self, scope) -> bool:
        """Whether the request ``scope`` may read the metrics."""
        proxied = False
        auth = b""
        for k, v in scope.get("headers", ()):
            if k == b"authorization":
                auth = v
            elif k in _PROXY_HEADERS:
                proxied = True
        if self.token and auth[:7].lower() == b"bearer " and hmac.compare_digest(auth[7:].strip(), self.token):
            return True
        client = scope.get("client")
        if proxied or not client or not self.networks:
            return False
        try:
            ip = ipaddress.ip_address(client[0])
        except ValueError:
            return False
        return any(ip in n for n in self.networks)


class StoreCollector:
    """Gauges read from the store at scrape time (whichever process answers the scrape):
    store up and revision, index revisions and lag, job rows by state and lease."""

    def __init__(self, st, per_process: bool):
        self.st = st
        self.per_process = per_process

    def collect(self):
        """The gauges, read now (prometheus-client's collector protocol)."""
        up = GaugeMetricFamily("paperwire_store_up", "1 when the store answered this scrape")
        info = GaugeMetricFamily("paperwire_build_info", "paperwire version", labels=["version"])
        info.add_metric([__version__], 1)
        yield info
        if self.per_process:
            cache = self.st.cache
            yield GaugeMetricFamily("paperwire_page_cache_entries", "Pages in this process's cache",
                                    value=len(cache._data))
            yield GaugeMetricFamily("paperwire_page_cache_bytes", "Bytes in this process's page cache",
                                    value=cache.bytes)
        try:
            conn = self.st.conn()
            rev = health.store_rev(conn)
            state = readiness.index_state(conn, rev)
            jobs = health.job_counts(conn)
        except Exception as exc:  # noqa: BLE001 - a scrape during an outage says so
            if health.store_down_reason(exc) is None:
                log.warning("/metrics: reading the store failed: %s", repr(exc)[:300])
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield GaugeMetricFamily("paperwire_store_rev", "The store revision (meta.rev)", value=rev)
        irev = GaugeMetricFamily("paperwire_index_rev", "Store revision an index reflects", labels=["index"])
        lag = GaugeMetricFamily("paperwire_index_lag_revisions", "Store revision minus the index's revision",
                                labels=["index"])
        for name, s in state.items():
            irev.add_metric([name], s["rev"])
            lag.add_metric([name], s["lag"])
        yield irev
        yield lag
        by_state = GaugeMetricFamily("paperwire_jobs", "Worker job rows (worker_jobs) by job and state",
                                     labels=["job", "state"])
        for (job, state_), n in sorted(jobs["states"].items()):
            by_state.add_metric([job, state_], n)
        yield by_state
        leased = GaugeMetricFamily("paperwire_jobs_leased", "Running jobs whose lease holds", labels=["job"])
        expired = GaugeMetricFamily("paperwire_jobs_lease_expired", "Running jobs whose lease ran out "
                                    "(their worker died; another takes them over)", labels=["job"])
        for job, n in sorted(jobs["leased"].items()):
            leased.add_metric([job], n)
        for job, n in sorted(jobs["expired"].items()):
            expired.add_metric([job], n)
        yield leased
        yield expired


def scrape(st) -> bytes:
    """The Prometheus text of this node: request metrics (summed over the worker processes
    in multiprocess mode) followed by the store's gauges."""
    multiproc = os.environ.get(MULTIPROC_ENV)
    if multiproc:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=multiproc)
        head = generate_latest(registry)
    else:
        head = generate_latest(REGISTRY)
    store = CollectorRegistry()
    store.register(StoreCollector(st, per_process=not multiproc))
    return head + generate_latest(store)


def prepare_multiprocess(workers: int) -> str | None:
    """Before starting ``workers`` server processes: make sure they share a metrics
    directory (prometheus-client multiprocess mode). An operator's
    ``PROMETHEUS_MULTIPROC_DIR`` is used (its ``*.db`` files from an earlier run removed,
    as the client requires); else, with more than one worker, a private temporary one,
    removed at exit. Returns the directory (None: one process, in-memory metrics)."""
    path = os.environ.get(MULTIPROC_ENV)
    if path:
        Path(path).mkdir(parents=True, exist_ok=True)
        for stale in Path(path).glob("*.db"):
            stale.unlink(missing_ok=True)
        return path
    if workers <= 1:
        return None
    path = tempfile.mkdtemp(prefix="paperwire-metrics-")
    os.environ[MULTIPROC_ENV] = path  # inherited by the worker processes, read when they import the client
    atexit.register(shutil.rmtree, path, True)
    return path
