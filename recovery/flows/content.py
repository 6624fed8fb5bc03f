"""What a flow message says, from recorded facts only: the item and its old and new price, or the
recommended products (computed at send time, so stock and purchases are current)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from recovery.storage import tables as t
from recovery.messages.content import ProductView
from recovery.flows import BROWSE, CROSS_SELL, is_flow
from recovery.flows.browse import product_url
from recovery.flows.products import bought_by, recommend

#: The cross-sell shows 2 to 4 products: with fewer than 2 it is not sent.
CROSS_SELL_MIN, CROSS_SELL_MAX = 2, 4


def flow_facts(
    session: Session | None, store: t.Store, cart: t.Cart, message: t.RecoveryMessage, settings: dict[str, Any]
) -> tuple[dict[str, Any] | None, tuple[ProductView, ...], str | None]:
    """(the template's facts, products to show, the button's link instead of the restore link, if any).
    Raises ValueError when a cross-sell has too few products to recommend."""
    data = dict(message.flow_data or {})
    if not is_flow(message.flow):
        if session is None or not settings["recommendations_in_reminders"]:
            return None, (), None
        in_cart = {str(i.get("product_id")) for i in cart.line_items or () if i.get("product_id")}
        found, _ = recommend(session, store, in_cart, in_cart | bought_by(session, store.id, cart.email, cart.customer_id), 3)
        return None, tuple(_view(r) for r in found), None
    if message.flow == CROSS_SELL and session is not None:
        bought = bought_by(session, store.id, cart.email, cart.customer_id)
        seeds = set(data.get("products") or ())
        found, source = recommend(session, store, seeds, bought | seeds, CROSS_SELL_MAX)
        if len(found) < CROSS_SELL_MIN:
            raise ValueError(f"only {len(found)} products to recommend (at least {CROSS_SELL_MIN})")
        data.update(source=source, item=found[0].title)
        return data, tuple(_view(r) for r in found), f"https://{store.domain}"
    if message.flow == BROWSE and session is not None:
        stat = session.scalar(select(t.ProductStat).where(t.ProductStat.store_id == store.id,
                                                          t.ProductStat.product_id == str(data.get("product_id"))))
        if stat is None:
            raise ValueError("the viewed product is no longer recorded")
        url = product_url(store, stat)
        data.update(item=stat.title, url=url)
        return data, (ProductView(stat.title, stat.price, url, stat.image_url),), url
    return data, (), None


def _view(r: Any) -> ProductView:
    return ProductView(r.title, r.price, r.url, r.image_url)
