"""The recovery loop's own tables: stores, shoppers, carts, orders, webhook deliveries, planned
messages, holdout assignments."""

from __future__ import annotations

import secrets

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from recovery.storage.tables.base import Base, utcnow
from recovery.storage.types import Id, Json


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
    # --- Shopify install and tokens (migration 0105). `credentials` holds access AND refresh token in one
    # ciphertext, so a refresh swaps both with one compare-and-set and an uninstall drops both.
    #: When the access token expires (expiring offline tokens: 60 min); None for a non-expiring token.
    access_token_expires_at: Mapped[datetime | None]
    refresh_token_expires_at: Mapped[datetime | None]
    #: A refresh failed for good: no platform calls until the merchant opens the app again.
    needs_reauth_at: Mapped[datetime | None]
    reauth_reason: Mapped[str | None] = mapped_column(String(200))
    #: Orders and abandoned checkouts were reconciled up to here (the next run starts from it).
    reconciled_at: Mapped[datetime | None]
    #: What the last reconciliation found wrong (e.g. missing webhook subscriptions), for the dashboard.
    platform_issue: Mapped[str | None] = mapped_column(Text)
    # --- end Shopify install and tokens
    #: Salt of the holdout hash (migration 0115), drawn when the store row is made: the abandoner only reads
    #: it, so it never writes a store row while it holds carts (recovery/storage/locks.py).
    experiment_salt: Mapped[str | None] = mapped_column(String(32), default=lambda: secrets.token_hex(16))

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
        # Migration 0124: the abandoner's lookup of a shopper's other carts by email or phone.
        Index("ix_carts_store_phone", "store_id", "phone",
              postgresql_where=text("phone IS NOT NULL"), sqlite_where=text("phone IS NOT NULL")),
        Index("ix_carts_status_abandon_at", "status", "abandon_at"),
        Index("ix_carts_store_email", "store_id", "email"),
        # the merchant app's Carts list (migration 0118): keyset pages within a store, newest activity first
        Index("ix_carts_store_activity_id", "store_id", "last_activity_at", "id"),
        Index("ix_carts_store_abandoned", "store_id", "abandoned_at"),
        Index("ix_carts_store_tracked", "store_id", postgresql_where=text("tracked_at IS NOT NULL"),
              sqlite_where=text("tracked_at IS NOT NULL")),  # the setup guide's "tracker seen" (migration 0118)
        Index("ix_carts_store_email_prefix", "store_id", "email", postgresql_ops={"email": "varchar_pattern_ops"}),
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
    #: The stored delivery (webhook_deliveries.id) that platform state came from: orders states of equal
    #: `platform_updated_at` (whole seconds) by receipt (migration 0130).
    platform_delivery_id: Mapped[int | None] = mapped_column(BigInteger)
    last_activity_at: Mapped[datetime]
    #: When the cart counts as abandoned if nothing happens before (last activity + the store's delay).
    abandon_at: Mapped[datetime | None]
    abandoned_at: Mapped[datetime | None]
    recovered_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # --- storefront tracker (POST /track, migration 0102) ---
    #: Time (client clock, clamped to receipt) of the last tracker beacon applied to the items.
    tracked_at: Mapped[datetime | None]
    #: Where a tracker-captured email/phone came from ("tracker:contact", "tracker:popup", ...).
    contact_source: Mapped[str | None] = mapped_column(String(32))
    # --- end storefront tracker ---
    # --- send policy (migration 0104) ---
    #: Why this cart is a bot's or crawler's ("crawler_ua", "crawler_address", ...): kept, never messaged.
    bot_reason: Mapped[str | None] = mapped_column(String(32))
    # --- end send policy ---

    customer: Mapped[Customer | None] = relationship()


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("store_id", "platform_order_id"),
        Index("ix_orders_store_checkout_token", "store_id", "checkout_token"),
        Index("ix_orders_store_cart_token", "store_id", "cart_token"),
        # Migration 0124: the send check's lookup of a batch's shoppers by email, phone or customer.
        *(
            Index(f"ix_orders_store_{key}", "store_id", key,
                  postgresql_where=text(f"{key} IS NOT NULL"), sqlite_where=text(f"{key} IS NOT NULL"))
            for key in ("email", "phone", "customer_id")
        ),
        Index("ix_orders_store_name", "store_id", "name"),  # the Carts search by order name (migration 0118)
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
    #: Fulfilled (Shopify orders/fulfilled, WooCommerce "completed"; migration 0122): starts the cross-sell.
    fulfilled_at: Mapped[datetime | None]
    #: Refunded in full: no cross-sell.
    refunded_at: Mapped[datetime | None]


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("platform", "shop", "delivery_id"),
        # Migration 0112: one event of one topic is processed once, whatever delivery id it comes under.
        UniqueConstraint("platform", "shop", "topic", "event_id"),
        Index("ix_webhook_deliveries_unprocessed", "processed_at", "received_at"),
        # What the dispatcher's relay has still to hand to the workers (recovery.intake.deliveries.relay_new).
        Index(
            "ix_webhook_deliveries_unrelayed",
            "id",
            postgresql_where=text("processed_at IS NULL AND requeued_at IS NULL"),
            sqlite_where=text("processed_at IS NULL AND requeued_at IS NULL"),
        ),
        *(
            Index(f"ix_webhook_deliveries_{key}", "store_id", key,
                  postgresql_where=text(f"{key} IS NOT NULL"), sqlite_where=text(f"{key} IS NOT NULL"))
            for key in ("order_checkout_token", "order_cart_token", "order_email_hash", "order_phone_hash")
        ),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    shop: Mapped[str] = mapped_column(String(255))
    store_id: Mapped[int | None] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    topic: Mapped[str] = mapped_column(String(64))
    delivery_id: Mapped[str] = mapped_column(String(128))
    #: X-Shopify-Event-Id (None for platforms without one): a replay under a new delivery id is a duplicate.
    event_id: Mapped[str | None] = mapped_column(String(128))
    triggered_at: Mapped[datetime | None]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: Last time a dispatcher enqueued it: its relay (intake_relay) or its sweeper (the first job was
    #: lost); None if the web process enqueued it itself, or nothing has yet.
    requeued_at: Mapped[datetime | None]
    #: Raw payload, kept only until processed and deleted by the redaction topics. `json`, not `jsonb`:
    #: read back whole, never queried inside, and jsonb's parse was a quarter of PostgreSQL's CPU per webhook.
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    processed_at: Mapped[datetime | None]
    #: What processing did with it: "cart created", "stale: a newer state is stored", ...
    outcome: Mapped[str | None] = mapped_column(String(80))
    #: Why it was not (or not fully) processed: unknown shop, bad payload, ...
    error: Mapped[str | None] = mapped_column(Text)
    #: An order receipt's join keys, set in the receipt's INSERT and cleared when the order is applied:
    #: what the last-mile send check consults (recovery/intake/receipts.py). Email and phone only as digests.
    order_checkout_token: Mapped[str | None] = mapped_column(String(255))
    order_cart_token: Mapped[str | None] = mapped_column(String(255))
    order_email_hash: Mapped[str | None] = mapped_column(String(40))
    order_phone_hash: Mapped[str | None] = mapped_column(String(40))
    #: Processing attempts that raised; at deadletters.MAX_ATTEMPTS the delivery is dead (`failed_at`).
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: A dead letter: processing failed MAX_ATTEMPTS times (`error` says why); the sweep leaves it alone.
    failed_at: Mapped[datetime | None]


class RecoveryMessage(Base):
    """One planned message of a recovery sequence: PostgreSQL holds the schedule, Redis only the nudge."""

    __tablename__ = "recovery_messages"
    __table_args__ = (
        UniqueConstraint("cart_id", "step"),
        Index("ix_recovery_messages_status_due", "status", "due_at"),
        # provider events and status callbacks find their message by the provider's id (migration 0103)
        Index("ix_recovery_messages_provider_message_id", "provider_message_id"),
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
    # --- provider delivery events (SendGrid event webhook, Twilio status callbacks; migration 0103) ---
    #: What the provider said after the hand-over: delivered, bounced, dropped, spamreport, undelivered,
    #: failed. `status` stays "sent": the message did go out, and analytics count it.
    delivery_status: Mapped[str | None] = mapped_column(String(16))
    delivery_error: Mapped[str | None] = mapped_column(Text)
    delivery_updated_at: Mapped[datetime | None]
    # --- end provider delivery events ---
    # --- triggered flows (migration 0122): "cart" for the abandoned-cart sequence, else the flow's name
    # (recovery/flows). A flow message's step is FLOW_STEP_BASE + its flow_events id: never a sequence step.
    flow: Mapped[str] = mapped_column(String(24), default="cart", server_default="cart")
    #: What the flow's message says, from recorded facts: variant, old and new price, recommended products.
    flow_data: Mapped[dict[str, Any] | None] = mapped_column(Json)


class ExperimentAssignment(Base):
    __tablename__ = "experiment_assignments"
    __table_args__ = (UniqueConstraint("cart_id", "experiment"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), index=True)
    cart_id: Mapped[int] = mapped_column(ForeignKey("carts.id", ondelete="CASCADE"))
    experiment: Mapped[str] = mapped_column(String(32))
    variant: Mapped[str] = mapped_column(String(32))
    assigned_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: The unit assigned (migration 0115): a salted hash of the shopper key (recovery/sequence/holdout.py).
    unit: Mapped[str | None] = mapped_column(String(64))
    #: P(this variant) under the policy that drew it (migration 0125; discount arms record it).
    propensity: Mapped[float | None]


class SendDecision(Base):
    """How a first-step send time was chosen (migration 0115): what off-policy evaluation needs."""

    __tablename__ = "send_decisions"
    __table_args__ = (UniqueConstraint("cart_id"), Index("ix_send_decisions_store_decided", "store_id", "decided_at"))

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    cart_id: Mapped[int] = mapped_column(ForeignKey("carts.id", ondelete="CASCADE"))
    candidates: Mapped[list[float]] = mapped_column(Json)  # hours after abandonment
    chosen: Mapped[float]
    #: P(chosen | cart) under the serving policy: 1 - epsilon + epsilon/k for the greedy slot, epsilon/k else.
    propensity: Mapped[float]
    greedy: Mapped[float]  # the slot the serving policy would pick without exploring
    epsilon: Mapped[float]
    policy: Mapped[str] = mapped_column(String(16))  # "fixed" or "model"
    model_version: Mapped[str] = mapped_column(String(64))
    features: Mapped[dict[str, Any]] = mapped_column(Json)  # the cart's model inputs at decision time
    decided_at: Mapped[datetime]
