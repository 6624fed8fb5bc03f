"""Shopify: webhook verification and normalization (GraphQL client and install flow come later)."""

from connectors.shopify.normalize import ALWAYS_PROCESSED, NORMALIZERS, TOPICS, normalize
from connectors.shopify.webhooks import WebhookHeaders, read_headers, verify

__all__ = ["ALWAYS_PROCESSED", "NORMALIZERS", "TOPICS", "WebhookHeaders", "normalize", "read_headers", "verify"]
