"""Send jobs: re-check a batch of due messages, then send each one, marked before the provider is called."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any
from dataclasses import dataclass

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session, sessionmaker

from recovery import tables as t
from recovery.channels import Channel, OutboundEmail, OutboundSms, PermanentSendError, TransientSendError
from recovery.checks import Candidate, blocking_reasons
from recovery.compose import Composer
from recovery.tables import utcnow

log = logging.getLogger(__name__)

SEND_ACTOR = "send_messages"


@dataclass(frozen=True)
class Sender:
    channels: Mapping[str, Channel]
    composer: Composer

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
        ready, outcomes = self._check(sessions, message_ids)
        for message_id, channel, outbound in ready:
            outcomes[message_id] = self._deliver(sessions, message_id, channel, outbound)
        return outcomes

    def _check(
        self, sessions: sessionmaker[Session], message_ids: Sequence[int]
    ) -> tuple[list[tuple[int, str, OutboundEmail | OutboundSms]], dict[int, str]]:
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
            for candidate in batch:
                message = candidate.message
                if message.id in reasons:
                    message.status, message.reason = "cancelled", reasons[message.id]
                    outcomes[message.id] = f"cancelled: {message.reason}"
                    continue
                try:
                    outbound = self.composer.compose(candidate.store, candidate.cart, message)
                except ValueError as exc:  # e.g. an address the email package refuses, a URL too long
                    message.status, message.reason = "failed", f"cannot compose: {exc}"[:500]
                    outcomes[message.id] = f"failed: {message.reason}"
                    continue
                ready.append((message.id, message.channel, outbound))
        return ready, outcomes

    def _deliver(
        self, sessions: sessionmaker[Session], message_id: int, channel: str, outbound: OutboundEmail | OutboundSms
    ) -> str:
        handed_over = utcnow()
        # The guard: only if nothing (an order, an unsubscribe) cancelled it since the check.
        if not _transition(sessions, "sending", message_id=message_id, at=handed_over):
            return "cancelled meanwhile"
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


def _transition(sessions: sessionmaker[Session], kind: str, **params: object) -> bool:
    """Apply one status change and commit it at once (Core: this is the hot path)."""
    with sessions.kw["bind"].begin() as conn:
        return bool(conn.execute(_TRANSITIONS[kind], params).rowcount)
