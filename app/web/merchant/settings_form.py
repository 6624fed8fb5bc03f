"""Changing a store's settings from a merchant page: the same validation as `cartresq store set/unset`
(recovery.config.stores → recovery.config.store_settings), with each error put next to the field it is about."""

from __future__ import annotations

from typing import Any

from recovery.storage import tables as t
from recovery.config.store_settings import SPECS
from recovery.config.stores import StoreError, set_settings, unset_settings


def _field(message: str) -> str:
    key, sep, _ = message.partition(":")
    return key if sep and key in SPECS else "_form"


def apply(store_id: int, values: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """Set KEY=VALUE for `values` in one transaction: (changes, {}) or ({}, {field: error}); nothing
    changes when any value is refused."""
    from app.web import runtime

    pairs = [f"{key}={value}" for key, value in values.items()]
    try:
        with runtime().sessions.begin() as db:
            store = db.get(t.Store, store_id, with_for_update=True)
            return set_settings(db, store, pairs), {}
    except StoreError as exc:
        message = str(exc)
        field = _field(message)
        return {}, {field: message.partition(": ")[2] if field != "_form" else message}


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
