"""Post Shopify fixtures through the real endpoint, signed exactly as Shopify signs them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "shopify"
SECRET = "test-shopify-client-secret"
SHOP = "velvet-fern.myshopify.com"


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())  # type: ignore[no-any-return]


def topic_of(name: str) -> str:
    """`checkouts_update__stale` → `checkouts/update` (zulip's header-from-filename rule)."""
    base = name.split("__", 1)[0]
    head, _, tail = base.partition("_")
    return f"{head}/{tail}"


def triggered_now() -> str:
    """X-Shopify-Triggered-At of a delivery sent now (older ones are refused as replays)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def sign(body: bytes, secret: str = SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def headers(body: bytes, topic: str, *, shop: str = SHOP, webhook_id: str | None = None, secret: str = SECRET) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Shop-Domain": shop,
        "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
        "X-Shopify-Event-Id": str(uuid.uuid4()),
        "X-Shopify-Triggered-At": triggered_now(),
        "X-Shopify-API-Version": "2026-10",
        "X-Shopify-Hmac-Sha256": sign(body, secret),
    }


def post(client: Any, name: str, *, payload: dict[str, Any] | None = None, **kw: Any) -> Any:
    """POST fixture `name` (or `payload` under its topic) to /webhooks/shopify; returns the response."""
    body = json.dumps(payload if payload is not None else load(name)).encode()
    return client.post("/webhooks/shopify", data=body, headers=headers(body, topic_of(name), **kw))
