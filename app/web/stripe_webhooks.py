"""POST /webhooks/stripe: Stripe Billing's events for hosted WooCommerce stores (connectors/woocommerce/billing.py).

Verified with `stripe.Webhook.construct_event` (bad signature → 401, nothing written), deduplicated on the
event id like every other webhook (a `webhook_deliveries` row, platform "stripe"), and applied at once in
the same transaction: these events are few, and the plan must change before the next abandoner pass.
"""

from __future__ import annotations

import dataclasses
import logging

import stripe
from flask import Blueprint, jsonify, request
from sqlalchemy import select

from connectors.woocommerce.billing import customer_email, read_event
from recovery.storage import tables as t
from recovery.billing.subscriptions import apply_plan_change
from recovery.storage.db import insert_for
from recovery.storage.tables import utcnow

log = logging.getLogger(__name__)
bp = Blueprint("stripe_webhooks", __name__)


@bp.post("/webhooks/stripe")
def stripe_webhook() -> tuple[object, int]:
    from app.web import runtime

    rt = runtime()
    if "woocommerce" not in rt.settings.billed_platforms or not rt.settings.stripe_webhook_secret:
        return jsonify(error="Not Found", detail="Stripe billing is not configured"), 404
    body = request.get_data(cache=False)
    try:
        event = read_event(rt.settings, body, request.headers.get("Stripe-Signature"))
    except stripe.SignatureVerificationError:
        log.warning("stripe webhook rejected: missing or invalid signature")
        return jsonify(error="Unauthorized", detail="missing or invalid Stripe-Signature"), 401
    except (ValueError, KeyError, TypeError):
        return jsonify(error="Bad Request", detail="body is not a Stripe event"), 400
    if event.change is None:
        return jsonify(status="ignored", detail=f"event type {event.type[:64]} is not handled"), 200
    if event.type == "customer.subscription.created" and event.change.customer_id:
        # Where the 80 % / 100 % notices go: the paying customer's email (one call, before the transaction).
        email = customer_email(rt.settings, event.change.customer_id)
        event = dataclasses.replace(event, change=dataclasses.replace(event.change, contact_email=email))
    now = utcnow()
    with rt.sessions.begin() as session:
        store_id = event.store_id
        if store_id is None and event.change.subscription_id:
            store_id = session.scalar(
                select(t.StoreBilling.store_id).where(t.StoreBilling.subscription_id == event.change.subscription_id)
            )
        store = session.get(t.Store, store_id) if store_id is not None else None
        known = store is not None and store.platform == "woocommerce"
        inserted = session.execute(
            insert_for(session.get_bind().dialect.name)(t.WebhookDelivery)
            .values(platform="stripe", shop=store.domain if known else "unknown", store_id=store.id if known else None,
                    topic=event.type[:64], delivery_id=event.id[:128], event_id=event.id[:128], triggered_at=event.created,
                    received_at=now, processed_at=now, payload=None, error=None if known else "unknown store")
            .on_conflict_do_nothing()
            .returning(t.WebhookDelivery.id)
        ).scalar()  # fmt: skip
        if inserted is None:
            return jsonify(status="duplicate"), 200
        if not known:
            log.info("stripe event %s for no known store", event.type)
            return jsonify(status="not served"), 200
        outcome = apply_plan_change(session, store.id, event.change, now)
        session.get(t.WebhookDelivery, inserted).outcome = outcome[:80]
    log.info("stripe event %s for store %s: %s", event.type, store_id, outcome)
    return jsonify(status="accepted"), 200
