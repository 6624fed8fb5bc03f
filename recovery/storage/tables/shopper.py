"""What we hold about shoppers beyond their carts: suppressions, consent, tracking events, push
subscriptions, sends, data exports."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from recovery.storage.tables.base import Base, utcnow
from recovery.storage.types import Id, Json


class Suppression(Base):
    __tablename__ = "suppressions"
    __table_args__ = (UniqueConstraint("store_id", "channel", "address"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(8))
    #: Normalized address: lower-cased email or E.164 phone.
    address: Mapped[str] = mapped_column(String(320))
    reason: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DataExport(Base):
    """A customer's data, exported for the merchant on a `customers/data_request`."""

    __tablename__ = "data_exports"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), index=True)
    request_id: Mapped[str] = mapped_column(String(64))
    document: Mapped[dict[str, Any]] = mapped_column(Json)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- Shopify install and discounts (migration 0105) ---


class TrackEvent(Base):
    """A storefront event worth keeping (exit intent, popup, checkout steps); never personal data."""

    __tablename__ = "track_events"
    __table_args__ = (Index("ix_track_events_store_at", "store_id", "at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    cart_id: Mapped[int | None] = mapped_column(ForeignKey("carts.id", ondelete="SET NULL"), index=True)
    #: The tracker's anonymous, rotating session id.
    sid: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(24))
    detail: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[datetime]


class TrackInbox(Base):
    """A storefront beacon accepted at the edge and not applied yet (migration 0127; recovery/intake/track_inbox.py).

    Only beacons that need no answer beyond 2xx and start nothing (cart, view, popup shown/closed, checkout
    steps). The dispatcher's track relay applies them in batches (`apply_beacon`) and deletes them; a row
    that cannot be applied keeps `failed_at` and `error` (a dead letter, purged after a week). `cart_token`
    and `checkout_token` let the abandoner leave a cart alone while a newer beacon of it waits here.
    """

    __tablename__ = "track_inbox"
    __table_args__ = (
        Index("ix_track_inbox_pending", "id", postgresql_where=text("failed_at IS NULL"),
              sqlite_where=text("failed_at IS NULL")),
        Index("ix_track_inbox_cart", "store_id", "cart_token", postgresql_where=text("failed_at IS NULL"),
              sqlite_where=text("failed_at IS NULL")),
        Index("ix_track_inbox_checkout", "store_id", "checkout_token", postgresql_where=text("failed_at IS NULL"),
              sqlite_where=text("failed_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    received_at: Mapped[datetime]
    cart_token: Mapped[str | None] = mapped_column(String(255))
    checkout_token: Mapped[str | None] = mapped_column(String(255))
    #: The validated beacon (recovery/intake/tracking_schema.py), as JSON.
    beacon: Mapped[Any] = mapped_column(Json)
    failed_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(String(500))


# --- WooCommerce activation, webhooks and reconciliation (migration 0106) ---


class PushSubscription(Base):
    """A browser's PushSubscription (endpoint + keys) for one store's shopper; deleted on 404/410."""

    __tablename__ = "push_subscriptions"
    __table_args__ = (Index("ix_push_subscriptions_store_sid", "store_id", "sid"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    cart_id: Mapped[int | None] = mapped_column(ForeignKey("carts.id", ondelete="SET NULL"), index=True)
    #: The storefront session id (the tracker's sid) the subscription was captured in.
    sid: Mapped[str | None] = mapped_column(String(64))
    endpoint: Mapped[str] = mapped_column(String(2048), unique=True)
    keys: Mapped[dict[str, Any]] = mapped_column(Json)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
# --- end web push subscriptions ---


# --- send policy: consent records and the per-shopper send ledger (migration 0104) ---


class Consent(Base):
    """The latest consent known for one address on one channel of one store (latest `recorded_at` wins)."""

    __tablename__ = "consents"
    __table_args__ = (UniqueConstraint("store_id", "channel", "address"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(8))
    #: Lower-cased email or E.164 phone.
    address: Mapped[str] = mapped_column(String(320))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"))
    granted: Mapped[bool] = mapped_column(default=False)
    #: explicit_opt_in, double_opt_in, existing_customer, checkout_email or withdrawn.
    basis: Mapped[str] = mapped_column(String(24))
    #: shopify_checkout, customers_update, tracker, sms_keyword, unsubscribe or merchant.
    source: Mapped[str] = mapped_column(String(24))
    recorded_at: Mapped[datetime]


class ShopperSend(Base):
    """The last message handed over per shopper key (cart, customer, email or phone hash): the row is the
    lock that makes caps hold with several send workers."""

    __tablename__ = "shopper_sends"
    __table_args__ = (UniqueConstraint("store_id", "shopper_key"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    shopper_key: Mapped[str] = mapped_column(String(64))
    last_sent_at: Mapped[datetime | None]
    last_message_id: Mapped[int | None] = mapped_column(Id)


# --- end send policy ---
