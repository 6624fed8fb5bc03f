"""The dispatcher loop: turns rows in PostgreSQL into jobs on the broker. Safe to run several at once."""

from __future__ import annotations

import functools
import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError

from app.broker_jobs import pending_ids
from recovery.sending import dispatch
from recovery.intake import deliveries as intake
from recovery.intake import track_inbox
from recovery.consent import purge
from recovery.measure import figures
from recovery.storage.tables import utcnow
from recovery.sending.send import SEND_ACTOR
from recovery.flows import browse, fanout

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
    flows: int = 0

    def __bool__(self) -> bool:
        return any(vars(self).values())


def run_once(runtime: Runtime) -> Pass:
    """One pass. Every step commits on its own; re-enqueueing is harmless because jobs are idempotent."""
    result = Pass()
    now = utcnow()
    with runtime.sessions.begin() as session:
        result.abandoned = len(runtime.abandoner.run(session, now, limit=FULL))
    with runtime.sessions.begin() as session:  # triggered flows: price drops, restocks, fulfilments
        result.flows = fanout.run(session, now, runtime.timing)["planned"]
    with runtime.sessions.begin() as session:  # browse abandonment: product views that came due
        result.flows += browse.run(session, now)["planned"]
    with runtime.sessions.begin() as session:
        result.claimed = len(dispatch.claim_due(session, now, limit=FULL))
    requeue_after = timedelta(seconds=runtime.settings.requeue_after)
    # Lost, not slow: only rows no job in the broker still carries are enqueued again (app/broker_jobs.py).
    sends = functools.partial(pending_ids, runtime.broker, (SEND_ACTOR,))
    deliveries = functools.partial(pending_ids, runtime.broker, (intake.PROCESS_ACTOR, intake.PROCESS_BATCH_ACTOR))
    with runtime.sessions.begin() as session:
        result.requeued = len(dispatch.requeue_lost(session, now, requeue_after, held=sends))
        result.interrupted = dispatch.fail_interrupted(session, now, requeue_after * 2)
        result.deliveries = len(intake.requeue_unprocessed(session, requeue_after, held=deliveries))
    if result.requeued or result.interrupted or result.deliveries:
        log.warning("dispatcher recovered lost work: %s", result)
    if runtime.shopify is not None:
        # Token refresh, reconciliation, expired-code cleanup: time-gated, and run in their own thread.
        runtime.shopify.tick(runtime._threads)
    _woo_reconcile(runtime, now)
    _purge(runtime, now)
    _billing_notices(runtime, now)
    _figures(runtime, now)
    return result


_notices: dict[str, float] = {"next": 0.0}  # this process's billing-notice time gate


def _billing_notices(runtime: Runtime, now: datetime) -> None:
    """Every minute with billing on: email the 80 % / 100 % plan notices the abandoner flagged."""
    if not runtime.settings.billed_platforms or now.timestamp() < _notices["next"]:
        return
    _notices["next"] = now.timestamp() + 60
    from app.billing_mail import send_due_notices

    try:
        send_due_notices(runtime, now)
    except Exception:  # a mail failure never stops the dispatcher
        log.exception("billing notices failed")


_figured: dict[str, float] = {"next": 0.0}  # this process's daily-figures time gate


def _figures(runtime: Runtime, now: datetime) -> None:
    """Every few seconds: recount the days whose figures changed (recovery/measure/figures.py; idempotent)."""
    if now.timestamp() < _figured["next"]:
        return
    _figured["next"] = now.timestamp() + figures.EVERY.total_seconds()
    with runtime.sessions.begin() as session:
        figures.refresh(session)


_purged: dict[str, float] = {"next": 0.0}  # this process's purge time gate


def _purge(runtime: Runtime, now: datetime) -> None:
    """Every few minutes: drop the expired rows unauthenticated requests made (recovery/consent/purge.py)."""
    if now.timestamp() < _purged["next"]:
        return
    _purged["next"] = now.timestamp() + purge.EVERY.total_seconds()
    with runtime.sessions.begin() as session:
        removed = purge.purge_unauthenticated(session, now)
    if any(removed.values()):
        log.info("purged expired unauthenticated rows: %s", removed)


_woo: dict[str, object] = {"next": 0.0, "thread": None}  # this process's WooCommerce time gate and thread


