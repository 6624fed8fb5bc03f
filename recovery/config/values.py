"""One store setting's value: each parser takes the text a merchant typed (app form or `cartresq store
set`) and returns the value stored, or raises SettingError saying why not. recovery/config/store_settings.py
names the settings and pairs each with its parser and default."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_CAP = re.compile(r"^\s*1\s*/\s*(\S+)\s*$")


class SettingError(ValueError):
    """A bad key or value: the message says which and why."""


#: No duration a store sets may exceed a year (`abandon_after=3000000d` made every cart beacon a 500).
MAX_DURATION = 365 * 86400


def parse_duration(text: str, *, bare_seconds: bool = True) -> int:
    """'90s', '15m', '4h', '3d' → seconds. A plain number is seconds only with `bare_seconds`: values a
    merchant types are parsed without it, since `abandon_after=10` meaning ten seconds would surprise."""
    text = str(text)
    if text.strip().isdigit():
        if not bare_seconds:
            number = text.strip()
            raise SettingError(f"{number!r} has no unit: write {number}s, {number}m, {number}h or {number}d")
        return int(text)
    match = _DURATION.match(text)
    if not match:
        raise SettingError(f"{text!r} is not a duration: use a number with s, m, h or d, e.g. 90s, 15m, 4h, 3d")
    seconds = int(float(match.group(1)) * _UNITS[match.group(2)])
    if seconds > MAX_DURATION:  # a date this far ahead overflows (a cart's deadline, a report's bounds)
        raise SettingError(f"{text.strip()!r} is too long: at most {MAX_DURATION // 86400}d")
    return seconds


def format_duration(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def parse_percent(text: str) -> int:
    try:
        value = int(str(text))
    except ValueError:
        raise SettingError(f"{text!r} is not a whole number from 0 to 100") from None
    if not 0 <= value <= 100:
        raise SettingError(f"{value} is outside 0..100")
    return value


def parse_arms(text: str) -> list[int]:
    """Discount arms: whole percents 0..100, comma-separated, at least two (empty: no experiment)."""
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    arms = sorted({parse_percent(p) for p in parts})
    if len(arms) == 1:
        raise SettingError("offer_arms needs at least two arms, e.g. 0,5,10,15 (or empty)")
    return arms


def parse_bool(text: str) -> bool:
    lowered = str(text).strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise SettingError(f"{text!r} is not a boolean: use true or false")


def parse_positive_duration(text: str) -> int:
    seconds = parse_duration(text, bare_seconds=False)
    if seconds <= 0:
        raise SettingError("a duration must be longer than zero")
    return seconds


def duration_up_to(days: int) -> Callable[[str], int]:
    """A positive duration of at most `days` days: the parser of a setting whose sensible range ends there
    (an abandonment delay of 100 days silently means no cart is ever abandoned)."""

    def parse(text: str) -> int:
        seconds = parse_positive_duration(text)
        if seconds > days * 86400:
            raise SettingError(f"at most {days}d")
        return seconds

    return parse


def parse_timezone(text: str) -> str:
    try:
        ZoneInfo(str(text))
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingError(f"{text!r} is not an IANA time zone such as America/New_York") from None
    return str(text)


def parse_currency(text: str) -> str:
    from babel.numbers import list_currencies

    code = str(text).strip().upper()
    if code not in list_currencies():  # Babel's CLDR list of ISO 4217 codes
        raise SettingError(f"{text!r} is not an ISO 4217 currency code such as USD, EUR or GBP")
    return code


def parse_origins(text: str) -> list[str]:
    origins = [o.strip().rstrip("/") for o in str(text).split(",") if o.strip()]
    for origin in origins:
        if not re.fullmatch(r"https?://[A-Za-z0-9.-]+(:\d+)?", origin):
            raise SettingError(f"{origin!r} is not an origin such as https://shop.example.com")
    return origins


def parse_country(text: str) -> str:
    code = str(text).strip().upper()
    if code and not re.fullmatch(r"[A-Z]{2}", code):
        raise SettingError(f"{text!r} is not an ISO 3166 country code such as US")
    return code


def parse_email(text: str) -> str:
    value = str(text).strip()
    if value and (len(value) > 254 or not re.fullmatch(r"[^@\s<>,;\"]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+", value)):
        raise SettingError(f"{value!r} is not an email address such as help@shop.example.com")
    return value.lower()


def parse_text(text: str) -> str:
    value = str(text).strip()
    if len(value) > 500:
        raise SettingError("text settings are limited to 500 characters")
    return value


_STEP = re.compile(r"^(?P<off>!)?(?P<channel>[a-z]+):(?P<template>[a-z_]+)(?:\+(?P<delay>[^>\s]+))?(?:>(?P<min>[\d.]+))?$")


def parse_sequence_setting(text: str) -> list[dict[str, Any]]:
    """Steps as `email:gentle_reminder, email:value_proposition+1d, sms:offer+2d>50, email:final_call+3d`
    (CHANNEL:TEMPLATE, +DELAY after abandonment, >MIN cart total, a leading `!` for a step switched off; the
    first step without a delay is timed by the model), or as a JSON list of {channel, template, delay,
    min_total, enabled} with delays such as "1d" or null."""
    from recovery.sequence.plan import parse_sequence

    text = str(text).strip()
    try:
        raw = json.loads(text) if text.startswith("[") else [_compact_step(part) for part in text.split(",")]
        if isinstance(raw, list):
            for number, step in enumerate(raw, start=1):
                if isinstance(step, dict) and step.get("delay") is not None:
                    delay = step["delay"]
                    if not isinstance(delay, str):
                        raise SettingError(f"step {number}: delay {delay!r} has no unit: write e.g. \"1h\" or \"1d\"")
                    step["delay"] = parse_duration(delay, bare_seconds=False)
        return [step.to_json() for step in parse_sequence(raw)]
    except SettingError as exc:
        raise SettingError(str(exc)) from None
    except (ValueError, TypeError) as exc:  # json.JSONDecodeError is a ValueError
        raise SettingError(str(exc)) from None


def _compact_step(part: str) -> dict[str, Any]:
    match = _STEP.match(part.strip())
    if not match:
        raise SettingError(f"{part.strip()!r} is not a step such as email:value_proposition+1d or sms:offer+2d>50")
    return {"channel": match["channel"], "template": match["template"], "delay": match["delay"],
            "min_total": match["min"], "enabled": not match["off"]}


def format_sequence(steps: Any) -> str:
    """Steps (recovery.sequence.plan.Step) in the compact form `parse_sequence_setting` reads back."""
    parts = []
    for step in steps:
        part = f"{'' if step.enabled else '!'}{step.channel}:{step.template}"
        if step.delay is not None:
            part += f"+{format_duration(step.delay)}"
        if step.min_total is not None:
            part += f">{step.min_total}"
        parts.append(part)
    return ", ".join(parts)


def parse_low_stock(text: str) -> int:
    try:
        value = int(str(text))
    except ValueError:
        raise SettingError(f"{text!r} is not a whole number from 0 to 10") from None
    if not 0 <= value <= 10:  # content never says "only N left" above 10: it would not be scarce
        raise SettingError(f"{value} is outside 0..10")
    return value


#: WooCommerce order statuses (platform-facts §8.3); custom ones come from other plugins.
_WOO_STATUSES = r"[a-z0-9][a-z0-9_-]{0,30}"


def parse_woo_statuses(text: str) -> list[str]:
    statuses = [s.strip().lower().removeprefix("wc-") for s in str(text).split(",") if s.strip()]
    for status in statuses:
        if not re.fullmatch(_WOO_STATUSES, status) or status in ("pending", "failed", "checkout-draft", "cancelled",
                                                                 "refunded", "trash"):
            raise SettingError(f"{status!r} cannot count as paid (use e.g. processing,completed,on-hold)")
    if not statuses:
        raise SettingError("name at least one paid status, e.g. processing,completed")
    return statuses


def parse_consent_policy(text: str) -> str:
    value = str(text).strip().lower()
    if value not in ("regional", "opt_in_only", "any_checkout_email"):
        raise SettingError(f"{text!r} is not one of regional, opt_in_only, any_checkout_email")
    return value


def _window(text: str) -> str:
    from recovery.sending.policy.hours import Window

    try:
        Window.parse(text)
    except ValueError as exc:
        raise SettingError(str(exc)) from None
    return str(text).strip()


def parse_sms_window(text: str) -> str:
    """An SMS window inside the law's hours; a wider one is refused, not silently narrowed."""
    from recovery.sending.policy.hours import SMS_LEGAL, Window

    value = _window(text)
    (legal_start, legal_end), = Window.parse(SMS_LEGAL).spans
    if any(start < legal_start or end > legal_end for start, end in Window.parse(value).spans):
        raise SettingError(
            f"{value} is wider than the law allows: the US TCPA permits text messages only from {SMS_LEGAL} in "
            "the recipient's local time (Florida and Oklahoma 08:00-20:00, applied automatically); "
            f"choose hours inside {SMS_LEGAL}"
        )
    return value


