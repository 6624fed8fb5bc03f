"""One CatalogLookup for every platform (recovery.intake.verify): each call goes to the store's platform."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy.orm import Session, sessionmaker

from recovery.storage import tables as t
from recovery.config.settings import Settings
from recovery.intake.verify import CatalogLookup, LineRef, LookupUnavailable, PlatformItem


class PlatformCatalog:
    def __init__(self, lookups: Mapping[str, CatalogLookup | None]) -> None:
        self.lookups = {name: c for name, c in lookups.items() if c is not None}

    def lookup(self, store: t.Store, lines: Sequence[LineRef]) -> dict[str, PlatformItem]:
        found = self.lookups.get(store.platform)
        if found is None:
            raise LookupUnavailable(f"no catalog access for {store.platform} stores")
        return found.lookup(store, lines)


def build(settings: Settings, sessions: sessionmaker[Session], shopify: CatalogLookup | None) -> PlatformCatalog:
    """Shopify's lookup when the app has credentials; WooCommerce's always (keys are per store)."""
    from connectors.woocommerce.catalog import WooCatalog

    woo = WooCatalog(settings.encryption_keys, sessions, allow_http=settings.woo_allow_http,
                     allow_private=settings.allow_private_hosts)
    return PlatformCatalog({"shopify": shopify, "woocommerce": woo})
