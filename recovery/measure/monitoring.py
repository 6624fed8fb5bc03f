"""Weekly model monitoring per store: calibration (ECE) and drift (PSI) on the logged send features.

- PSI (population stability index) of each logged feature: the last 7 days against the 28 days
  before them, over the reference's deciles. Above 0.25 is the usual "the population has moved".
- ECE (expected calibration error) of the served model's predictions against "ordered within the
  window", when a model (not the fixed delay) chose the slot and logged its prediction.
numpy only on plain values; `store_report` reads the `send_decisions` log.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from recovery.storage import tables as t

PSI_ALERT = 0.25
ECE_ALERT = 0.05
MIN_ROWS = 50  # fewer sends than this in either window: no verdict
MONITORED = ("hour_of_abandonment", "cart_value", "items_in_cart", "device_type", "previous_purchases", "viewed_checkout")
WEEK, REFERENCE = timedelta(days=7), timedelta(days=28)


def psi(reference: Sequence[float] | np.ndarray, current: Sequence[float] | np.ndarray, bins: int = 10) -> float:
    """Population stability index of `current` against `reference` (quantile bins of the reference)."""
    ref, cur = np.asarray(reference, dtype=np.float64), np.asarray(current, dtype=np.float64)
    if ref.size == 0 or cur.size == 0:
        return 0.0
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1]))
    r = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=edges.size + 1) / ref.size
    c = np.bincount(np.searchsorted(edges, cur, side="right"), minlength=edges.size + 1) / cur.size
    r, c = np.maximum(r, 1e-4), np.maximum(c, 1e-4)
    return float(np.sum((c - r) * np.log(c / r)))


def ece(p: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray, bins: int = 10) -> float:
    """Expected calibration error over equal-count bins of the prediction."""
    p, y = np.asarray(p, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if p.size == 0:
        return 0.0
    order = np.argsort(p)
    return float(sum(abs(p[c].mean() - y[c].mean()) * c.size for c in np.array_split(order, min(bins, p.size))) / p.size)


@dataclass
class Report:
    psi: dict[str, float] = field(default_factory=dict)
    ece: float | None = None
    rows: tuple[int, int] = (0, 0)  # (reference, current) sends

    @property
    def warnings(self) -> list[str]:
        out = [f"{name} has drifted (PSI {value:.2f})" for name, value in sorted(self.psi.items()) if value > PSI_ALERT]
        if self.ece is not None and self.ece > ECE_ALERT:
            out.append(f"send-time model is miscalibrated (ECE {self.ece:.3f})")
        return out


def store_report(session: Session, store_id: int, now: datetime, labels: dict[int, bool] | None = None) -> Report:
    """PSI of the last week's logged features against the four weeks before; ECE where labelled."""
    rows = session.execute(
        select(t.SendDecision.cart_id, t.SendDecision.features, t.SendDecision.decided_at).where(
            t.SendDecision.store_id == store_id, t.SendDecision.decided_at > now - WEEK - REFERENCE,
            t.SendDecision.decided_at <= now,
        )
    ).all()  # fmt: skip
    current = [r for r in rows if r.decided_at > now - WEEK]
    reference = [r for r in rows if r.decided_at <= now - WEEK]
    report = Report(rows=(len(reference), len(current)))
    if len(current) >= MIN_ROWS and len(reference) >= MIN_ROWS:
        for name in MONITORED:
            ref = [float(r.features[name]) for r in reference if r.features.get(name) is not None]
            cur = [float(r.features[name]) for r in current if r.features.get(name) is not None]
            if len(ref) >= MIN_ROWS and len(cur) >= MIN_ROWS:
                report.psi[name] = psi(ref, cur)
    if labels:
        scored = [(float(r.features["predicted"]), labels[r.cart_id]) for r in rows
                  if r.features.get("predicted") is not None and r.cart_id in labels]  # fmt: skip
        if len(scored) >= MIN_ROWS:
            report.ece = ece([p for p, _ in scored], [float(y) for _, y in scored])
    return report
