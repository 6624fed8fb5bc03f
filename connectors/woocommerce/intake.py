"""Storing a WooCommerce order delivery (from a webhook or a backfill) with the context it needs.

The normalizers are pure and know no store, so the edge adds what only the store knows: which
statuses it counts as paid and the signed restore link of the cart. Stored payloads are deleted
once processed, so this context lives no longer than the payload itself.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from connectors.woocommerce.normalize import CART_STATUSES, CONTEXT_KEY
from connectors.woocommerce.restore import restore_url
from recovery.storage import tables as t
from recovery.storage.crypto import Vault
from recovery.intake.deliveries import record_delivery
from recovery.config.store_settings import effective

PLATFORM = "woocommerce"


def find_connection(conn: Connection, store_key: str) -> Any:
    """(store id, domain, settings, store_url, plugin_secret) for a webhook URL's key, or None."""
    return conn.execute(
        select(
            t.Store.id,
            t.Store.domain,
            t.Store.settings,
            t.WooConnection.store_url,
            t.WooConnection.plugin_secret,
        )
        .join(t.WooConnection, t.WooConnection.store_id == t.Store.id)
        .where(t.WooConnection.store_key == store_key, t.Store.platform == PLATFORM)
    ).first()


def annotate(payload: dict[str, Any], topic: str, found: Any, vault: Vault, now: datetime) -> dict[str, Any]:
    if not topic.startswith("order."):
        return payload
    context: dict[str, Any] = {"paid_statuses": list(effective(found.settings or {})["woo_paid_statuses"])}
    if payload.get("status") in CART_STATUSES and found.plugin_secret:
        secret = vault.open(found.plugin_secret)["restore_secret"]
        context["restore_url"] = restore_url(found.store_url, secret, payload, now)
    return {**payload, CONTEXT_KEY: context}


def record(
    conn: Connection,
    found: Any,
    *,
    topic: str,
    delivery_id: str,
    payload: dict[str, Any],
    vault: Vault,
    now: datetime,
) -> tuple[int | None, str]:
    """Insert once per (woocommerce, store, delivery id: `webhooks.event_id`, never X-WC-Webhook-Delivery-ID);
    the caller commits, then enqueues the id."""
    from connectors.receipts import order_keys

    annotated = annotate(payload, topic, found, vault, now)
    return record_delivery(
        conn,
        platform=PLATFORM,
        shop=found.domain,
        topic=topic,
        delivery_id=delivery_id,
        triggered_at=None,
        payload=annotated,
        order_keys=order_keys(PLATFORM, topic, annotated),  # a purchase holds reminders from its receipt on
    )
