"""Send jobs: re-check a batch of due messages, then send each one, marked before the provider is called."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from recovery.storage import locks
from recovery.measure import metrics
from recovery.sequence import offers
from recovery.flows import related
from recovery.intake import receipts, verify
from recovery.storage import tables as t
from recovery.intake.catalog import known_variants
from recovery.sending.channels import Channel, OutboundEmail, OutboundSms, PermanentSendError, TransientSendError
from recovery.sending.checks import Candidate, blocking_reasons
from recovery.messages.compose import Composer
from recovery.sending.marks import Handed, Unmarked, connection_for_batch, mark_sending, transition
from recovery.sending.policy import Guard, verdicts
from recovery.storage.tables import utcnow
from recovery.sequence.timing import Timing

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
        provider call, and `sent` as soon as the provider took it (on PostgreSQL by the statement that marks the
        next one `sending`, before that one's provider call), so a crash loses at most the one message
        in flight; the dispatcher later marks such a row failed ("interrupted") instead of sending it again:
        never a duplicate. (Marking a whole batch `sent` in one statement was tried: a worker killed mid-batch
        then left up to a batch per thread recorded as failed although it went out.)

        An offer step's discount code is made only for a message that passed every check (consent, policy,
        caps, quiet hours): the first pass leaves it queued, its code is made with no transaction open, and
        a second pass re-checks it and composes it with the code (or as a plain reminder without one).
        """
        verify.prepare(sessions, self.composer.catalog, message_ids)  # platform calls before any row lock
        related.prepare(sessions, self.composer.related, message_ids, self.clock())
        ready, outcomes, wants_code = self._check(sessions, message_ids)
        if wants_code:
            offers.prepare(sessions, self.composer.offers, wants_code)
            more, again, _ = self._check(sessions, wants_code, codes_made=True)
            ready, outcomes = ready + more, {**outcomes, **again}
        if not ready:
            return outcomes
        # One provider's outage must not hold up the others: after its first transient error the rest of
        # that channel stays queued (no timeout per message), other channels go on; then the job retries.
        down: dict[str, TransientSendError] = {}
        handed = Unmarked()
        with connection_for_batch(sessions.kw["bind"]) as bind:
            try:
                for message_id, channel, outbound, guard, due_at in ready:
                    if channel in down:
                        continue
                    try:  # marked `sent` before the next call: what went out is never recorded as failed
                        outcomes[message_id] = self._deliver(bind, message_id, channel, outbound, guard, due_at, handed)
                    except TransientSendError as exc:
                        down[channel] = exc
            except BaseException:
                try:  # what went out before the failure is still marked
                    handed.mark(bind)
                except Exception:  # the connection died with it: fail_interrupted settles that row later
                    log.warning("a send batch failed and its last hand-over could not be marked sent")
                raise
            handed.mark(bind)  # the batch's last hand-over
        if down:
            raise next(iter(down.values()))
        return outcomes

    def _check(
        self, sessions: sessionmaker[Session], message_ids: Sequence[int], codes_made: bool = False
    ) -> tuple[list[tuple[int, str, OutboundEmail | OutboundSms, Guard | None]], dict[int, str], list[int]]:
        outcomes: dict[int, str] = {}
        ready = []
        wants_code: list[int] = []
        with sessions.begin() as session:
            # Lock order (recovery/storage/locks.py): the stores FOR SHARE first, so an order being applied for one
            # (FOR NO KEY UPDATE) finishes first, and no message is held while waiting for it; then messages.
            # One statement: the stores of the batch's messages (a subquery, not a round trip of its own).
            store_ids = select(t.RecoveryMessage.store_id).where(t.RecoveryMessage.id.in_(message_ids))
            stores = {
                s.id: s
                for s in session.scalars(
                    select(t.Store).where(t.Store.id.in_(store_ids.scalar_subquery())).order_by(t.Store.id)
                    .with_for_update(**locks.STORE_SHARED)
                )
            }
            messages = session.scalars(
                select(t.RecoveryMessage)
                .where(t.RecoveryMessage.id.in_(message_ids), t.RecoveryMessage.status == "queued")
                .order_by(t.RecoveryMessage.id)
                .with_for_update(skip_locked=True)  # a duplicate job running right now owns those rows
            ).all()
            if not messages:
                return [], outcomes, wants_code
            carts = {c.id: c for c in session.scalars(select(t.Cart).where(t.Cart.id.in_({m.cart_id for m in messages})))}
            batch = [Candidate(m, carts[m.cart_id], stores[m.store_id]) for m in messages]
            known = known_variants(session, list(carts.values()))  # for the stock check and every message
            reasons = blocking_reasons(session, batch, known)
            # Orders acknowledged but not applied yet (recovery/intake/receipts.py): a failed one cancels, a pending
            # one holds; `mark_sending` asks again in the statement that hands the message over.
            hold_until = self.clock() + self.timing.span(receipts.HOLD.total_seconds())
            unapplied = receipts.unapplied_orders(session, [c.cart for c in batch if c.message.id not in reasons])
            for candidate in batch:
                state = unapplied.get(candidate.cart.id)
                if state == "failed" and candidate.message.id not in reasons:
                    reasons[candidate.message.id] = "shopper ordered (order receipt not applied)"
            # Quiet hours and caps: a message that may not go now is moved, not dropped (recovery/sending/policy).
            timed, guards = verdicts(session, [c for c in batch if c.message.id not in reasons], self.clock(), self.timing)
            for candidate in batch:
                message = candidate.message
                if message.id in reasons:
                    message.status, message.reason = "cancelled", reasons[message.id]
                    outcomes[message.id] = f"cancelled: {message.reason}"
                    continue
                verdict = timed.get(message.id)
                if unapplied.get(candidate.cart.id) == "pending":
                    message.status, message.due_at, message.claimed_at = "planned", hold_until, None
                    message.reason = "rescheduled: order_receipt_pending"
                    outcomes[message.id] = message.reason
                    continue
                if verdict is not None and verdict.action == "cancel":
                    message.status, message.reason = "cancelled", verdict.reason
                    outcomes[message.id] = f"cancelled: {verdict.reason}"
                    continue
                if verdict is not None:
                    message.status, message.due_at, message.claimed_at = "planned", verdict.at, None
                    message.reason = f"rescheduled: {verdict.reason}"
                    outcomes[message.id] = message.reason
                    continue
                composer = self.composer
                if offers.needs_code(session, composer.offers, candidate.store, message):
                    if not codes_made:  # it will be sent: make its code after this transaction, then re-check
                        wants_code.append(message.id)
                        continue
                    composer = replace(composer, offers=None)  # no code could be made: a plain reminder
                try:
                    outbound = composer.compose(candidate.store, candidate.cart, message, known)
                except ValueError as exc:  # e.g. an address the email package refuses, a URL too long
                    message.status, message.reason = "failed", f"cannot compose: {exc}"[:500]
                    outcomes[message.id] = f"failed: {message.reason}"
                    continue
                guard = guards.get(message.id)
                if guard is not None:
                    guard = replace(guard, receipt=receipts.keys_for(candidate.cart, hold_until))
                ready.append((message.id, message.channel, outbound, guard, message.due_at))
        for candidate in batch:  # what the check decided (the rest is counted at the hand-over)
            if candidate.message.id in outcomes:
                metrics.message(candidate.message.channel, outcomes[candidate.message.id])
        return ready, outcomes, wants_code

    def _deliver(
        self, bind: Engine | Connection, message_id: int, channel: str, outbound: OutboundEmail | OutboundSms,
        guard: Guard | None = None, due_at: datetime | None = None, handed: Unmarked | None = None,
    ) -> str:
        """Mark it `sending` (committed), hand it over, and record the outcome. `sent` is committed by the
        next message's `sending` mark, in the same statement (`handed`: the batch's hand-over not yet
        marked), or at once when the batch ends or `handed` is None."""
        alone, handed = handed is None, handed or Unmarked()
        handed_over = self.clock()
        # The guard: only if nothing (an order, an unsubscribe) cancelled it since the check, and the caps
        # still hold with what other workers sent meanwhile.
        held = mark_sending(bind, message_id, handed_over, guard, handed)
        if held:
            metrics.message(channel, held)
            return held
        try:
            result = self.channels[channel].send(outbound)
        except PermanentSendError as exc:
            transition(bind, "failed", message_id=message_id, why=f"provider refused: {exc}"[:500])
            log.warning("message %s: provider refused it", message_id)
            metrics.message(channel, "failed")
            return "failed: provider refused"
        except TransientSendError as exc:
            transition(bind, "requeued", message_id=message_id, why=f"provider unavailable: {exc}"[:500])
            metrics.message(channel, "requeued")
            raise  # the job's retry policy decides when to try again
        # sent_at is the hand-over to the provider: the shopper cannot act on it any earlier.
        handed.last = Handed(message_id, channel, handed_over, result.provider_message_id[:128], due_at)
        if alone:
            handed.mark(bind)
        return "sent"
