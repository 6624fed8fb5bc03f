"""Date ranges of the merchant's Performance and Carts pages: local days in the store's time zone.

A bad value is the merchant's typo or a forged link: it is refused with a precise 400, never a 500.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from flask import abort

from recovery.measure.figures import day_bounds, zone

DEFAULT_DAYS = 30
MAX_DAYS = 366
#: The days a range may name: far enough either way for any store, and a year of margin from the calendar's ends
#: (a default range reaches back 29 days; a local day's UTC bounds can fall on the next or previous day).
FIRST_DAY, LAST_DAY = date(1970, 1, 1), date(9998, 12, 31)


@dataclass(frozen=True)
class DayRange:
    first: date
    last: date
    tz: ZoneInfo

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def utc_bounds(self) -> tuple[datetime, datetime]:
        return day_bounds(self.first, self.tz)[0], day_bounds(self.last, self.tz)[1]


def today(tz: ZoneInfo, now: datetime | None = None) -> date:
    return (now or datetime.now(UTC)).astimezone(tz).date()


def parse_day(value: str | None, name: str) -> date | None:
    if value is None or value == "":
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        abort(400, f"{name} must be a date like 2026-05-03")
    if not FIRST_DAY <= day <= LAST_DAY:
        abort(400, f"{name} must be a date from {FIRST_DAY.isoformat()} to {LAST_DAY.isoformat()}")
    return day


def day_range(args, timezone: str | None, *, default_days: int | None = DEFAULT_DAYS) -> DayRange | None:  # type: ignore[no-untyped-def]
    """`from`/`to` from the query string (inclusive local days); defaults to the last `default_days` days
    ending today (None: no range unless one is given)."""
    tz = zone(timezone)
    first, last = parse_day(args.get("from"), "from"), parse_day(args.get("to"), "to")
    if first is None and last is None and default_days is None:
        return None
    last = last or today(tz)
    first = first or last - timedelta(days=(default_days or DEFAULT_DAYS) - 1)
    if first > last:
        abort(400, "from must not be after to")
    if (last - first).days + 1 > MAX_DAYS:
        abort(400, f"a range covers at most {MAX_DAYS} days")
    return DayRange(first, last, tz)


def local(at: datetime | None, tz: ZoneInfo) -> str:
    """A stored UTC time as the merchant reads it, in the store's time zone."""
    return at.astimezone(tz).strftime("%Y-%m-%d %H:%M") if at else ""
