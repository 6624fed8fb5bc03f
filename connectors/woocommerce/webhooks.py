"""WooCommerce webhook deliveries: headers, signature, and the unsigned creation ping."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs

#: Topics our webhooks subscribe to; each gets its own secret.
SUBSCRIBED = ("order.created", "order.updated", "product.updated", "customer.updated")


@dataclass(frozen=True)
class WebhookHeaders:
    topic: str
    webhook_id: int
    delivery_id: str
    source: str | None


def sign(body: bytes, secret: str) -> str:
    """What WooCommerce sends in X-WC-Webhook-Signature: base64(HMAC-SHA256(raw body, secret))."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def verify(body: bytes, signature: str | None, secret: str | None) -> bool:
    """Constant-time check of the raw body against this webhook's own secret."""
    if not signature or not secret:
        return False
    return hmac.compare_digest(sign(body, secret).encode(), signature.strip().encode())


def event_id(webhook_id: int, body: bytes) -> str:
    """What identifies one WooCommerce delivery for deduplication: the webhook and a SHA-256 of the signed body.

    Not `X-WC-Webhook-Delivery-ID`: WooCommerce computes it as `wp_hash(webhook id . strtotime('now'))`,
    the same for every delivery of one webhook within one second, and Action Scheduler sends batches
    within a second (a burst of orders became half as many carts). Not (webhook, resource id,
    `date_modified_gmt`) either: that stamp has whole seconds, so two changes of one order within a
    second would share it and the second would be dropped. The body is built at delivery time from the
    resource's current state, so the same body twice is the same state (applying it again changes
    nothing) and any other body is applied. The webhook id is part of it so that one state sent under
    two topics (order.created, order.updated) is kept for each. 12 + 1 + 64 characters.
    """
    return f"{webhook_id}:{hashlib.sha256(body).hexdigest()}"


def ping_webhook_id(body: bytes, headers: Mapping[str, str]) -> str | None:
    """The creation ping is a form POST `webhook_id=<id>` without any X-WC-Webhook-* headers."""
    if headers.get("X-WC-Webhook-Signature") or headers.get("X-WC-Webhook-Topic") or len(body) > 64:
        return None
    try:
        fields = parse_qs(body.decode("ascii"), strict_parsing=True)
    except (UnicodeDecodeError, ValueError):
        return None
    values = fields.get("webhook_id", [])
    if set(fields) != {"webhook_id"} or len(values) != 1 or not values[0].isdigit():
        return None
    return values[0]


def read_headers(headers: Mapping[str, str]) -> WebhookHeaders | str:
    """The delivery's routing headers (names from class-wc-webhook.php), or why they are unusable."""
    topic = (headers.get("X-WC-Webhook-Topic") or "").strip()
    webhook_id = (headers.get("X-WC-Webhook-ID") or "").strip()
    delivery_id = (headers.get("X-WC-Webhook-Delivery-ID") or "").strip()
    if not topic or len(topic) > 64:
        return "missing or invalid X-WC-Webhook-Topic header"
    if not webhook_id.isdigit() or len(webhook_id) > 12:
        return "missing or invalid X-WC-Webhook-ID header"
    if not delivery_id or len(delivery_id) > 128:
        return "missing or invalid X-WC-Webhook-Delivery-ID header"
    return WebhookHeaders(topic, int(webhook_id), delivery_id, headers.get("X-WC-Webhook-Source"))
