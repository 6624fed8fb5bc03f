"""Registering stores and changing their settings (the install flows come with each platform)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from recovery.storage import locks
from recovery.storage import tables as t
from recovery.storage.crypto import Vault
from recovery.config.store_settings import SPECS, SettingError, check_consistency, parse_assignments, unset
from recovery.storage.tables import utcnow

PLATFORMS = ("shopify", "woocommerce")


class StoreError(ValueError):
    pass


def get_store(session: Session, domain: str, platform: str | None = None) -> t.Store:
    query = select(t.Store).where(t.Store.domain == domain.strip().lower())
    if platform:
        query = query.where(t.Store.platform == platform)
    stores = session.scalars(query).all()
    if not stores:
        raise StoreError(f"no store {domain!r}; add it with `cartresq store add`")
    if len(stores) > 1:
        raise StoreError(f"{domain!r} exists on several platforms; name the platform")
    return stores[0]


def add_store(
    session: Session, *, platform: str, domain: str, vault: Vault | None = None, token: str | None = None
) -> t.Store:
    """Register (or re-activate) a store; an access token is stored encrypted, never in clear."""
    if platform not in PLATFORMS:
        raise StoreError(f"unknown platform {platform!r}; use one of {', '.join(PLATFORMS)}")
    domain = domain.strip().lower()
    store = session.scalar(select(t.Store).where(t.Store.platform == platform, t.Store.domain == domain))
    if store is None:
        store = t.Store(platform=platform, domain=domain, settings={}, plan="free", timezone="UTC", currency="USD")
        session.add(store)
    store.uninstalled_at = None
    store.installed_at = utcnow()
    if token:
        if vault is None:
            raise StoreError("an encryption key is needed to store a token")
        store.credentials = vault.seal({"access_token": token})
    session.flush()
    return store


def set_settings(session: Session, store: t.Store, pairs: list[str]) -> dict[str, Any]:
    """Validate every pair first, so one bad pair changes nothing."""
    try:
        changes = parse_assignments(pairs)
        merged = {**(store.settings or {}), **changes}
        check_consistency(merged)
    except SettingError as exc:
        raise StoreError(str(exc)) from None
    if not changes:
        raise StoreError("nothing to set: give KEY=VALUE pairs")
    store.settings = merged  # a new dict, so the JSON column is seen as changed
    if "timezone" in changes:
        store.timezone = changes["timezone"]
    if "currency" in changes:
        store.currency = changes["currency"]
    return changes


def unset_settings(session: Session, store: t.Store, keys: list[str]) -> None:
    """Put `keys` back to their defaults (validated together, like a change)."""
    try:
        store.settings = unset(store.settings or {}, keys)  # a new dict: the JSON change is seen
    except SettingError as exc:
        raise StoreError(str(exc)) from None
    if "timezone" in keys:
        store.timezone = SPECS["timezone"].default
    if "currency" in keys:
        store.currency = SPECS["currency"].default


def fill_postal_address(session: Session, store_id: int, address: str, name: str | None = None) -> bool:
    """The platform's shop address as `postal_address` (CAN-SPAM), unless the merchant set one: theirs wins."""
    store = session.scalar(select(t.Store).where(t.Store.id == store_id).with_for_update(**locks.STORE_EXCLUSIVE))
    if store is None or not address.strip() or (store.settings or {}).get("postal_address"):
        return False
    store.settings = {**(store.settings or {}), "postal_address": address.strip()}  # a new dict: JSON change seen
    store.name = store.name or name or None
    return True
