"""What every flow does when it fires: the once-per-period unique key, its own holdout, the message row.

In batches with a fixed number of statements per batch (a price drop may reach 10,000 carts at once).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from functools import cache

from sqlalchemy import bindparam, insert, select
from sqlalchemy.orm import Session

from recovery.sequence import holdout
from recovery.storage import tables as t
from recovery.storage.db import insert_for
from recovery.flows import FLOW_STEP_BASE, ONCE_PER
from recovery.config.store_settings import effective

#: Rows per statement: well under SQLite's and PostgreSQL's bound-parameter limits.
CHUNK = 1000


@dataclass(frozen=True)
class Firing:
    """One shopper to reach about one subject, through this cart's message."""

    cart: t.Cart
    subject: str
    channel: str
    template: str
    due_at: datetime
    data: dict[str, Any] = field(default_factory=dict)


def flow_unit(salt: str, flow: str, cart: t.Cart) -> str:
    """The flow's holdout unit: the shopper (as the cart holdout keys it) under a per-flow salt, so each
    flow's groups are drawn independently of the cart sequence's and of each other's."""
    return holdout.unit(f"{salt}:{flow}", holdout.shopper_key(cart))


def cart_holdout(session: Session, cart_ids: Sequence[int]) -> set[int]:
    """Carts in the abandoned-cart sequence's holdout: a flow never messages them, or the sequence's own
    lift would count the flow's effect."""
    found: set[int] = set()
    for start in range(0, len(cart_ids), CHUNK):
        found.update(session.scalars(
            select(t.ExperimentAssignment.cart_id).where(
                t.ExperimentAssignment.cart_id.in_(cart_ids[start:start + CHUNK]),
                t.ExperimentAssignment.experiment == holdout.HOLDOUT,
                t.ExperimentAssignment.variant == holdout.HOLDOUT,
            )
        ))  # fmt: skip
    return found


def fire(session: Session, store: t.Store, flow: str, firings: Sequence[Firing], now: datetime) -> Counter[str]:
    """Fire the flow for these shoppers; what happened to each, counted: `planned` (a message row),
    `holdout` (recorded, no message), `already` (its unique key fired within ONCE_PER)."""
    outcome: Counter[str] = Counter()
    if not firings:
        return outcome
    salt = holdout.store_salt(session, store, None)  # type: ignore[arg-type]
    percent = effective(store.settings or {})["holdout_percent"]
    held = cart_holdout(session, [f.cart.id for f in firings])
    chosen: dict[tuple[str, str], tuple[str, Firing]] = {}
    for firing in firings:
        if firing.cart.id in held:
            outcome["cart_holdout"] += 1
            continue
        unit = flow_unit(salt, flow, firing.cart)
        chosen.setdefault((unit, firing.subject), (unit, firing))  # one per shopper and subject
    keys = list(chosen)
    fired = set()
    for start in range(0, len(keys), CHUNK):
        fired |= _claim(session, store.id, flow, keys[start:start + CHUNK], now)
    outcome["already"] += len(keys) - len(fired)
    events, pending = [], []
    for key in keys:
        if key not in fired:
            continue
        unit, firing = chosen[key]
        variant = holdout.variant(unit, percent)
        events.append({"store_id": store.id, "flow": flow, "cart_id": firing.cart.id, "shopper": unit,
                       "subject": firing.subject, "variant": variant, "fired_at": now})
        pending.append((variant, firing))
    messages = []
    for start in range(0, len(events), CHUNK):
        ids = session.connection().execute(
            insert(t.FlowEvent.__table__).returning(t.FlowEvent.id, sort_by_parameter_order=True),
            events[start:start + CHUNK],
        ).scalars().all()
        for event_id, (variant, firing) in zip(ids, pending[start:start + CHUNK], strict=True):
            outcome[variant if variant == holdout.HOLDOUT else "planned"] += 1
            if variant == holdout.HOLDOUT:
                continue
            messages.append({
                "store_id": store.id, "cart_id": firing.cart.id, "step": FLOW_STEP_BASE + event_id,
                "channel": firing.channel, "template": firing.template, "due_at": firing.due_at,
                "status": "planned", "attempts": 0, "created_at": max(now, firing.due_at), "flow": flow, "flow_data": firing.data,
            })  # fmt: skip
    for start in range(0, len(messages), CHUNK):
        session.connection().execute(insert(t.RecoveryMessage.__table__), messages[start:start + CHUNK])
    return outcome


@cache
def _claim_statement(dialect: str) -> Any:
    """Built once per dialect (compiling a 1,000-row VALUES per call cost more than running it); run as an
    executemany, which SQLAlchemy sends as multi-row INSERTs ("insertmanyvalues")."""
    table = t.FlowGuard.__table__
    stmt = insert_for(dialect)(table)
    return stmt.on_conflict_do_update(
        index_elements=["store_id", "flow", "shopper", "subject"],
        set_={"fired_at": stmt.excluded.fired_at},
        where=table.c.fired_at <= bindparam("cutoff"),
    ).returning(table.c.shopper, table.c.subject)


def _claim(session: Session, store_id: int, flow: str, keys: Sequence[tuple[str, str]], now: datetime) -> set[tuple[str, str]]:
    """The (shopper, subject) keys that may fire now: new, or last fired more than ONCE_PER ago. An upsert
    whose update applies only to an old key, so two dispatchers never both fire one."""
    if not keys:
        return set()
    conn = session.connection()
    rows = [{"store_id": store_id, "flow": flow, "shopper": unit, "subject": subject, "fired_at": now,
             "cutoff": now - ONCE_PER} for unit, subject in keys]
    return {(r.shopper, r.subject) for r in conn.execute(_claim_statement(conn.dialect.name), rows)}
