"""Recommendations while a store has too few orders for co-purchase (recovery/flows/products.py MIN_ORDERS):

- Shopify: Shopify's own related products for the shopper's products (the storefront's
  `/recommendations/products.json?intent=related`, asked through a `RelatedSource`), cached per product
  (`platform_recommendations`): an answer for FRESH, a failure for FAILED_FRESH; an answer older than USABLE
  is not used even when a new call failed. Of what Shopify names, only products recorded in our catalog
  (`product_stats`) and in stock are shown: content comes from the platform facts we hold.
- WooCommerce: the best sellers of the same categories (product.updated `categories`, `product_stats.categories`).
- Anything missing, failed or short: the store's best sellers, as before.

The calls are made by `prepare`, before the send transaction opens (like the cart-line lookups of
recovery/intake/verify.py), so no row lock is held during a platform call.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from recovery.config.store_settings import effective
from recovery.flows import CROSS_SELL, is_flow
from recovery.storage import tables as t

log = logging.getLogger(__name__)

FRESH = timedelta(hours=24)
FAILED_FRESH = timedelta(hours=1)
USABLE = timedelta(days=7)
#: Products one send batch asks the platform about (the rest wait for the next batch's cache).
CALLS_PER_BATCH = 10
#: Below this many orders with lines, co-purchase says little (recovery/flows/products.py reads it too).
MIN_ORDERS = 20


class RelatedUnavailable(Exception):
    """The platform could not be asked (timeout, error answer, not its own domain): nothing new is known."""


class RelatedSource(Protocol):
    def related(self, store: t.Store, product_id: str) -> list[str]:
        """The platform's related product ids for this product, best first (empty: it knows none).
        Raises RelatedUnavailable when it cannot tell."""
        ...


def order_count(session: Session, store_id: int) -> int:
    return int(session.scalar(select(func.count(func.distinct(t.OrderItem.order_id)))
                              .where(t.OrderItem.store_id == store_id)) or 0)


def seeds(message: t.RecoveryMessage, cart: t.Cart, settings: dict[str, object]) -> set[str]:
    """The products a message's recommendations are computed for (recovery/flows/content.py)."""
    if message.flow == CROSS_SELL:
        return {str(p) for p in (message.flow_data or {}).get("products") or ()}
    if not is_flow(message.flow) and settings["recommendations_in_reminders"]:
        return {str(i.get("product_id")) for i in cart.line_items or () if i.get("product_id")}
    return set()


def prepare(
    sessions: sessionmaker[Session], source: RelatedSource | None, message_ids: Sequence[int],
    now: datetime | None = None,
) -> int:
    """Ask the platform about the seed products of these queued messages whose cached answer is stale, for
    Shopify stores with too few orders; returns how many products were asked about."""
    if source is None or not message_ids:
        return 0
    now = now or datetime.now(UTC)
    with sessions() as session:
        rows = session.execute(
            select(t.RecoveryMessage, t.Cart, t.Store)
            .join(t.Cart, t.Cart.id == t.RecoveryMessage.cart_id).join(t.Store, t.Store.id == t.Cart.store_id)
            .where(t.RecoveryMessage.id.in_(list(message_ids)), t.RecoveryMessage.status == "queued",
                   t.Store.platform == "shopify")
        ).all()  # fmt: skip
        wanted: dict[int, tuple[t.Store, set[str]]] = {}
        for message, cart, store in rows:
            found = seeds(message, cart, effective(store.settings or {}))
            if found:
                wanted.setdefault(store.id, (store, set()))[1].update(found)
        asks: list[tuple[t.Store, str]] = []
        for store_id, (store, products) in wanted.items():
            if order_count(session, store_id) >= MIN_ORDERS:
                continue
            cached = {r.product_id: r for r in session.scalars(select(t.PlatformRecommendation).where(
                t.PlatformRecommendation.store_id == store_id, t.PlatformRecommendation.product_id.in_(products)))}
            asks += [(store, p) for p in sorted(products) if _stale(cached.get(p), now)]
        session.expunge_all()
    for store, product_id in asks[:CALLS_PER_BATCH]:
        try:
            related, ok = [str(p)[:64] for p in source.related(store, product_id)][:10], True
        except RelatedUnavailable as exc:
            log.warning("store %s: platform recommendations unavailable (%s)", store.id, exc)
            related, ok = [], False
        except Exception:  # a bug in a source must never hold up the sends: a failure like any other
            log.exception("store %s: platform recommendations failed", store.id)
            related, ok = [], False
        _record(sessions, store.id, product_id, related, ok, now)
    return min(len(asks), CALLS_PER_BATCH)


def _stale(row: t.PlatformRecommendation | None, now: datetime) -> bool:
    return row is None or now - row.fetched_at >= (FRESH if row.ok else FAILED_FRESH)


def _record(sessions: sessionmaker[Session], store_id: int, product_id: str, related: list[str], ok: bool,
            now: datetime) -> None:
    try:
        with sessions.begin() as session:
            row = session.scalar(select(t.PlatformRecommendation).where(
                t.PlatformRecommendation.store_id == store_id, t.PlatformRecommendation.product_id == product_id
            ).with_for_update())  # fmt: skip
            if row is None:
                row = t.PlatformRecommendation(store_id=store_id, product_id=product_id)
                session.add(row)
            if ok or not row.ok or now - row.fetched_at >= USABLE:  # a failure keeps a usable answer
                row.related = related
                row.ok = ok
            row.fetched_at = now
    except IntegrityError:  # a concurrent send job recorded it first: theirs will do
        log.info("store %s: platform recommendations recorded concurrently", store_id)


def platform_related(session: Session, store: t.Store, seeds: Iterable[str]) -> list[str]:
    """Shopify's related products for these seeds, from the cache, best first. A cached answer is replaced
    by the next one, or emptied by a failure once older than USABLE (`_record`)."""
    rows = session.scalars(select(t.PlatformRecommendation).where(
        t.PlatformRecommendation.store_id == store.id, t.PlatformRecommendation.product_id.in_(set(seeds)),
    ).order_by(t.PlatformRecommendation.product_id)).all()  # fmt: skip
    out: list[str] = []
    for rank in range(max((len(r.related or ()) for r in rows), default=0)):  # interleave the seeds' lists
        out += [str(r.related[rank]) for r in rows if rank < len(r.related) and str(r.related[rank]) not in out]
    return out


#: Products with categories read for a same-category pick (best sellers first).
CATEGORY_SCAN = 500


def same_category(session: Session, store: t.Store, seeds: Iterable[str]) -> list[str]:
    """Products sharing a category with the seeds (WooCommerce), best sellers first."""
    seeds = set(seeds)
    wanted = {str(c) for cats in session.scalars(select(t.ProductStat.categories).where(
        t.ProductStat.store_id == store.id, t.ProductStat.product_id.in_(seeds))) for c in cats or ()}  # fmt: skip
    if not wanted:
        return []
    rows = session.execute(select(t.ProductStat.product_id, t.ProductStat.categories).where(
        t.ProductStat.store_id == store.id, t.ProductStat.categories.is_not(None),
    ).order_by(t.ProductStat.orders.desc(), t.ProductStat.product_id).limit(CATEGORY_SCAN)).all()  # fmt: skip
    return [p for p, cats in rows if p not in seeds and wanted & {str(c) for c in cats or ()}]
