"""Send jobs: re-check a batch of due messages, then send each one, marked before the provider is called."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy import bindparam, select, text, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from recovery.storage import locks
from recovery.measure import metrics
from recovery.sequence import offers
from recovery.flows import related
from recovery.intake import receipts, verify
from recovery.storage import tables as t
from recovery.intake.catalog import known_variants
from recovery.storage.db import DriverStatement
from recovery.sending.channels import Channel, OutboundEmail, OutboundSms, PermanentSendError, TransientSendError
from recovery.sending.checks import Candidate, blocking_reasons
from recovery.messages.compose import Composer
from recovery.sending.policy import Guard, verdicts
from recovery.sending.policy import caps, caps_pg
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
        handed = _Unmarked()
        with _connection_for_batch(sessions.kw["bind"]) as bind:
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
        guard: Guard | None = None, due_at: datetime | None = None, handed: _Unmarked | None = None,
    ) -> str:
        """Mark it `sending` (committed), hand it over, and record the outcome. `sent` is committed by the
        next message's `sending` mark, in the same statement (`handed`: the batch's hand-over not yet
        marked), or at once when the batch ends or `handed` is None."""
        alone, handed = handed is None, handed or _Unmarked()
        handed_over = self.clock()
        # The guard: only if nothing (an order, an unsubscribe) cancelled it since the check, and the caps
        # still hold with what other workers sent meanwhile.
        held = _mark_sending(bind, message_id, handed_over, guard, handed)
        if held:
            metrics.message(channel, held)
            return held
        try:
            result = self.channels[channel].send(outbound)
        except PermanentSendError as exc:
            _transition(bind, "failed", message_id=message_id, why=f"provider refused: {exc}"[:500])
            log.warning("message %s: provider refused it", message_id)
            metrics.message(channel, "failed")
            return "failed: provider refused"
        except TransientSendError as exc:
            _transition(bind, "requeued", message_id=message_id, why=f"provider unavailable: {exc}"[:500])
            metrics.message(channel, "requeued")
            raise  # the job's retry policy decides when to try again
        # sent_at is the hand-over to the provider: the shopper cannot act on it any earlier.
        handed.last = Handed(message_id, channel, handed_over, result.provider_message_id[:128], due_at)
        if alone:
            handed.mark(bind)
        return "sent"


@dataclass(frozen=True)
class Handed:
    """A message the provider accepted, not yet marked `sent`."""

    message_id: int
    channel: str
    at: datetime
    provider_id: str
    due_at: datetime | None


class _Unmarked:
    """A batch's last hand-over, not yet marked `sent`. On PostgreSQL the next message's `sending` mark
    marks it in the same statement (caps_pg.SENT_BEFORE): one round trip and one synchronous commit per
    message instead of two. It is marked before that message's provider call, so at most one message per
    thread is `sending` though handed over, as when each was marked at once (a worker killed then leaves
    that one to `fail_interrupted`, never to a second send). Whatever ends the batch marks it too."""

    def __init__(self) -> None:
        self.last: Handed | None = None

    def params(self) -> dict[str, Any] | None:
        h = self.last
        return None if h is None else {"sent_id": h.message_id, "sent_at": h.at, "sent_provider_id": h.provider_id}

    def marked(self) -> None:
        """Its `sent` mark was committed (by a `sending` mark's statement): count it."""
        if self.last is not None:
            _record_sent([self.last])
            self.last = None

    def mark(self, bind: Engine | Connection) -> None:
        """Mark it `sent` now, alone."""
        if self.last is not None:
            _mark_sent(bind, [self.last])
            self.last = None


#: sending → sent in one statement on the batch's autocommit connection (PostgreSQL), committed without
#: waiting for the WAL flush: `set_config(..., true)` is SET LOCAL, so `synchronous_commit = off` holds for
#: this statement's own implicit transaction only (the next statement, a `sending` mark, is synchronous
#: again). Why that is safe: the commit is on the server when this returns, so a worker killed afterwards
#: cannot lose it; only a PostgreSQL crash (or a failover) within about 3 × wal_writer_delay can, and
#: then the row reads `sending` again, which `dispatch.fail_interrupted` fails as "interrupted" and never
#: sends again: the same outcome as a worker killed between the provider call and this mark. The next
#: synchronous commit on the server (this thread's next `sending` mark) flushes the WAL past it anyway.
#: The `sending` mark must stay synchronous: lost in a crash, the row would read `queued` and the
#: message could go out twice. Nothing needs `sent` durable: the caps count `sending` as sent, the
#: shopper's ledger row is written (synchronously) by the `sending` mark, and an order's 2xx waits only
#: until it sees no `sending` row (receipts.wait_for_hand_overs), which an asynchronous commit shows at
#: once; the provider had the message before this mark either way. Saves the fsync wait (~6 ms on this
#: disk, more when other commits queue on it) on every message.
_SENT_MANY = DriverStatement(text("""
WITH async AS MATERIALIZED (SELECT set_config('synchronous_commit', 'off', true))
UPDATE recovery_messages AS m SET status = 'sent', sent_at = v.at, provider_message_id = v.provider_id
FROM unnest(CAST(:ids AS bigint[]), CAST(:ats AS timestamptz[]), CAST(:provider_ids AS text[])) AS v(id, at, provider_id),
    async
WHERE m.id = v.id AND m.status = 'sending'
"""))


def _mark_sent(bind: Engine | Connection, handed: Sequence[Handed]) -> None:
    """sending → sent for the batch's hand-overs, committed at once: one statement on the batch's
    PostgreSQL connection, else one transaction. Until then those rows read `sending`: the caps count them
    as sent already, and a crash before this leaves them to `fail_interrupted`, never to a second send."""
    if not handed:
        return
    if isinstance(bind, Connection):
        _SENT_MANY(bind, ids=[h.message_id for h in handed], ats=[h.at for h in handed],
                   provider_ids=[h.provider_id for h in handed])
    else:
        with bind.begin() as conn:
            conn.execute(_TRANSITIONS["sent"], [
                {"message_id": h.message_id, "at": h.at, "provider_id": h.provider_id} for h in handed])
    _record_sent(handed)


def _record_sent(handed: Sequence[Handed]) -> None:
    for h in handed:
        log.info("message %s sent by %s", h.message_id, h.channel)
        metrics.message(h.channel, "sent")
        if h.due_at is not None:
            metrics.lateness(h.channel, (h.at - h.due_at).total_seconds())


def _compare_and_set(expected: str, **values: Any) -> Any:
    row = t.RecoveryMessage
    return update(row).where(row.id == bindparam("message_id"), row.status == expected).values(**values)


#: The status changes of a send, each a compare-and-set on the row's status. Built once: constructing a
#: statement per message cost more CPU than running it.
_TRANSITIONS = {
    "sending": caps.MARK,
    "sent": _compare_and_set("sending", status="sent", sent_at=bindparam("at"), provider_message_id=bindparam("provider_id")),
    "failed": _compare_and_set("sending", status="failed", reason=bindparam("why")),
    "requeued": _compare_and_set("sending", status="queued", reason=bindparam("why")),
}
#: The same, for the batch's PostgreSQL connection (see DriverStatement).
_ON_DRIVER = {kind: DriverStatement(statement) for kind, statement in _TRANSITIONS.items()}


@contextmanager
def _connection_for_batch(engine: Engine) -> Iterator[Engine | Connection]:
    """PostgreSQL: one connection for all of a batch's status changes, in autocommit. That is one pool
    checkout (and pre-ping) per batch instead of two per message, and each change is one statement,
    durable when it returns, without BEGIN and COMMIT round trips. Elsewhere (SQLite) the engine: its one
    pooled connection is shared by every thread of the process and must not be held across provider calls."""
    if engine.dialect.name != "postgresql":
        yield engine
        return
    with engine.connect() as conn:
        yield conn.execution_options(isolation_level="AUTOCOMMIT")


@contextmanager
def _transaction(bind: Engine | Connection) -> Iterator[Connection]:
    if not isinstance(bind, Connection):
        with bind.begin() as conn:
            yield conn
        return
    bind.execution_options(isolation_level=bind.default_isolation_level)  # a real one, for the rare path
    try:
        with bind.begin():
            yield bind
    finally:
        if not bind.invalidated:  # a lost connection is dropped anyway: keep its error, not this one's
            bind.execution_options(isolation_level="AUTOCOMMIT")


def _mark_sending(
    bind: Engine | Connection, message_id: int, at: datetime, guard: Guard | None,
    handed: _Unmarked | None = None,
) -> str | None:
    """queued → sending, committed before the provider is called; with a guard, together with the cap
    re-check under the shopper's ledger row locks: in one statement on PostgreSQL (caps_pg.py), else in
    one transaction (caps.py). The `handed` message, if any, is marked `sent` first: in the same statement
    on PostgreSQL, else on its own."""
    handed = handed or _Unmarked()
    sent_before = handed.params() if isinstance(bind, Connection) else None
    if guard is None:
        if sent_before is None:
            handed.mark(bind)
            return None if _transition(bind, "sending", message_id=message_id, at=at) else "cancelled meanwhile"
        marked = caps_pg.SENT_AND_MARK(bind, message_id=message_id, at=at, **sent_before).rowcount
        handed.marked()
        return None if marked else "cancelled meanwhile"
    if guard.ledger_ids and isinstance(bind, Connection):  # PostgreSQL in autocommit
        with bind.begin():  # sends no BEGIN nor COMMIT in autocommit; for `settle` on the rare path
            held = caps_pg.mark_at_once(bind, guard, message_id, at, sent_before)
            handed.marked()  # committed by that statement, whatever its verdict
        if held != caps_pg.STALE:
            return held
    handed.mark(bind)
    with _transaction(bind) as conn:
        return caps.mark_sending(conn, guard, message_id, at)


def _transition(bind: Engine | Connection, kind: str, **params: object) -> bool:
    """Apply one status change and commit it at once: on the batch's autocommit connection, else in a
    transaction of its own."""
    if isinstance(bind, Connection):
        return bool(_ON_DRIVER[kind](bind, **params).rowcount)
    with bind.begin() as conn:
        return bool(conn.execute(_TRANSITIONS[kind], params).rowcount)
