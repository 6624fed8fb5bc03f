"""Platform webhooks: verify the raw body, dedupe on the delivery id, store, enqueue after commit, 2xx."""

from __future__ import annotations

import json
import logging

from flask import Blueprint, jsonify, request

from connectors import shopify
from recovery.intake import PROCESS_ACTOR, record_delivery

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__)


@bp.post("/webhooks/shopify")
def shopify_webhook() -> tuple[object, int]:
    from app import runtime

    rt = runtime()
    body = request.get_data(cache=False)  # raw bytes, before any parsing; over the limit → 413
    headers = dict(request.headers)
    if not shopify.verify(body, headers, rt.settings.shopify_api_secret, rt.settings.shopify_api_secret_old):
        log.warning("shopify webhook rejected: missing or invalid signature")
        return jsonify(error="Unauthorized", detail="missing or invalid X-Shopify-Hmac-Sha256"), 401
    meta = shopify.read_headers(headers)
    if isinstance(meta, str):
        return jsonify(error="Bad Request", detail=meta), 400
    try:
        payload = json.loads(body)
    except ValueError:
        return jsonify(error="Bad Request", detail="body is not valid JSON"), 400
    if not isinstance(payload, dict):
        return jsonify(error="Bad Request", detail="body is not a JSON object"), 400
    if meta.topic not in shopify.TOPICS:
        # A non-2xx answer would make Shopify retry and finally drop the subscription.
        log.info("shopify webhook %s from %s: unhandled topic %s", meta.webhook_id, meta.shop, meta.topic)
        return jsonify(status="ignored", detail=f"topic {meta.topic} is not handled"), 200
    with rt.engine.begin() as conn:
        delivery_pk, status = record_delivery(
            conn,
            platform="shopify",
            shop=meta.shop,
            topic=meta.topic,
            delivery_id=meta.webhook_id,
            triggered_at=meta.triggered_at,
            payload=payload,
            always=meta.topic in shopify.ALWAYS_PROCESSED,
        )
    if delivery_pk is not None:
        rt.enqueue(PROCESS_ACTOR, [delivery_pk])  # after commit; if the broker is down the sweeper sends it
    return jsonify(status=status), 200
