"""`cartresq worker` as a supervisor sees it: a real process group on real PostgreSQL and Redis; one child
killed with SIGKILL takes the group down (Dramatiq's design), and the parent then exits non-zero so
systemd (Restart=on-failure) or compose (restart: unless-stopped) starts it again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

DEADLINE = 120.0


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_killed_worker_child_makes_the_worker_command_exit_non_zero(pg_url: str, redis_url: str, tmp_path: Path) -> None:
    cartresq = Path(sys.executable).with_name("cartresq")
    env = {**os.environ, "DATABASE_URL": pg_url, "REDIS_URL": redis_url, "CARTRESQ_VAR_DIR": str(tmp_path)}
    log_path = tmp_path / "worker.log"
    with log_path.open("w") as log_file:
        proc = subprocess.Popen([str(cartresq), "worker", "--processes", "2", "--threads", "1"],
                                env=env, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        found: list[int] = []
        for _ in range(int(DEADLINE / 0.05)):  # paced by waiting on the process itself
            found = children(proc.pid)
            if len(found) == 2:
                break
            try:
                proc.wait(timeout=0.05)
            except subprocess.TimeoutExpired:
                continue
            pytest.fail(f"the worker exited early ({proc.returncode}): {log_path.read_text()[-2000:]}")
        assert len(found) == 2, "the worker group never started its two processes"
        os.kill(found[0], signal.SIGKILL)
        code = proc.wait(timeout=DEADLINE)
        log = log_path.read_text()
        assert code != 0, log[-2000:]
        assert "exited unexpectedly" in log
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
