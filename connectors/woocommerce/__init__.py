"""WooCommerce: activation, webhook verification, normalization, REST client and reconciliation."""

from connectors.woocommerce.normalize import TOPICS, normalize
from connectors.woocommerce.webhooks import SUBSCRIBED, event_id, ping_webhook_id, read_headers, sign, verify

__all__ = ["SUBSCRIBED", "TOPICS", "event_id", "normalize", "ping_webhook_id", "read_headers", "sign", "verify"]
