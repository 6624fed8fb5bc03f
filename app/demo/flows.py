"""The demo's triggered flows (issue 22): the catalog and fulfilment facts the simulated store sends, and
what the summary prints for each flow.

At fixed simulated times the store sends signed Shopify webhooks, like any store would:
- products/update lowering the price of a few catalog variants (`DROPS`): price drop;
- for one variant (`RESTOCK`) a stock of 0 from the start, then a restock: back in stock (the reminders
  of carts holding it are skipped as out of stock until then, as in production);
- browse abandonment: a share of the shoppers who will abandon view one of the store's other products
  (`BROWSED`, recorded by products/update at the start) twice before checking out, in one tracker session
  that then names their checkout (a `checkout_started` beacon): real POST /track beacons, so the views belong
  to a known shopper and the reminder goes `browse_abandonment_after` (24 h) after the last view;
- orders/fulfilled: the store ships once a day (`SHIP_HOUR` UTC), each order at least `FULFIL_AFTER`
  after it was placed; the demo store sends its cross-sell `CROSS_SELL_AFTER` the fulfilment (the default,
  7 days, is beyond the simulated days). One shipping batch a day, not one instant per order, keeps the
  number of simulated instants (and the demo's runtime) small.
Shoppers react to flow messages with the same reaction model as to cart reminders (app/demo/shop.py).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np

from ml.sim_data import CATALOG
from ml.simulator import SimShopper
from recovery.flows import BACK_IN_STOCK, BROWSE, CROSS_SELL, PRICE_DROP
from recovery.flows.report import FlowLine, format_line

#: (variant, new price) lowered at DROP_AT: ~20 % off, above the default threshold (5 % and one unit).
DROPS: tuple[tuple[str, str], ...] = (("sim-var-1041", "69.00"), ("sim-var-1071", "99.00"), ("sim-var-1021", "26.00"))
DROP_AT = timedelta(hours=30)  # after most of the first day's carts were counted abandoned
RESTOCK = "sim-var-1091"  # sold out from the start, back at RESTOCK_AT
RESTOCK_AT = timedelta(hours=30, minutes=30)
LOCATION = "sim-location-1"
FULFIL_AFTER = timedelta(hours=12)
SHIP_HOUR = 15
CROSS_SELL_AFTER = timedelta(days=1)
#: The demo store turns the flows on (cross-sell is off by default) with a cross-sell delay the run reaches.
STORE_SETTINGS = {PRICE_DROP: True, BACK_IN_STOCK: True, CROSS_SELL: True, BROWSE: True,
                  "cross_sell_after": int(CROSS_SELL_AFTER.total_seconds())}
#: The reaction draw's key per flow (cart reminders use their step, 1..8).
REACTION_KEYS = {PRICE_DROP: 1001, BACK_IN_STOCK: 1002, CROSS_SELL: 1003, BROWSE: 1004}
SHOWN = (PRICE_DROP, BACK_IN_STOCK, CROSS_SELL, BROWSE)
#: Products shoppers browse without buying (numeric ids, as a product page renders them; not in the carts).
BROWSED: tuple[tuple[int, str, str], ...] = (
    (9_100_000_000_001, "Juniper Field Journal", "22.00"),
    (9_100_000_000_002, "Saltmarsh Enamel Tray", "36.00"),
    (9_100_000_000_003, "Hearthstone Coaster Set", "28.00"),
)
#: Of the shoppers who will abandon, this share viewed a BROWSED product twice before checking out.
BROWSE_SHARE = 0.4
#: The two views, before the checkout (the beacons are sent at the next step, with these times).
VIEWS_BEFORE = (timedelta(minutes=12), timedelta(minutes=6))


def _inventory_item(variant_id: str) -> str:
    return variant_id.replace("sim-var-", "sim-inv-")


def product_update(variant_id: str, at: datetime, price: str | None = None) -> dict[str, Any]:
    """products/update for the variant's product: all its variants, this one at `price` (if given)."""
    entry = next(e for e in CATALOG if e.variant_id == variant_id)
    variants = [
        {
            "id": e.variant_id, "product_id": e.product_id, "title": e.variant_title or "Default Title",
            "price": price if e.variant_id == variant_id and price else str(e.unit_price),
            "compare_at_price": str(e.unit_price) if e.variant_id == variant_id and price else None,
            "sku": e.variant_id.upper(), "inventory_policy": "deny", "inventory_item_id": _inventory_item(e.variant_id),
            "updated_at": at.isoformat(),
        }
        for e in CATALOG if e.product_id == entry.product_id
    ]  # fmt: skip
    return {
        "id": entry.product_id, "title": entry.title, "handle": entry.title.lower().replace(" ", "-").replace("&", "and"),
        "vendor": "Demo Outfitters", "status": "active", "variants": variants, "image": None,
        "created_at": (at - timedelta(days=90)).isoformat(), "updated_at": at.isoformat(),
    }  # fmt: skip


def inventory_level(variant_id: str, available: int, at: datetime) -> dict[str, Any]:
    return {"inventory_item_id": _inventory_item(variant_id), "location_id": LOCATION, "available": available,
            "updated_at": at.isoformat()}


def ship_at(ordered: datetime) -> datetime:
    """The first daily shipping batch at least FULFIL_AFTER after the order."""
    earliest = ordered + FULFIL_AFTER
    batch = earliest.replace(hour=SHIP_HOUR, minute=0, second=0, microsecond=0)
    return batch if batch >= earliest else batch + timedelta(days=1)


def fulfilled(order: dict[str, Any], at: datetime) -> dict[str, Any]:
    """orders/fulfilled: the order payload, fulfilled in full at `at`."""
    return {**order, "fulfillment_status": "fulfilled", "updated_at": at.isoformat(), "fulfillments": [
        {"id": order["id"] + 7, "order_id": order["id"], "status": "success", "created_at": at.isoformat()}]}


