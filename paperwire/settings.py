"""Settings: one dataclass, filled from environment variables.

Every setting has a ``PAPERWIRE_<NAME>`` environment variable (upper case).
Commands that need settings call :func:`load_settings`; tests build a
:class:`Settings` directly with the values they want.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

APP_NAME = "paperwire"


def default_data_dir() -> Path:
    """The platform's per-user data folder for paperwire."""
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def db_target(value: str | os.PathLike) -> Path | str:
    """A SQLite path as a Path; a URL (``postgresql://...``) kept as the string it is:
    Path() would fold its ``//`` and the store would become a folder named ``postgresql:``."""
    text = os.fspath(value)
    if "://" in text and text.split("://", 1)[0].replace("+", "").isalnum():
        return text
    return Path(text)


def resolve_db_path(db: str | os.PathLike | None = None) -> Path | str:
    """``--db`` if given, else ``$PAPERWIRE_DB``, else the user data dir (see :func:`db_target`)."""
    if db:
        return db_target(db)
    env = os.environ.get("PAPERWIRE_DB")
    if env:
        return db_target(env)
    return default_data_dir() / "paperwire.db"


@dataclass
class Settings:
    """Runtime configuration shared by the CLI, the web app and the worker."""

    db_path: Path = field(default_factory=resolve_db_path)
    # Public base URL of the site, used in mails and feeds.
    base_url: str = "http://127.0.0.1:8000"
    # Signs CSRF tokens, known-device cookies and the links in mails (confirm, manage,
    # unsubscribe). When unset, a key is generated once and kept in a file next to the
    # database (``<db>.secret-key``, mode 0600), or for a PostgreSQL store in the store
    # itself (so every node of an instance agrees), and every process on that database
    # (web nodes and their workers, ``digest send``, the worker) signs with the same key
    # and a restart breaks nothing. Only when that file cannot be written is the key per process: then forms
    # already open fail after a restart and links in mails sent before stop working.
    secret_key: str = ""
    # Proxies whose X-Forwarded-For is believed: comma-separated addresses or CIDR
    # networks (e.g. "127.0.0.1, 10.0.0.0/8"). Empty: the TCP peer is the client.
    trusted_proxies: str = ""
    # Largest request body (forms, uploads, JSON) in bytes; bigger ones get 413 unread.
    max_body_bytes: int = 1024 * 1024
    # Mail
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_security: str = "none"  # none | starttls | tls
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_timeout: float = 30.0
    mail_from: str = "paperwire <digest@localhost>"
    mail_rate_per_minute: int = 600
    digest_hour: int = 7  # local hour at which the worker sends digests
    digest_weekday: int = 0  # Monday, for weekly digests
    digest_timezone: str = ""  # IANA zone for digest_hour/periods; empty = the machine's
    digest_confirm_max_age: int = 3 * 24 * 3600  # seconds a confirmation link stays valid
    digest_bounce_threshold: int = 3  # consecutive 5xx before a subscription is 'bounced'
    mail_max_attempts: int = 6  # per message, transient failures (4xx, connection) included
    mail_retry_base_seconds: float = 30.0  # backoff: base * 2**(attempt-1)
    mail_retry_max_wait: float = 900.0  # a send run waits at most this long for retries
    mail_unsubscribe_address: str = ""  # mailto: unsubscribe target; empty = mail_from's address
    # smtp | outbox (keep mail in the database, shown at /outbox; the demo's default without SMTP)
    mail_transport: str = "smtp"
    # Harvesting
    contact_email: str = "admin@localhost"
    oai_base_url: str = "https://oaipmh.arxiv.org/oai"
    arxiv_api_url: str = "https://export.arxiv.org/api/query"
    hf_base_url: str = "https://huggingface.co"
    harvest_delay: float = 3.0
    harvest_sets: str = "cs"
    sync_hour: int = 6
    # Workers: how long a claimed job stays theirs without a renewal (renewed every third
    # of it); a killed worker's job is taken over by another worker this long after.
    job_lease_s: float = 60.0
    # Search
    embedder: str = "auto"  # auto | onnx | torch | fake | none
    device: str = "cpu"

    def __post_init__(self) -> None:
        self.db_path = db_target(self.db_path)
        # Where the key came from: "set" (given), "file" (kept next to the DB) or
        # "process" (made up for this process only: see :func:`secret_key_note`).
        self.secret_key_source = "set"
        if not self.secret_key:
            self.secret_key, self.secret_key_source = stored_secret_key(self.db_path)


def secret_key_file(db_path: Path) -> Path:
    """The file that keeps the generated secret key of the database at ``db_path``."""
    return db_path.with_name(db_path.name + ".secret-key")


def stored_secret_key(db_path: Path) -> tuple[str, str]:
    """(key, source): the key kept next to the database, created on first use.

    Created with O_EXCL and mode 0600, so processes starting together agree on one
    key (the loser of the race reads the winner's). Falls back to a per-process key
    when the folder is not writable or the database is in memory.
    """
    if isinstance(db_path, str) and "://" in db_path:
        # A server store has no folder to keep the key in: the store keeps it, so every
        # node and worker of the instance signs with the same key.
        from paperwire.store.meta import shared_secret_key

        return shared_secret_key(db_path, secrets.token_urlsafe(32)), "store"
    if str(db_path) in ("", ":memory:") or isinstance(db_path, str):
        return secrets.token_urlsafe(32), "process"
    path = secret_key_file(db_path)
    for _ in range(3):
        try:
            key = path.read_text(encoding="ascii").strip()
            if key:
                return key, "file"
        except FileNotFoundError:
            pass
        except (OSError, UnicodeError):
            break
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            time.sleep(0.05)  # another process is writing it: read theirs
            continue
        except OSError:
            break
        key = secrets.token_urlsafe(32)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(key + "\n")
            f.flush()
            os.fsync(f.fileno())
        return key, "file"
    return secrets.token_urlsafe(32), "process"


def secret_key_note(settings: Settings) -> str | None:
    """What ``serve`` should tell the operator about the secret key, or None."""
    if os.environ.get("PAPERWIRE_SECRET_KEY") or settings.secret_key_source == "set":
        return None
    if settings.secret_key_source == "store":
        return ("note: PAPERWIRE_SECRET_KEY is not set; using the key kept in the store (meta.secret_key), "
                "shared by every node and worker of this instance")
    if settings.secret_key_source == "file":
        return (f"note: PAPERWIRE_SECRET_KEY is not set; using the key kept in {secret_key_file(settings.db_path)} "
                "(back it up with the database: links in mails sent so far need it)")
    return ("warning: PAPERWIRE_SECRET_KEY is not set and no key file can be kept next to the database: "
            "after a restart, forms already open fail (\"form expired\") and confirm/unsubscribe links "
            "in mails sent before stop working. Set PAPERWIRE_SECRET_KEY.")


def load_settings(db: str | os.PathLike | None = None, **overrides) -> Settings:
    """Build settings from ``PAPERWIRE_*`` environment variables plus overrides."""
    values: dict = {}
    for f in dataclasses.fields(Settings):
        if f.name == "db_path":
            continue
        raw = os.environ.get(f"PAPERWIRE_{f.name.upper()}")
        if raw is None:
            continue
        if f.type in ("int", int):
            values[f.name] = int(raw)
        elif f.type in ("float", float):
            values[f.name] = float(raw)
        else:
            values[f.name] = raw
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Settings(db_path=resolve_db_path(db), **values)
