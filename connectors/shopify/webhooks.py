"""Shopify webhook deliveries: headers and signature (shopifyapp's check, on the raw bytes)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from shopify_app import verify_webhook_req

#: Shopify's anchored shop-domain rule (app security check WEAK_SHOP_VALIDATION).
#: The whole string, so `.match` is a full match (`$` would also accept a trailing newline).
SHOP_DOMAIN = re.compile(r"\A[a-zA-Z0-9][a-zA-Z0-9-]*\.myshopify\.com\Z")
#: A delivery triggered longer ago than Shopify ever retries is a replay (the retry schedule is 8 attempts
#: over 4 h since 2024-09; 19 over 48 h before it: the older, longer horizon is the one we allow).
RETRY_HORIZON = timedelta(hours=48)
#: Clocks differ: a Triggered-At this far ahead of ours is still accepted.
CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class WebhookHeaders:
    topic: str
    shop: str
    webhook_id: str
    triggered_at: datetime | None
    api_version: str | None
    event_id: str | None = None


def verify(
    body: bytes, headers: Mapping[str, str], secret: str | None, old_secret: str | None = None
) -> bool:
    """True only for a body signed with our client secret (base64 HMAC-SHA256, constant-time).

    The same check as `shopify_app.verify_webhook_req` (current secret, then the old one), done on the
    raw bytes: building its request/config dicts and result objects cost more than the HMAC itself
    on every webhook. tests/test_shopify_webhooks.py holds both to the same answers.
    """
    received = headers.get("X-Shopify-Hmac-Sha256")
    if not secret or not received:
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False  # Shopify signs UTF-8 JSON; anything else cannot be one of its deliveries
    given = received.encode("utf-8", "replace")
    # Shopify keeps signing with the old secret for up to 1 h after a rotation.
    return any(key and hmac.compare_digest(given, _signature(key, body)) for key in (secret, old_secret))


def _signature(key: str, body: bytes) -> bytes:
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest())


def verify_with_library(
    body: bytes, headers: Mapping[str, str], secret: str | None, old_secret: str | None = None
) -> bool:
    """`verify` through shopifyapp's own implementation: the reference the fast path is tested against."""
    if not secret or not headers.get("X-Shopify-Hmac-Sha256"):
        return False
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    config = {"client_id": "webhook", "client_secret": secret}
    if old_secret:
        config["old_client_secret"] = old_secret
    request = {"method": "POST", "headers": dict(headers), "body": text}
    return bool(verify_webhook_req(request, config).ok)  # type: ignore[arg-type]


def read_headers(headers: Mapping[str, str], now: datetime | None = None) -> WebhookHeaders | str:
    """The delivery's routing headers, or the reason they are unusable (`now`: the clock, for tests)."""
    topic = (headers.get("X-Shopify-Topic") or "").strip()
    shop = (headers.get("X-Shopify-Shop-Domain") or "").strip().lower()
    webhook_id = (headers.get("X-Shopify-Webhook-Id") or "").strip()
    if not topic:
        return "missing X-Shopify-Topic header"
    if not SHOP_DOMAIN.match(shop):
        return "missing or invalid X-Shopify-Shop-Domain header"
    if not webhook_id or len(webhook_id) > 128:
        return "missing or invalid X-Shopify-Webhook-Id header"
    event_id = (headers.get("X-Shopify-Event-Id") or "").strip() or None
    if event_id is not None and len(event_id) > 128:
        return "invalid X-Shopify-Event-Id header"
    triggered_at = _parse_time(headers.get("X-Shopify-Triggered-At"))
    if triggered_at is None:
        return "missing or invalid X-Shopify-Triggered-At header"
    now = now or datetime.now(UTC)
    if triggered_at < now - RETRY_HORIZON:
        return "X-Shopify-Triggered-At is older than Shopify's retry horizon: a replay"
    if triggered_at > now + CLOCK_SKEW:
        return "X-Shopify-Triggered-At is in the future"
    return WebhookHeaders(
        topic=topic,
        shop=shop,
        webhook_id=webhook_id,
        triggered_at=triggered_at,
        api_version=headers.get("X-Shopify-API-Version"),
        event_id=event_id,
    )


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo and parsed.utcoffset() is not None else None
