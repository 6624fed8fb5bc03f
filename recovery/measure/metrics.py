"""Prometheus metrics of the loop (prometheus_client), recorded where things happen and exposed at the
web tier's GET /metrics (app/observability.py) and, in `cartresq worker` processes with
CARTRESQ_WORKER_METRICS=on, by Dramatiq's Prometheus middleware on :9191.

The metric objects are made on first use, not at import: prometheus_client picks in-process or
multiprocess storage (PROMETHEUS_MULTIPROC_DIR, gunicorn with several workers; Dramatiq's middleware sets
it after its process boots) when it is first imported, so nothing here may import it earlier.

Labels are closed sets (platform, topic, channel, outcome's first word): never a shop, an id, an address.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

#: Seconds: from a webhook's receipt to its application; from a message's due time to its hand-over.
LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600)


_registering = threading.Lock()


def _metrics() -> dict[str, Any]:
    """The process's metrics, registered once: functools.cache alone let two threads of a fresh process both
    register them (prometheus_client's DuplicateTimeseries killed the bench's send threads)."""
    with _registering:
        return _registered()


@functools.cache
def _registered() -> dict[str, Any]:
    from prometheus_client import Counter, Histogram

    return {
        "webhooks": Counter("cartresq_webhooks_received_total", "Webhook deliveries received, by topic and outcome",
                            ["platform", "topic", "outcome"]),
        "applied_lag": Histogram("cartresq_webhook_receipt_to_applied_seconds",
                                 "From a delivery's 2xx to a worker applying it", ["platform"], buckets=LAG_BUCKETS),
        "messages": Counter("cartresq_messages_total", "Send attempts by channel and outcome", ["channel", "outcome"]),
        "lateness": Histogram("cartresq_send_lateness_seconds", "Hand-over to the provider minus the due time",
                              ["channel"], buckets=LAG_BUCKETS),
        "dead": Counter("cartresq_dead_letters_total", "Deliveries given up: rejected payloads and failed N times",
                        ["platform", "kind"]),
        "fills": Counter("cartresq_reconciliation_fills_total",
                         "Checkouts and orders that reached CartResQ only through reconciliation", ["platform"]),
        "refresh_failures": Counter("cartresq_token_refresh_failures_total", "Shopify access-token refresh failures",
                                    ["permanent"]),
    }  # fmt: skip


def _topic(topic: str) -> str:
    return topic if len(topic) <= 64 and topic.replace("/", "").replace(".", "").replace("_", "").isalnum() else "other"


def webhook(platform: str, topic: str, outcome: str) -> None:
    _metrics()["webhooks"].labels(platform, _topic(topic), outcome).inc()


def applied(platform: str, seconds: float) -> None:
    _metrics()["applied_lag"].labels(platform).observe(max(seconds, 0.0))


def message(channel: str, outcome: str) -> None:
    _metrics()["messages"].labels(channel, outcome.split(":", 1)[0].strip()[:32]).inc()


def lateness(channel: str, seconds: float) -> None:
    _metrics()["lateness"].labels(channel).observe(max(seconds, 0.0))


def dead_letter(platform: str, kind: str) -> None:
    _metrics()["dead"].labels(platform, kind).inc()


def reconciliation_fills(platform: str, count: int) -> None:
    if count > 0:
        _metrics()["fills"].labels(platform).inc(count)


def token_refresh_failed(permanent: bool) -> None:
    _metrics()["refresh_failures"].labels("true" if permanent else "false").inc()
