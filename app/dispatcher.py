"""The dispatcher loop: turns rows in PostgreSQL into jobs on the broker. Safe to run several at once."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError

from recovery import intake

if TYPE_CHECKING:
    from app.runtime import Runtime

log = logging.getLogger(__name__)

#: A delivery still unprocessed after this long lost its job (broker down at enqueue, worker killed).
STALE_DELIVERY = timedelta(seconds=60)


def run_once(runtime: Runtime) -> int:
    """One pass; returns how many jobs it enqueued. Re-enqueueing is harmless: jobs are idempotent."""
    with runtime.sessions() as session:
        stale = intake.unprocessed(session, STALE_DELIVERY)
    for delivery_pk in stale:
        runtime.enqueue(intake.PROCESS_ACTOR, [delivery_pk])
    if stale:
        log.info("re-enqueued %d unprocessed deliveries", len(stale))
    return len(stale)


def run_forever(runtime: Runtime, interval: float = 1.0, stop: threading.Event | None = None) -> None:
    stop = stop or runtime._stop
    while not stop.is_set():
        try:
            run_once(runtime)
        except SQLAlchemyError as exc:
            log.error("dispatcher pass failed (%s); retrying", type(exc).__name__)
        stop.wait(interval)


def start_in_thread(runtime: Runtime, interval: float = 1.0) -> threading.Thread:
    thread = threading.Thread(target=run_forever, args=(runtime, interval), name="dispatcher", daemon=True)
    thread.start()
    runtime._threads.append(thread)
    return thread
