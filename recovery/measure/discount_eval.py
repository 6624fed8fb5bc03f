"""Off-policy evaluation of the discount arms from their recorded assignments (issue 21 item 5).

Each assignment recorded by recovery.discount_arms carries the probability its arm had when it was
drawn (migration 0125). Inverse-propensity weighting turns the bandit's uneven traffic into an
unbiased estimate of what each *fixed* arm would earn per shown offer, had every shopper got it:
    value(a) = mean over assignments of 1[arm = a] / p * ordered * order value * (margin - a)
with a normal 95 % interval. Assignments without a recorded probability are left out. numpy only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from recovery.storage import tables as t

Z95 = 1.959963984540054
ORDERED = ("recovered", "completed")


@dataclass(frozen=True)
class ArmValue:
    arm: int
    value: float  # profit per shown offer (store currency), had every shopper got this arm
    low: float
    high: float
    assigned: int  # assignments to this arm that the estimate rests on

    def __str__(self) -> str:
        return f"{self.arm:>3} %: {self.value:8.2f} [{self.low:.2f}, {self.high:.2f}] per shown offer ({self.assigned} assigned)"


def arm_values(
    logged: Sequence[int] | np.ndarray, propensity: Sequence[float] | np.ndarray, ordered: Sequence[bool] | np.ndarray,
    order_value: Sequence[float] | np.ndarray, arms: Sequence[int], margin: float,
) -> list[ArmValue]:  # fmt: skip
    """IPS estimate, with its 95 % interval, of each fixed arm's profit per shown offer."""
    a = np.asarray(logged, dtype=np.float64)
    p = np.asarray(propensity, dtype=np.float64)
    keep = np.isfinite(p) & (p > 0)
    a, p = a[keep], p[keep]
    won = np.asarray(ordered, dtype=np.float64)[keep] * np.asarray(order_value, dtype=np.float64)[keep]
    out = []
    for arm in arms:
        terms = (a == arm) / p * won * (margin - arm / 100.0)
        n = terms.size
        mean = float(terms.mean()) if n else float("nan")
        se = float(terms.std(ddof=1) / np.sqrt(n)) if n > 1 else float("inf")
        out.append(ArmValue(int(arm), mean, mean - Z95 * se, mean + Z95 * se, int((a == arm).sum())))
    return out


def logged_assignments(session: Session, store_id: int) -> dict[str, tuple[list[int], list[float], list[bool], list[float]]]:
    """Per discount experiment (`discount:<segment>`) of a store: arms, propensities, ordered, cart totals."""
    a = t.ExperimentAssignment
    out: dict[str, tuple[list[int], list[float], list[bool], list[float]]] = {}
    rows = session.execute(
        select(a.experiment, a.variant, a.propensity, t.Cart.status, t.Cart.total)
        .join(t.Cart, t.Cart.id == a.cart_id)
        .where(a.store_id == store_id, a.experiment.like("discount:%"), a.propensity.is_not(None))
        .order_by(a.id)
    )
    for experiment, variant, propensity, status, total in rows:
        arms, ps, ordered, values = out.setdefault(experiment, ([], [], [], []))
        arms.append(int(variant))
        ps.append(float(propensity))
        ordered.append(status in ORDERED)
        values.append(float(total))
    return out
