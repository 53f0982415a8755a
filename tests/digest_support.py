"""Helpers for the digest tests: a real SMTP server (aiosmtpd) and a small corpus."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Callable

from aiosmtpd.controller import Controller

from paperwire.ingest import import_records
from paperwire.model import PaperRecord
from paperwire.settings import Settings

SECRET = "digest-test-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def msg(self) -> EmailMessage:
        return message_from_bytes(self.data, policy=default_policy)


@dataclass
class Handler:
    """Records every accepted message; ``policy(rcpt, n) -> reply or None`` scripts failures."""

    messages: list[Received] = field(default_factory=list)
    policy: Callable[[str, int], str | None] | None = None
    on_message: Callable[[Received], None] | None = None
    attempts: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server, session, envelope):
        rcpt = envelope.rcpt_tos[0]
        with self.lock:
            n = self.attempts[rcpt] = self.attempts.get(rcpt, 0) + 1
        if self.policy:
            reply = self.policy(rcpt, n)
            if reply:
                return reply
        item = Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.original_content or envelope.content))
        with self.lock:
            self.messages.append(item)
        if self.on_message:
            self.on_message(item)
        return "250 OK"

    def to(self, rcpt: str) -> list[Received]:
        with self.lock:
            return [m for m in self.messages if rcpt in m.rcpt_tos]


class SmtpServer:
    """aiosmtpd on 127.0.0.1 and a free port."""

    def __init__(self) -> None:
        self.handler = Handler()
        self.port = free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> "SmtpServer":
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()

    @property
    def messages(self) -> list[Received]:
        return self.handler.messages

    def wait_for(self, n: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.messages) < n and time.monotonic() < deadline:
            time.sleep(0.02)


def make_settings(db_path: Path, smtp_port: int, **kw) -> Settings:
    values = dict(db_path=db_path, smtp_host="127.0.0.1", smtp_port=smtp_port, secret_key=SECRET,
                  base_url="https://papers.example", mail_from="paperwire <digest@papers.example>",
                  mail_rate_per_minute=0, mail_retry_base_seconds=0.05, mail_retry_max_wait=20.0,
                  smtp_timeout=10.0, digest_timezone="UTC")
    values.update(kw)
    return Settings(**values)


def add_papers(conn, n: int = 12, *, start: int = 1, days_ago: float = 0.5, now: datetime | None = None,
               categories=("cs.CL",), authors=None, abstract: str | None = None, prefix: str = "Paper") -> list[str]:
    """Import ``n`` recent arXiv papers; returns their paper_ids (votes rise with the index)."""
    now = now or datetime.now(timezone.utc)
    published = (now - timedelta(days=days_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
    recs = []
    for i in range(start, start + n):
        recs.append(PaperRecord(
            title=f"{prefix} {i}: a study of things",
            abstract=abstract if abstract is not None else f"We study thing number {i} at length. " * 8,
            source="test", arxiv_id=f"2611.{i:05d}", authors=list(authors or [f"Author {i}", "Ada Lovelace"]),
            categories=list(categories), published=published, upvotes=i,
        ))
    import_records(conn, recs)
    return [f"2611.{i:05d}" for i in range(start, start + n)]


def activate(conn, settings, email: str, **prefs) -> dict:
    """A confirmed subscription (operator path, no mail)."""
    from paperwire.digest.subscriptions import Preferences, subscribe

    return subscribe(conn, settings, email, Preferences(**prefs), source="cli", confirmed=True).subscription


def links_in(text: str) -> list[str]:
    import re

    return re.findall(r"https?://[^\s\"'<>]+", text)
