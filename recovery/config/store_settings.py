"""Per-store settings: one table of known keys, each with its parser and default."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_CAP = re.compile(r"^\s*1\s*/\s*(\S+)\s*$")


class SettingError(ValueError):
    """A bad key or value: the message says which and why."""


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
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def format_duration(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _percent(text: str) -> int:
    try:
        value = int(str(text))
    except ValueError:
        raise SettingError(f"{text!r} is not a whole number from 0 to 100") from None
    if not 0 <= value <= 100:
        raise SettingError(f"{value} is outside 0..100")
    return value


def _arms(text: str) -> list[int]:
    """Discount arms: whole percents 0..100, comma-separated, at least two (empty: no experiment)."""
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    arms = sorted({_percent(p) for p in parts})
    if len(arms) == 1:
        raise SettingError("offer_arms needs at least two arms, e.g. 0,5,10,15 (or empty)")
    return arms


def _bool(text: str) -> bool:
    lowered = str(text).strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise SettingError(f"{text!r} is not a boolean: use true or false")


def _positive_duration(text: str) -> int:
    seconds = parse_duration(text, bare_seconds=False)
    if seconds <= 0:
        raise SettingError("a duration must be longer than zero")
    return seconds


def _timezone(text: str) -> str:
    try:
        ZoneInfo(str(text))
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingError(f"{text!r} is not an IANA time zone such as America/New_York") from None
    return str(text)


def _currency(text: str) -> str:
    from babel.numbers import list_currencies

    code = str(text).strip().upper()
    if code not in list_currencies():  # Babel's CLDR list of ISO 4217 codes
        raise SettingError(f"{text!r} is not an ISO 4217 currency code such as USD, EUR or GBP")
    return code


def _origins(text: str) -> list[str]:
    origins = [o.strip().rstrip("/") for o in str(text).split(",") if o.strip()]
    for origin in origins:
        if not re.fullmatch(r"https?://[A-Za-z0-9.-]+(:\d+)?", origin):
            raise SettingError(f"{origin!r} is not an origin such as https://shop.example.com")
    return origins


def _country(text: str) -> str:
    code = str(text).strip().upper()
    if code and not re.fullmatch(r"[A-Z]{2}", code):
        raise SettingError(f"{text!r} is not an ISO 3166 country code such as US")
    return code


def _email(text: str) -> str:
    value = str(text).strip()
    if value and (len(value) > 254 or not re.fullmatch(r"[^@\s<>,;\"]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+", value)):
        raise SettingError(f"{value!r} is not an email address such as help@shop.example.com")
    return value.lower()


def _text(text: str) -> str:
    value = str(text).strip()
    if len(value) > 500:
        raise SettingError("text settings are limited to 500 characters")
    return value


_STEP = re.compile(r"^(?P<off>!)?(?P<channel>[a-z]+):(?P<template>[a-z_]+)(?:\+(?P<delay>[^>\s]+))?(?:>(?P<min>[\d.]+))?$")


def _sequence(text: str) -> list[dict[str, Any]]:
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
    """Steps (recovery.sequence.plan.Step) in the compact form `_sequence` reads back."""
    parts = []
    for step in steps:
        part = f"{'' if step.enabled else '!'}{step.channel}:{step.template}"
        if step.delay is not None:
            part += f"+{format_duration(step.delay)}"
        if step.min_total is not None:
            part += f">{step.min_total}"
        parts.append(part)
    return ", ".join(parts)


def _low_stock(text: str) -> int:
    try:
        value = int(str(text))
    except ValueError:
        raise SettingError(f"{text!r} is not a whole number from 0 to 10") from None
    if not 0 <= value <= 10:  # content never says "only N left" above 10: it would not be scarce
        raise SettingError(f"{value} is outside 0..10")
    return value


#: WooCommerce order statuses (platform-facts §8.3); custom ones come from other plugins.
_WOO_STATUSES = r"[a-z0-9][a-z0-9_-]{0,30}"


def _woo_statuses(text: str) -> list[str]:
    statuses = [s.strip().lower().removeprefix("wc-") for s in str(text).split(",") if s.strip()]
    for status in statuses:
        if not re.fullmatch(_WOO_STATUSES, status) or status in ("pending", "failed", "checkout-draft", "cancelled",
                                                                 "refunded", "trash"):
            raise SettingError(f"{status!r} cannot count as paid (use e.g. processing,completed,on-hold)")
    if not statuses:
        raise SettingError("name at least one paid status, e.g. processing,completed")
    return statuses


def _consent_policy(text: str) -> str:
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


def _sms_window(text: str) -> str:
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


def _quiet(text: str) -> str:
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


def _threshold(text: str) -> str:
    """A price-drop threshold: a percent (`5%`) and optionally a minimum amount (`5%+1`, the default's 1
    unit of currency); the drop must reach both."""
    value = str(text).strip().replace(" ", "")
    match = re.fullmatch(r"(\d+(?:\.\d+)?)%(?:\+(\d+(?:\.\d+)?))?", value)
    if not match:
        raise SettingError(f"{text!r} is not a threshold such as 5% or 5%+1 (percent, and at least 1 unit of currency)")
    if not 0 < Decimal(match.group(1)) < 100:
        raise SettingError("the percent must be above 0 and below 100")
    return value


def _on_off(value: Any) -> str:
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


def _cap(text: str) -> str:
    _, slash, period = str(text).partition("/")
    if slash:
        parse_duration(period, bare_seconds=False)  # "1/3600" would mean seconds: ask for the unit
    parse_cap(text)
    return str(text).strip().lower()


@dataclass(frozen=True)
class Spec:
    parse: Callable[[str], Any]
    default: Any
    help: str
    show: Callable[[Any], str] = str


SPECS: Mapping[str, Spec] = {
    "abandon_after": Spec(_positive_duration, 3600, "idle time before a cart counts as abandoned", format_duration),
    "holdout_percent": Spec(_percent, 10, "share of abandoned carts kept as an untouched control group"),
    "attribution_window": Spec(
        _positive_duration, 5 * 86400, "an order this soon after a message counts as recovered", format_duration
    ),
    "first_message_min": Spec(_positive_duration, 1800, "earliest first reminder after abandonment", format_duration),
    "first_message_max": Spec(_positive_duration, 4 * 3600, "latest first reminder after abandonment", format_duration),
    "sms_min_cart_value": Spec(lambda t: str(_decimal(t)), "50", "SMS step only for carts above this total"),
    "sms_enabled": Spec(_bool, True, "send the SMS step when the shopper consented", lambda v: str(v).lower()),
    "timezone": Spec(_timezone, "UTC", "the store's own time zone"),
    "currency": Spec(_currency, "USD", "the store's currency"),
    "allowed_origins": Spec(_origins, [], "origins allowed to send tracker beacons", ",".join),
    "postal_address": Spec(_text, "", "postal address printed in every email (CAN-SPAM)"),
    "sender_name": Spec(_text, "", "From name on recovery emails"),
    "reply_to": Spec(_email, "", "where shoppers' replies to recovery emails go (Reply-To; empty: no replies)"),
    "low_stock_threshold": Spec(
        _low_stock, 5, "\"only N left\" is said when the store's stock of an item is at most this (0..10)"
    ),
    # WooCommerce: which order statuses are purchases (the rest are carts in progress or undone).
    "woo_paid_statuses": Spec(
        _woo_statuses, ["processing", "completed", "on-hold"], "WooCommerce order statuses that count as paid", ",".join
    ),
    "sequence": Spec(
        _sequence, None, "the messages and when they go, e.g. email:gentle_reminder, email:value_proposition+1d"
    ),
    # Offers (recovery/sequence/offers.py): 0 = the offer step goes out as a plain reminder, no code is made.
    "offer_percent": Spec(_percent, 0, "percent off in the offer step's single-use code (0: no code)"),
    "offer_window": Spec(_positive_duration, 48 * 3600, "how long an offer's code stays valid", format_duration),
    # Discounts as an experiment (recovery/sequence/discount_arms.py): arms tried per shopper, judged on profit.
    "offer_arms": Spec(_arms, [], "percents tried per shopper by Thompson sampling on profit, e.g. 0,5,10,15 "
                       "(empty: offer_percent for everyone)", lambda v: ",".join(map(str, v))),
    "margin_percent": Spec(_percent, 40, "gross margin the discount arms are judged on"),
    # Storefront tracker (POST /track).
    "exit_popup": Spec(_bool, True, "show the tracker's exit-intent popup", lambda v: str(v).lower()),
    "exit_offer": Spec(_text, "", "offer text shown on exit intent (empty: ask for an email instead)"),
    # Exit offer codes (recovery/sequence/offers.py: exit_code): one unique single-use code per shopper session.
    "exit_offer_percent": Spec(
        _percent, 10, "percent off in the exit offer's unique code (0: show exit_offer text only, no code)"
    ),
    "exit_offer_window": Spec(_positive_duration, 86400, "how long an exit offer's code stays valid", format_duration),
    "track_consent_required": Spec(
        _bool, True, "keep tracker contact details only with the shopper's analytics/marketing consent",
        lambda v: str(v).lower(),
    ),
    "country": Spec(_country, "", "the store's country (ISO 3166 alpha-2), for reading local phone numbers"),
    # Send policy (recovery/sending/policy, recovery/consent/records.py).
    "email_consent_policy": Spec(
        _consent_policy, "regional",
        "regional (consent needed only in the EU/EEA and UK), opt_in_only or any_checkout_email",
    ),
    "sms_window": Spec(_sms_window, "08:00-21:00", "local hours for SMS; never wider than the law (8-21, FL/OK 8-20)"),
    "email_quiet_hours": Spec(_quiet, "", "local hours with no email, e.g. 22:00-07:00 (empty: off)"),
    "shopper_cap": Spec(_cap, "1/16h", "at most one message per period to one shopper, any channel (or off)"),
    # Triggered flows (recovery/flows, docs/flows.md): each its own on/off, timing and holdout.
    "price_drop": Spec(_bool, True, "message a shopper when an item of their abandoned cart gets cheaper", _on_off),
    "price_drop_threshold": Spec(
        _threshold, "5%", "smallest price drop that is news: a percent, and at least 1 unit of currency (5%+2: 2 units)"
    ),
    "back_in_stock": Spec(_bool, True, "message a shopper when a sold-out item of their abandoned cart is back",
                          _on_off),
    "cross_sell": Spec(_bool, False, "\"complete the look\" email with recommendations after fulfilment", _on_off),
    "cross_sell_after": Spec(_positive_duration, 7 * 86400, "how long after fulfilment the cross-sell goes",
                             format_duration),
    "browse_abandonment": Spec(
        _bool, False, "remind a known shopper of a product they viewed twice in a visit without adding it",
        _on_off,
    ),
    "browse_abandonment_after": Spec(
        _positive_duration, 86400, "how long after the last view the browse reminder goes", format_duration
    ),
    "recommendations_in_reminders": Spec(
        _bool, False, "a \"you may also like\" block in cart reminders", _on_off
    ),
}


def _decimal(text: str) -> Any:
    try:
        value = Decimal(str(text))
    except InvalidOperation:
        raise SettingError(f"{text!r} is not a number") from None
    if value < 0:
        raise SettingError("the amount cannot be negative")
    return value


def parse_assignments(pairs: list[str]) -> dict[str, Any]:
    """Validate KEY=VALUE pairs all together, so a bad one changes nothing."""
    parsed: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep:
            raise SettingError(f"{pair!r} is not KEY=VALUE")
        parsed[key] = parse_value(key, value)
    return parsed


def parse_value(key: str, value: str) -> Any:
    spec = SPECS.get(key)
    if spec is None:
        raise SettingError(f"unknown setting {key!r}; known: {', '.join(sorted(SPECS))}")
    try:
        return spec.parse(value)
    except SettingError as exc:
        raise SettingError(f"{key}: {exc}") from None


def parse_each(values: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """Every value parsed on its own: (parsed, {key: why}) with an error for each bad value, not only the
    first (a form shows them all, each next to its field)."""
    parsed: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for key, value in values.items():
        try:
            parsed[key] = parse_value(key, value)
        except SettingError as exc:
            errors[key] = str(exc).removeprefix(f"{key}: ")
    return parsed, errors


def current(stored: Mapping[str, Any], key: str) -> Any:
    """The value in force for `key`, as its parser returns it (the sequence as the steps that apply)."""
    if key == "sequence":
        from recovery.sequence.plan import store_sequence

        return [step.to_json() for step in store_sequence(effective(stored), switched_off=True)]
    return stored.get(key, SPECS[key].default)


def check_consistency(merged: Mapping[str, Any]) -> None:
    """Rules across keys, checked on the settings as they would be after a change."""
    values = effective(merged)
    if values["first_message_min"] > values["first_message_max"]:
        raise SettingError("first_message_min must not be later than first_message_max")


def effective(stored: Mapping[str, Any]) -> dict[str, Any]:
    """Stored values over defaults."""
    return {key: stored.get(key, spec.default) for key, spec in SPECS.items()}


def describe(stored: Mapping[str, Any]) -> list[tuple[str, str, bool]]:
    """(key, shown value, is_default) for every known setting; the sequence as the steps that apply."""
    from recovery.sequence.plan import store_sequence

    values = effective(stored)
    rows = []
    for key, value in values.items():
        shown = format_sequence(store_sequence(values, switched_off=True)) if key == "sequence" else SPECS[key].show(value)
        rows.append((key, shown, key not in stored))
    return rows


def unset(stored: Mapping[str, Any], keys: list[str]) -> dict[str, Any]:
    """The settings with `keys` back to their defaults (validated together, like a change)."""
    for key in keys:
        if key not in SPECS:
            raise SettingError(f"unknown setting {key!r}; known: {', '.join(sorted(SPECS))}")
    if not keys:
        raise SettingError("name the settings to put back to their defaults")
    remaining = {key: value for key, value in stored.items() if key not in keys}
    check_consistency(remaining)
    return remaining
