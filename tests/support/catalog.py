"""Catalog webhooks (products/update, inventory_levels/update) signed as Shopify signs them."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.support import shopify

TOTE_VARIANT, TOTE_ITEM = "46310287540521", 48392017645865  # Olive tote, in the checkout fixtures
MUG_VARIANT, MUG_ITEM = "46310287671593", 48392017712345
TASSE_VARIANT, TASSE_ITEM = "46310287802665", 48392017800001  # in the guest EUR checkout
LOCATION, OTHER_LOCATION = 71520846121, 71520846154


#: The scenarios' Triggered-At values are written as on 2026-09-14..16; they are sent moved by one fixed
#: offset to the last hours (order kept), since a delivery older than Shopify's retry horizon is refused.
_SCENARIO_BASE = datetime(2026, 9, 16, 14, 0, tzinfo=UTC)
_SHIFT = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1) - _SCENARIO_BASE


def recent(at: datetime) -> datetime:
    """A scenario time as actually sent (see _SHIFT); within a day before the scenario base."""
    return at + _SHIFT


def post_topic(client: Any, topic: str, payload: dict[str, Any], triggered_at: str | None = None) -> Any:
    body = json.dumps(payload).encode()
    headers = shopify.headers(body, topic)
    if triggered_at:
        at = recent(datetime.fromisoformat(triggered_at.replace("Z", "+00:00")))
        headers["X-Shopify-Triggered-At"] = at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return client.post("/webhooks/shopify", data=body, headers=headers)


def product(
    *,
    price: str = "39.90",
    updated_at: str = "2026-09-16T09:00:04-04:00",
    variant: str = TOTE_VARIANT,
    item: int = TOTE_ITEM,
    product_id: int = 8840213577001,
    title: str = "Waxed Canvas Tote",
    policy: str = "deny",
) -> dict[str, Any]:
    """The products_update fixture with its first variant changed as asked."""
    payload = copy.deepcopy(shopify.load("products_update"))
    payload.update(id=product_id, title=title, updated_at=updated_at)
    first = payload["variants"][0]
    first.update(
        id=int(variant), price=price, inventory_item_id=item, updated_at=updated_at, inventory_policy=policy
    )
    first["product_id"] = product_id
    if variant != TOTE_VARIANT:
        payload["variants"] = [first]  # a one-variant product
    return payload


def inventory(
    available: int | None,
    *,
    item: int = TOTE_ITEM,
    location: int = LOCATION,
    updated_at: str = "2026-09-16T10:12:33-04:00",
) -> dict[str, Any]:
    payload = shopify.load("inventory_levels_update")
    payload.update(inventory_item_id=item, location_id=location, available=available, updated_at=updated_at)
    payload["admin_graphql_api_id"] = f"gid://shopify/InventoryLevel/{location}?inventory_item_id={item}"
    return payload
