"""Days, ISO weeks and months of the feed, and jumping to the adjacent one with papers."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from paperwire.store import feed

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


class PeriodError(ValueError):
    """A date/week/month parameter that is not valid; the message is for people."""


@dataclass
class Period:
    kind: str  # day | week | month
    key: str  # 2007-04-02 | 2007-W14 | 2007-04
    since: str
    until: str

    @property
    def label(self) -> str:
        if self.kind == "day":
            d = date.fromisoformat(self.key)
            return f"{d:%A}, {d:%B} {d.day}, {d.year}"
        if self.kind == "week":
            s, u = date.fromisoformat(self.since), date.fromisoformat(self.until)
            return f"Week {int(self.key[-2:])} of {self.key[:4]} ({s:%b} {s.day} – {u:%b} {u.day})"
        d = date.fromisoformat(self.since)
        return f"{d:%B %Y}"

    @property
    def short_label(self) -> str:
        """A few words naming the period, for the Previous/Next links ("Mar 14, 2026")."""
        if self.kind == "day":
            d = date.fromisoformat(self.key)
            return f"{d:%b} {d.day}, {d.year}"
        if self.kind == "week":
            return f"Week {int(self.key[-2:])}, {self.key[:4]}"
        return f"{date.fromisoformat(self.since):%b %Y}"

    @property
    def url(self) -> str:
        return {"day": "/papers/date/", "week": "/papers/week/", "month": "/papers/month/"}[self.kind] + self.key


def day(value: str) -> Period:
    if not _DATE.match(value or ""):
        raise PeriodError(f"date must look like 2025-01-31, not {value[:40]!r}")
    try:
        d = date.fromisoformat(value)
    except ValueError:
        raise PeriodError(f"{value!r} is not a calendar date") from None
    return Period("day", d.isoformat(), d.isoformat(), d.isoformat())


def week(value: str) -> Period:
    m = _WEEK.match(value or "")
    if not m:
        raise PeriodError(f"week must look like 2025-W09 (ISO week), not {value[:40]!r}")
    try:
        monday = date.fromisocalendar(int(m.group(1)), int(m.group(2)), 1)
    except ValueError:
        raise PeriodError(f"{value!r} is not an ISO week") from None
    return Period("week", value, monday.isoformat(), (monday + timedelta(days=6)).isoformat())


def month(value: str) -> Period:
    m = _MONTH.match(value or "")
    if not m or not 1 <= int(m.group(2)) <= 12 or int(m.group(1)) < 1:
        raise PeriodError(f"month must look like 2025-02, not {value[:40]!r}")
    y, mo = int(m.group(1)), int(m.group(2))
    first = date(y, mo, 1)
    last = (date(y + (mo == 12), mo % 12 + 1, 1) - timedelta(days=1))
    return Period("month", value, first.isoformat(), last.isoformat())


def containing(kind: str, d: str) -> Period:
    """The period of ``kind`` that holds the date ``d``."""
    dd = date.fromisoformat(d)
    if kind == "day":
        return day(d)
    if kind == "week":
        y, w, _ = dd.isocalendar()
        return week(f"{y}-W{w:02d}")
    return month(f"{dd.year}-{dd.month:02d}")


def parse(kind: str, value: str) -> Period:
    return {"day": day, "week": week, "month": month}[kind](value)


def neighbours(conn, period: Period) -> tuple[Period | None, Period | None]:
    """The nearest earlier and later periods of the same kind that have papers."""
    before, after = feed.adjacent_dates(conn, period.since, period.until)
    return (containing(period.kind, before) if before else None,
            containing(period.kind, after) if after else None)
