"""Changing a store's settings from a merchant page: the same validation as `cartresq store set/unset`
(recovery.config.stores → recovery.config.store_settings), with each error put next to the field it is about."""

from __future__ import annotations

from typing import Any

from recovery.storage import tables as t
from recovery.config.store_settings import SPECS, current, parse_each
from recovery.config.stores import StoreError, set_settings, unset_settings


def _field(message: str) -> str:
    key, sep, _ = message.partition(":")
    return key if sep and key in SPECS else "_form"


def check(values: dict[str, str]) -> dict[str, str]:
    """{field: error} for every value refused on its own (rules across keys are checked by `apply`)."""
    return parse_each(values)[1]


def apply(
    store_id: int, values: dict[str, str], *, only_changed: bool = False
) -> tuple[dict[str, Any], dict[str, str]]:
    """Set KEY=VALUE for `values` in one transaction: (changes, {}) or ({}, {field: error}) with an error for
    each bad value; nothing changes when any value is refused. With `only_changed`, a value equal to the one
    in force is not stored, so a page that posts all its fields does not pin today's defaults."""
    from app.web import runtime

    parsed, errors = parse_each(values)
    if errors:
        return {}, errors
    try:
        with runtime().sessions.begin() as db:
            store = db.get(t.Store, store_id, with_for_update=True)
            keys = [key for key in values if not only_changed or parsed[key] != in_force(store, key)]
            if not keys:
                return {}, {}
            return set_settings(db, store, [f"{key}={values[key]}" for key in keys]), {}
    except StoreError as exc:
        message = str(exc)
        field = _field(message)
        return {}, {field: message.partition(": ")[2] if field != "_form" else message}


#: Settings that mirror a column of the store's row, which the platform or the demo may have set without a setting.
ROW_KEYS = ("timezone", "currency")


def in_force(store: t.Store, key: str) -> Any:
    """The value in force for `key`: the stored setting, else the store row's own value (time zone, currency),
    else the default. Comparing with it, a page that posts all its fields pins neither a default nor the row's
    value (saving the Settings page had stored the store's time zone, and its reset then moved the store to UTC)."""
    stored_now = store.settings or {}
    if key in ROW_KEYS and key not in stored_now and getattr(store, key, None):
        return getattr(store, key)
    return current(stored_now, key)


def reset(store_id: int, key: str) -> dict[str, str]:
    from app.web import runtime

    try:
        with runtime().sessions.begin() as db:
            unset_settings(db, db.get(t.Store, store_id, with_for_update=True), [key])
    except StoreError as exc:
        return {key if key in SPECS else "_form": str(exc)}
    return {}


def stored(store_id: int) -> dict[str, Any]:
    from app.web import runtime

    with runtime().sessions() as db:
        store = db.get(t.Store, store_id)
        return dict(store.settings or {}) if store is not None else {}
