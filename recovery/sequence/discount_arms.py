"""Which percent off a cart's offer step carries: the store's `offer_percent`, or, when the store
runs discount arms (`offer_arms`), the arm drawn for the shopper by recovery.sequence.discounts.

The draw is recorded once per cart and segment (`experiment_assignments`, experiment
`discount:<segment>`, variant = the percent, unit = the shopper's salted hash, propensity = the
probability the draw had, for off-policy evaluation: recovery.measure.discount_eval), and a shopper who
comes back keeps their arm (and its recorded probability). Statistics come from those records: shown = carts assigned, converted =
carts that ordered, revenue = their totals.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from recovery.sequence import discounts, holdout
from recovery.storage import tables as t
from recovery.storage.db import insert_for
from recovery.storage.tables import utcnow

ORDERED = ("recovered", "completed")
_rng = np.random.default_rng()


def offer_percent(session: Session, store: t.Store, cart: t.Cart, settings: Mapping[str, Any]) -> int:
    arms = [int(a) for a in settings.get("offer_arms") or []]
    if not arms:
        return int(settings["offer_percent"])
    customer = session.get(t.Customer, cart.customer_id) if cart.customer_id else None
    seg = discounts.segment(float(cart.total), returning=bool(customer and customer.orders_count))
    experiment = f"discount:{seg}"
    a = t.ExperimentAssignment
    mine = session.scalar(select(a.variant).where(a.cart_id == cart.id, a.experiment == experiment))
    if mine is not None:
        return int(mine)
    unit = holdout.unit(holdout.store_salt(session, store, _py_rng()), holdout.shopper_key(cart))
    again = session.execute(
        select(a.variant, a.propensity).where(a.store_id == store.id, a.experiment == experiment, a.unit == unit).limit(1)
    ).first()
    if again is not None and int(again[0]) in arms:
        arm, propensity = int(again[0]), again[1]  # the shopper's arm was drawn once, with this probability
    else:
        arm, propensity = discounts.assign(_stats(session, store.id, experiment), _rng, arms=arms,
                                           margin=int(settings["margin_percent"]) / 100, prior_aov=_aov(session, store.id, cart))  # fmt: skip
    row = {"store_id": store.id, "cart_id": cart.id, "experiment": experiment, "variant": str(arm), "unit": unit,
           "assigned_at": utcnow(), "propensity": propensity}  # fmt: skip
    session.execute(insert_for(session.get_bind().dialect.name)(a).values(row).on_conflict_do_nothing())
    return int(session.scalar(select(a.variant).where(a.cart_id == cart.id, a.experiment == experiment)) or arm)


def _stats(session: Session, store_id: int, experiment: str) -> dict[int, discounts.ArmStats]:
    a = t.ExperimentAssignment
    stats: dict[int, discounts.ArmStats] = {}
    for variant, status, total in session.execute(
        select(a.variant, t.Cart.status, t.Cart.total).join(t.Cart, t.Cart.id == a.cart_id)
        .where(a.store_id == store_id, a.experiment == experiment)
    ):  # fmt: skip
        st = stats.setdefault(int(variant), discounts.ArmStats())
        st.shown += 1
        if status in ORDERED:
            st.converted += 1
            st.revenue += float(total)  # a statistic for the bandit, not money
    return stats


def _aov(session: Session, store_id: int, cart: t.Cart) -> float:
    mean = session.scalar(select(func.avg(t.Order.total)).where(t.Order.store_id == store_id, t.Order.cancelled_at.is_(None)))
    return float(mean) if mean else float(cart.total) or 60.0


def _py_rng():  # type: ignore[no-untyped-def]
    import random

    return random.Random()
