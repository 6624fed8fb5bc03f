"""Real processes for end-to-end tests: web, workers and dispatchers, each started like production."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO

import httpx
from cryptography.fernet import Fernet

from tests.support.shopify import SECRET

ROOT = Path(__file__).resolve().parents[2]
CARTRESQ = [sys.executable, "-m", "app.cli"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Stack:
    """Starts processes in their own process groups so a test can SIGKILL one with all its children."""

    def __init__(self, tmp: Path, database_url: str, redis_url: str | None, time_scale: float) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.outbox = tmp / "outbox"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("CARTRESQ_", "SHOPIFY_"))},
            "DATABASE_URL": database_url,
            "CARTRESQ_VAR_DIR": str(tmp / "var"),
            "CARTRESQ_OUTBOX_DIR": str(self.outbox),
            "CARTRESQ_MODEL_DIR": str(tmp / "no-model"),
            "CARTRESQ_TIME_SCALE": str(time_scale),
            "CARTRESQ_REQUEUE_AFTER": "2",
            "SHOPIFY_API_SECRET": SECRET,
            "SECRET_KEY": "e2e-secret",
            "CARTRESQ_ENCRYPTION_KEY": Fernet.generate_key().decode(),
            "APP_URL": self.url,
            "PYTHONUNBUFFERED": "1",
        }
        if redis_url:
            self.env["REDIS_URL"] = redis_url
        else:
            self.env.pop("REDIS_URL", None)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: list[IO[bytes]] = []

    def start(self, name: str, args: list[str], extra_env: Mapping[str, str] | None = None) -> None:
        log = open(self.tmp / f"{name}.log", "ab")  # noqa: SIM115  (closed in stop())
        self.logs.append(log)
        self.procs[name] = subprocess.Popen(
            args, cwd=ROOT, env={**self.env, **(extra_env or {})}, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def web(self) -> None:
        self.start("web", [sys.executable, "-m", "gunicorn", "-w", "2", "-k", "gevent", "-b", f"127.0.0.1:{self.port}", "app:create_app()"])
        self.wait_healthy()

    def serve(self) -> None:
        """The embedded default: one `cartresq serve` process is the whole product."""
        self.start("serve", [*CARTRESQ, "serve", "--port", str(self.port)])
        self.wait_healthy()

    def worker(self, name: str = "worker") -> None:
        self.start(name, [*CARTRESQ, "worker", "--processes", "1", "--threads", "4"])

    def dispatcher(self, name: str = "dispatcher") -> None:
        self.start(name, [*CARTRESQ, "dispatcher", "--interval", "0.05"])

    def wait_healthy(self) -> None:
        def healthy() -> bool:
            try:
                return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(healthy, 30, f"{self.url}/healthz ({self.log_tail('web') or self.log_tail('serve')})")

    def kill(self, name: str) -> None:
        os.killpg(self.procs[name].pid, signal.SIGKILL)
        self.procs[name].wait(timeout=10)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        for log in self.logs:
            log.close()

    def log_tail(self, name: str) -> str:
        path = self.tmp / f"{name}.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def emails(self) -> list[str]:
        folder = self.outbox / "email"
        return sorted(p.name for p in folder.glob("*.eml")) if folder.exists() else []
