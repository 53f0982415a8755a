"""Digest periods: which day or ISO week a run belongs to, and the window it covers."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone, tzinfo

FREQUENCIES = ("daily", "weekly")
# Papers considered for a digest: the last few days of feed dates (daily covers a
# weekend, when arXiv lists nothing), a bit over a week for weekly. The paper
# ledger keeps overlapping windows from sending anything twice.
WINDOW_DAYS = {"daily": 3, "weekly": 8}


def local_zone(name: str = "") -> tzinfo:
    """The zone digests are scheduled in: ``settings.digest_timezone`` or the machine's."""
    if name:
        from zoneinfo import ZoneInfo

        return ZoneInfo(name)
    return datetime.now().astimezone().tzinfo  # type: ignore[return-value]


def to_local(now: datetime | None, zone: str = "") -> datetime:
    now = now or datetime.now(timezone.utc)
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    return now.astimezone(local_zone(zone))


def period_key(frequency: str, now: datetime | None = None, zone: str = "") -> str:
    """``daily:YYYY-MM-DD`` or ``weekly:YYYY-Www`` (ISO week) of ``now`` in the digest zone."""
    if frequency not in FREQUENCIES:
        raise ValueError(f"frequency must be daily or weekly, not {frequency!r}")
    local = to_local(now, zone)
    if frequency == "daily":
        return f"daily:{local:%Y-%m-%d}"
    year, week, _ = local.isocalendar()
    return f"weekly:{year}-W{week:02d}"


def window_since(frequency: str, now: datetime | None = None, zone: str = "") -> str:
    """First feed date (``YYYY-MM-DD``) a digest of ``frequency`` looks at."""
    local = to_local(now, zone)
    return (local - timedelta(days=WINDOW_DAYS[frequency])).strftime("%Y-%m-%d")


def is_due(frequency: str, now: datetime, *, hour: int, weekday: int, zone: str = "") -> bool:
    """Whether the scheduled send time of the current period has passed.

    Daily: at or after ``hour`` today. Weekly: on ``weekday`` (0 = Monday) at or after
    ``hour``, or any later day of the same ISO week (a worker that was down catches up).
    """
    local = to_local(now, zone)
    if frequency == "daily":
        return local.hour >= hour
    return local.weekday() > weekday or (local.weekday() == weekday and local.hour >= hour)


def utc_iso(now: datetime | None = None) -> str:
    now = now or datetime.now(timezone.utc)
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    return now.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
