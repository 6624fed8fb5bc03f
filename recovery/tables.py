"""SQLAlchemy models. Alembic migrations are the only source of the schema; a test checks they agree."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, MetaData, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from recovery.types import Id, Json, Money, UTCDateTime

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), Decimal: Money(), dict[str, Any]: Json}


class Store(Base):
    __tablename__ = "stores"
    __table_args__ = (UniqueConstraint("platform", "domain"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    domain: Mapped[str] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(255))
    #: Fernet ciphertext of the platform credentials (JSON); never stored in clear.
    credentials: Mapped[bytes | None] = mapped_column(LargeBinary)
    plan: Mapped[str] = mapped_column(String(32), default="free")
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    installed_at: Mapped[datetime] = mapped_column(default=utcnow)
    uninstalled_at: Mapped[datetime | None]

    @property
    def active(self) -> bool:
        return self.uninstalled_at is None


class Customer(Base):
    __tablename__ = "customers"
    __table_args__ = (
        UniqueConstraint("store_id", "platform_customer_id"),
        Index("ix_customers_store_email", "store_id", "email"),
        Index("ix_customers_store_phone", "store_id", "phone"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    platform_customer_id: Mapped[str | None] = mapped_column(String(64))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(32))
    first_name: Mapped[str | None] = mapped_column(String(255))
    last_name: Mapped[str | None] = mapped_column(String(255))
    locale: Mapped[str | None] = mapped_column(String(16))
    timezone: Mapped[str | None] = mapped_column(String(64))
    country: Mapped[str | None] = mapped_column(String(2))
    orders_count: Mapped[int] = mapped_column(Integer, default=0)
    email_consent: Mapped[bool] = mapped_column(default=False)
    email_consent_source: Mapped[str | None] = mapped_column(String(32))
    email_consent_at: Mapped[datetime | None]
    sms_consent: Mapped[bool] = mapped_column(default=False)
    sms_consent_source: Mapped[str | None] = mapped_column(String(32))
    sms_consent_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Cart(Base):
    __tablename__ = "carts"
    __table_args__ = (
        UniqueConstraint("store_id", "checkout_token"),
        UniqueConstraint("store_id", "cart_token"),
        Index("ix_carts_store_status_activity", "store_id", "status", "last_activity_at"),
        Index("ix_carts_status_abandon_at", "status", "abandon_at"),
        Index("ix_carts_store_email", "store_id", "email"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"))
    checkout_token: Mapped[str | None] = mapped_column(String(255))
    cart_token: Mapped[str | None] = mapped_column(String(255))
    platform_checkout_id: Mapped[str | None] = mapped_column(String(64))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(32))
    first_name: Mapped[str | None] = mapped_column(String(255))
    locale: Mapped[str | None] = mapped_column(String(16))
    country: Mapped[str | None] = mapped_column(String(2))
    province: Mapped[str | None] = mapped_column(String(8))
    shopper_timezone: Mapped[str | None] = mapped_column(String(64))
    accepts_email: Mapped[bool] = mapped_column(default=False)
    accepts_sms: Mapped[bool] = mapped_column(default=False)
    line_items: Mapped[list[dict[str, Any]]] = mapped_column(Json, default=list)
    currency: Mapped[str] = mapped_column(String(3))
    subtotal: Mapped[Decimal]
    total: Mapped[Decimal]
    restore_url: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="active")
    source: Mapped[str] = mapped_column(String(16), default="webhook")
    device: Mapped[str | None] = mapped_column(String(16))
    platform_updated_at: Mapped[datetime]
    last_activity_at: Mapped[datetime]
    #: When the cart counts as abandoned if nothing happens before (last activity + the store's delay).
    abandon_at: Mapped[datetime | None]
    abandoned_at: Mapped[datetime | None]
    recovered_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    customer: Mapped[Customer | None] = relationship()


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("store_id", "platform_order_id"),
        Index("ix_orders_store_checkout_token", "store_id", "checkout_token"),
        Index("ix_orders_store_cart_token", "store_id", "cart_token"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    platform_order_id: Mapped[str] = mapped_column(String(64))
    cart_id: Mapped[int | None] = mapped_column(ForeignKey("carts.id", ondelete="SET NULL"), index=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"))
    #: Kept so a checkout processed after its order (deliveries are unordered) still finds it.
    checkout_token: Mapped[str | None] = mapped_column(String(255))
    cart_token: Mapped[str | None] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(32))
    name: Mapped[str | None] = mapped_column(String(64))
    currency: Mapped[str] = mapped_column(String(3))
    total: Mapped[Decimal]
    placed_at: Mapped[datetime]
    #: "recovered" when it followed one of our messages within the attribution window, else "completed".
    attribution: Mapped[str] = mapped_column(String(16), default="completed")
    cancelled_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("platform", "shop", "delivery_id"),
        Index("ix_webhook_deliveries_unprocessed", "processed_at", "received_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    shop: Mapped[str] = mapped_column(String(255))
    store_id: Mapped[int | None] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    topic: Mapped[str] = mapped_column(String(64))
    delivery_id: Mapped[str] = mapped_column(String(128))
    triggered_at: Mapped[datetime | None]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: Last time the sweeper re-enqueued it (its first job was lost); None if never.
    requeued_at: Mapped[datetime | None]
    #: Raw payload, kept only until processed and deleted by the redaction topics.
    payload: Mapped[dict[str, Any] | None] = mapped_column(Json)
    processed_at: Mapped[datetime | None]
    #: What processing did with it: "cart created", "stale: a newer state is stored", ...
    outcome: Mapped[str | None] = mapped_column(String(80))
    #: Why it was not (or not fully) processed: unknown shop, bad payload, ...
    error: Mapped[str | None] = mapped_column(Text)


class RecoveryMessage(Base):
    """One planned message of a recovery sequence: PostgreSQL holds the schedule, Redis only the nudge."""

    __tablename__ = "recovery_messages"
    __table_args__ = (
        UniqueConstraint("cart_id", "step"),
        Index("ix_recovery_messages_status_due", "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), index=True)
    cart_id: Mapped[int] = mapped_column(ForeignKey("carts.id", ondelete="CASCADE"))
    step: Mapped[int] = mapped_column(Integer)
    channel: Mapped[str] = mapped_column(String(8))
    template: Mapped[str] = mapped_column(String(32))
    due_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default="planned")
    reason: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    opened_at: Mapped[datetime | None]
    clicked_at: Mapped[datetime | None]
    provider_message_id: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ExperimentAssignment(Base):
    __tablename__ = "experiment_assignments"
    __table_args__ = (UniqueConstraint("cart_id", "experiment"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), index=True)
    cart_id: Mapped[int] = mapped_column(ForeignKey("carts.id", ondelete="CASCADE"))
    experiment: Mapped[str] = mapped_column(String(32))
    variant: Mapped[str] = mapped_column(String(32))
    assigned_at: Mapped[datetime] = mapped_column(default=utcnow)


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
