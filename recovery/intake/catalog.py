"""Catalog facts: variant prices and stock as the platform last reported them, and what they mean for a cart.

Every urgency line a message carries comes from here: "now $X" only when the recorded price of that
variant dropped after the cart was seen, "only N left" only when the stock the store reported is low.
An older delivery (Shopify retries the original payload for up to 4 h) never overwrites newer state:
the payload's `updated_at` decides, and the delivery's `X-Shopify-Triggered-At` breaks ties.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from recovery.storage import tables as t
from recovery.messages.content import ItemView
from recovery.model import InventoryChanged, ProductUpdated
from recovery.config.store_settings import effective
from recovery.flows import products, signals
from recovery.storage.tables import utcnow

STALE = "stale: a newer state is stored"


@dataclass(frozen=True)
class LineFacts:
    """What we know for one cart line; None means no fact (the message then says nothing about it)."""

    current_price: Decimal | None = None  # set only when lower than the cart's price and recorded after it
    stock_left: int | None = None  # set only for low stock (1..threshold)
    out_of_stock: bool = False


def apply_catalog_event(session: Session, store: t.Store, event: ProductUpdated | InventoryChanged) -> str:
    if isinstance(event, ProductUpdated):
        return apply_product(session, store, event)
    return apply_inventory(session, store, event)


def _newer(
    updated_at: datetime, triggered_at: datetime | None, row_updated: datetime, row_triggered: datetime | None
) -> bool:
    """Strictly newer than the stored state; a replay of the same state changes nothing."""
    if updated_at != row_updated:
        return updated_at > row_updated
    return triggered_at is not None and (row_triggered is None or triggered_at > row_triggered)


def shop_currency(store: t.Store) -> str:
    # Product payloads carry prices in the shop's currency without naming it.
    return str((store.settings or {}).get("currency") or store.currency or "USD")


def apply_product(session: Session, store: t.Store, event: ProductUpdated) -> str:
    ids = [v.variant_id for v in event.variants]
    rows = {
        r.variant_id: r
        for r in session.scalars(
            select(t.VariantPrice).where(
                t.VariantPrice.store_id == store.id, t.VariantPrice.variant_id.in_(ids)
            )
        )
    }
    changed = 0
    for v in event.variants:
        row = rows.get(v.variant_id)
        if row is None:
            row = t.VariantPrice(store_id=store.id, variant_id=v.variant_id)
            session.add(row)
        elif not _newer(event.updated_at, event.triggered_at, row.platform_updated_at, row.triggered_at):
            continue
        previous = row.price
        row.product_id, row.inventory_item_id = event.product_id, v.inventory_item_id or row.inventory_item_id
        row.price, row.compare_at, row.currency = v.price, v.compare_at, shop_currency(store)
        row.oversell = v.oversell
        row.platform_updated_at, row.triggered_at = event.updated_at, event.triggered_at
        signals.price_recorded(session, store, v.variant_id, v.price, previous, row.currency, utcnow())
        if v.available is not None and row.inventory_item_id:  # stock in the product payload (WooCommerce)
            session.flush()
            apply_inventory(session, store, InventoryChanged(
                row.inventory_item_id, "product", v.available, event.updated_at, event.triggered_at))
        changed += 1
    if event.variants and not changed:
        return STALE
    products.product_recorded(session, store, event)
    return f"prices recorded ({changed} variants)"


def apply_inventory(session: Session, store: t.Store, event: InventoryChanged) -> str:
    before = signals.stock_total(session, store.id, event.inventory_item_id)  # back in stock: 0 → ≥ 1
    row = session.scalar(
        select(t.InventoryLevel).where(
            t.InventoryLevel.store_id == store.id,
            t.InventoryLevel.inventory_item_id == event.inventory_item_id,
            t.InventoryLevel.location_id == event.location_id,
        )
    )
    if row is None:
        row = t.InventoryLevel(
            store_id=store.id, inventory_item_id=event.inventory_item_id, location_id=event.location_id
        )
        session.add(row)
    elif not _newer(event.updated_at, event.triggered_at, row.platform_updated_at, row.triggered_at):
        return STALE
    row.available = event.available
    row.platform_updated_at, row.triggered_at = event.updated_at, event.triggered_at
    session.flush()
    after = signals.stock_total(session, store.id, event.inventory_item_id)
    signals.stock_recorded(session, store, event.inventory_item_id, before, after, utcnow())
    return "stock recorded"


@dataclass(frozen=True)
class VariantPriceFact:
    price: Decimal
    currency: str
    recorded_at: datetime
    oversell: bool


@dataclass(frozen=True)
class _Variant:
    price: VariantPriceFact
    stock: int | None  # summed over locations; None when no location tracks it


def _variants(session: Session, store_id: int, variant_ids: Iterable[str]) -> dict[str, _Variant]:
    """Recorded price and total stock per variant: two queries however many variants."""
    rows = session.scalars(
        select(t.VariantPrice).where(
            t.VariantPrice.store_id == store_id, t.VariantPrice.variant_id.in_(set(variant_ids))
        )
    ).all()
    items = {r.inventory_item_id for r in rows if r.inventory_item_id}
    stock: dict[str, int] = {}
    if items:
        levels = session.execute(
            select(t.InventoryLevel.inventory_item_id, t.InventoryLevel.available).where(
                t.InventoryLevel.store_id == store_id,
                t.InventoryLevel.inventory_item_id.in_(items),
                t.InventoryLevel.available.is_not(None),
            )
        ).all()
        for item_id, available in levels:
            stock[item_id] = stock.get(item_id, 0) + int(available)
    return {
        r.variant_id: _Variant(
            VariantPriceFact(r.price, r.currency, r.platform_updated_at, r.oversell),
            stock.get(r.inventory_item_id) if r.inventory_item_id else None,
        )
        for r in rows
    }


#: Store id → variant id → its recorded facts: what a send batch loaded once for all of its carts.
Known = dict[int, dict[str, _Variant]]


def known_variants(session: Session, carts: Sequence[t.Cart]) -> Known:
    """The recorded facts of every variant in these carts: two queries per store, not two per cart."""
    wanted: dict[int, set[str]] = {}
    for cart in carts:
        ids = wanted.setdefault(cart.store_id, set())
        ids.update(str(i["variant_id"]) for i in cart.line_items or () if i.get("variant_id"))
    return {store_id: _variants(session, store_id, ids) if ids else {} for store_id, ids in wanted.items()}


def _out(v: _Variant | None) -> bool:
    return v is not None and v.stock is not None and v.stock <= 0 and not v.price.oversell


def line_facts(
    session: Session, store: t.Store, cart: t.Cart, known: Known | None = None,
    settings: dict[str, Any] | None = None,
) -> list[LineFacts]:
    """One LineFacts per cart line, in order. Out-of-stock lines carry no urgency at all.
    `known`: the batch's facts (`known_variants`), else they are loaded for this cart."""
    lines = cart.line_items or []
    if known is not None and store.id in known:
        variants = known[store.id]
    else:
        variants = _variants(session, store.id, [str(i["variant_id"]) for i in lines if i.get("variant_id")])
    threshold = int((settings or effective(store.settings or {}))["low_stock_threshold"])
    facts = []
    for item in lines:
        v = variants.get(str(item.get("variant_id")))
        if v is None:
            facts.append(LineFacts())
            continue
        if _out(v):
            facts.append(LineFacts(out_of_stock=True))
            continue
        cart_price = Decimal(str(item["unit_price"]))
        dropped = (
            v.price.currency == cart.currency
            and v.price.recorded_at > cart.platform_updated_at  # a price seen before the cart is no news
            and v.price.price < cart_price
        )
        low = v.stock is not None and 0 < v.stock <= threshold
        facts.append(LineFacts(v.price.price if dropped else None, v.stock if low else None))
    return facts


