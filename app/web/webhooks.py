"""Platform webhooks: verify the raw body, dedupe on the delivery id, store, hand off to the workers, 2xx."""

from __future__ import annotations

import json
import logging

from flask import Blueprint, Response, jsonify, request

from app.web import jsonbody
from connectors import shopify
from connectors.receipts import order_keys
from connectors.shopify import compliance
from recovery.measure import metrics
from recovery.intake.deliveries import record_webhook
from recovery.intake.receipts import wait_for_hand_overs

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__)

#: The answers of nearly every delivery, serialized once (jsonify per request showed in profiles).
_ANSWERS = {s: json.dumps({"status": s}) + "\n" for s in ("accepted", "duplicate", "not served")}


def _parse(body: bytes) -> object:
    """ValueError when the body is not JSON (app/web/jsonbody.py: orjson, a UTF-8 BOM skipped, bounded nesting)."""
    return jsonbody.loads(body)


@bp.post("/webhooks/shopify")
def shopify_webhook() -> tuple[object, int]:
    from app.web import runtime

    rt = runtime()
    body = request.get_data(cache=False)  # raw bytes, before any parsing; over the limit → 413
    headers = request.headers  # read in place: a dict copy of the environ's headers cost as much as the HMAC
    if not shopify.verify(body, headers, rt.settings.shopify_api_secret, rt.settings.shopify_api_secret_old):
        log.warning("shopify webhook rejected: missing or invalid signature")
        metrics.webhook("shopify", "unverified", "unauthorized")
        return jsonify(error="Unauthorized", detail="missing or invalid X-Shopify-Hmac-Sha256"), 401
    meta = shopify.read_headers(headers)
    if isinstance(meta, str):
        return jsonify(error="Bad Request", detail=meta), 400
    try:
        payload = _parse(body)
    except ValueError:
        return jsonify(error="Bad Request", detail="body is not valid JSON"), 400
    if not isinstance(payload, dict):
        return jsonify(error="Bad Request", detail="body is not a JSON object"), 400
    refused = compliance.check(meta.topic, meta.shop, payload)  # headers bound to the signed body
    if refused is not None:
        log.warning("shopify webhook %s refused: %s", meta.topic, refused)
        return jsonify(error="Bad Request", detail=refused), 400
    if meta.topic not in shopify.TOPICS:
        # A non-2xx answer would make Shopify retry and finally drop the subscription.
        log.info("shopify webhook %s from %s: unhandled topic %s", meta.webhook_id, meta.shop, meta.topic)
        return jsonify(status="ignored", detail=f"topic {meta.topic} is not handled"), 200
    keys = order_keys("shopify", meta.topic, payload)  # an order's receipt columns: seen by sends at once
    delivery_pk, status = record_webhook(
        rt.engine,
        platform="shopify",
        shop=meta.shop,
        topic=meta.topic,
        delivery_id=meta.webhook_id,
        event_id=meta.event_id,
        triggered_at=meta.triggered_at,
        payload=payload,
        always=meta.topic in shopify.ALWAYS_PROCESSED,
        order_keys=keys,
        raw=body.decode("utf-8-sig"),  # verify() accepted only UTF-8; json.loads skips a BOM too
    )
    if delivery_pk is not None:
        rt.hand_off_delivery(delivery_pk)  # after commit; if the broker is down the sweeper sends it
        if keys:  # a reminder already on its way reaches its provider before the purchase is acknowledged
            wait_for_hand_overs(rt.engine, delivery_pk)
    metrics.webhook("shopify", meta.topic, status)
    answer = _ANSWERS.get(status) or json.dumps({"status": status})
    return Response(answer, 200, mimetype="application/json"), 200
