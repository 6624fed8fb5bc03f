"""Send jobs: re-check a batch of due messages, then send each one, marked before the provider is called."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session, sessionmaker

from recovery import offers
from recovery import tables as t
from recovery.channels import Channel, OutboundEmail, OutboundSms, PermanentSendError, TransientSendError
from recovery.checks import Candidate, blocking_reasons
from recovery.compose import Composer
from recovery.policy import Guard, verdicts
from recovery.policy import caps
from recovery.tables import utcnow
from recovery.timing import Timing

log = logging.getLogger(__name__)

SEND_ACTOR = "send_messages"


@dataclass(frozen=True)
class Sender:
    channels: Mapping[str, Channel]
    composer: Composer
    timing: Timing = field(default_factory=Timing)
    #: The time policy decisions and hand-overs use (tests pass a fixed one).
    clock: Callable[[], datetime] = utcnow

    @property
    def links(self):  # type: ignore[no-untyped-def]
        return self.composer.links

    def send(self, sessions: sessionmaker[Session], message_id: int) -> str:
        return self.send_batch(sessions, [message_id]).get(message_id, "nothing to do")

    def send_batch(self, sessions: sessionmaker[Session], message_ids: Sequence[int]) -> dict[int, str]:
        """Idempotent: only `queued` rows are sent. Each row is marked `sending` on its own, just before its
        provider call, so a crash loses at most the one message in flight, and the dispatcher later marks
        that row failed ("interrupted") instead of sending it again.
        """
        offers.prepare(sessions, self.composer.offers, message_ids)  # platform calls before any row lock
        ready, outcomes = self._check(sessions, message_ids)
        # One provider's outage must not hold up the others: after its first transient error the rest of
        # that channel stays queued (no timeout per message), other channels go on; then the job retries.
        down: dict[str, TransientSendError] = {}
        for message_id, channel, outbound, guard in ready:
            if channel in down:
                continue
            try:
                outcomes[message_id] = self._deliver(sessions, message_id, channel, outbound, guard)
            except TransientSendError as exc:
                down[channel] = exc
        if down:
            raise next(iter(down.values()))
        return outcomes

    def _check(
        self, sessions: sessionmaker[Session], message_ids: Sequence[int]
    ) -> tuple[list[tuple[int, str, OutboundEmail | OutboundSms, Guard | None]], dict[int, str]]:
        outcomes: dict[int, str] = {}
        ready = []
        with sessions.begin() as session:
            messages = session.scalars(
                select(t.RecoveryMessage)
                .where(t.RecoveryMessage.id.in_(message_ids), t.RecoveryMessage.status == "queued")
                .order_by(t.RecoveryMessage.id)
                .with_for_update(skip_locked=True)  # a duplicate job running right now owns those rows
            ).all()
            if not messages:
                return [], outcomes
            # FOR SHARE on the stores: an order being recorded for one (FOR UPDATE) finishes first.
            stores = {
                s.id: s
                for s in session.scalars(
                    select(t.Store).where(t.Store.id.in_({m.store_id for m in messages})).with_for_update(read=True)
                )
            }
            carts = {c.id: c for c in session.scalars(select(t.Cart).where(t.Cart.id.in_({m.cart_id for m in messages})))}
            batch = [Candidate(m, carts[m.cart_id], stores[m.store_id]) for m in messages]
            reasons = blocking_reasons(session, batch)
            # Quiet hours and caps: a message that may not go now is moved, not dropped (recovery/policy).
            timed, guards = verdicts(session, [c for c in batch if c.message.id not in reasons], self.clock(), self.timing)
            for candidate in batch:
                message = candidate.message
                if message.id in reasons:
                    message.status, message.reason = "cancelled", reasons[message.id]
                    outcomes[message.id] = f"cancelled: {message.reason}"
                    continue
                verdict = timed.get(message.id)
                if verdict is not None and verdict.action == "cancel":
                    message.status, message.reason = "cancelled", verdict.reason
                    outcomes[message.id] = f"cancelled: {verdict.reason}"
                    continue
                if verdict is not None:
                    message.status, message.due_at, message.claimed_at = "planned", verdict.at, None
                    message.reason = f"rescheduled: {verdict.reason}"
                    outcomes[message.id] = message.reason
                    continue
                try:
                    outbound = self.composer.compose(candidate.store, candidate.cart, message)
                except ValueError as exc:  # e.g. an address the email package refuses, a URL too long
                    message.status, message.reason = "failed", f"cannot compose: {exc}"[:500]
                    outcomes[message.id] = f"failed: {message.reason}"
                    continue
                ready.append((message.id, message.channel, outbound, guards.get(message.id)))
        return ready, outcomes

    def _deliver(
        self, sessions: sessionmaker[Session], message_id: int, channel: str, outbound: OutboundEmail | OutboundSms,
        guard: Guard | None = None,
    ) -> str:
        handed_over = self.clock()
        # The guard: only if nothing (an order, an unsubscribe) cancelled it since the check, and the caps
        # still hold with what other workers sent meanwhile.
        held = _mark_sending(sessions, message_id, handed_over, guard)
        if held:
            return held
        try:
            result = self.channels[channel].send(outbound)
        except PermanentSendError as exc:
            _transition(sessions, "failed", message_id=message_id, why=f"provider refused: {exc}"[:500])
            log.warning("message %s: provider refused it", message_id)
            return "failed: provider refused"
        except TransientSendError as exc:
            _transition(sessions, "requeued", message_id=message_id, why=f"provider unavailable: {exc}"[:500])
            raise  # the job's retry policy decides when to try again
        # sent_at is the hand-over to the provider: the shopper cannot act on it any earlier.
        _transition(sessions, "sent", message_id=message_id, at=handed_over, provider_id=result.provider_message_id[:128])
        log.info("message %s sent by %s", message_id, channel)
        return "sent"


def _compare_and_set(expected: str, **values: Any) -> Any:
    row = t.RecoveryMessage
    return update(row).where(row.id == bindparam("message_id"), row.status == expected).values(**values)


#: The status changes of a send, each a compare-and-set on the row's status. Built once: constructing a
#: statement per message cost more CPU than running it.
_TRANSITIONS = {
    "sending": _compare_and_set(
        "queued", status="sending", claimed_at=bindparam("at"), attempts=t.RecoveryMessage.attempts + 1
    ),
    "sent": _compare_and_set("sending", status="sent", sent_at=bindparam("at"), provider_message_id=bindparam("provider_id")),
    "failed": _compare_and_set("sending", status="failed", reason=bindparam("why")),
    "requeued": _compare_and_set("sending", status="queued", reason=bindparam("why")),
}


def _mark_sending(sessions: sessionmaker[Session], message_id: int, at: datetime, guard: Guard | None) -> str | None:
    """queued → sending, in one transaction with the cap re-check under the shopper's ledger row locks."""
    with sessions.kw["bind"].begin() as conn:
        if guard is not None:
            blocked = caps.hold(conn, guard, message_id, at)
            if blocked:
                return blocked
        if not conn.execute(_TRANSITIONS["sending"], {"message_id": message_id, "at": at}).rowcount:
            return "cancelled meanwhile"
        if guard is not None:
            caps.record(conn, guard, message_id, at)
    return None


def _transition(sessions: sessionmaker[Session], kind: str, **params: object) -> bool:
    """Apply one status change and commit it at once (Core: this is the hot path)."""
    with sessions.kw["bind"].begin() as conn:
        return bool(conn.execute(_TRANSITIONS[kind], params).rowcount)
