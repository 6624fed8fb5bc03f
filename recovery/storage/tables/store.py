"""A store's platform links (OAuth state, WooCommerce), catalog facts and discount codes."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from recovery.storage.tables.base import Base, utcnow
from recovery.storage.types import Id


class OAuthState(Base):
    """A single-use `state` of the authorization-code grant: deleted when used, useless after expiry."""

    __tablename__ = "oauth_states"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    state: Mapped[str] = mapped_column(String(64), unique=True)
    shop: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]


class DiscountCode(Base):
    """A single-use code made for one offer message, or for one shopper's exit popup (migration 0108:
    `exit_sid`, no message, maybe no cart); deleted on the platform once expired and unused."""

    __tablename__ = "discount_codes"
    __table_args__ = (
        UniqueConstraint("message_id"),
        UniqueConstraint("store_id", "code"),
        UniqueConstraint("store_id", "exit_sid"),  # one exit code per tracker session
        Index("ix_discount_codes_cleanup", "deleted_at", "ends_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    cart_id: Mapped[int | None] = mapped_column(ForeignKey("carts.id", ondelete="CASCADE"), index=True)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("recovery_messages.id", ondelete="CASCADE"))
    #: The tracker session an exit-popup code was made for (None for a message's code).
    exit_sid: Mapped[str | None] = mapped_column(String(64))
    code: Mapped[str] = mapped_column(String(64))
    #: The platform's id for it (a Shopify DiscountCodeNode GID), used to delete it.
    platform_id: Mapped[str | None] = mapped_column(String(128))
    percent: Mapped[int] = mapped_column(Integer)
    ends_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: Deleted on the platform (expired, unused) or found used there; either way no more cleanup.
    deleted_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(32))


# --- storefront tracker (POST /track, migration 0102) ---


class WooConnection(Base):
    """A WooCommerce store's link to us; the REST keys themselves are in `Store.credentials`."""

    __tablename__ = "woo_connections"
    __table_args__ = (UniqueConstraint("store_id"), UniqueConstraint("store_key"))

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    #: Random path segment of our webhook URL: unguessable, and names no shop.
    store_key: Mapped[str] = mapped_column(String(64))
    store_url: Mapped[str] = mapped_column(String(500))
    #: Fernet ciphertext of {"restore_secret": ...}, shared with the WordPress plugin.
    plugin_secret: Mapped[bytes | None] = mapped_column(LargeBinary)
    plugin_configured_at: Mapped[datetime | None]
    #: Orders modified up to here are known to us (the next backfill asks for what changed since).
    orders_synced_to: Mapped[datetime | None]
    next_reconcile_at: Mapped[datetime | None] = mapped_column(index=True)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WooWebhook(Base):
    __tablename__ = "woo_webhooks"
    __table_args__ = (UniqueConstraint("store_id", "topic"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    topic: Mapped[str] = mapped_column(String(64))
    #: WooCommerce's webhook id (X-WC-Webhook-ID on each delivery).
    webhook_id: Mapped[int] = mapped_column(Integer)
    #: Fernet ciphertext of {"secret": ...}: the HMAC key of this one webhook.
    secret: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(16), default="active")
    checked_at: Mapped[datetime | None]


class WooActivation(Base):
    """One started `/wc-auth/v1/authorize` grant; `user_id` is single-use and only its hash is kept."""

    __tablename__ = "woo_activations"
    __table_args__ = (UniqueConstraint("token_hash"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    store_url: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    store_id: Mapped[int | None] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))


# --- catalog facts: variant prices and stock (migration 0107) ---


class VariantPrice(Base):
    """A variant's price as Shopify last reported it (products/update), for honest price-drop lines."""

    __tablename__ = "variant_prices"
    __table_args__ = (
        UniqueConstraint("store_id", "variant_id"),
        Index("ix_variant_prices_store_inventory_item", "store_id", "inventory_item_id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    variant_id: Mapped[str] = mapped_column(String(64))
    product_id: Mapped[str] = mapped_column(String(64))
    #: Links the variant to its stock (inventory_levels/update speaks of inventory items only).
    inventory_item_id: Mapped[str | None] = mapped_column(String(64))
    price: Mapped[Decimal]
    compare_at: Mapped[Decimal | None]
    currency: Mapped[str] = mapped_column(String(3))
    #: inventory_policy "continue": purchasable at zero stock, so never "out of stock" for us.
    oversell: Mapped[bool] = mapped_column(default=False)
    #: The payload's updated_at and the delivery's X-Shopify-Triggered-At: an older retry never wins.
    platform_updated_at: Mapped[datetime]
    triggered_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class InventoryLevel(Base):
    """Stock of one inventory item at one location (inventory_levels/update)."""

    __tablename__ = "inventory_levels"
    __table_args__ = (UniqueConstraint("store_id", "inventory_item_id", "location_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    inventory_item_id: Mapped[str] = mapped_column(String(64))
    location_id: Mapped[str] = mapped_column(String(64))
    #: None: Shopify does not track this item's stock at this location.
    available: Mapped[int | None] = mapped_column(Integer)
    platform_updated_at: Mapped[datetime]
    triggered_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class VerifiedItem(Base):
    """A cart line as the platform describes it (migration 0111): what a tracker cart's message may show.

    Keyed by the line's variant id (or product id when the line names no variant); `found` False records
    that the platform has no such item, so it is not asked again until the row is stale.
    """

    __tablename__ = "verified_items"
    __table_args__ = (UniqueConstraint("store_id", "item_key"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    item_key: Mapped[str] = mapped_column(String(64))
    found: Mapped[bool] = mapped_column(default=False)
    product_id: Mapped[str | None] = mapped_column(String(64))
    title: Mapped[str | None] = mapped_column(String(255))
    variant_title: Mapped[str | None] = mapped_column(String(255))
    price: Mapped[Decimal | None]
    currency: Mapped[str | None] = mapped_column(String(3))
    image_url: Mapped[str | None] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(Text)
    checked_at: Mapped[datetime]


# --- end catalog facts ---


# --- web push subscriptions captured by the storefront (migration 0103) ---
