"""Facts that may trigger a flow, recorded by the worker that applies them, in the same transaction.

The fan-out to carts is the dispatcher's (`fanout.py`): a products/update for a variant held in
10,000 carts must not hold the store's intake lock while it plans 10,000 messages.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from recovery.storage import tables as t
from recovery.flows import BACK_IN_STOCK, CROSS_SELL, PRICE_DROP
from recovery.config.store_settings import effective

FULFILLED = "fulfilled"


def _on(store: t.Store, flow: str) -> bool:
    return bool(effective(store.settings or {})[flow])


def price_recorded(
    session: Session, store: t.Store, variant_id: str, price: Decimal, previous: Decimal | None, currency: str,
    at: datetime,
) -> None:
    """A variant's recorded price went down (or was first recorded): carts that saw more may hear of it."""
    if not _on(store, PRICE_DROP) or (previous is not None and price >= previous):
        return
    session.add(t.FlowSignal(store_id=store.id, kind=PRICE_DROP, subject=variant_id, price=price,
                             currency=currency, recorded_at=at))


def stock_total(session: Session, store_id: int, inventory_item_id: str) -> int | None:
    """Stock summed over the locations that track the item; None when none does."""
    return session.scalar(
        select(func.sum(t.InventoryLevel.available)).where(
            t.InventoryLevel.store_id == store_id, t.InventoryLevel.inventory_item_id == inventory_item_id,
            t.InventoryLevel.available.is_not(None),
        )
    )


def stock_recorded(
    session: Session, store: t.Store, inventory_item_id: str, before: int | None, after: int | None, at: datetime
) -> None:
    """0 → ≥ 1: each variant of that inventory item is back. Unknown before is not "sold out" before."""
    if not _on(store, BACK_IN_STOCK) or before is None or before > 0 or not after or after < 1:
        return
    variants: Iterable[str] = session.scalars(
        select(t.VariantPrice.variant_id).where(
            t.VariantPrice.store_id == store.id, t.VariantPrice.inventory_item_id == inventory_item_id
        )
    ).all()
    for variant_id in variants:
        session.add(t.FlowSignal(store_id=store.id, kind=BACK_IN_STOCK, subject=variant_id, recorded_at=at))


def order_fulfilled(session: Session, store: t.Store, order: t.Order, at: datetime) -> None:
    if _on(store, CROSS_SELL):
        session.add(t.FlowSignal(store_id=store.id, kind=FULFILLED, subject=order.platform_order_id, recorded_at=at))
