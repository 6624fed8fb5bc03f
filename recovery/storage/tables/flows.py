"""Triggered flows (issue 22, migration 0122): price drop, back in stock, cross-sell, browse abandonment.

A flow's messages are ordinary `recovery_messages` rows (column `flow`); these tables hold what triggers
them, the once-per-period guard, each firing (treated or holdout, for the flow's own lift) and what the
recommendations are computed from.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from recovery.storage.tables.base import Base, utcnow
from recovery.storage.types import Id, Json


class FlowSignal(Base):
    """A catalog or order fact that may trigger a flow, recorded by the worker that applied it and fanned
    out by the dispatcher (`recovery/flows/fanout.py`): the webhook's transaction stays short."""

    __tablename__ = "flow_signals"
    __table_args__ = (
        Index("ix_flow_signals_pending", "id", postgresql_where=text("processed_at IS NULL"),
              sqlite_where=text("processed_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    #: "price_drop" (a variant's new price), "back_in_stock" (a variant 0 → ≥ 1), "fulfilled" (an order)
    kind: Mapped[str] = mapped_column(String(16))
    #: The variant id, or the order's platform id.
    subject: Mapped[str] = mapped_column(String(64))
    price: Mapped[Decimal | None]
    currency: Mapped[str | None] = mapped_column(String(3))
    recorded_at: Mapped[datetime]
    processed_at: Mapped[datetime | None]


class FlowGuard(Base):
    """Once per subject (variant, order, product) per shopper per flow per period: the unique key."""

    __tablename__ = "flow_guards"
    __table_args__ = (UniqueConstraint("store_id", "flow", "shopper", "subject"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    flow: Mapped[str] = mapped_column(String(24))
    #: The flow's holdout unit: a salted hash of the shopper key, never the address itself.
    shopper: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(64))
    fired_at: Mapped[datetime]


class FlowEvent(Base):
    """One firing of a flow for one shopper: treated (a message was planned) or holdout (none)."""

    __tablename__ = "flow_events"
    __table_args__ = (Index("ix_flow_events_store_flow_fired", "store_id", "flow", "fired_at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    flow: Mapped[str] = mapped_column(String(24))
    cart_id: Mapped[int | None] = mapped_column(ForeignKey("carts.id", ondelete="SET NULL"), index=True)
    shopper: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(64))
    variant: Mapped[str] = mapped_column(String(16))  # "treatment" or "holdout"
    fired_at: Mapped[datetime]


class OrderItem(Base):
    """An order's lines: what was bought (never recommended again) and what co-purchase counts read."""

    __tablename__ = "order_items"
    __table_args__ = (Index("ix_order_items_store_product", "store_id", "product_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    product_id: Mapped[str] = mapped_column(String(64))
    variant_id: Mapped[str | None] = mapped_column(String(64))
    quantity: Mapped[int] = mapped_column(Integer)


class ProductStat(Base):
    """Per product: orders that held it (popularity), and what a recommendation shows of it."""

    __tablename__ = "product_stats"
    __table_args__ = (UniqueConstraint("store_id", "product_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    product_id: Mapped[str] = mapped_column(String(64))
    variant_id: Mapped[str | None] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(255))
    #: The storefront handle (products/update), for the product's link: /products/<handle>.
    handle: Mapped[str | None] = mapped_column(String(255))
    price: Mapped[Decimal]
    currency: Mapped[str] = mapped_column(String(3))
    image_url: Mapped[str | None] = mapped_column(String(1000))
    orders: Mapped[int] = mapped_column(Integer, default=0)
    #: The platform's category ids (WooCommerce product.updated `categories`, migration 0129): same-category
    #: best sellers while the store has too few orders for co-purchase.
    categories: Mapped[list[str] | None] = mapped_column(Json)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ProductPair(Base):
    """Item-to-item co-purchase: orders that held both products (stored both ways round)."""

    __tablename__ = "product_pairs"
    __table_args__ = (UniqueConstraint("store_id", "product_id", "other_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    product_id: Mapped[str] = mapped_column(String(64))
    other_id: Mapped[str] = mapped_column(String(64))
    orders: Mapped[int] = mapped_column(Integer, default=0)


class ProductView(Base):
    """Browse abandonment (migration 0126): one row per tracker session and product page, with a count.

    Made by unauthenticated beacons: bounded by the /track rate limits, at most VIEWS_PER_SESSION products
    per session (recovery/intake/views.py), and purged three days after their reminder came due (recovery/consent/purge.py).
    `cart_id` links the session to a cart (hence maybe a known shopper) once any of its beacons names one.
    """

    __tablename__ = "product_views"
    __table_args__ = (UniqueConstraint("store_id", "sid", "product_id"), Index("ix_product_views_due_at", "due_at"))

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    sid: Mapped[str] = mapped_column(String(64))
    product_id: Mapped[str] = mapped_column(String(40))
    views: Mapped[int] = mapped_column(Integer, default=1)
    last_at: Mapped[datetime]
    #: The last view plus the store's `browse_abandonment_after`, when it was recorded.
    due_at: Mapped[datetime]
    cart_id: Mapped[int | None] = mapped_column(ForeignKey("carts.id", ondelete="CASCADE"), index=True)
    processed_at: Mapped[datetime | None]


class PlatformRecommendation(Base):
    """Shopify's own related products for one product (the storefront's /recommendations/products.json,
    migration 0129), cached: used while the store has too few orders for co-purchase (recovery/flows/related.py)."""

    __tablename__ = "platform_recommendations"
    __table_args__ = (UniqueConstraint("store_id", "product_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    product_id: Mapped[str] = mapped_column(String(64))
    #: The related products' ids in Shopify's order (at most 10); empty when the call failed.
    related: Mapped[list[str]] = mapped_column(Json, default=list)
    #: False: the last call failed (kept a short while, so a failing storefront is not asked on every send).
    ok: Mapped[bool] = mapped_column(Boolean)
    fetched_at: Mapped[datetime]


class TrackerVisitor(Base):
    """A tracker visitor id (the browser's, kept across sessions) once tied to a cart (migration 0129): a later
    session's product views count for that cart's shopper (browse abandonment). Purged when unseen for 30 days."""

    __tablename__ = "tracker_visitors"
    __table_args__ = (UniqueConstraint("store_id", "vid"), Index("ix_tracker_visitors_seen_at", "seen_at"))

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    vid: Mapped[str] = mapped_column(String(32))
    cart_id: Mapped[int] = mapped_column(ForeignKey("carts.id", ondelete="CASCADE"), index=True)
    seen_at: Mapped[datetime]
