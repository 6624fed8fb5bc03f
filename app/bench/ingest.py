"""The `ingest` benchmark: the Shopify webhook path on gunicorn + PostgreSQL + Redis against a bare 200.

One run, one server: a scratch PostgreSQL database (migrated, one Shopify store), a dedicated Redis db,
`gunicorn -w N -k sync 'app:create_app()'` with `CARTRESQ_BENCH_BARE=1` (which adds `POST /_bench/bare`,
see app/bare.py: same server, workers and Flask stack, it only reads the body and answers 200), and
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
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

# Only the standard library at module level: load generator processes load this file for `webhook_requests`
# without importing the app.
if TYPE_CHECKING:
    from app.bench.loadgen import RequestFactory

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "shopify" / "checkouts_update.json"
SHOP = "velvet-fern.myshopify.com"
TOPIC = "checkouts/update"
WEBHOOK_PATH = "/webhooks/shopify"
BARE_PATH = "/_bench/bare"
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS = "redis://127.0.0.1:6379/14"

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


# ---------------------------------------------------------------------------------------------- services


def _sqlalchemy_url(url: str) -> str:
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


@contextmanager
def scratch_database(admin_url: str) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database with the bench store; dropped afterwards. Yields its URL."""
    import psycopg

    from recovery.schema import upgrade

    name = f"cartresq_bench_{secrets.token_hex(5)}"
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = admin_url.rsplit("/", 1)[0]
    url = _sqlalchemy_url(f"{base}/{name}")
    try:
        upgrade(url)
        _add_store(url)
        yield url
    finally:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _add_store(url: str, domain: str = SHOP) -> None:
    from recovery import tables as t
    from recovery.db import make_engine, make_sessionmaker

    engine = make_engine(url)
    try:
        with make_sessionmaker(engine).begin() as session:
            session.add(
                t.Store(
                    platform="shopify",
                    domain=domain,
                    settings={},
                    timezone="UTC",
                    currency="USD",
                    plan="free",
                )
            )
    finally:
        engine.dispose()


def stored_delivery_ids(url: str, *, unrelayed: bool = False) -> set[str]:
    """Deliveries stored for processing (not as "unknown shop"); `unrelayed`: of those, the ones no job
    was sent for yet."""
    from sqlalchemy import select

    from recovery import tables as t
    from recovery.db import make_engine

    query = select(t.WebhookDelivery.delivery_id).where(
        t.WebhookDelivery.platform == "shopify",
        t.WebhookDelivery.shop == SHOP,
        t.WebhookDelivery.payload.is_not(None),
    )
    if unrelayed:
        query = query.where(t.WebhookDelivery.requeued_at.is_(None))
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return {row[0] for row in conn.execute(query)}
    finally:
        engine.dispose()


def wait_relayed(url: str, timeout: float = 10.0) -> tuple[int, float]:
    """(deliveries still without a job after `timeout` s, seconds it took the relay to catch up)."""
    started = time.monotonic()
    while (left := len(stored_delivery_ids(url, unrelayed=True))) and time.monotonic() - started < timeout:
        time.sleep(0.05)
    return left, time.monotonic() - started


