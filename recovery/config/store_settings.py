"""Per-store settings: one table of known keys, each with its parser (recovery/config/values.py) and default."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from recovery.config.values import (  # noqa: F401  SettingError, parse_duration, format_duration, parse_cap: re-exported
    SettingError,
    duration_up_to,
    format_duration,
    format_sequence,
    parse_arms,
    parse_bool,
    parse_cap,
    parse_cap_setting,
    parse_consent_policy,
    parse_country,
    parse_currency,
    parse_decimal,
    parse_duration,
    parse_email,
    parse_low_stock,
    parse_origins,
    parse_percent,
    parse_quiet,
    parse_sequence_setting,
    parse_sms_window,
    parse_text,
    parse_threshold,
    parse_timezone,
    parse_woo_statuses,
    show_on_off,
)


@dataclass(frozen=True)
class Spec:
    parse: Callable[[str], Any]
    default: Any
    help: str
    show: Callable[[Any], str] = str


SPECS: Mapping[str, Spec] = {
    "abandon_after": Spec(duration_up_to(7), 3600, "idle time before a cart counts as abandoned", format_duration),
    "holdout_percent": Spec(parse_percent, 10, "share of abandoned carts kept as an untouched control group"),
    "attribution_window": Spec(
        duration_up_to(90), 5 * 86400, "an order this soon after a message counts as recovered", format_duration
    ),
    "first_message_min": Spec(duration_up_to(7), 1800, "earliest first reminder after abandonment", format_duration),
    "first_message_max": Spec(duration_up_to(7), 4 * 3600, "latest first reminder after abandonment", format_duration),
    "sms_min_cart_value": Spec(lambda t: str(parse_decimal(t)), "50", "SMS step only for carts above this total"),
    "sms_enabled": Spec(parse_bool, True, "send the SMS step when the shopper consented", lambda v: str(v).lower()),
    "timezone": Spec(parse_timezone, "UTC", "the store's own time zone"),
    "currency": Spec(parse_currency, "USD", "the store's currency"),
    "allowed_origins": Spec(parse_origins, [], "origins allowed to send tracker beacons", ",".join),
    "postal_address": Spec(parse_text, "", "postal address printed in every email (CAN-SPAM)"),
    "sender_name": Spec(parse_text, "", "From name on recovery emails"),
    "reply_to": Spec(parse_email, "", "where shoppers' replies to recovery emails go (Reply-To; empty: no replies)"),
    "low_stock_threshold": Spec(
        parse_low_stock, 5, "\"only N left\" is said when the store's stock of an item is at most this (0..10)"
    ),
    # WooCommerce: which order statuses are purchases (the rest are carts in progress or undone).
    "woo_paid_statuses": Spec(
        parse_woo_statuses, ["processing", "completed", "on-hold"], "WooCommerce order statuses that count as paid", ",".join
    ),
    "sequence": Spec(
        parse_sequence_setting, None, "the messages and when they go, e.g. email:gentle_reminder, email:value_proposition+1d"
    ),
    # Offers (recovery/sequence/offers.py): 0 = the offer step goes out as a plain reminder, no code is made.
    "offer_percent": Spec(parse_percent, 0, "percent off in the offer step's single-use code (0: no code)"),
    "offer_window": Spec(duration_up_to(90), 48 * 3600, "how long an offer's code stays valid", format_duration),
    # Discounts as an experiment (recovery/sequence/discount_arms.py): arms tried per shopper, judged on profit.
    "offer_arms": Spec(parse_arms, [], "percents tried per shopper by Thompson sampling on profit, e.g. 0,5,10,15 "
                       "(empty: offer_percent for everyone)", lambda v: ",".join(map(str, v))),
    "margin_percent": Spec(parse_percent, 40, "gross margin the discount arms are judged on"),
    # Storefront tracker (POST /track).
    "exit_popup": Spec(parse_bool, True, "show the tracker's exit-intent popup", lambda v: str(v).lower()),
    "exit_offer": Spec(parse_text, "", "offer text shown on exit intent (empty: ask for an email instead)"),
    # Exit offer codes (recovery/sequence/offers.py: exit_code): one unique single-use code per shopper session.
    "exit_offer_percent": Spec(
        parse_percent, 10, "percent off in the exit offer's unique code (0: show exit_offer text only, no code)"
    ),
    "exit_offer_window": Spec(duration_up_to(90), 86400, "how long an exit offer's code stays valid", format_duration),
    "track_consent_required": Spec(
        parse_bool, True, "keep tracker contact details only with the shopper's analytics/marketing consent",
        lambda v: str(v).lower(),
    ),
    "country": Spec(parse_country, "", "the store's country (ISO 3166 alpha-2), for reading local phone numbers"),
    # Send policy (recovery/sending/policy, recovery/consent/records.py).
    "email_consent_policy": Spec(
        parse_consent_policy, "regional",
        "regional (consent needed only in the EU/EEA and UK), opt_in_only or any_checkout_email",
    ),
    "sms_window": Spec(parse_sms_window, "08:00-21:00", "local hours for SMS; never wider than the law (8-21, FL/OK 8-20)"),
    "email_quiet_hours": Spec(parse_quiet, "", "local hours with no email, e.g. 22:00-07:00 (empty: off)"),
    "shopper_cap": Spec(parse_cap_setting, "1/16h", "at most one message per period to one shopper, any channel (or off)"),
    # Triggered flows (recovery/flows, docs/flows.md): each its own on/off, timing and holdout.
    "price_drop": Spec(parse_bool, True, "message a shopper when an item of their abandoned cart gets cheaper", show_on_off),
    "price_drop_threshold": Spec(
        parse_threshold, "5%", "smallest price drop that is news: a percent, and at least 1 unit of currency (5%+2: 2 units)"
    ),
    "back_in_stock": Spec(parse_bool, True, "message a shopper when a sold-out item of their abandoned cart is back",
                          show_on_off),
    "cross_sell": Spec(parse_bool, False, "\"complete the look\" email with recommendations after fulfilment", show_on_off),
    "cross_sell_after": Spec(duration_up_to(90), 7 * 86400, "how long after fulfilment the cross-sell goes",
                             format_duration),
    "browse_abandonment": Spec(
        parse_bool, False, "remind a known shopper of a product they viewed twice in a visit without adding it",
        show_on_off,
    ),
    "browse_abandonment_after": Spec(
        duration_up_to(30), 86400, "how long after the last view the browse reminder goes", format_duration
    ),
    "recommendations_in_reminders": Spec(
        parse_bool, False, "a \"you may also like\" block in cart reminders", show_on_off
    ),
}


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
    margin = values["margin_percent"]
    if any(arm >= margin for arm in values["offer_arms"] or []):  # the bandit would keep serving a losing arm
        raise SettingError(f"offer_arms: every percent must be below margin_percent ({margin}): an offer at or above "
                           "the margin loses money on every order it wins")  # fmt: skip


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
