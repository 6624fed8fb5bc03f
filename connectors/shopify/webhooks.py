"""Shopify webhook deliveries: headers and signature. Verification is `shopifyapp`'s."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from shopify_app import verify_webhook_req

#: Shopify's anchored shop-domain rule (app security check WEAK_SHOP_VALIDATION).
SHOP_DOMAIN = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9-]*\.myshopify\.com$")


@dataclass(frozen=True)
class WebhookHeaders:
    topic: str
    shop: str
    webhook_id: str
    triggered_at: datetime | None
    api_version: str | None


def verify(body: bytes, headers: Mapping[str, str], secret: str | None, old_secret: str | None = None) -> bool:
    """True only for a body signed with our client secret (base64 HMAC-SHA256, constant-time)."""
    if not secret or not headers.get("X-Shopify-Hmac-Sha256"):
        return False
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return False  # Shopify signs UTF-8 JSON; anything else cannot be one of its deliveries
    config = {"client_id": "webhook", "client_secret": secret}
    if old_secret:
        config["old_client_secret"] = old_secret  # Shopify keeps signing with the old secret for up to 1 h
    request = {"method": "POST", "headers": dict(headers), "body": text}
    return bool(verify_webhook_req(request, config).ok)  # type: ignore[arg-type]


def read_headers(headers: Mapping[str, str]) -> WebhookHeaders | str:
    """The delivery's routing headers, or the reason they are unusable."""
    topic = (headers.get("X-Shopify-Topic") or "").strip()
    shop = (headers.get("X-Shopify-Shop-Domain") or "").strip().lower()
    webhook_id = (headers.get("X-Shopify-Webhook-Id") or "").strip()
    if not topic:
        return "missing X-Shopify-Topic header"
    if not SHOP_DOMAIN.match(shop):
        return "missing or invalid X-Shopify-Shop-Domain header"
    if not webhook_id or len(webhook_id) > 128:
        return "missing or invalid X-Shopify-Webhook-Id header"
    return WebhookHeaders(
        topic=topic,
        shop=shop,
        webhook_id=webhook_id,
        triggered_at=_parse_time(headers.get("X-Shopify-Triggered-At")),
        api_version=headers.get("X-Shopify-API-Version"),
    )


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None