@contextmanager
def dedicated_redis(url: str) -> Iterator[str]:
    """The bench's own Redis db, flushed before and after (only that db)."""
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=3)
    try:
        client.flushdb()
        yield url
    finally:
        try:
            client.flushdb()
        finally:
            client.close()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class Server:
    """gunicorn running the real app, and beside it the dispatcher, whose relay hands the stored deliveries
    to the workers (Settings.intake_relay: on with PostgreSQL + Redis); its CPU counts as the server's.
    Always stopped, both (gunicorn's master and workers too), by `stop()`."""

    def __init__(self, *, database_url: str, redis_url: str, secret: str, workers: int, port: int, tmp: Path):
        from cryptography.fernet import Fernet

        self.port = port or free_port()
        self.log_path = tmp / "gunicorn.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CARTRESQ_", "SHOPIFY_"))}
        env.update(
            DATABASE_URL=database_url,
            REDIS_URL=redis_url,
            SHOPIFY_API_SECRET=secret,
            SECRET_KEY=secrets.token_urlsafe(32),
            CARTRESQ_ENCRYPTION_KEY=Fernet.generate_key().decode(),
            CARTRESQ_VAR_DIR=str(tmp / "var"),
            CARTRESQ_BENCH_BARE="1",
            PYTHONUNBUFFERED="1",
        )
        cmd = [
            sys.executable, "-m", "gunicorn",
            "-w", str(workers), "-k", "sync", "-b", f"127.0.0.1:{self.port}",
            "--graceful-timeout", "5", "--log-level", "warning",
            "app:create_app()",
        ]  # fmt: skip
        self._log = open(self.log_path, "wb")  # noqa: SIM115 (closed in stop())
        # Own session: on a hung shutdown the whole group (master + its workers) can be killed, nothing else.
        self.proc = subprocess.Popen(  # noqa: S603 - fixed argv, our own interpreter
            cmd, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.dispatcher = subprocess.Popen(  # noqa: S603 - fixed argv, our own interpreter
            [sys.executable, "-m", "app.cli", "dispatcher"],
            cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip

    @property
    def pids(self) -> tuple[int, int]:
        return self.proc.pid, self.dispatcher.pid

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if _request("GET", self.port, "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        else:
            raise TimeoutError(f"gunicorn did not become healthy within {timeout:.0f}s:\n{self.log_tail()}")
        status = _request("POST", self.port, BARE_PATH, b"{}")[0]
        if status != 200:
            raise RuntimeError(
                f"POST {BARE_PATH} answered {status}: the bare blueprint is not registered. "
                "create_app() needs\n"
                "    from app import bare\n    bare.register(app)\n"
                "(app/bare.py registers it only when CARTRESQ_BENCH_BARE=1)"
            )

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        try:
            for proc in (self.proc, self.dispatcher):
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)  # gunicorn: graceful stop of master and workers
                    try:
                        proc.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        os.killpg(proc.pid, signal.SIGKILL)  # our own session only
                        proc.wait(timeout=10)
        finally:
            self._log.close()


def _request(method: str, port: int, path: str, body: bytes = b"") -> tuple[int, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    data = b"".join(chunks)
    return int(data.split(b" ", 2)[1]), data.split(b"\r\n\r\n", 1)[-1]


class CpuMeter:
    """Where the machine's CPU went between two samples, in cores (Linux /proc; empty elsewhere).

    `server` is gunicorn (master and workers) and the dispatcher; `postgres` the backends of the bench
    database plus the server's own processes (WAL writer, checkpointer...); `redis` the Redis server (shared: other clients'
    work lands there too); `other` is the rest of the machine's busy time: the load generator, the kernel,
    other databases' backends, and anything else running on the box.
    """

    GROUPS = ("server", "postgres", "redis")

    def __init__(self, server_pids: tuple[int, ...], database: str = ""):
        self.server_pids = set(server_pids)
        self.database = database
        self.tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def _postgres_is_ours(self, pid: str) -> bool:
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            return False
        if self.database and f" {self.database} " in title:
            return True
        return "(" not in title  # no client host(port): an auxiliary process, not another database's backend

    def sample(self) -> tuple[float, float, dict[int, tuple[str, int]]] | None:
        """(time, machine busy seconds, {pid: (group, cpu ticks)}) or None without /proc."""
        try:
            fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
            values = [int(x) for x in fields]
            busy = (sum(values[:8]) - values[3] - values[4]) / self.tick
            procs: dict[int, tuple[str, int]] = {}
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit():
                    continue
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue  # gone meanwhile
                name = stat[stat.find("(") + 1 : stat.rfind(")")]
                rest = stat[stat.rfind(")") + 2 :].split()
                pid, ppid = int(entry.name), int(rest[1])
                if pid in self.server_pids or ppid in self.server_pids:
                    group = "server"
                elif name == "postgres" and self._postgres_is_ours(entry.name):
                    group = "postgres"
                elif name.startswith("redis-server"):
                    group = "redis"
                else:
                    continue
                procs[pid] = (group, int(rest[11]) + int(rest[12]))
            return time.monotonic(), busy, procs
        except (OSError, ValueError, IndexError):
            return None

    def delta(
        self,
        a: tuple[float, float, dict[int, tuple[str, int]]] | None,
        b: tuple[float, float, dict[int, tuple[str, int]]] | None,
    ) -> dict[str, float]:
        """Cores used between samples a and b, per group (processes that exited meanwhile are not counted)."""
        if a is None or b is None or b[0] <= a[0]:
            return {}
        wall = b[0] - a[0]
        cores = dict.fromkeys(self.GROUPS, 0.0)
        for pid, (group, ticks) in b[2].items():
            before = a[2].get(pid)
            cores[group] += (ticks - (before[1] if before and before[0] == group else 0)) / self.tick / wall
        busy = (b[1] - a[1]) / wall
        return {"cpu_" + k: v for k, v in cores.items()} | {
            "cpu_busy": busy,
            "cpu_other": max(0.0, busy - sum(cores.values())),
            "cpu_wall_s": wall,
        }


# ---------------------------------------------------------------------------------------------- the bench


def run_ingest(
    duration: float = 10.0,
    rate: int = 500,
    connections: int = 32,
    workers: int = 5,
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
    """Run the ingest benchmark once and return its figures (see `format_ingest`); stops all it starts."""
    from app.bench import loadgen

    pg_url = pg_url or os.environ.get("CARTRESQ_BENCH_PG") or DEFAULT_PG
    redis_url = redis_url or os.environ.get("CARTRESQ_BENCH_REDIS") or DEFAULT_REDIS
    secret = secrets.token_hex(16)
    run_id = secrets.token_hex(8)
    started = time.time()
    tmp = Path(tempfile.mkdtemp(prefix="cartresq-bench-"))
    try:
        with scratch_database(pg_url) as database_url, dedicated_redis(redis_url):
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
                unrelayed, relay_lag = wait_relayed(database_url)
                server_log = server.log_tail(10)
            finally:
                server.stop()
            stored = stored_delivery_ids(database_url)
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
            "worker_class": "sync",
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


def verdicts(d: dict[str, Any]) -> list[tuple[str, bool, str]]:
    """(target, passed, measured) for each target of issue 3."""
    fixed, loss = d["fixed_rate"], d["loss"]
    errors = d["bare"]["errors"] + d["webhook"]["errors"] + fixed["errors"]
    at_rate = d["config"]["rate"] >= TARGET_RATE
    return [
        (f"webhook/bare throughput ≥ {TARGET_RATIO:.2f}", d["ratio"] >= TARGET_RATIO, f"{d['ratio']:.2f}"),
        (
            f"p99 ≤ {TARGET_P99_MS:.0f} ms at {TARGET_RATE}/s"
            + ("" if at_rate else f" (run at {d['config']['rate']}/s)"),
            fixed["p99_ms"] <= TARGET_P99_MS and at_rate,
            f"{fixed['p99_ms']:.1f} ms",
        ),
        ("zero errors", errors == 0, str(errors)),
        (
            "zero loss (every 2xx stored)",
            loss["missing"] == 0 and loss["acked"] == loss["acked_distinct"],
            f"{loss['missing']} missing of {loss['acked']}",
        ),
        (
            "every stored delivery handed to the workers",
            loss["unrelayed"] == 0,
            f"{loss['unrelayed']} left, relay caught up {loss['relay_catch_up_s']:.2f} s after the load",
        ),
    ]


def passed(d: dict[str, Any]) -> bool:
    return all(ok for _, ok, _ in verdicts(d))


def format_ingest(d: dict[str, Any]) -> str:
    c = d["config"]
    bare, hook, fixed, loss = d["bare"], d["webhook"], d["fixed_rate"], d["loss"]
    lines = [
        f"ingest — gunicorn -w {c['workers']} -k sync, PostgreSQL + Redis, {c['cpus']} CPUs, "
        f"{c['body_bytes']} B checkouts/update bodies, {d['started_at']}",
        "",
        f"max throughput (closed loop, {c['connections']} connections, {c['duration_s']:g} s each, "
        f"bare and webhook taking turns in {c['rounds']} rounds)",
        f"  {'':<27}{'req/s':>8}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}{'errors':>8}",
    ]
    for name, r in (("bare", bare), ("webhook", hook)):
        lines.append(
            f"  {name:<8}{'POST ' + r['path']:<19}{r['rps']:>8.0f}{r['p50_ms']:>9.1f}{r['p90_ms']:>9.1f}"
            f"{r['p99_ms']:>9.1f}{r['max_ms']:>9.1f}{r['errors']:>8}"
        )
    lines += [
        f"  ratio webhook/bare: {d['ratio']:.2f}",
        "",
        f"fixed rate (open loop, {fixed['target_rps']:g}/s for {c['duration_s']:g} s on /webhooks/shopify, "
        "latency from the scheduled send time)",
        f"  {fixed['responses']} of {fixed['scheduled']} answered, {fixed['rps']:.0f}/s; "
        f"p50 {fixed['p50_ms']:.1f} ms, "
        f"p99 {fixed['p99_ms']:.1f} ms, p99.9 {fixed['p999_ms']:.1f} ms, max {fixed['max_ms']:.1f} ms, "
        f"> 1 s: {fixed['over_1s']}, errors {fixed['errors']}",
        f"  of which waiting to be sent (generator loop, or all {fixed['inflight']} connection slots busy): "
        f"p50 {fixed['dispatch_lag_p50_ms']:.2f} ms, p99 {fixed['dispatch_lag_p99_ms']:.2f} ms",
    ]
    if fixed["target_rps"] > hook["rps"]:
        lines.append(
            f"  The offered {fixed['target_rps']:g}/s is above the webhook capacity measured above "
            f"({hook['rps']:.0f}/s): these latencies are queueing, and requests still unanswered "
            f"{c['timeout_s']:g} s after their scheduled time count as timeouts (errors)."
        )
    lines += [
        "",
        f"loss: {loss['acked']} webhooks acknowledged with 2xx (warm-up included), {loss['stored']} stored, "
        f"{loss['missing']} missing"
        + (f" (e.g. {', '.join(loss['missing_sample'])})" if loss["missing"] else ""),
    ]
    kinds: dict[str, int] = {}
    for r in (bare, hook, fixed):
        for k, v in r["error_kinds"].items():
            kinds[k] = kinds.get(k, 0) + v
    if kinds:
        lines.append(f"error kinds: {kinds}")
    lines += ["", "targets (issue 3)"]
    for target, ok, measured in verdicts(d):
        lines.append(f"  {'PASS' if ok else 'FAIL'}  {target:<44} {measured}")
    if "cpu_busy" in bare:
        lines += [
            "",
            f"CPU in cores (of {c['cpus']}) {'':<8}{'server':>9}{'postgres':>9}{'redis':>7}"
            f"{'loadgen':>9}{'other':>7}{'total':>7}",
        ]
        for name, r in (
            ("max throughput, bare", bare),
            ("max throughput, webhook", hook),
            ("fixed rate, webhook", fixed),
        ):
            lines.append(
                f"  {name:<26}{r['cpu_server']:>9.2f}{r['cpu_postgres']:>9.2f}{r['cpu_redis']:>7.2f}"
                f"{r['generator_cpu_share']:>9.2f}{r['cpu_unaccounted']:>7.2f}{r['cpu_busy']:>7.2f}"
            )
        lines.append(
            f"  {'idle box, before the run':<26}{'':>34}{d['background_cores']:>7.2f}"
        )
        lines += [
            "",
            "CPU ms per answered request (robust to a busy neighbour)     server  postgres  redis",
        ]
        for name, r in (("bare", bare), ("webhook, max throughput", hook), ("webhook, fixed rate", fixed)):
            lines.append(
                f"  {name:<57}{r['server_cpu_ms_per_req']:>9.2f}{r['postgres_cpu_ms_per_req']:>10.2f}"
                f"{r['redis_cpu_ms_per_req']:>7.2f}"
            )
        lines.append(
            f"  CPU-cost ratio, bare server / webhook max throughput (server + postgres + redis): "
            f"{d['cpu_ratio']:.2f}, the throughput ratio to expect when nothing else competes for the cores"
        )
        if fixed["errors"]:
            lines.append(
                "  (the fixed-rate row also carries the work done for requests answered after their sender "
                "gave up, so it is high)"
            )
    lines += [
        "",
        f"caveats: the load generator ({bare['generator_engine']} engine, app/bench/loadgen.py, "
        f"{c['generator_procs']} process) shares the {c['cpus']} cores with gunicorn, PostgreSQL and Redis: "
        f"it used {bare['generator_cpu_share']:.2f} cores in the bare phase, which the server could not use.",
    ]
    if bare.get("cpu_busy", 0.0) >= 0.9 * (c["cpus"] or 1):
        lines.append(
            "  The bare phase saturated the machine, so bare req/s measures this box (server + generator), "
            "not "
            "the server alone; a generator on another machine would raise it and lower the ratio."
        )
    noisy = max([d["background_cores"]] + [r.get("cpu_unaccounted", 0.0) for r in (bare, hook, fixed)])
    if noisy > 0.15:
        lines.append(
            f"  Something else used up to {noisy:.2f} cores during the run (column 'other'): figures are low "
            "and "
            "noisy; rerun on a quiet machine."
        )
    if any(r["built_on_the_fly"] for r in (bare, hook, fixed)):
        lines.append(
            "  Some requests were built during the run (past the pre-built count); a small generator cost."
        )
    return "\n".join(lines)
