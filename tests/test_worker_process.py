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


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_worker_metrics_serve_dramatiqs_figures_and_ours(pg_url: str, redis_url: str, tmp_path: Path) -> None:
    # CARTRESQ_WORKER_METRICS=on: Dramatiq's Prometheus middleware serves the group's queue/actor figures and
    # the loop's own metrics recorded in its processes (here: a webhook applied by this worker).
    import httpx

    from app import create_app
    from app.bench.ingest_env import free_port
    from app.runtime import build_runtime
    from tests.conftest import add_store, make_settings
    from tests.support import shopify

    rt = build_runtime(make_settings(pg_url, tmp_path, redis_url=redis_url, intake_relay=False))
    add_store(rt)
    port = free_port()
    cartresq = Path(sys.executable).with_name("cartresq")
    env = {**os.environ, "DATABASE_URL": pg_url, "REDIS_URL": redis_url, "CARTRESQ_VAR_DIR": str(tmp_path),
           "SHOPIFY_API_SECRET": rt.settings.shopify_api_secret, "CARTRESQ_WORKER_METRICS": "on",
           "dramatiq_prom_host": "127.0.0.1", "dramatiq_prom_port": str(port),
           "dramatiq_prom_db": str(tmp_path / "prom")}  # fmt: skip
    (tmp_path / "prom").mkdir()
    log_path = tmp_path / "worker.log"
    with log_path.open("w") as log_file:
        proc = subprocess.Popen([str(cartresq), "worker", "--processes", "1", "--threads", "1"],
                                env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        assert shopify.post(create_app(runtime=rt).test_client(), "checkouts_update").status_code == 200
        text = ""
        for _ in range(int(DEADLINE / 0.25)):  # paced by waiting on the process itself
            try:
                text = httpx.get(f"http://127.0.0.1:{port}/", timeout=2).text
            except httpx.HTTPError:
                text = ""
            if 'cartresq_webhook_receipt_to_applied_seconds_count{platform="shopify"} 1.0' in text:
                break
            try:
                proc.wait(timeout=0.25)
            except subprocess.TimeoutExpired:
                continue
            pytest.fail(f"the worker exited ({proc.returncode}): {log_path.read_text()[-2000:]}")
        assert 'cartresq_webhook_receipt_to_applied_seconds_count{platform="shopify"} 1.0' in text, text[-2000:]
        assert "dramatiq_messages_total" in text and "dramatiq_message_duration_milliseconds" in text
    finally:
        rt.close()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # its own session: the group we started
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
