"""A send's status changes, each committed before the next step: queued → sending before the provider is
called, sending → sent (or failed, or queued again) after it answers. recovery/sending/send.py decides what
to send; this module is how each step is recorded so that a crash never sends a message twice."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, text, update
from sqlalchemy.engine import Connection, Engine

from recovery.measure import metrics
from recovery.sending.policy import Guard, caps, caps_pg
from recovery.storage import tables as t
from recovery.storage.db import DriverStatement

log = logging.getLogger("recovery.sending.send")  # the sent lines keep their logger name


@dataclass(frozen=True)
class Handed:
    """A message the provider accepted, not yet marked `sent`."""

    message_id: int
    channel: str
    at: datetime
    provider_id: str
    due_at: datetime | None


class Unmarked:
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
            record_sent([self.last])
            self.last = None

    def mark(self, bind: Engine | Connection) -> None:
        """Mark it `sent` now, alone."""
        if self.last is not None:
            mark_sent(bind, [self.last])
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


def mark_sent(bind: Engine | Connection, handed: Sequence[Handed]) -> None:
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
    record_sent(handed)


def record_sent(handed: Sequence[Handed]) -> None:
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
def connection_for_batch(engine: Engine) -> Iterator[Engine | Connection]:
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
def transaction(bind: Engine | Connection) -> Iterator[Connection]:
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


def mark_sending(
    bind: Engine | Connection, message_id: int, at: datetime, guard: Guard | None,
    handed: Unmarked | None = None,
) -> str | None:
    """queued → sending, committed before the provider is called; with a guard, together with the cap
    re-check under the shopper's ledger row locks: in one statement on PostgreSQL (caps_pg.py), else in
    one transaction (caps.py). The `handed` message, if any, is marked `sent` first: in the same statement
    on PostgreSQL, else on its own."""
    handed = handed or Unmarked()
    sent_before = handed.params() if isinstance(bind, Connection) else None
    if guard is None:
        if sent_before is None:
            handed.mark(bind)
            return None if transition(bind, "sending", message_id=message_id, at=at) else "cancelled meanwhile"
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
    with transaction(bind) as conn:
        return caps.mark_sending(conn, guard, message_id, at)


def transition(bind: Engine | Connection, kind: str, **params: object) -> bool:
    """Apply one status change and commit it at once: on the batch's autocommit connection, else in a
    transaction of its own."""
    if isinstance(bind, Connection):
        return bool(_ON_DRIVER[kind](bind, **params).rowcount)
    with bind.begin() as conn:
        return bool(conn.execute(_TRANSITIONS[kind], params).rowcount)
