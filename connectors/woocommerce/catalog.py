"""WooCommerce's side of recovery.intake.verify: a tracker cart's items as `GET /wc/v3/products/<id>` describes them.

The storefront's cart names each line by the id of the product or variation in it; one call per item
(at most 50 per cart, cached by recovery.intake.verify). Only published items with a price are confirmed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from connectors.woocommerce.api import WooError
from connectors.woocommerce.coupons import WooOffers
from recovery.storage import tables as t
from recovery.intake.catalog import shop_currency
from recovery.sequence.offers import OfferUnavailable
from recovery.intake.verify import LineRef, LookupUnavailable, PlatformItem

log = logging.getLogger(__name__)

#: (connect, read) seconds: this runs before a send batch, never while a shopper waits.
TIMEOUT = (3.0, 8.0)


class WooCatalog(WooOffers):
    """Reuses WooOffers' store client (the merchant's REST keys, the store URL rules)."""

    def __init__(
        self, vault: Any, sessions: sessionmaker[Session] | None = None, *, allow_http: bool = False,
        allow_private: bool = False,
    ) -> None:
        super().__init__(vault, sessions, allow_http=allow_http, timeout=TIMEOUT, allow_private=allow_private)

    def lookup(self, store: t.Store, lines: Sequence[LineRef]) -> dict[str, PlatformItem]:
        if store.platform != "woocommerce":
            raise LookupUnavailable(f"not a WooCommerce store: {store.platform}")
        try:
            client = self._client(store)
        except OfferUnavailable as exc:
            raise LookupUnavailable(str(exc)) from None
        found: dict[str, PlatformItem] = {}
        try:
            for ref in lines:
                if not ref.key.isdigit():
                    continue
                try:
                    product = client.get_product(int(ref.key))
                except WooError as exc:
                    if exc.status in (400, 404):  # no such product: not confirmed
                        continue
                    raise LookupUnavailable(str(exc)) from None
                item = _item(product, store)
                if item is not None:
                    found[ref.key] = item
        finally:
            client.close()
        return found


def _item(product: dict[str, Any], store: t.Store) -> PlatformItem | None:
    if product.get("status") not in ("publish", None):
        return None
    try:
        price = Decimal(str(product.get("price")))
    except (InvalidOperation, ValueError):
        return None
    title = str(product.get("name") or "").strip()
    if not title or not price.is_finite() or price < 0:
        return None
    images = product.get("images") if isinstance(product.get("images"), list) else []
    image = (images[0] or {}).get("src") if images and isinstance(images[0], dict) else (
        (product.get("image") or {}).get("src") if isinstance(product.get("image"), dict) else None
    )
    return PlatformItem(
        title=title,
        price=price,
        currency=shop_currency(store),
        product_id=str(product.get("parent_id") or product.get("id") or "") or None,
        image_url=str(image) if image else None,
        url=str(product.get("permalink") or "") or None,
    )
