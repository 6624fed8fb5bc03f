"""WooCommerce: activation, webhook verification, normalization, REST client and reconciliation."""

from connectors.woocommerce.normalize import TOPICS, normalize
from connectors.woocommerce.webhooks import SUBSCRIBED, ping_webhook_id, read_headers, sign, verify

__all__ = ["SUBSCRIBED", "TOPICS", "normalize", "ping_webhook_id", "read_headers", "sign", "verify"]