#: Email quiet hours must leave at least this many hours a day to send in: "22:00-22:00" or "00:00-24:00"
#: mean the whole day, and every email would be cancelled with `no_allowed_send_time`.
MIN_EMAIL_HOURS = 4


def parse_quiet(text: str) -> str:
    from recovery.sending.policy.hours import Window

    if not str(text).strip():
        return ""
    value = _window(text)
    open_minutes = sum(end - start for start, end in Window.quiet(value).spans)
    if open_minutes == 0:
        raise SettingError(f"{value} is quiet all day (equal ends, or 00:00-24:00, mean the whole day): no email "
                           "could ever be sent; write e.g. 22:00-07:00, or leave it empty for no quiet hours")
    if open_minutes < MIN_EMAIL_HOURS * 60:
        hours, minutes = divmod(open_minutes, 60)
        left = f"{hours} h {minutes:02d} min" if minutes else f"{hours} h"
        raise SettingError(f"{value} leaves only {left} a day to send email: keep at least {MIN_EMAIL_HOURS} h "
                           "open, e.g. 22:00-07:00")
    return value


def parse_threshold(text: str) -> str:
    """A price-drop threshold: a percent (`5%`) and optionally a minimum amount (`5%+1`, the default's 1
    unit of currency); the drop must reach both."""
    value = str(text).strip().replace(" ", "")
    match = re.fullmatch(r"(\d+(?:\.\d+)?)%(?:\+(\d+(?:\.\d+)?))?", value)
    if not match:
        raise SettingError(f"{text!r} is not a threshold such as 5% or 5%+1 (percent, and at least 1 unit of currency)")
    if not 0 < Decimal(match.group(1)) < 100:
        raise SettingError("the percent must be above 0 and below 100")
    return value


