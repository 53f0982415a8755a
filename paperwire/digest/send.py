"""The outbox: compose digests into the send ledger, then deliver them over SMTP.

Ledger states (``digest_sends.state``)::

    pending --(claimed, attempt counted)--> sending --(body written, final "." not yet)--> in_doubt
    in_doubt --(250 after ".")--> sent
    sending/in_doubt --(4xx / connection lost before ".")--> pending (retry later, backoff)
    any --(5xx, or attempts exhausted)--> failed (papers released, reported)

Exactly once per subscriber and period:

* ``UNIQUE(subscription, period)``: a period's digest is composed once; the row holds
  the exact bytes, the Message-ID and the paper list, committed (and the papers
  reserved in ``digest_sent_papers``) before any SMTP traffic. A rerun never
  recomposes a period that has a row; it resumes delivering the stored bytes.
* SMTP hands responsibility for a message to the server only when the server
  answers 250 to the final ``.`` of DATA (RFC 5321 4.1.1.4); a session that dies
  before the ``.`` delivers nothing. So a row in ``pending`` or ``sending`` was
  never delivered and is safe to resend after a crash.
* Just before writing the ``.`` the row is committed as ``in_doubt``. A crash after
  that point may or may not have delivered the mail and we cannot ask the server.
  We choose at-most-once for this window: ``in_doubt`` rows are NOT resent
  (``paperwire digest send --resend-in-doubt`` flips the choice for an operator who
  prefers a possible duplicate). The window where this loses a mail is between the
  commit and the kernel accepting 3 bytes ("."+CRLF) on an open socket: a process
  killed after the write has still delivered (the kernel sends queued bytes on
  close), so in practice only a kill inside that write, or a network loss at that
  exact moment, loses a digest, and such rows are counted and reported, never
  silent.
* Only one process delivers a kind (digest / confirm) at a time: an exclusive
  ``flock`` next to the database, released by the kernel when a process dies, so a
  SIGKILLed run never blocks the next one.

``PAPERWIRE_DIGEST_CRASH_AT=point[:n]`` kills the process with SIGKILL the n-th
time it reaches ``point`` (composed, sending, data, in_doubt, dot, reply, sent): the
crash tests use it to stop a real run at every step of the protocol.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import parseaddr
from typing import Callable

from paperwire.crashpoints import CrashHook
from paperwire.digest import outbox, render
from paperwire.digest.compose import ComposeCache, Digest, compose_digest
from paperwire.digest.periods import period_key, utc_iso
from paperwire.digest.smtp import (
    DigestBusy,
    RateLimiter,
    SmtpConfigError,
    SmtpSession,
    _ConnectFailure,
    _InDoubt,
    _Permanent,
    _Transient,
    backoff_seconds,
    delivery_lock,
)
from paperwire.settings import Settings
from paperwire.store import digest as sql
from paperwire.store.db import transaction

__all__ = ["DigestBusy", "SmtpConfigError", "RateLimiter", "RunReport", "backoff_seconds", "compose_period",
           "check_transport", "default_subscription", "deliver_due", "deliver_confirmations", "preview",
           "run_digests"]

log = logging.getLogger("paperwire.digest")

COMPOSE_BATCH = 50  # digests recorded per transaction


@dataclass
class RunReport:
    """What a compose/deliver run did. Every due subscriber lands in exactly one bucket."""

    frequency: str = ""
    period: str = ""
    composed: int = 0  # new ledger rows this run
    empty: int = 0  # nothing new: no mail
    sent: int = 0
    retried: int = 0  # transient failures that will be / were retried
    failed: list[dict] = field(default_factory=list)  # {recipient, period, error}
    in_doubt: int = 0  # connection lost after the final "." this run (not resent)
    deferred: int = 0  # still pending at the end (server unreachable, or retry not yet due)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.deferred and not self.in_doubt

    def summary(self) -> str:
        head = f"{self.period}: " if self.period else ""
        return (f"{head}{self.composed} composed, {self.empty} with nothing new, {self.sent} sent, "
                f"{len(self.failed)} failed, {self.deferred} deferred, {self.in_doubt} in doubt")


# ---------------------------------------------------------------- compose phase

def compose_period(conn: sqlite3.Connection, settings: Settings, frequency: str, *, now: datetime,
                   report: RunReport, crash: Callable[[str], None] | None = None) -> None:
    """Record (state ``pending``) the digest of every due subscriber for the period of ``now``."""
    crash = crash or CrashHook("PAPERWIRE_DIGEST_CRASH_AT")
    period = period_key(frequency, now, settings.digest_timezone)
    report.frequency, report.period = frequency, period
    cache = ComposeCache()
    batch: list[tuple[Digest, str, bytes]] = []
    batch_size = int(os.environ.get("PAPERWIRE_DIGEST_COMPOSE_BATCH") or COMPOSE_BATCH)  # tests: small batches

    def flush() -> None:
        if not batch:
            return
        ts = utc_iso()
        with transaction(conn):
            for digest, msg_id, data in batch:
                sub = digest.subscription
                sid = sql.insert_send(conn, subscription=sub["id"], kind="digest", period=period,
                                      recipient=sub["email"], message_id=msg_id,
                                      papers=digest.paper_rowids, message=data, now=ts)
                report.composed += sid is not None
        batch.clear()
        crash("composed")

    for sub in sql.iter_due_subscriptions(conn, frequency, period):
        try:
            digest = compose_digest(conn, settings, sub, period=period, now=now, cache=cache)
            if digest.empty:
                report.empty += 1
                continue
            msg_id, data = render.digest_message(settings, digest)
        except Exception as exc:  # one bad subscription or paper must not stop everyone's digest
            log.exception("could not compose the digest for %s", sub["email"])
            report.failed.append({"recipient": sub["email"], "period": period,
                                  "error": f"compose failed: {type(exc).__name__}: {exc}"})
            continue
        batch.append((digest, msg_id, data))
        if len(batch) >= batch_size:
            flush()
    flush()
    report.notes.extend(sorted(cache.notes))


# ---------------------------------------------------------------- deliver phase

def _iso_in(seconds: float) -> str:
    # Ledger times have whole seconds: round up so a retry never comes early.
    at = datetime.now(timezone.utc) + timedelta(seconds=seconds)
    if at.microsecond:
        at = at.replace(microsecond=0) + timedelta(seconds=1)
    return utc_iso(at)


def deliver_due(conn: sqlite3.Connection, settings: Settings, kind: str = "digest", *,
                report: RunReport | None = None, wait_for_retries: bool = True,
                resend_in_doubt: bool = False, lock_timeout: float = 0.0, locked: bool = False,
                frequency: str | None = None, sleep: Callable[[float], None] = time.sleep,
                stop: Callable[[], bool] | None = None) -> RunReport:
    """Deliver every due ledger row of ``kind`` over one reused SMTP connection.

    ``stop`` is asked before each mail (a safe point: nothing of that row is written
    yet); when it says True the run ends there and the rows left stay due for whoever
    runs next. The worker passes its lease's "taken over" flag.

    ``frequency`` (daily/weekly) limits a digest run to the rows of that
    frequency's periods, so each run's report counts only its own mail; None
    (the worker's catch-all pass) delivers every due row.

    Transient failures (4xx, connection refused/lost) are retried with exponential
    backoff (``mail_retry_base_seconds``), waiting up to ``mail_retry_max_wait`` when
    ``wait_for_retries``; rows still pending after that are reported as deferred and
    the next run or worker tick picks them up. 5xx and exhausted retries are
    recorded as ``failed`` and reported.
    """
    report = report or RunReport()
    if not locked:
        with delivery_lock(settings, kind, lock_timeout):
            return deliver_due(conn, settings, kind, report=report, wait_for_retries=wait_for_retries,
                               resend_in_doubt=resend_in_doubt, locked=True, frequency=frequency, sleep=sleep,
                               stop=stop)
    crash = CrashHook("PAPERWIRE_DIGEST_CRASH_AT")
    prefix = f"{frequency}:" if frequency else None  # period keys are "daily:..." / "weekly:..."
    if resend_in_doubt:
        sql.requeue_in_doubt(conn, kind, period_prefix=prefix)
    session = _mailer(settings, conn)
    # The outbox is a table write: no server to be gentle with.
    limiter = RateLimiter(0 if outbox.uses_outbox(settings) else settings.mail_rate_per_minute, sleep=sleep)
    sender = parseaddr(settings.mail_from)[1]
    started = time.monotonic()
    connect_failures = 0
    try:
        while True:
            rows = sql.due_sends(conn, kind, utc_iso(), limit=200, period_prefix=prefix)
            if not rows:
                wait = _seconds_until(sql.next_retry_at(conn, kind, period_prefix=prefix))
                if (wait is None or not wait_for_retries
                        or time.monotonic() - started + wait > settings.mail_retry_max_wait):
                    break
                sleep(max(wait, 0.0) + 0.01)
                continue
            for row in rows:
                if stop is not None and stop():
                    report.notes.append("stopped before the next mail: the job's lease was taken over")
                    return report
                if not _still_wanted(conn, row):
                    with transaction(conn):
                        sql.mark_send(conn, row["id"], "failed", utc_iso(), error="cancelled before delivery")
                        sql.release_papers(conn, row["id"])
                    continue
                try:
                    session.ensure()
                except _ConnectFailure as exc:
                    connect_failures += 1
                    delay = backoff_seconds(settings, connect_failures)
                    log.warning("%s; retry in %.1fs", exc, delay)
                    report.notes.append(str(exc))
                    elapsed = time.monotonic() - started
                    if (connect_failures >= settings.mail_max_attempts or not wait_for_retries
                            or elapsed + delay > settings.mail_retry_max_wait):
                        return report
                    sleep(delay)
                    break  # re-read due rows after the pause
                connect_failures = 0
                limiter.wait()
                _deliver_one(conn, settings, session, row, sender, report, crash)
    finally:
        session.close()
        report.deferred = sql.count_undelivered(conn, kind, period_prefix=prefix)
    return report


def _mailer(settings: Settings, conn: sqlite3.Connection):
    """The transport of ``settings.mail_transport``: SMTP, or the local outbox."""
    if settings.mail_transport not in outbox.TRANSPORTS:
        raise SmtpConfigError(f"PAPERWIRE_MAIL_TRANSPORT must be smtp or outbox, not {settings.mail_transport!r}")
    if outbox.uses_outbox(settings):
        return outbox.OutboxSession(settings, conn)
    return SmtpSession(settings)


def check_transport(settings: Settings) -> None:
    """Refuse (:class:`SmtpConfigError`) to compose digests that could go nowhere.

    With no SMTP server configured (no ``PAPERWIRE_SMTP_*``) the default
    127.0.0.1:25 is tried once: a local MTA there is a working setup; nothing
    listening means no setup at all, and composing would only reserve papers for
    mail that cannot leave. The outbox transport always passes.
    """
    if settings.mail_transport not in outbox.TRANSPORTS:
        raise SmtpConfigError(f"PAPERWIRE_MAIL_TRANSPORT must be smtp or outbox, not {settings.mail_transport!r}")
    if outbox.uses_outbox(settings) or outbox.smtp_configured(settings):
        return
    probe = SmtpSession(settings)
    try:
        probe.ensure()
    except _ConnectFailure:
        raise SmtpConfigError(
            f"no SMTP server is configured (PAPERWIRE_SMTP_HOST is not set) and nothing answers at the default "
            f"{settings.smtp_host}:{settings.smtp_port}: set PAPERWIRE_SMTP_HOST, PAPERWIRE_SMTP_PORT, "
            "PAPERWIRE_SMTP_SECURITY, PAPERWIRE_SMTP_USER and PAPERWIRE_SMTP_PASSWORD (docs/digest.md); "
            "no digest was composed or sent. To keep mail in the local outbox instead (read at /outbox), "
            "set PAPERWIRE_MAIL_TRANSPORT=outbox.") from None
    finally:
        probe.close()


def _seconds_until(iso: str | None) -> float | None:
    if iso is None:
        return None
    at = datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    return (at - datetime.now(timezone.utc)).total_seconds()


def _still_wanted(conn: sqlite3.Connection, row: dict) -> bool:
    sub = sql.get_subscription(conn, row["subscription"])
    if sub is None:
        return False
    if row["kind"] == "digest":
        return sub["status"] == "active"
    return sub["status"] in ("pending", "active")


def _deliver_one(conn, settings: Settings, session: SmtpSession, row: dict, sender: str,
                 report: RunReport, crash) -> None:
    send_id = row["id"]
    with transaction(conn):
        sql.mark_send(conn, send_id, "sending", utc_iso(), bump_attempts=True)
    crash("sending")
    attempts = row["attempts"] + 1

    def before_dot() -> None:
        with transaction(conn):
            sql.mark_send(conn, send_id, "in_doubt", utc_iso())
        crash("in_doubt")

    try:
        session.transact(sender, row["recipient"], row["message"], before_dot=before_dot, crash=crash)
    except _Transient as exc:
        if attempts >= settings.mail_max_attempts:
            _fail(conn, row, f"gave up after {attempts} attempts: {exc}", report)
        else:
            delay = backoff_seconds(settings, attempts)
            with transaction(conn):
                sql.mark_send(conn, send_id, "pending", utc_iso(), error=str(exc), next_attempt_at=_iso_in(delay))
            report.retried += 1
            log.info("temporary failure for %s (%s); retry in %.1fs", row["recipient"], exc, delay)
        return
    except _Permanent as exc:
        _fail(conn, row, str(exc), report, permanent=True, settings=settings)
        return
    except _InDoubt as exc:
        with transaction(conn):
            sql.mark_send(conn, send_id, "in_doubt", utc_iso(), error=str(exc))
        report.in_doubt += 1
        log.warning("%s: %s; not resent (see --resend-in-doubt)", row["recipient"], exc)
        return
    crash("reply")
    with transaction(conn):
        sql.mark_send(conn, send_id, "sent", utc_iso(), sent=True)
        sql.reset_permanent_failures(conn, row["subscription"])
    report.sent += 1
    crash("sent")


def _fail(conn, row: dict, error: str, report: RunReport, *, permanent: bool = False,
          settings: Settings | None = None) -> None:
    with transaction(conn):
        sql.mark_send(conn, row["id"], "failed", utc_iso(), error=error)
        # Never delivered: its papers may go out in a later digest.
        sql.release_papers(conn, row["id"])
        if permanent and row["kind"] == "digest" and settings is not None:
            if sql.record_permanent_failure(conn, row["subscription"], settings.digest_bounce_threshold, utc_iso()):
                error += f" (subscription marked bounced after {settings.digest_bounce_threshold} failures)"
    report.failed.append({"recipient": row["recipient"], "period": row["period"], "error": error})
    log.error("could not deliver to %s: %s", row["recipient"], error)


# ---------------------------------------------------------------- entry points

def run_digests(conn: sqlite3.Connection, settings: Settings, frequency: str, *, now: datetime | None = None,
                deliver: bool = True, wait_for_retries: bool = True, resend_in_doubt: bool = False,
                lock_timeout: float = 0.0, stop: Callable[[], bool] | None = None) -> RunReport:
    """Compose the period's digests for ``frequency`` (daily/weekly) and deliver them.

    Safe to run from cron as often as wanted: each subscriber gets one digest per
    period; a killed run is finished by the next one. ``stop``: see :func:`deliver_due`.
    """
    now = now or datetime.now(timezone.utc)
    report = RunReport(frequency=frequency)
    if deliver:
        check_transport(settings)
    with delivery_lock(settings, "digest", lock_timeout):
        compose_period(conn, settings, frequency, now=now, report=report)
        if deliver:
            # Only this frequency's rows: the report of a daily run must not count weekly mail.
            deliver_due(conn, settings, "digest", report=report, wait_for_retries=wait_for_retries,
                        resend_in_doubt=resend_in_doubt, locked=True, frequency=frequency, stop=stop)
    return report


def deliver_confirmations(conn: sqlite3.Connection, settings: Settings, *, lock_timeout: float = 10.0,
                          wait_for_retries: bool = False) -> RunReport:
    """Send queued confirmation/notice mails now (web form, CLI subscribe)."""
    return deliver_due(conn, settings, "confirm", lock_timeout=lock_timeout, wait_for_retries=wait_for_retries)


def preview(conn: sqlite3.Connection, settings: Settings, email: str, *, frequency: str | None = None,
            now: datetime | None = None) -> tuple[Digest, str | None, bytes | None]:
    """What ``email`` would get now, without recording anything: ``(digest, msg_id, bytes)``;
    the bytes are None when there is nothing new (no mail would be sent).

    An address with no subscription previews the default digest (trending top
    :data:`DEFAULT_TOP_N`, daily unless ``frequency``); its subscription dict then
    has ``is_default: True``. It shows what a digest looks like, so when nothing is
    new and no ``now`` was given it is composed as of the newest papers' feed date
    (the dict's ``as_of`` names that date), e.g. for a demo corpus of past days."""
    from paperwire.digest.subscriptions import normalize_email

    email = normalize_email(email)
    sub = sql.get_subscription_by_email(conn, email)
    if sub is None:
        sub = default_subscription(email, frequency or "daily")
    if frequency:
        sub = {**sub, "frequency": frequency}
    asked = now
    now = now or datetime.now(timezone.utc)
    period = period_key(sub["frequency"], now, settings.digest_timezone)
    digest = compose_digest(conn, settings, sub, period=period, now=now)
    newest = sql.latest_feed_date(conn) if digest.empty and asked is None and sub.get("is_default") else None
    if newest:
        # Noon UTC of that day: inside the day in every zone from UTC-11 to UTC+11.
        at = datetime.fromisoformat(newest).replace(hour=12, tzinfo=timezone.utc)
        sub = {**sub, "as_of": newest}
        digest = compose_digest(conn, settings, sub, period=period_key(sub["frequency"], at, settings.digest_timezone),
                                now=at)
    if digest.empty:
        return digest, None, None
    msg_id, data = render.digest_message(settings, digest)
    return digest, msg_id, data


DEFAULT_TOP_N = 10  # what the subscribe form starts with


def default_subscription(email: str, frequency: str = "daily") -> dict:
    """The subscription a new address gets from the form's defaults (never stored)."""
    return {"id": 0, "email": email, "user_id": None, "frequency": frequency, "status": "preview",
            "top_n": DEFAULT_TOP_N, "personal": False, "authors": [], "categories": [], "queries": [],
            "nonce": "", "is_default": True}


def ledger_summary(conn: sqlite3.Connection, period: str | None = None) -> dict:
    """Counts by state, for ``paperwire digest list`` and monitoring."""
    return sql.send_counts(conn, period)


def paper_list(row: dict) -> list[int]:
    return json.loads(row["papers"])
