"""Dramatiq actors, and the worker process entry (`dramatiq app.worker:setup`, wrapped by `cartresq worker`)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import dramatiq

import connectors
from recovery import intake
from recovery.channels import TransientSendError
from recovery.sending import SEND_ACTOR

if TYPE_CHECKING:
    from app.runtime import Runtime

log = logging.getLogger(__name__)

#: Set by setup() in a dedicated worker process; kept so the process's runtime is not collected.
_process_runtime: Runtime | None = None


def declare_actors(runtime: Runtime) -> None:
    """Declare every actor on this runtime's broker. Actors take ids, re-read state and are idempotent."""

    @dramatiq.actor(
        broker=runtime.broker,
        actor_name=intake.PROCESS_ACTOR,
        queue_name="intake",
        max_retries=8,
        min_backoff=500,
        max_backoff=60_000,
    )
    def process_delivery(delivery_pk: int) -> None:
        with runtime.sessions.begin() as session:
            intake.process_delivery(session, delivery_pk, connectors.normalize, runtime.timing)

    @dramatiq.actor(
        broker=runtime.broker,
        actor_name=SEND_ACTOR,
        queue_name="send",
        # Transient provider errors only: at most 6 attempts, backing off within the hour.
        max_retries=5,
        min_backoff=5_000,
        max_backoff=3_600_000,
        retry_when=lambda retries, exc: isinstance(exc, TransientSendError) and retries < 5,
    )
    def send_messages(message_ids: list[int]) -> None:
        runtime.sender.send_batch(runtime.sessions, message_ids)


def setup() -> None:
    """Called by the dramatiq CLI in each worker process: build this process's runtime and broker."""
    global _process_runtime
    from app.runtime import build_runtime
    from recovery.settings import Settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = Settings.from_env()
    if not settings.redis_url:
        raise SystemExit("cartresq worker needs REDIS_URL; without it `cartresq serve` runs the worker in-process")
    _process_runtime = build_runtime(settings)
    dramatiq.set_broker(_process_runtime.broker)
