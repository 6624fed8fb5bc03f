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
