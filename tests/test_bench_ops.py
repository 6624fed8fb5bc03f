"""The issue-24 benches run end to end at tiny sizes (real gunicorn, dispatcher, workers, PostgreSQL and
Redis): they work and count what they say. No timing assertions: speed lives in `cartresq bench`."""

from __future__ import annotations

import json

import psycopg
import pytest

from app.bench import history, lateness, track
from app.bench.loadgen_epoll import parse_head
from app.bench.track_requests import beacon_requests, cart_token
from recovery.intake.tracking_schema import parse_beacon
from tests.support import services


def _pg() -> str:
    try:
        psycopg.connect(services.PG_ADMIN_URL, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        services.unavailable("PostgreSQL", exc)
    return services.PG_ADMIN_URL


def test_beacon_requests_are_distinct_valid_cart_beacons_from_the_shops_origin() -> None:
    make = beacon_requests(host="127.0.0.1", port=8000, path="/track", run_id="0123456789abcdef", stream=3)
    tokens = set()
    for i in (0, 1, 70_000):
        head, body = make(i).split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines[1:])
        assert lines[0] == "POST /track HTTP/1.1" and int(headers["Content-Length"]) == len(body)
        assert headers["Origin"] == "https://velvet-fern.myshopify.com"
        beacon = parse_beacon(body)  # the server's own schema accepts it
        assert beacon["type"] == "cart" and beacon["cart"]["token"] == cart_token("0123456789abcdef", 3, i)
        tokens.add(beacon["cart"]["token"])
    assert len(tokens) == 3


def test_the_load_generator_reads_a_204_without_waiting_for_a_body() -> None:
    assert parse_head(b"HTTP/1.1 204 NO CONTENT\r\nAccess-Control-Allow-Origin: https://x.example.com") == (204, 0, False)
    assert parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 5") == (200, 5, False)


@pytest.mark.slow
def test_track_bench_smoke_run() -> None:
    d = track.run_track(duration=1.0, rate=40, connections=4, workers=2, warmup=0.2, rounds=2,
                        pg_url=_pg(), redis_url=services.check_redis())  # fmt: skip
    for phase in ("bare", "track", "fixed_rate"):
        assert d[phase]["rps"] > 0 and d[phase]["errors"] == 0, (phase, d[phase]["error_kinds"], d["server_log_tail"])
    assert d["track"]["statuses"] == {"204": d["track"]["ok"]}  # beacons took the whole path
    assert d["fixed_rate"]["responses"] == d["fixed_rate"]["scheduled"] == 40
    assert d["loss"]["acked"] == d["loss"]["stored"] > 0 and d["loss"]["missing"] == 0
    assert (d["inbox"]["left"], d["inbox"]["dead"]) == (0, 0)  # the track relay applied every stored beacon
    assert "ratio track/bare" in track.format_track(d)


@pytest.mark.slow
def test_lateness_bench_smoke_run() -> None:
    d = lateness.run_lateness(rate=20, duration=1.0, pg_url=_pg(), redis_url=services.check_redis(), processes=1,
                              threads=2, lead=1.0)  # fmt: skip
    assert d["messages"] == 20 and d["sent"] == 20, d["not_sent"]  # every one through dispatcher, worker, SendGrid
    assert 0 <= d["min_s"] <= d["p50_s"] <= d["p99_s"] <= d["max_s"]
    assert "hand-over minus due time" in lateness.format_lateness(d)


@pytest.mark.slow
def test_history_bench_smoke_run() -> None:
    d = history.run_history(sizes=(200, 1000), fresh=60, rounds=1, pg_url=_pg())
    small, large = d["runs"]
    assert small["rows"]["carts"] == 200 and large["rows"]["carts"] == 1000  # counted before the pipeline ran
    assert large["rows"]["recovery_messages"] == 1500 and large["rows"]["orders"] == 400
    assert small["carts_per_s"] > 0 and large["claim_ms"] > 0 and d["claim_ratio"] > 0
    assert json.dumps(d) and "largest vs smallest" in history.format_history(d)
