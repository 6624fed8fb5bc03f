"""Send windows in the recipient's local time, and the next moment allowed in every candidate zone."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import phonenumbers

_HHMM = re.compile(r"^\s*([01]?\d|2[0-4]):([0-5]\d)\s*-\s*([01]?\d|2[0-4]):([0-5]\d)\s*$")
DAY = 24 * 60

#: TCPA (47 CFR 64.1200(c)(1)): no telephone solicitation before 8 a.m. or after 9 p.m. recipient's time.
SMS_LEGAL = "08:00-21:00"
#: Florida (FTSA) and Oklahoma (OTSA): 8 a.m.-8 p.m., presumed for their area codes too
#: (perf-reliability.md §2.3). Extend here when another state's law is confirmed.
STRICT_STATES = {"FL": "08:00-20:00", "OK": "08:00-20:00"}
STRICT_AREA_CODES = {
    "FL": {239, 305, 321, 324, 352, 386, 407, 448, 561, 645, 656, 689, 727, 728, 754, 772, 786, 813, 850, 863, 904,
           941, 954},
    "OK": {405, 539, 572, 580, 918},
}


@dataclass(frozen=True)
class Window:
    """Allowed minutes of a local day, as [start, end) spans that never wrap midnight."""

    spans: tuple[tuple[int, int], ...]

    @classmethod
    def parse(cls, text: str) -> Window:
        """'08:00-21:00' allows 8 a.m. to 9 p.m.; '20:00-10:00' wraps midnight; equal ends allow all day."""
        match = _HHMM.match(str(text))
        if not match:
            raise ValueError(f"{text!r} is not a window such as 08:00-21:00")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if start > DAY or end > DAY:
            raise ValueError(f"{text!r}: hours go up to 24:00")
        if start == end % DAY or (start == 0 and end == DAY):
            return cls(((0, DAY),))
        if start < end:
            return cls(((start, end),))
        return cls(((start, DAY), (0, end)))

    @classmethod
    def quiet(cls, text: str) -> Window:
        """The complement of quiet hours: quiet '22:00-07:00' allows 07:00-22:00."""
        quiet = cls.parse(text)
        allowed, cursor = [], 0
        for start, end in sorted(quiet.spans):
            if start > cursor:
                allowed.append((cursor, start))
            cursor = max(cursor, end)
        if cursor < DAY:
            allowed.append((cursor, DAY))
        return cls(tuple(allowed))

    def __and__(self, other: Window) -> Window:
        spans = []
        for s1, e1 in self.spans:
            for s2, e2 in other.spans:
                if max(s1, s2) < min(e1, e2):
                    spans.append((max(s1, s2), min(e1, e2)))
        return Window(tuple(sorted(spans)))

    def allows(self, minute: int) -> bool:
        return any(start <= minute < end for start, end in self.spans)


ANY_TIME = Window(((0, DAY),))


def strict_state(country: str | None, province: str | None, phone: str | None) -> str | None:
    """The US state with a stricter law that applies by the address or by the phone's area code."""
    if (country or "").upper() == "US" and (province or "").upper() in STRICT_STATES:
        return (province or "").upper()
    try:
        number = phonenumbers.parse(phone or "", None)
    except phonenumbers.NumberParseException:
        return None
    if number.country_code == 1:
        area = int(str(number.national_number)[:3])
        for state, codes in STRICT_AREA_CODES.items():
            if area in codes:
                return state
    return None


def sms_window(store_window: str, country: str | None, province: str | None, phone: str | None) -> Window:
    """The store's SMS window, never wider than the law of the recipient's place."""
    state = strict_state(country, province, phone)
    legal = Window.parse(STRICT_STATES[state] if state else SMS_LEGAL)
    return legal & Window.parse(store_window)


def allowed_at(at: datetime, zones: Sequence[str], window: Window) -> bool:
    for zone in zones:
        local = at.astimezone(ZoneInfo(zone))
        if not window.allows(local.hour * 60 + local.minute):
            return False
    return True


def next_allowed(at: datetime, zones: Sequence[str], window: Window, horizon_days: int = 8) -> datetime | None:
    """The first moment from `at` that is inside the window in every zone; None if there is none soon.

    It is `at` itself or the start of a window in one of the zones: each candidate is checked in all zones,
    so a DST gap can only make the answer later, never wrong.
    """
    if allowed_at(at, zones, window):
        return at
    candidates = set()
    for zone in zones:
        tz = ZoneInfo(zone)
        day = at.astimezone(tz).date()
        for offset in range(-1, horizon_days + 1):
            for start, _ in window.spans:
                if start == DAY:
                    continue
                local = datetime.combine(day + timedelta(days=offset), time(start // 60, start % 60), tzinfo=tz)
                moment = local.astimezone(UTC)
                if moment > at:
                    candidates.add(moment)
    for moment in sorted(candidates):
        if allowed_at(moment, zones, window):
            return moment
    return None


def last_allowed(before: datetime, after: datetime, zones: Sequence[str], window: Window) -> datetime | None:
    """The latest moment in [after, before] inside the window in every zone (a window's end or `before`)."""
    if allowed_at(before, zones, window):
        return before
    candidates = set()
    for zone in zones:
        tz = ZoneInfo(zone)
        day = before.astimezone(tz).date()
        for offset in range(-((before - after).days + 2), 1):
            for _, end in window.spans:
                minute = end - 1  # spans are [start, end): the last allowed minute
                local = datetime.combine(day + timedelta(days=offset), time(minute // 60, minute % 60), tzinfo=tz)
                moment = local.astimezone(UTC)
                if after <= moment <= before:
                    candidates.add(moment)
    return next((m for m in sorted(candidates, reverse=True) if allowed_at(m, zones, window)), None)
