"""The dispatcher loop: turns rows in PostgreSQL into jobs on the broker. Safe to run several at once."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError

from recovery import dispatch, intake
from recovery.tables import utcnow

if TYPE_CHECKING:
    from app.runtime import Runtime

log = logging.getLogger(__name__)

@dataclass
class Pass:
    abandoned: int = 0
    claimed: int = 0
    requeued: int = 0
    interrupted: int = 0
    deliveries: int = 0

    def __bool__(self) -> bool:
        return any(vars(self).values())


def run_once(runtime: Runtime) -> Pass:
    """One pass. Every step commits on its own; re-enqueueing is harmless because jobs are idempotent."""
    result = Pass()
    now = utcnow()
    with runtime.sessions.begin() as session:
        result.abandoned = len(runtime.abandoner.run(session, now))
    with runtime.sessions.begin() as session:
        result.claimed = len(dispatch.claim_due(session, now))
    requeue_after = timedelta(seconds=runtime.settings.requeue_after)
    with runtime.sessions.begin() as session:
        result.requeued = len(dispatch.requeue_lost(session, now, requeue_after))
        result.interrupted = dispatch.fail_interrupted(session, now, requeue_after * 2)
        result.deliveries = len(intake.requeue_unprocessed(session, requeue_after))
    if result.requeued or result.interrupted or result.deliveries:
        log.warning("dispatcher recovered lost work: %s", result)
    return result


def run_forever(runtime: Runtime, interval: float = 1.0, stop: threading.Event | None = None) -> None:
    stop = stop or runtime._stop
    while not stop.is_set():
        try:
            busy = run_once(runtime)
        except SQLAlchemyError as exc:
            log.error("dispatcher pass failed (%s); retrying", type(exc).__name__)
            busy = Pass()
        if not busy.claimed and not busy.abandoned:
            stop.wait(interval)


def start_in_thread(runtime: Runtime, interval: float = 1.0) -> threading.Thread:
    thread = threading.Thread(target=run_forever, args=(runtime, interval), name="dispatcher", daemon=True)
    thread.start()
    runtime._threads.append(thread)
    return thread
