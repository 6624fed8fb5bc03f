"""What the ingest benchmark runs against: a scratch PostgreSQL database, a dedicated Redis db, the real
server (gunicorn + the dispatcher) and a CPU meter over /proc. See app/bench/ingest.py for the bench."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BARE_PATH = "/_bench/bare"  # the baseline endpoint (app/web/bare.py)

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS = "redis://127.0.0.1:6379/14"
#: As in production (README): one gevent worker per core, whose receipts share commits (recovery.storage.pggroup).
WORKER_CLASS = "gevent"


def _sqlalchemy_url(url: str) -> str:
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


@contextmanager
def scratch_database(admin_url: str, shop: str) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database with the bench store `shop`; dropped afterwards. Yields its URL."""
    import psycopg

    from recovery.storage.schema import upgrade

    name = f"cartresq_bench_{secrets.token_hex(5)}"
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = admin_url.rsplit("/", 1)[0]
    url = _sqlalchemy_url(f"{base}/{name}")
    try:
        upgrade(url)
        _add_store(url, shop)
        yield url
    finally:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _add_store(url: str, domain: str) -> None:
    from recovery.storage import tables as t
    from recovery.storage.db import make_engine, make_sessionmaker

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


def stored_delivery_ids(url: str, shop: str, *, unrelayed: bool = False) -> set[str]:
    """Deliveries to `shop` stored for processing (not as "unknown shop"); `unrelayed`: of those, the ones
    no job was sent for yet."""
    from sqlalchemy import select

    from recovery.storage import tables as t
    from recovery.storage.db import make_engine

    query = select(t.WebhookDelivery.delivery_id).where(
        t.WebhookDelivery.platform == "shopify",
        t.WebhookDelivery.shop == shop,
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


def wait_relayed(url: str, shop: str, timeout: float = 10.0) -> tuple[int, float]:
    """(deliveries still without a job after `timeout` s, seconds it took the relay to catch up)."""
    started = time.monotonic()
    while (left := len(stored_delivery_ids(url, shop, unrelayed=True))) and time.monotonic() - started < timeout:
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
            "-w", str(workers), "-k", WORKER_CLASS, "-b", f"127.0.0.1:{self.port}",
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
                "    from app.web import bare\n    bare.register(app)\n"
                "(app/web/bare.py registers it only when CARTRESQ_BENCH_BARE=1)"
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
    database plus the server's own processes (WAL writer, checkpointer...); `redis` the Redis server
    (shared: other clients' work lands there too); `other` is the rest of the machine's busy time: the load
    generator, the kernel, other databases' backends, and anything else running on the box.
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
