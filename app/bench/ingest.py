"""The `ingest` benchmark: the Shopify webhook path on gunicorn + PostgreSQL + Redis against a bare 200.

One run, one server: a scratch PostgreSQL database (migrated, one Shopify store), a dedicated Redis db,
`gunicorn -w N -k gevent 'app:create_app()'` with `CARTRESQ_BENCH_BARE=1` (which adds `POST /_bench/bare`,
see app/web/bare.py: same server, workers and Flask stack, it only reads the body and answers 200), and
`cartresq dispatcher`, whose intake relay enqueues the stored deliveries for the workers. Then:

1. warm-up (both endpoints, not reported);
2. maximum throughput, closed loop, `connections` connections for `duration` s each: the bare endpoint
   and `/webhooks/shopify` taking turns (`rounds` turns each, so both see the same spells of a shared
   machine's speed) → requests/s, p50/p90/p99/max, errors, and their ratio;
3. fixed rate, open loop, `rate` requests/s for `duration` s on `/webhooks/shopify`, latency measured from
   each request's scheduled send time → p50/p99/p99.9/max, errors;
4. zero loss: every webhook acknowledged with a 2xx must be a row of `webhook_deliveries` (checked by id),
   and the relay must have enqueued every one of them (none left without a job).

Every webhook request is distinct: a `checkouts/update` body built from tests/fixtures/shopify (checkout
`id`, `token` and `cart_token` varied), its own `X-Shopify-Webhook-Id`, and a real HMAC-SHA256 signature.
The load generator is app/bench/loadgen.py, in its own process on the same machine as the server.
The server, scratch services and CPU meter are in ingest_env.py; the verdicts and report in ingest_report.py.

Targets (issue 3): webhook/bare ≥ 0.40, p99 ≤ 50 ms at 500 requests/s, zero errors (and zero loss).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

# Only the standard library at module level: load generator processes load this file for `webhook_requests`
# without importing the app.
if TYPE_CHECKING:
    from app.bench.loadgen_epoll import RequestFactory

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "shopify" / "checkouts_update.json"
SHOP = "velvet-fern.myshopify.com"
TOPIC = "checkouts/update"
WEBHOOK_PATH = "/webhooks/shopify"

TARGET_RATIO = 0.40
TARGET_P99_MS = 50.0
TARGET_RATE = 500

#: Request streams: one index space per phase, so no two requests of a run share a webhook id.
WARMUP, CLOSED, OPEN, BARE = 0, 1, 2, 9


# ------------------------------------------------------------------------------------------------ requests


def webhook_requests(
    *,
    host: str,
    port: int,
    path: str,
    secret: str,
    run_id: str,
    stream: int,
    shop: str = SHOP,
    fixture: str = str(FIXTURE),
) -> RequestFactory:
    """Request i of `stream`: a distinct, correctly signed `checkouts/update` delivery, as raw HTTP bytes.

    `run_id` is 16 hex digits; webhook ids are UUID-shaped and derived from (run_id, stream, i), so the
    caller can tell which deliveries were acknowledged (see `webhook_id`).
    """
    payload = json.loads(Path(fixture).read_text())
    payload.update(id=999_999_999_999_999, token="@@TOKEN@@", cart_token="@@CART@@")  # noqa: S106 (placeholders)
    body = json.dumps(payload, separators=(",", ":")).encode()
    # Split once around the three varying values; each request is then a join and an HMAC.
    a, rest = body.split(b"999999999999999", 1)
    b, rest = rest.split(b"@@TOKEN@@", 1)
    c, d = rest.split(b"@@CART@@", 1)
    key = secret.encode()
    triggered = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime()).encode()
    head = (
        (
            f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            "User-Agent: Shopify-Captain-Hook\r\nAccept: */*\r\n"
            f"Content-Type: application/json\r\nX-Shopify-Topic: {TOPIC}\r\nX-Shopify-Shop-Domain: {shop}\r\n"
            f"X-Shopify-API-Version: 2026-10\r\n"
        ).encode()
        + b"X-Shopify-Triggered-At: "
        + triggered
        + b"\r\n"
    )
    base_id = 40_000_000_000_000 + stream * 1_000_000_000

    def make(i: int) -> bytes:
        token = f"{run_id}{stream:04x}{i:012x}".encode()
        body = b"".join((a, str(base_id + i).encode(), b, token, c, b"bench-" + token, d))
        signature = base64.b64encode(hmac.new(key, body, hashlib.sha256).digest())
        return b"".join(
            (
                head,
                b"X-Shopify-Webhook-Id: ",
                webhook_id(run_id, stream, i).encode(),
                b"\r\nX-Shopify-Event-Id: ",
                webhook_id(run_id, stream + 0x100, i).encode(),
                b"\r\nX-Shopify-Hmac-Sha256: ",
                signature,
                b"\r\nContent-Length: ",
                str(len(body)).encode(),
                b"\r\n\r\n",
                body,
            )
        )

    return make


def webhook_id(run_id: str, stream: int, i: int) -> str:
    return f"{run_id[:8]}-{run_id[8:12]}-{run_id[12:16]}-{stream:04x}-{i:012x}"


# ---------------------------------------------------------------------------------------------- the bench


def run_ingest(
    duration: float = 10.0,
    rate: int = 500,
    connections: int = 32,
    workers: int | None = None,
    port: int = 0,
    *,
    pg_url: str | None = None,
    redis_url: str | None = None,
    warmup: float = 1.0,
    idle_probe: float = 1.0,
    rounds: int = 5,
    generator_procs: int = 1,
    engine: str = "auto",
    timeout: float = 5.0,
) -> dict[str, Any]:
    """Run the ingest benchmark once and return its figures (see ingest_report); stops all it starts."""
    from app.bench import loadgen
    from app.bench.ingest_env import (
        BARE_PATH,
        DEFAULT_PG,
        DEFAULT_REDIS,
        WORKER_CLASS,
        CpuMeter,
        Server,
        dedicated_redis,
        scratch_database,
        stored_delivery_ids,
        wait_relayed,
    )

    pg_url = pg_url or os.environ.get("CARTRESQ_BENCH_PG") or DEFAULT_PG
    redis_url = redis_url or os.environ.get("CARTRESQ_BENCH_REDIS") or DEFAULT_REDIS
    secret = secrets.token_hex(16)
    run_id = secrets.token_hex(8)
    started = time.time()
    tmp = Path(tempfile.mkdtemp(prefix="cartresq-bench-"))
    try:
        with scratch_database(pg_url, SHOP) as database_url, dedicated_redis(redis_url):
            workers = workers or os.cpu_count() or 2  # one per core
            server = Server(
                database_url=database_url,
                redis_url=redis_url,
                secret=secret,
                workers=workers,
                port=port,
                tmp=tmp,
            )
            try:
                server.wait_ready()
                cpu = CpuMeter(server.pids, database_url.rsplit("/", 1)[1])
                idle = cpu.sample()
                time.sleep(idle_probe)  # what the box does without us: another tenant's load skews everything
                # Not our processes (the dispatcher may still be importing): the rest of the box.
                background = cpu.delta(idle, cpu.sample()).get("cpu_other", 0.0)

                def phase(path: str, stream: int, mode: str, seconds: float, **kw: Any) -> dict[str, Any]:
                    args = dict(
                        host="127.0.0.1",
                        port=server.port,
                        path=path,
                        secret=secret,
                        run_id=run_id,
                        stream=stream,
                    )
                    if mode == "closed":  # enough for ~5,000 req/s; past that, requests are built on the fly
                        kw.update(connections=connections, prebuild=int(min(60_000, 5_000 * seconds)))
                    result = loadgen.run_phase(
                        host="127.0.0.1", port=server.port, mode=mode, duration=seconds,
                        factory=f"{Path(__file__).resolve()}:webhook_requests", factory_args=args,
                        timeout=timeout, procs=generator_procs, engine=engine, probe=cpu.sample, **kw,
                    )  # fmt: skip
                    result.update(cpu.delta(*result.pop("probes")))
                    result["path"] = path
                    return result

                acked: dict[int, list[int]] = {}
                if warmup > 0:  # every worker connected to PostgreSQL and Redis, every code path imported
                    phase(BARE_PATH, BARE, "closed", warmup / 2)
                    w = phase(WEBHOOK_PATH, WARMUP, "closed", warmup, record_acked=True)
                    acked[WARMUP] = w.pop("acked")
                # Bare and webhook take turns, `rounds` times: a shared VM's speed drifts by the minute, and
                # each endpoint then gets its share of fast and slow spells (one long phase each did not).
                chunks: dict[str, list[dict[str, Any]]] = {BARE_PATH: [], WEBHOOK_PATH: []}
                for turn in range(rounds):
                    for path, stream in ((BARE_PATH, BARE), (WEBHOOK_PATH, CLOSED)):
                        stream += 16 * turn  # streams 1, 17, 33…; 9, 25, 41…: no id is sent twice
                        hooks = path == WEBHOOK_PATH
                        chunk = phase(
                            path, stream, "closed", duration / rounds, record_acked=hooks, keep_raw=True
                        )
                        if hooks:
                            acked[stream] = chunk["acked"]
                        chunks[path].append(chunk)
                bare, hook = (_merge(chunks[path]) for path in (BARE_PATH, WEBHOOK_PATH))
                fixed = _per_request(
                    phase(WEBHOOK_PATH, OPEN, "open", duration, rate=rate, inflight=256, record_acked=True)
                )
                acked[OPEN] = fixed.pop("acked")
                fixed["inflight"] = 256
                unrelayed, relay_lag = wait_relayed(database_url, SHOP)
                server_log = server.log_tail(10)
            finally:
                server.stop()
            stored = stored_delivery_ids(database_url, SHOP)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    acked_ids = {webhook_id(run_id, stream, i) for stream, indices in acked.items() for i in indices}
    acked_count = sum(len(v) for v in acked.values())
    missing = acked_ids - stored
    return {
        "bench": "ingest",
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "config": {
            "duration_s": duration,
            "rounds": rounds,
            "rate": rate,
            "connections": connections,
            "workers": workers,
            "worker_class": WORKER_CLASS,
            "generator_procs": generator_procs,
            "timeout_s": timeout,
            "cpus": os.cpu_count(),
            "body_bytes": _body_size(),
        },
        "bare": bare,
        "webhook": hook,
        "fixed_rate": fixed,
        "ratio": hook["rps"] / bare["rps"] if bare["rps"] else 0.0,
        "background_cores": background,
        # Throughput ratio expected on a box given wholly to gunicorn, PostgreSQL and Redis (CPU-bound both).
        "cpu_ratio": (
            bare["server_cpu_ms_per_req"]
            / sum(hook[f"{g}_cpu_ms_per_req"] for g in ("server", "postgres", "redis"))
            if hook.get("server_cpu_ms_per_req") and "server_cpu_ms_per_req" in bare
            else 0.0
        ),
        "loss": {
            "acked": acked_count,
            "acked_distinct": len(acked_ids),
            "stored": len(stored),
            "missing": len(missing),
            "missing_sample": sorted(missing)[:5],
            "stored_unacked": len(stored - acked_ids),
            "unrelayed": unrelayed,
            "relay_catch_up_s": relay_lag,
        },
        "server_log_tail": server_log,
    }


def _merge(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """One phase's turns (`run_phase(keep_raw=True)` + CPU deltas) as one result: requests and latencies
    pooled, CPU cores averaged over the time the turns ran."""
    from app.bench import loadgen

    merged = loadgen.summarize_chunks(chunks, mode="closed")
    merged.pop("acked")
    merged["path"] = chunks[0]["path"]
    walls = [c.get("cpu_wall_s", 0.0) for c in chunks]
    if all(walls):
        for key in [k for k in chunks[0] if k.startswith("cpu_") and k != "cpu_wall_s"]:
            merged[key] = sum(c[key] * w for c, w in zip(chunks, walls, strict=True)) / sum(walls)
        merged["cpu_wall_s"] = sum(walls)
    return _per_request(merged)


def _per_request(result: dict[str, Any]) -> dict[str, Any]:
    if "cpu_other" in result:
        result["cpu_unaccounted"] = max(0.0, result["cpu_other"] - result["generator_cpu_share"])
        # CPU ms per answered request: unlike req/s, hardly moved by a busy neighbour.
        for group in ("server", "postgres", "redis"):
            result[f"{group}_cpu_ms_per_req"] = (
                result[f"cpu_{group}"] * result["cpu_wall_s"] * 1000 / max(1, result["ok"])
            )
    return result


def _body_size() -> int:
    make = webhook_requests(
        host="127.0.0.1",
        port=1,
        path=WEBHOOK_PATH,
        secret="x",  # noqa: S106 - only the size is wanted
        run_id="0" * 16,
        stream=0,
    )
    return len(make(0).split(b"\r\n\r\n", 1)[1])