def out_of_stock_carts(session: Session, carts: Sequence[t.Cart], known: Known | None = None) -> set[int]:
    """Carts every line of which is known to be out of stock: a reminder for them would only disappoint."""
    known = known_variants(session, carts) if known is None else known
    found: set[int] = set()
    for cart in carts:
        variants = known.get(cart.store_id, {})
        lines = [i for i in cart.line_items or () if int(i.get("quantity") or 0) > 0]
        if lines and all(_out(variants.get(str(i.get("variant_id")))) for i in lines):
            found.add(cart.id)
    return found


def item_views(
    session: Session | None, store: t.Store, cart: t.Cart, known: Known | None = None,
    settings: dict[str, Any] | None = None,
) -> tuple[ItemView, ...]:
    """The cart's lines for a message, with a price drop or low stock only where the facts say so."""
    lines = cart.line_items or []
    if session is None:
        facts = [LineFacts()] * len(lines)
    else:
        facts = line_facts(session, store, cart, known, settings)
    views = []
    for item, fact in zip(lines, facts, strict=True):
        if int(item.get("quantity") or 0) <= 0:  # a line taken out of the cart is not shown ("Qty: 0")
            continue
        cart_price = Decimal(str(item["unit_price"]))
        views.append(
            ItemView(
                title=str(item["title"]),
                variant_title=item.get("variant_title"),
                quantity=int(item["quantity"]),
                unit_price=fact.current_price if fact.current_price is not None else cart_price,
                image_url=item.get("image_url"),
                previous_unit_price=cart_price if fact.current_price is not None else None,
                stock_left=fact.stock_left,
            )
        )
    return tuple(views)