def _woo_reconcile(runtime: Runtime, now: datetime) -> None:
    """At most every 30 s, reconcile due WooCommerce stores in a thread: their HTTP calls may be slow."""
    thread = _woo["thread"]
    if now.timestamp() < float(_woo["next"]) or (isinstance(thread, threading.Thread) and thread.is_alive()):  # type: ignore[arg-type]
        return
    _woo["next"] = now.timestamp() + 30
    from connectors.woocommerce.reconcile import run_due
    from recovery.storage.crypto import Vault

    def work() -> None:
        try:
            run_due(runtime.sessions, runtime.engine, Vault(runtime.settings.encryption_keys), now,
                    every=runtime.settings.woo_reconcile_every, app_url=runtime.settings.app_url,
                    allow_http=runtime.settings.woo_allow_http, hand_off=runtime.hand_off_delivery,
                    allow_private=runtime.settings.allow_private_hosts,
                    web_push=runtime.settings.web_push_configured)
        except Exception:  # one store's failure never stops the dispatcher
            log.exception("woocommerce reconcile pass failed")

    started = threading.Thread(target=work, name="woo-reconcile", daemon=True)
    _woo["thread"] = started
    started.start()
    if thread in runtime._threads:
        runtime._threads.remove(thread)  # finished: keep the list from growing
    runtime._threads.append(started)  # joined by Runtime.close()


#: Deliveries one relay pass takes at most (in jobs of intake.BATCH).
RELAY_LIMIT = 1000


def relay_forever(runtime: Runtime, stop: threading.Event, interval: float = 0.05) -> None:
    """Relay mode (Settings.intake_relay): hand new webhook deliveries to the workers, in batches, at most
    `interval` s after they are stored. A poll with nothing to relay is one index probe."""
    while not stop.is_set():
        try:
            relayed = 0
            if intake.any_new(runtime.engine):
                with runtime.sessions.begin() as session:
                    relayed = len(intake.relay_new(session, limit=RELAY_LIMIT))
        except Exception as exc:  # the relay must outlive any one failure; the sweeper covers the gap
            log.error("intake relay pass failed (%s); retrying", type(exc).__name__)
            stop.wait(1.0)
        if relayed < RELAY_LIMIT:  # a full pass means more are waiting: go on at once
            stop.wait(interval)


def track_relay_forever(runtime: Runtime, stop: threading.Event, interval: float = 0.1) -> None:
    """Track inbox (Settings.track_inbox): apply the beacons /track stored, in batches, at most `interval` s
    after they are stored. Rows stay in the inbox until applied (or dead-lettered): a failed pass loses none."""
    while not stop.is_set():
        taken = 0
        try:
            if track_inbox.any_pending(runtime.engine):
                with runtime.sessions.begin() as session:
                    applied, dead = track_inbox.apply_pending(session, runtime.timing)
                taken = applied + dead
        except Exception as exc:  # the relay must outlive any one failure; the rows wait for the next pass
            log.error("track relay pass failed (%s); retrying", type(exc).__name__)
            stop.wait(1.0)
        if taken < track_inbox.BATCH:  # a full batch means more are waiting: go on at once
            stop.wait(interval)


def run_forever(runtime: Runtime, interval: float = 1.0, stop: threading.Event | None = None) -> None:
    stop = stop or runtime._stop
    if runtime.settings.track_inbox and runtime.engine.dialect.name == "postgresql":
        relay = threading.Thread(target=track_relay_forever, args=(runtime, stop), name="track-relay", daemon=True)
        relay.start()
        runtime._threads.append(relay)
    if runtime.settings.intake_relay:
        relay = threading.Thread(target=relay_forever, args=(runtime, stop), name="intake-relay", daemon=True)
        relay.start()
        runtime._threads.append(relay)
    while not stop.is_set():
        try:
            busy = run_once(runtime)
        except SQLAlchemyError as exc:
            log.error("dispatcher pass failed (%s); retrying", type(exc).__name__)
            busy = Pass()
        stop.wait(pause(busy, interval))


#: A pass that filled its claim or its abandonment batch (500) runs again at once: a backlog drains.
FULL = 500
#: One that found some work runs again this soon. Back to back, each pass claimed a dozen messages at 400
#: due a second, and its fixed work (abandonment, flows, lost jobs) cost the dispatcher 1 ms of CPU a message.
BUSY_PAUSE = 0.25


def pause(busy: Pass, interval: float) -> float:
    """Seconds to wait before the next pass."""
    if busy.claimed >= FULL or busy.abandoned >= FULL:
        return 0.0
    return min(interval, BUSY_PAUSE) if busy.claimed or busy.abandoned else interval


def start_in_thread(runtime: Runtime, interval: float = 1.0) -> threading.Thread:
    thread = threading.Thread(target=run_forever, args=(runtime, interval), name="dispatcher", daemon=True)
    thread.start()
    runtime._threads.append(thread)
    return thread
