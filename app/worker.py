"""The worker process entry (`dramatiq app.worker:setup`, wrapped by `cartresq worker`); the actors it runs
are declared by app/actors.py on the runtime's broker."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import dramatiq

if TYPE_CHECKING:
    from app.runtime import Runtime

#: Seconds a thread may hold the GIL while another waits for it (CPython's default: 0.005). A send thread is
#: mostly waiting for PostgreSQL or the provider; each answer wakes it, and it then waited up to the whole
#: interval while another thread composed or ran the ORM, several times per message. At 1 ms the lateness
#: bench sent 217-246 messages/s against 96-144/s at 5 ms (2 x 8 threads, same busy VM, runs interleaved).
SWITCH_INTERVAL = 0.001

#: Set by setup() in a dedicated worker process; kept so the process's runtime is not collected.
_process_runtime: Runtime | None = None


def setup() -> None:
    """Called by the dramatiq CLI in each worker process: build this process's runtime and broker."""
    global _process_runtime
    sys.setswitchinterval(SWITCH_INTERVAL)
    from app.runtime import build_runtime
    from recovery.config.settings import Settings

    from app.observability import setup_process

    settings = Settings.from_env()
    setup_process(settings, "worker")
    if not settings.redis_url:
        raise SystemExit("cartresq worker needs REDIS_URL; without it `cartresq serve` runs the worker in-process")
    _process_runtime = build_runtime(settings)
    if settings.worker_metrics:  # queue and actor figures, and ours recorded in this group, on :9191
        from dramatiq.middleware.prometheus import Prometheus

        _process_runtime.broker.add_middleware(Prometheus())
    dramatiq.set_broker(_process_runtime.broker)
