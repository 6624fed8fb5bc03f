"""Keeping a WooCommerce store's feed whole: WooCommerce never retries a delivery and disables a
webhook after repeated failures, so a periodic pass re-enables or recreates our webhooks and
backfills every order modified since the last one we saw (`GET /orders?modified_after=`).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from connectors.woocommerce.api import WooClient, WooError
from connectors.woocommerce.coupons import WooOffers, cleanup_store
from connectors.woocommerce.intake import find_connection, record
from connectors.woocommerce.normalize import gmt_time
from connectors.woocommerce.webhooks import SUBSCRIBED
from recovery.measure import metrics
from recovery.storage import tables as t
from recovery.storage.crypto import Vault
from recovery.config.stores import fill_postal_address
from recovery.storage.tables import utcnow

log = logging.getLogger(__name__)

#: Overlap of each backfill with the previous one: clocks of store and app differ a little.
OVERLAP = timedelta(minutes=5)
#: Gets a stored delivery processed (Runtime.hand_off_delivery).
HandOff = Callable[[int], None]


@dataclass
class Report:
    webhooks: dict[str, str] = field(default_factory=dict)
    backfilled: int = 0
    coupons: dict[str, int] = field(default_factory=dict)
    error: str | None = None


def delivery_url(app_url: str, store_key: str) -> str:
    return f"{app_url}/webhooks/woocommerce/{store_key}"


def client_for(
    store: t.Store, connection: t.WooConnection, vault: Vault, allow_http: bool, allow_private: bool = False
) -> WooClient:
    if store.credentials is None:
        raise WooError("the store has no REST keys; activate it again")
    keys = vault.open(store.credentials)
    return WooClient(
        connection.store_url, keys["consumer_key"], keys["consumer_secret"], allow_http=allow_http,
        allow_private=allow_private,
    )


def ensure_webhooks(
    sessions: sessionmaker[Session], vault: Vault, store_id: int, client: WooClient, url: str
) -> dict[str, str]:
    """Each subscribed topic ends with one active webhook of ours pointing at `url`; returns what changed."""
    remote = {int(w["id"]): w for w in client.list_webhooks()}
    with sessions() as session:
        local = {
            w.topic: (w.webhook_id, w.status)
            for w in session.scalars(select(t.WooWebhook).where(t.WooWebhook.store_id == store_id))
        }
    actions: dict[str, str] = {}
    for topic in SUBSCRIBED:
        webhook_id, _ = local.get(topic, (0, ""))
        found = remote.get(webhook_id) if webhook_id else None
        if found is None:
            actions[topic] = "recreated" if webhook_id else "created"
            _create(sessions, vault, store_id, client, topic, url)
        elif found.get("status") != "active" or found.get("delivery_url") != url:
            client.update_webhook(webhook_id, status="active", delivery_url=url)
            actions[topic] = (
                f"re-enabled (was {found.get('status')})" if found.get("status") != "active" else "re-pointed"
            )
        _set_status(sessions, store_id, topic, "active")
    ours = {w for w, _ in local.values()}
    for webhook_id, hook in remote.items():
        # Ours, but its row was lost (crash between create and store): its bodies cannot be verified.
        if hook.get("delivery_url") == url and webhook_id not in ours:
            client.delete_webhook(webhook_id)
            actions[f"orphan {webhook_id}"] = "deleted"
    return actions


def _create(
    sessions: sessionmaker[Session], vault: Vault, store_id: int, client: WooClient, topic: str, url: str
) -> None:
    # The secret is stored before the webhook exists: its first delivery can come at once.
    secret = secrets.token_hex(32)  # alphanumeric: WooCommerce HTML-decodes secrets before signing
    with sessions.begin() as session:
        row = session.scalar(
            select(t.WooWebhook).where(t.WooWebhook.store_id == store_id, t.WooWebhook.topic == topic)
        )
        if row is None:
            row = t.WooWebhook(store_id=store_id, topic=topic, webhook_id=0)
            session.add(row)
        row.secret, row.status = vault.seal({"secret": secret}), "creating"
    created = client.create_webhook(name=f"CartResQ {topic}", topic=topic, delivery_url=url, secret=secret)
    with sessions.begin() as session:
        row = session.scalars(
            select(t.WooWebhook).where(t.WooWebhook.store_id == store_id, t.WooWebhook.topic == topic)
        ).one()
        row.webhook_id, row.status = int(created["id"]), str(created.get("status") or "active")


def _set_status(sessions: sessionmaker[Session], store_id: int, topic: str, status: str) -> None:
    with sessions.begin() as session:
        row = session.scalars(
            select(t.WooWebhook).where(t.WooWebhook.store_id == store_id, t.WooWebhook.topic == topic)
        ).one()
        row.status, row.checked_at = status, utcnow()


def backfill(
    engine: Engine, vault: Vault, store_key: str, client: WooClient, since: datetime, hand_off: HandOff
) -> tuple[int, datetime]:
    """Store each order modified since `since` as a delivery, like a webhook: (count, newest change)."""
    newest, count = since, 0
    for order in client.orders_modified_after(since - OVERLAP):
        modified = gmt_time(order, "date_modified_gmt") or since
        # Idempotent: one delivery per order state; the cart model ignores states it already has.
        delivery_id = f"backfill-{order.get('id')}-{order.get('date_modified_gmt')}"[:128]
        with engine.begin() as conn:
            found = find_connection(conn, store_key)
            if found is None:
                break
            pk, _ = record(
                conn,
                found,
                topic="order.updated",
                delivery_id=delivery_id,
                payload=order,
                vault=vault,
                now=utcnow(),
            )
        if pk is not None:
            hand_off(pk)
            count += 1
        newest = max(newest, modified)
    return count, newest


def reconcile_store(
    sessions: sessionmaker[Session],
    engine: Engine,
    vault: Vault,
    store_id: int,
    *,
    app_url: str,
    allow_http: bool,
    hand_off: HandOff,
    allow_private: bool = False,
) -> Report:
    report = Report()
    with sessions() as session:
        store = session.get(t.Store, store_id)
        connection = session.scalar(select(t.WooConnection).where(t.WooConnection.store_id == store_id))
        if store is None or connection is None or not store.active:
            return report
        client = client_for(store, connection, vault, allow_http, allow_private)
        store_key, since = connection.store_key, connection.orders_synced_to or connection.created_at
        plugin_done = connection.plugin_configured_at is not None
        has_address = bool((store.settings or {}).get("postal_address"))
        plugin_secret = connection.plugin_secret
    try:
        report.webhooks = ensure_webhooks(sessions, vault, store_id, client, delivery_url(app_url, store_key))
        if not has_address:
            with sessions.begin() as session:
                fill_postal_address(session, store_id, client.store_address(), name=client.site_title())
        if not plugin_done and plugin_secret:
            configure_plugin(sessions, vault, store_id, client, app_url, store_key, plugin_secret)
        report.backfilled, newest = backfill(engine, vault, store_key, client, since, hand_off)
        with sessions.begin() as session:
            row = session.scalars(select(t.WooConnection).where(t.WooConnection.store_id == store_id)).one()
            row.orders_synced_to, row.last_error = newest, None
        # Expired offer codes nobody used: deleted on the store (each failure is retried next pass).
        report.coupons = cleanup_store(sessions, WooOffers(vault, sessions, allow_http=allow_http, allow_private=allow_private), store_id)
    except WooError as exc:
        report.error = str(exc)[:500]
        with sessions.begin() as session:
            row = session.scalars(select(t.WooConnection).where(t.WooConnection.store_id == store_id)).one()
            row.last_error = report.error
        log.warning("woocommerce store %s: reconcile failed: %s", store_id, report.error)
    finally:
        client.close()
    metrics.reconciliation_fills("woocommerce", report.backfilled)
    if report.webhooks or report.backfilled:
        log.warning(
            "woocommerce store %s reconciled: webhooks %s, %d orders backfilled",
            store_id,
            report.webhooks,
            report.backfilled,
        )
    return report


def configure_plugin(
    sessions: sessionmaker[Session],
    vault: Vault,
    store_id: int,
    client: WooClient,
    app_url: str,
    store_key: str,
    plugin_secret: bytes,
) -> None:
    """Hand the plugin its restore secret and tracker settings; retried by each pass until it works."""
    try:
        client.configure_plugin(
            {
                "app_url": app_url,
                "store_key": store_key,
                "restore_secret": vault.open(plugin_secret)["restore_secret"],
            }
        )
    except WooError as exc:
        if exc.status == 404:  # the plugin is not installed (yet): webhooks and backfill still work
            log.info("woocommerce store %s: CartResQ plugin not found", store_id)
            return
        raise
    with sessions.begin() as session:
        row = session.scalars(select(t.WooConnection).where(t.WooConnection.store_id == store_id)).one()
        row.plugin_configured_at = utcnow()


def run_due(
    sessions: sessionmaker[Session],
    engine: Engine,
    vault: Vault,
    now: datetime,
    *,
    every: float,
    app_url: str,
    allow_http: bool,
    hand_off: HandOff,
    limit: int = 5,
    allow_private: bool = False,
) -> list[Report]:
    """Reconcile the stores whose turn it is; several dispatchers never take the same store."""
    with sessions.begin() as session:
        due = session.scalars(
            select(t.WooConnection)
            .where(t.WooConnection.next_reconcile_at <= now)
            .order_by(t.WooConnection.next_reconcile_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        for connection in due:
            connection.next_reconcile_at = now + timedelta(
                seconds=every
            )  # claimed: the HTTP work runs unlocked
        store_ids = [c.store_id for c in due]
    return [
        reconcile_store(sessions, engine, vault, sid, app_url=app_url, allow_http=allow_http, hand_off=hand_off,
                        allow_private=allow_private)
        for sid in store_ids
    ]
