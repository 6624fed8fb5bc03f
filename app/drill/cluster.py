"""The drill's private instances: a PostgreSQL cluster (initdb + pg_ctl on a free port), a redis-server,
and the production processes (gunicorn with gevent, `cartresq worker`, `cartresq dispatcher`) under a
small supervisor that restarts whatever exits, as systemd or compose would. Nothing shared is touched."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from app.bench.ingest_env import free_port

ROOT = Path(__file__).resolve().parents[2]


def _pg_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for version in ("17", "16", "15", "14"):
        path = Path(f"/usr/lib/postgresql/{version}/bin/{name}")
        if path.exists():
            return str(path)
    raise RuntimeError(f"{name} not found: the drill needs PostgreSQL's server binaries")


def _as_postgres(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as the `postgres` user then."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


class Postgres:
    def __init__(self, base: Path) -> None:
        self.dir, self.port = base / "pg", free_port()
        self.dir.mkdir(parents=True)
        if os.geteuid() == 0:
            uid = pwd.getpwnam("postgres").pw_uid
            os.chown(base, uid, -1)
            os.chown(self.dir, uid, -1)
        self.data = self.dir / "data"
        subprocess.run(_as_postgres([_pg_bin("initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust"]),
                       check=True, capture_output=True)  # fmt: skip
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def ctl(self, *args: str) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        subprocess.run(_as_postgres([_pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "log"), "-w",
                                     "-o", options, *args]), check=True, capture_output=True)  # fmt: skip

    def start(self) -> None:
        self.ctl("start")

    def restart(self, mode: str) -> None:
        self.ctl("restart", "-m", mode)

    def stop(self) -> None:
        try:
            self.ctl("stop", "-m", "immediate")
        except subprocess.CalledProcessError:
            pass


class Redis:
    def __init__(self, base: Path) -> None:
        self.dir, self.port = base / "redis", free_port()
        self.dir.mkdir()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
             "--save", "", "--appendonly", "yes"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        import redis

        client = redis.Redis.from_url(self.url)
        for _ in range(200):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("the drill's redis-server did not start")

    def restart(self) -> None:
        self.stop()
        self.start()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


class Supervisor:
    """Starts each process in its own session and restarts any that exits; counts restarts."""

    def __init__(self, env: dict[str, str], logs: Path, web_port: int) -> None:
        self.env, self.logs = env, logs
        cartresq = str(Path(sys.executable).with_name("cartresq"))
        self.commands: dict[str, list[str]] = {
            "web": [sys.executable, "-m", "gunicorn", "-k", "gevent", "-w", "2", "-b", f"127.0.0.1:{web_port}",
                    "--graceful-timeout", "5", "--log-level", "warning", "app:create_app()"],
            "worker": [cartresq, "worker", "--processes", "2", "--threads", "4"],
            "dispatcher": [cartresq, "dispatcher", "--interval", "0.2"],
        }  # fmt: skip
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.restarts: dict[str, int] = dict.fromkeys(self.commands, 0)

    def start(self, name: str) -> None:
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - the child keeps it
        self.procs[name] = subprocess.Popen(self.commands[name], cwd=ROOT, env=self.env, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        log.close()

    def start_all(self) -> None:
        for name in self.commands:
            self.start(name)

    def tend(self) -> list[str]:
        """Restart what exited (the supervisor's one job); the names restarted."""
        restarted = []
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                self.restarts[name] += 1
                self.start(name)
                restarted.append(name)
        return restarted

    def children(self, name: str) -> list[int]:
        pid = self.procs[name].pid
        try:
            return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        except FileNotFoundError:
            return []

    def kill(self, name: str, child: bool = False) -> int | None:
        """SIGKILL the process (or one of its children): its pid, or None if there was none to kill."""
        pids = self.children(name) if child else [self.procs[name].pid]
        if not pids:
            return None
        os.kill(pids[0], signal.SIGKILL)
        return pids[0]

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def describe(self) -> dict[str, Any]:
        return {"restarts": self.restarts}
