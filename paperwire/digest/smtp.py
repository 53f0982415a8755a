"""SMTP plumbing for the outbox: one reused connection with a transaction that
reports the moment before the final ``.``, failure classes, pacing, and the
per-database delivery lock. The exactly-once argument is in :mod:`.send`."""

from __future__ import annotations

import contextlib
import re
import smtplib
import socket
import ssl
import time
from typing import Callable, Iterator

from paperwire.settings import Settings
from paperwire.store.dialect import db_label

MAX_BACKOFF = 3600.0


class DigestBusy(RuntimeError):
    """Another process is delivering the same kind of mail right now."""


class SmtpConfigError(RuntimeError):
    """The SMTP server refused our credentials or TLS: retrying will not help."""


class _Transient(Exception):
    pass


class _Permanent(Exception):
    pass


class _InDoubt(Exception):
    pass


class _ConnectFailure(Exception):
    pass


# ---------------------------------------------------------------- locking, pacing

@contextlib.contextmanager
def delivery_lock(settings: Settings, kind: str, timeout: float = 0.0) -> Iterator[None]:
    """Exclusive per-store, per-kind lock; :class:`DigestBusy` after ``timeout`` seconds.

    Store-wide on both engines (:func:`paperwire.store.locks.exclusive`): a file lock
    beside a SQLite database, an advisory lock on PostgreSQL, so two workers on two nodes
    never deliver the same kind of mail at once."""
    from paperwire.store.locks import LockBusy, exclusive

    try:
        with exclusive(settings.db_path, f"{kind}-mail", timeout=timeout,
                       busy=f"another process is sending {kind} mail for {db_label(settings.db_path)}"):
            yield
    except LockBusy as exc:
        raise DigestBusy(str(exc)) from None


class RateLimiter:
    """At most ``per_minute`` messages a minute, evenly spaced (0 = unlimited)."""

    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.interval = 60.0 / per_minute if per_minute and per_minute > 0 else 0.0
        self.clock, self.sleep = clock, sleep
        self.next_at: float | None = None

    def wait(self) -> None:
        if not self.interval:
            return
        now = self.clock()
        if self.next_at is not None and self.next_at > now:
            self.sleep(self.next_at - now)
            now = self.next_at
        self.next_at = now + self.interval


def backoff_seconds(settings: Settings, attempts: int) -> float:
    """Delay before retry number ``attempts`` (1-based): base, 2x base, 4x base, ..."""
    return min(settings.mail_retry_base_seconds * 2 ** max(attempts - 1, 0), MAX_BACKOFF)


# ---------------------------------------------------------------- SMTP

def _quote_periods(data: bytes) -> bytes:
    return re.sub(rb"(?m)^\.", b"..", data)


class SmtpSession:
    """One SMTP connection reused across messages, reopened when it drops."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.smtp: smtplib.SMTP | None = None
        self.used = False  # sent at least one command since connecting

    def ensure(self) -> None:
        if self.smtp is not None:
            return
        s = self.settings
        if s.smtp_security not in ("none", "starttls", "tls"):
            raise SmtpConfigError(f"PAPERWIRE_SMTP_SECURITY must be none, starttls or tls, not {s.smtp_security!r}")
        try:
            if s.smtp_security == "tls":
                client = smtplib.SMTP_SSL(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout,
                                          context=ssl.create_default_context())
            else:
                client = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout)
            client.ehlo_or_helo_if_needed()
            if s.smtp_security == "starttls":
                client.starttls(context=ssl.create_default_context())
                client.ehlo()
            if s.smtp_user:
                client.login(s.smtp_user, s.smtp_password)
        except smtplib.SMTPAuthenticationError as exc:
            raise SmtpConfigError(f"SMTP login as {s.smtp_user!r} refused: {exc.smtp_code} {exc.smtp_error!r}") from None
        except (smtplib.SMTPNotSupportedError, ssl.SSLError) as exc:
            raise SmtpConfigError(f"SMTP {s.smtp_security} with {s.smtp_host}:{s.smtp_port} failed: {exc}") from None
        except (OSError, smtplib.SMTPException) as exc:
            raise _ConnectFailure(f"cannot reach SMTP server {s.smtp_host}:{s.smtp_port}: {exc}") from None
        # The final "." is a tiny write right after the body: without NODELAY, Nagle's
        # algorithm holds it until the body is ACKed (a delayed-ACK stall per message).
        with contextlib.suppress(OSError, AttributeError):
            client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.smtp, self.used = client, False

    def reset(self) -> None:
        if self.smtp is not None:
            with contextlib.suppress(Exception):
                self.smtp.close()
        self.smtp = None

    def close(self) -> None:
        if self.smtp is not None:
            with contextlib.suppress(Exception):
                self.smtp.quit()
        self.reset()

    def _reject(self, code: int, resp: bytes, stage: str) -> None:
        text = f"{code} {resp.decode('utf-8', 'replace')} (at {stage})"
        if code == 421:
            self.reset()
        else:
            with contextlib.suppress(Exception):
                self.smtp.rset()
        if 500 <= code < 600:
            if stage == "MAIL FROM":
                # The sender is refused (530 "STARTTLS/AUTH first", 553 bad sender): a
                # configuration problem that would fail every mail, not this recipient's.
                raise SmtpConfigError(f"the SMTP server refuses our sender: {text}")
            raise _Permanent(text)
        raise _Transient(text)

    def transact(self, sender: str, rcpt: str, data: bytes, *, before_dot: Callable[[], None],
                 crash: Callable[[str], None]) -> None:
        """One MAIL/RCPT/DATA transaction; ``before_dot`` runs before the final ``.``."""
        for retry_stale in (True, False):
            try:
                self.ensure()
            except _ConnectFailure as exc:
                raise _Transient(str(exc)) from None
            fresh = not self.used
            self.used = True
            smtp = self.smtp
            try:
                code, resp = smtp.mail(sender)
            except (smtplib.SMTPServerDisconnected, OSError) as exc:
                self.reset()
                if retry_stale and not fresh:  # an idle connection the server dropped
                    continue
                raise _Transient(f"connection lost: {exc}") from None
            break
        try:
            if code != 250:
                self._reject(code, resp, "MAIL FROM")
            code, resp = smtp.rcpt(rcpt)
            if code not in (250, 251):
                self._reject(code, resp, "RCPT TO")
            code, resp = smtp.docmd("DATA")
            if code != 354:
                self._reject(code, resp, "DATA")
            body = _quote_periods(data)
            if not body.endswith(b"\r\n"):
                body += b"\r\n"
            smtp.send(body)
            crash("data")
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self.reset()
            raise _Transient(f"connection lost before end of data: {exc}") from None
        before_dot()
        try:
            smtp.send(b".\r\n")
            crash("dot")
            code, resp = smtp.getreply()
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self.reset()
            raise _InDoubt(f"connection lost after end of data: {exc}") from None
        if code != 250:
            self._reject(code, resp, "end of data")