def repeat_order(seed: int, shopper: SimShopper, at: datetime, number: int) -> dict[str, Any]:
    """A second order after a cross-sell email: one catalog product the shopper did not buy, no cart."""
    rng = np.random.default_rng([seed, 0xC5, shopper.index])
    owned = {item.product_id for item in shopper.items}
    choices = [e for e in CATALOG if e.product_id not in owned]
    entry = choices[int(rng.integers(len(choices)))]
    total = str(entry.unit_price)
    money = {"amount": total, "currency_code": shopper.currency}
    line = {"product_id": entry.product_id, "variant_id": entry.variant_id, "title": entry.title,
            "variant_title": entry.variant_title or "", "quantity": 1, "price": total, "sku": entry.variant_id.upper()}
    return {
        "id": 6_200_000_000_000 + seed * 100_000 + shopper.index, "name": f"#{number}",
        "email": shopper.email, "phone": shopper.phone, "currency": shopper.currency,
        "presentment_currency": shopper.currency, "total_price": total, "subtotal_price": total,
        "total_price_set": {"shop_money": money, "presentment_money": money}, "line_items": [line],
        "customer": {"id": 8_000_000 + shopper.index, "email": shopper.email, "first_name": shopper.first_name},
        "financial_status": "paid", "source_name": "web", "created_at": at.isoformat(),
        "processed_at": at.isoformat(), "updated_at": at.isoformat(),
    }  # fmt: skip


def browsed_product(product_id: int, title: str, price: str, at: datetime) -> dict[str, Any]:
    """products/update for a BROWSED product: one variant, its handle, in stock."""
    variant = {"id": product_id * 10 + 1, "product_id": product_id, "title": "Default Title", "price": price,
               "compare_at_price": None, "sku": f"BRW-{product_id % 1000}", "inventory_policy": "deny",
               "inventory_item_id": product_id * 10 + 2, "updated_at": at.isoformat()}
    return {"id": product_id, "title": title, "handle": title.lower().replace(" ", "-"), "vendor": "Demo Outfitters",
            "status": "active", "variants": [variant], "image": None,
            "created_at": (at - timedelta(days=90)).isoformat(), "updated_at": at.isoformat()}


def browsing(seed: int, shopper: SimShopper) -> int | None:
    """The BROWSED product this shopper viewed twice before checking out, if any (drawn from seed, shopper)."""
    rng = np.random.default_rng([seed, 0xB7, shopper.index])
    pick, share = int(rng.integers(len(BROWSED))), float(rng.random())
    return BROWSED[pick][0] if shopper.abandons and share < BROWSE_SHARE else None


def view_beacons(shop: str, sid: str, product_id: int, checkout_token: str, checked_out: datetime) -> list[dict[str, Any]]:
    """What the tracker sends for one browsing shopper: two views of the product page, then the checkout step
    that names their checkout (and so links the session's views to the shopper)."""
    def beacon(kind: str, at: datetime, **extra: Any) -> dict[str, Any]:
        return {"v": 1, "shop": shop, "sid": sid, "type": kind, "ts": int(at.timestamp() * 1000), "device": "desktop",
                "page": "product" if kind == "view" else "checkout", **extra}

    views = [beacon("view", checked_out - before, product_id=str(product_id)) for before in VIEWS_BEFORE]
    return views + [beacon("checkout_started", checked_out, checkout_token=checkout_token)]


def catalog_events(start: datetime) -> list[tuple[datetime, str, dict[str, Any]]]:
    """The store's own catalog webhooks over the run: (when, topic, payload)."""
    events: list[tuple[datetime, str, dict[str, Any]]] = [
        (start, "products/update", product_update(RESTOCK, start)),
        (start, "inventory_levels/update", inventory_level(RESTOCK, 0, start)),
    ]
    events += [(start, "products/update", browsed_product(pid, title, price, start)) for pid, title, price in BROWSED]
    drop = start + DROP_AT
    events += [(drop, "products/update", product_update(variant, drop, price)) for variant, price in DROPS]
    back = start + RESTOCK_AT
    events.append((back, "inventory_levels/update", inventory_level(RESTOCK, 6, back)))
    return events


def lines_text(lines: list[FlowLine], holdout_percent: int) -> str:
    """The summary's flow block: one line per flow, and what its holdout can say."""
    shown = [line for line in lines if line.flow in SHOWN]
    held = sum(line.lift.holdout_carts for line in shown if line.lift is not None)
    return "\n".join([
        f"triggered flows (each with its own {holdout_percent} % holdout; sent = handed to the outbox, "
        "ordered = a sent message's shopper ordered within the attribution window: recovered, not incremental):",
        *("  " + format_line(line) for line in shown),
        f"  the flows' holdouts are {held} shoppers in all: a demonstration, not a measurement",
    ])


def lines_json(lines: list[FlowLine]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for line in lines:
        if line.flow not in SHOWN:
            continue
        r = line.lift
        out[line.flow] = {
            "sent": line.sent, "opened": line.opened, "clicked": line.clicked, "ordered": line.ordered,
            "lift": None if r is None else {
                "treated": r.treated_carts, "treated_ordered": r.treated_ordered, "holdout": r.holdout_carts,
                "holdout_ordered": r.holdout_ordered, "lift_points": _points(r.lift),
                "ci_low_points": _points(r.lift_low), "ci_high_points": _points(r.lift_high), "verdict": r.verdict,
            },
        }  # fmt: skip
    return out


def _points(value: float | None) -> float | None:
    return None if value is None else round(float(value) * 100, 2)

