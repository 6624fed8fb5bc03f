"""One OfferProvider for every platform: each call goes to the provider of the store's platform.

The composer and the cleanup jobs hold one provider (recovery.sequence.offers.OfferProvider); a store whose
platform has none (e.g. Shopify without app credentials) gets OfferUnavailable, so its offer step
goes out as a plain reminder.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from recovery.storage import tables as t
from recovery.sequence.offers import IssuedCode, OfferProvider, OfferUnavailable
from recovery.config.settings import Settings


class PlatformOffers:
    def __init__(self, providers: Mapping[str, OfferProvider | None]) -> None:
        self.providers = {name: p for name, p in providers.items() if p is not None}

    def _for(self, store: t.Store) -> OfferProvider:
        provider = self.providers.get(store.platform)
        if provider is None:
            raise OfferUnavailable(f"no offer provider for {store.platform} stores")
        return provider

    def create_code(self, store: t.Store, cart: t.Cart | None, percent: int, ends_at: datetime) -> IssuedCode:
        return self._for(store).create_code(store, cart, percent, ends_at)

    def delete_unused(self, store: t.Store, code: t.DiscountCode) -> str:
        return self._for(store).delete_unused(store, code)


def build(
    settings: Settings, sessions: sessionmaker[Session], shopify: OfferProvider | None
) -> PlatformOffers:
    """Shopify's provider when the app has credentials; WooCommerce's always (keys are per store)."""
    from connectors.woocommerce.coupons import WooOffers

    woo = WooOffers(settings.encryption_keys, sessions, allow_http=settings.woo_allow_http,
                    allow_private=settings.allow_private_hosts)
    return PlatformOffers({"shopify": shopify, "woocommerce": woo})
