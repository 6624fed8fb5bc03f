"""Recommendations: item-to-item co-purchase counts from the store's own orders, kept up to date by the
worker that applies each order, with a minimum support and a popularity fallback.

Never recommended: products out of stock, already bought by the shopper, or in the cart at hand.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from itertools import permutations

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from recovery.flows import related
from recovery.storage import tables as t
from recovery.storage.db import insert_for
from recovery.model import LineItem, ProductUpdated

#: Orders that must have held both products before one is recommended for the other.
MIN_SUPPORT = 2
#: Below this many orders with lines, co-purchase says little: the platform's related products (Shopify) or
#: same-category best sellers (WooCommerce) are used instead (recovery/flows/related.py), then best sellers.
MIN_ORDERS = related.MIN_ORDERS


@dataclass(frozen=True)
class Recommendation:
    product_id: str
    title: str
    price: Decimal
    currency: str
    url: str
    image_url: str | None


def product_recorded(session: Session, store: t.Store, event: ProductUpdated) -> None:
    """What products/update says of a product's face (title, handle, image, first variant's price)."""
    if not event.variants or not event.title:
        return
    first = event.variants[0]
    values = {"title": event.title[:255], "handle": event.handle, "price": first.price, "variant_id": first.variant_id}
    if event.image_url:
        values["image_url"] = event.image_url
    if event.categories:
        values["categories"] = list(event.categories)
    _upsert_stats(session, store, event.product_id, values, 0)


def _upsert_stats(session: Session, store: t.Store, product_id: str, values: dict[str, object], orders: int) -> None:
    table = t.ProductStat.__table__
    currency = str((store.settings or {}).get("currency") or store.currency or "USD")
    stmt = insert_for(session.get_bind().dialect.name)(table).values(
        store_id=store.id, product_id=product_id, currency=currency, orders=orders, **values
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["store_id", "product_id"],
        set_={**{k: stmt.excluded[k] for k in values}, "orders": table.c.orders + orders},
    )
    session.execute(stmt)


def order_recorded(session: Session, store: t.Store, order: t.Order, lines: Sequence[LineItem]) -> None:
    """An order's lines, and the counts they add to: incremental, one order at a time (the store's intake
    lock orders them), so nothing is ever recomputed from scratch."""
    lines = [line for line in lines if line.product_id]
    if not lines:
        return
    session.add_all(
        t.OrderItem(store_id=store.id, order_id=order.id, product_id=line.product_id, variant_id=line.variant_id,
                    quantity=line.quantity)
        for line in lines
    )  # fmt: skip
    seen: dict[str, LineItem] = {}
    for line in lines:
        seen.setdefault(str(line.product_id), line)
    for product_id, line in sorted(seen.items()):
        values = {"title": line.title[:255], "price": line.unit_price, "variant_id": line.variant_id}
        if line.image_url:
            values["image_url"] = line.image_url
        _upsert_stats(session, store, product_id, values, 1)
    pairs = list(permutations(sorted(seen), 2))
    if pairs:
        table = t.ProductPair.__table__
        stmt = insert_for(session.get_bind().dialect.name)(table).values(
            [{"store_id": store.id, "product_id": a, "other_id": b, "orders": 1} for a, b in pairs]
        )
        session.execute(stmt.on_conflict_do_update(
            index_elements=["store_id", "product_id", "other_id"], set_={"orders": table.c.orders + 1}
        ))  # fmt: skip



def bought_by(session: Session, store_id: int, email: str | None, customer_id: int | None) -> set[str]:
    """Every product this shopper ever ordered at this store (by email or customer)."""
    clauses = []
    if email:
        clauses.append(t.Order.email == email)
    if customer_id:
        clauses.append(t.Order.customer_id == customer_id)
    if not clauses:
        return set()
    return set(session.scalars(
        select(t.OrderItem.product_id).join(t.Order, t.Order.id == t.OrderItem.order_id)
        .where(t.OrderItem.store_id == store_id, or_(*clauses))
    ))  # fmt: skip


def recommend(
    session: Session, store: t.Store, seeds: Iterable[str], exclude: Iterable[str], k: int = 4
) -> tuple[list[Recommendation], str]:
    """Up to `k` products for a shopper who bought or holds `seeds`, none of `exclude` (bought, in the cart)
    and none out of stock; and where they came from: "co_purchase", "related" (Shopify's own recommendations),
    "category" (same-category best sellers) or "popular" (the store's best sellers)."""
    seeds, banned = set(seeds), set(exclude) | set(seeds)
    orders = related.order_count(session, store.id)
    picked: list[str] = []
    source = "co_purchase"
    if seeds and orders < MIN_ORDERS:
        if store.platform == "shopify":
            picked, source = related.platform_related(session, store, seeds), "related"
        else:
            picked, source = related.same_category(session, store, seeds), "category"
        picked = [p for p in picked if p not in banned]
    elif seeds:
        rows = session.execute(
            select(t.ProductPair.other_id, func.sum(t.ProductPair.orders).label("n"))
            .where(t.ProductPair.store_id == store.id, t.ProductPair.product_id.in_(seeds))
            .group_by(t.ProductPair.other_id)
            .having(func.sum(t.ProductPair.orders) >= MIN_SUPPORT)
            .order_by(func.sum(t.ProductPair.orders).desc(), t.ProductPair.other_id)
            .limit(k * 5)
        ).all()
        picked = [r.other_id for r in rows if r.other_id not in banned]
    popular = session.scalars(
        select(t.ProductStat.product_id).where(t.ProductStat.store_id == store.id, t.ProductStat.orders > 0)
        .order_by(t.ProductStat.orders.desc(), t.ProductStat.product_id).limit(k * 5 + len(banned))
    ).all()  # fmt: skip
    candidates = picked + [p for p in popular if p not in banned and p not in picked]
    stats = {s.product_id: s for s in session.scalars(
        select(t.ProductStat).where(t.ProductStat.store_id == store.id, t.ProductStat.product_id.in_(candidates))
    )}  # fmt: skip
    sold_out = _sold_out(session, store.id, [s.variant_id for s in stats.values() if s.variant_id])
    chosen = [stats[p] for p in candidates if p in stats and stats[p].variant_id not in sold_out][:k]
    if not any(s.product_id in picked for s in chosen):
        source = "popular"
    base = f"https://{store.domain}"
    return [
        Recommendation(s.product_id, s.title, s.price, s.currency,
                       f"{base}/products/{s.handle}" if s.handle else base, s.image_url)
        for s in chosen
    ], source  # fmt: skip


def _sold_out(session: Session, store_id: int, variant_ids: Sequence[str]) -> set[str]:
    """Variants known to be out of stock (summed over locations) and not sellable at zero: the rule the
    cart reminders use (recovery/intake/catalog.py), read here without importing it (intake calls us)."""
    if not variant_ids:
        return set()
    rows = session.execute(
        select(t.VariantPrice.variant_id, t.VariantPrice.oversell, func.sum(t.InventoryLevel.available))
        .join(t.InventoryLevel, (t.InventoryLevel.store_id == t.VariantPrice.store_id)
              & (t.InventoryLevel.inventory_item_id == t.VariantPrice.inventory_item_id))
        .where(t.VariantPrice.store_id == store_id, t.VariantPrice.variant_id.in_(set(variant_ids)),
               t.InventoryLevel.available.is_not(None))
        .group_by(t.VariantPrice.variant_id, t.VariantPrice.oversell)
    ).all()  # fmt: skip
    return {variant for variant, oversell, stock in rows if stock is not None and stock <= 0 and not oversell}
