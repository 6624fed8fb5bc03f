"""The ingest benchmark: its signed requests, and a short smoke run on real gunicorn, PostgreSQL and Redis."""

from __future__ import annotations

import json

import psycopg
import pytest

from app.bench import ingest, ingest_report, loadgen
from connectors import shopify
from tests.support import services


def _split(raw: bytes) -> tuple[str, dict[str, str], bytes]:
    head, body = raw.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    return lines[0], dict(line.split(": ", 1) for line in lines[1:]), body


def test_bench_requests_are_distinct_correctly_signed_deliveries() -> None:
    make = ingest.webhook_requests(
        host="127.0.0.1",
        port=8000,
        path=ingest.WEBHOOK_PATH,
        secret="s3cret",  # noqa: S106
        run_id="0123456789abcdef",
        stream=1,
    )
    seen_ids, seen_tokens = set(), set()
    for i in (0, 1, 2, 10_000):
        request_line, headers, body = _split(make(i))
        assert request_line == "POST /webhooks/shopify HTTP/1.1"
        assert int(headers["Content-Length"]) == len(body)
        assert shopify.verify(body, headers, "s3cret")
        assert not shopify.verify(body, headers, "another-secret")
        meta = shopify.read_headers(headers)
        assert not isinstance(meta, str) and meta.topic == "checkouts/update" and meta.shop == ingest.SHOP
        assert meta.webhook_id == ingest.webhook_id("0123456789abcdef", 1, i)
        payload = json.loads(body)
        seen_ids.add(meta.webhook_id)
        seen_tokens.add((payload["token"], payload["id"], payload["cart_token"]))
    assert len(seen_ids) == len(seen_tokens) == 4


def test_percentile_is_nearest_rank() -> None:
    values = [float(x) for x in range(1, 101)]
    assert loadgen.percentile(values, 50) == 50.0
    assert loadgen.percentile(values, 99) == 99.0
    assert loadgen.percentile(values, 100) == 100.0
    assert loadgen.percentile([], 99) == 0.0


def _raw(start: float, end: float, latencies: list[float]) -> dict[str, object]:
    return {
        "start": start, "end": end, "cpu": 0.5, "latencies": latencies, "lags": [],
        "statuses": {"200": len(latencies)}, "errors": {}, "acked": [], "on_the_fly": 0, "engine": "epoll",
    }  # fmt: skip


def test_turns_of_a_phase_pool_into_one_result_over_the_time_they_ran() -> None:
    # Two turns of 2 s, 60 s apart: 100 + 300 answers in 4 s of running, not in the 64 s they spanned
    first = loadgen.summarize([_raw(0.0, 2.0, [0.001] * 100)], mode="closed", duration=2.0)
    second = loadgen.summarize([_raw(62.0, 64.0, [0.003] * 300)], mode="closed", duration=2.0)
    first["raw"], second["raw"] = [_raw(0.0, 2.0, [0.001] * 100)], [_raw(62.0, 64.0, [0.003] * 300)]
    merged = loadgen.summarize_chunks([first, second], mode="closed")
    assert merged["ok"] == 400 and merged["rps"] == pytest.approx(100.0)
    assert merged["elapsed_s"] == pytest.approx(4.0) and merged["chunks"] == 2
    assert merged["p50_ms"] == pytest.approx(3.0) and merged["p90_ms"] == pytest.approx(3.0)
    assert merged["generator_cpu_share"] == pytest.approx(0.25)


@pytest.mark.slow
def test_ingest_smoke_run() -> None:
    redis_url = services.check_redis()
    try:
        psycopg.connect(services.PG_ADMIN_URL, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        services.unavailable("PostgreSQL", exc)

    d = ingest.run_ingest(
        duration=1.0,
        rate=50,
        connections=4,
        workers=2,
        warmup=0.2,
        idle_probe=0.2,
        rounds=2,
        pg_url=services.PG_ADMIN_URL,
        redis_url=redis_url,
    )

    for phase in ("bare", "webhook", "fixed_rate"):
        assert d[phase]["rps"] > 0, phase
        assert d[phase]["errors"] == 0, (phase, d[phase]["error_kinds"], d["server_log_tail"])
    assert d["fixed_rate"]["responses"] == d["fixed_rate"]["scheduled"] == 50
    assert d["ratio"] > 0
    loss = d["loss"]
    assert loss["acked"] > 0
    assert loss["missing"] == 0
    assert loss["stored"] == loss["acked"] == loss["acked_distinct"]
    assert d["webhook"]["chunks"] == d["bare"]["chunks"] == 2
    report = ingest_report.format_ingest(d)
    assert "ratio webhook/bare" in report and "targets (issue 3)" in report
