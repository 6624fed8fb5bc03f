"""Shopify's side of recovery.intake.verify: a tracker cart's variants as the Admin API describes them.

One `nodes(ids:)` query per store and batch (at most 50 variants, the beacon's limit), through the same
Admin client and token handling as discount codes. A line that names no variant cannot be confirmed.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from connectors.shopify.discounts import ShopifyOffers
from recovery.storage import tables as t
from recovery.intake.catalog import shop_currency
from recovery.sequence.offers import OfferUnavailable
from recovery.intake.verify import LineRef, LookupUnavailable, PlatformItem

QUERY = """
query ConfirmCartLines($ids: [ID!]!) {
  nodes(ids: $ids) {
    ... on ProductVariant {
      id
      title
      price
      product { id title handle onlineStoreUrl featuredMedia { preview { image { url } } } }
    }
  }
}
"""
GID = "gid://shopify/ProductVariant/"


class ShopifyCatalog:
    def __init__(self, admin: ShopifyOffers) -> None:
        self.admin = admin  # its `call`: the store's token, retries and cost budget

    def lookup(self, store: t.Store, lines: Sequence[LineRef]) -> dict[str, PlatformItem]:
        if store.platform != "shopify":
            raise LookupUnavailable(f"not a Shopify store: {store.platform}")
        variants = {ref.variant_id: ref.key for ref in lines if ref.variant_id and ref.variant_id.isdigit()}
        if not variants:
            return {}
        try:
            data = self.admin.call(store, QUERY, {"ids": [GID + v for v in list(variants)[:100]]})
        except OfferUnavailable as exc:
            raise LookupUnavailable(str(exc)) from None
        found: dict[str, PlatformItem] = {}
        for node in data.get("nodes") or []:
            item = _item(node, store) if isinstance(node, dict) else None
            variant = str((node or {}).get("id", "")).removeprefix(GID) if isinstance(node, dict) else ""
            if item is not None and variant in variants:
                found[variants[variant]] = item
        return found


def _item(node: dict[str, Any], store: t.Store) -> PlatformItem | None:
    product = node.get("product") if isinstance(node.get("product"), dict) else {}
    try:
        price = Decimal(str(node.get("price")))
    except (InvalidOperation, ValueError):
        return None
    title = str(product.get("title") or "").strip()
    if not title or not price.is_finite() or price < 0:
        return None
    variant_title = str(node.get("title") or "").strip()
    media = product.get("featuredMedia") if isinstance(product.get("featuredMedia"), dict) else {}
    image = (((media.get("preview") or {}).get("image")) or {}).get("url")
    url = product.get("onlineStoreUrl") or (
        f"https://{store.domain}/products/{product['handle']}" if product.get("handle") else None
    )
    return PlatformItem(
        title=title,
        price=price,
        currency=shop_currency(store),
        product_id=str(product.get("id") or "").removeprefix("gid://shopify/Product/") or None,
        variant_title=None if variant_title in ("", "Default Title") else variant_title,
        image_url=str(image) if image else None,
        url=str(url) if url else None,
    )
