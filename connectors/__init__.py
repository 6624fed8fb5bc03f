"""Platform connectors: verify what a platform sends and normalize it into `recovery.model`."""

from __future__ import annotations

from typing import Any

from recovery.model import NormalizeResult


def normalize(platform: str, topic: str, payload: Any) -> NormalizeResult:
    """The one entry the worker uses; raises ValueError for payloads of the wrong shape."""
    if platform == "shopify":
        from connectors import shopify

        return shopify.normalize(topic, payload)
    if platform == "woocommerce":
        from connectors import woocommerce

        return woocommerce.normalize(topic, payload)
    raise ValueError(f"no connector for platform {platform!r}")
