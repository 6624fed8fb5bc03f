"""Operations' eyes: /metrics behind the operator check with the loop's counters and histograms, JSON log
lines with a request id and no personal data, and Sentry events scrubbed of it."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from app import create_app
from app.observability import configure_logging, scrub
from app.runtime import Runtime, build_runtime
from recovery.sending.channels import FakeChannel, PermanentSendError
from tests.conftest import add_store, drain, make_settings
from tests.loop_helpers import HOUR, abandon_all, now, send_due, set_store
from tests.support import shopify

TOKEN = "metrics-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def fake() -> FakeChannel:
    return FakeChannel()


@pytest.fixture
def rt(database_url: str, tmp_path: Path, fake: FakeChannel) -> Iterator[Runtime]:
    runtime = build_runtime(make_settings(database_url, tmp_path, admin_token=TOKEN),
                            channels={"email": fake, "sms": fake, "push": fake}, seed=3)
    add_store(runtime)
    set_store(runtime, holdout_percent=0)
    yield runtime
    runtime.close()


@pytest.fixture
def client(rt: Runtime):  # type: ignore[no-untyped-def]
    return create_app(runtime=rt).test_client()


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_metrics_are_for_operators_and_count_the_loop(rt: Runtime, client, fake: FakeChannel) -> None:
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    received = value("cartresq_webhooks_received_total", platform="shopify", topic="checkouts/update", outcome="accepted")
    applied = value("cartresq_webhook_receipt_to_applied_seconds_count", platform="shopify")
    sent = value("cartresq_messages_total", channel="email", outcome="sent")
    late = value("cartresq_send_lateness_seconds_count", channel="email")
    shopify.post(client, "checkouts_update")
    drain(rt)
    at = now() + 2 * HOUR
    abandon_all(rt, at)
    assert send_due(rt, at + 5 * HOUR) == ["sent"]
    assert value("cartresq_webhooks_received_total", platform="shopify", topic="checkouts/update", outcome="accepted") == received + 1
    assert value("cartresq_webhook_receipt_to_applied_seconds_count", platform="shopify") == applied + 1
    assert value("cartresq_messages_total", channel="email", outcome="sent") == sent + 1
    assert value("cartresq_send_lateness_seconds_count", channel="email") == late + 1
    page = client.get("/metrics", headers=AUTH)
    assert page.status_code == 200 and page.content_type.startswith("text/plain")
    text = page.get_data(as_text=True)
    for name in ("cartresq_webhooks_received_total", "cartresq_webhook_receipt_to_applied_seconds_bucket",
                 "cartresq_messages_total", "cartresq_send_lateness_seconds_bucket"):
        assert name in text


def test_dead_letters_are_counted(rt: Runtime, client) -> None:
    before = value("cartresq_dead_letters_total", platform="shopify", kind="rejected")
    shopify.post(client, "checkouts_update", payload={**shopify.load("checkouts_update"), "total_price": "1e400"})
    drain(rt)
    assert value("cartresq_dead_letters_total", platform="shopify", kind="rejected") == before + 1


def test_log_lines_are_json_with_the_request_id_and_no_personal_data(rt: Runtime, client, fake: FakeChannel) -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    configure_logging("json")
    [handler] = [h for h in root.handlers if getattr(h, "_cartresq", False)]
    handler.setStream(stream)  # type: ignore[attr-defined]
    try:
        answer = client.post("/webhooks/shopify", data=b"{}", headers={"X-Request-Id": "req-42", "X-Shopify-Topic": "checkouts/update"})
        assert answer.status_code == 401 and answer.headers["X-Request-Id"] == "req-42"
        shopify.post(client, "checkouts_update")
        drain(rt)
        at = now() + 2 * HOUR
        abandon_all(rt, at)
        send_due(rt, at + 5 * HOUR)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]  # one JSON object per line
    assert lines and all({"time", "level", "logger", "message", "pid"} <= set(line) for line in lines)
    assert any(line["request_id"] == "req-42" and "signature" in line["message"] for line in lines)
    everything = stream.getvalue()
    for secret in ("maren.holloway@example.com", "+18285550147", "7c3e9a41d2b85f60e1a4c97d3b2f8e05", "Maren"):
        assert secret not in everything


def test_sentry_events_leave_without_personal_data() -> None:
    event = {
        "request": {"url": "https://app.example.com/webhooks/shopify", "method": "POST",
                    "data": '{"email": "maren.holloway@example.com"}', "headers": {"X-Shopify-Hmac-Sha256": "x"},
                    "cookies": {"session": "s"}, "query_string": "token=abc"},
        "user": {"email": "maren.holloway@example.com"},
        "breadcrumbs": {"values": [{"message": "delivery 7 failed", "data": {"phone": "+18285550147"}}]},
        "exception": {"values": [{"type": "DataError"}]},
    }
    cleaned = json.dumps(scrub(event))
    assert "example.com/webhooks" in cleaned and "DataError" in cleaned and "delivery 7 failed" in cleaned
    for secret in ("maren.holloway", "+18285550147", "token=abc", "Hmac", "session"):
        assert secret not in cleaned


def test_webhook_outcomes_and_refused_sends_are_counted(rt: Runtime, client, fake: FakeChannel) -> None:
    def webhooks(topic: str, outcome: str) -> float:
        return value("cartresq_webhooks_received_total", platform="shopify", topic=topic, outcome=outcome)

    accepted, duplicate = webhooks("checkouts/update", "accepted"), webhooks("checkouts/update", "duplicate")
    unauthorized, failed = webhooks("unverified", "unauthorized"), value("cartresq_messages_total", channel="email", outcome="failed")
    assert shopify.post(client, "checkouts_update", webhook_id="9d1c4c1e-0000-4000-8000-000000000001").status_code == 200
    assert shopify.post(client, "checkouts_update", webhook_id="9d1c4c1e-0000-4000-8000-000000000001").status_code == 200
    assert shopify.post(client, "checkouts_update", secret="not-the-app-secret").status_code == 401  # noqa: S106
    assert (webhooks("checkouts/update", "accepted"), webhooks("checkouts/update", "duplicate")) == (accepted + 1, duplicate + 1)
    assert webhooks("unverified", "unauthorized") == unauthorized + 1
    drain(rt)
    at = now() + 2 * HOUR
    abandon_all(rt, at)
    fake.fail_with = PermanentSendError("550 mailbox unavailable")
    assert send_due(rt, at + 5 * HOUR) == ["failed: provider refused"]
    assert value("cartresq_messages_total", channel="email", outcome="failed") == failed + 1


def test_a_workers_threads_make_the_metrics_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # A worker's threads record their first sends at once; a second registration of a metric raised
    # DuplicateTimeseries and failed the send job after its first hand-over (found by `cartresq bench lateness`).
    import functools
    import threading
    import time

    from recovery.measure import metrics

    made: list[int] = []

    @functools.cache
    def slow_registered() -> dict[str, object]:
        made.append(1)
        time.sleep(0.05)  # wide open for a second thread
        return {"messages": object()}

    monkeypatch.setattr(metrics, "_registered", slow_registered)
    threads = [threading.Thread(target=metrics._metrics) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(made) == 1 and set(metrics._metrics()) == {"messages"}


def test_httpx_logs_no_line_per_request_but_keeps_its_warnings() -> None:
    stream = io.StringIO()
    root, httpx_log = logging.getLogger(), logging.getLogger("httpx")
    level, httpx_level = root.level, httpx_log.level
    configure_logging("json")
    [handler] = [h for h in root.handlers if getattr(h, "_cartresq", False)]
    handler.setStream(stream)  # type: ignore[attr-defined]
    try:
        httpx_log.info("HTTP Request: POST https://api.sendgrid.example.com/v3/mail/send \"HTTP/1.1 202 Accepted\"")
        httpx_log.warning("connection pool is full")
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        httpx_log.setLevel(httpx_level)
    assert [json.loads(line)["message"] for line in stream.getvalue().splitlines()] == ["connection pool is full"]