def show_on_off(value: Any) -> str:
    return "on" if value else "off"


def parse_cap(text: str) -> int | None:
    """'1/16h' → 57600 seconds between messages to one shopper; 'off' → None."""
    if str(text).strip().lower() in {"off", "none", "0"}:
        return None
    match = _CAP.match(str(text))
    if not match:
        raise SettingError(f"{text!r} is not a cap such as 1/16h (one message per 16 hours) or off")
    seconds = parse_duration(match.group(1))
    if seconds <= 0:
        raise SettingError("the cap's period must be longer than zero")
    return seconds


def parse_cap_setting(text: str) -> str:
    _, slash, period = str(text).partition("/")
    if slash:
        parse_duration(period, bare_seconds=False)  # "1/3600" would mean seconds: ask for the unit
    parse_cap(text)
    return str(text).strip().lower()



MAX_AMOUNT = Decimal(1_000_000)


def parse_decimal(text: str) -> Any:
    try:
        value = Decimal(str(text))
    except InvalidOperation:
        raise SettingError(f"{text!r} is not a number") from None
    if not value.is_finite() or value > MAX_AMOUNT:  # NaN raised on the comparison below; Infinity meant "never"
        raise SettingError(f"enter an amount from 0 to {MAX_AMOUNT}")
    if value < 0:
        raise SettingError("the amount cannot be negative")
    return value
