"""Settings: one dataclass, filled from environment variables.

Every setting has a ``PAPERWIRE_<NAME>`` environment variable (upper case).
Commands that need settings call :func:`load_settings`; tests build a
:class:`Settings` directly with the values they want.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

APP_NAME = "paperwire"


def default_data_dir() -> Path:
    """The platform's per-user data folder for paperwire."""
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def resolve_db_path(db: str | os.PathLike | None = None) -> Path:
    """``--db`` if given, else ``$PAPERWIRE_DB``, else the user data dir."""
    if db:
        return Path(db)
    env = os.environ.get("PAPERWIRE_DB")
    if env:
        return Path(env)
    return default_data_dir() / "paperwire.db"


@dataclass
class Settings:
    """Runtime configuration shared by the CLI, the web app and the worker."""

    db_path: Path = field(default_factory=resolve_db_path)
    # Public base URL of the site, used in mails and feeds.
    base_url: str = "http://127.0.0.1:8000"
    # Signs cookies, CSRF and mail tokens. Generated per process when unset,
    # which logs everyone out on restart: set it in production.
    secret_key: str = ""
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
    # Harvesting
    contact_email: str = "admin@localhost"
    oai_base_url: str = "https://oaipmh.arxiv.org/oai"
    arxiv_api_url: str = "https://export.arxiv.org/api/query"
    hf_base_url: str = "https://huggingface.co"
    harvest_delay: float = 3.0
    harvest_sets: str = "cs"
    sync_hour: int = 6
    # Search
    embedder: str = "auto"  # auto | onnx | torch | fake | none
    device: str = "cpu"

    def __post_init__(self) -> None:
        self.db_path = Path(self.db_path)
        if not self.secret_key:
            self.secret_key = secrets.token_urlsafe(32)


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
