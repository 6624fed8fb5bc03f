"""Training on logged real outcomes, with partial pooling across stores, and off-policy evaluation
of a saved model against the fixed delay on those logs. Inputs are plain values (no database here).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ml import ope
from ml.design import cart_columns, cart_design, design
from ml.inference import SendTimeScorer
from ml.train import fit_rows, save_model

#: A store with fewer logged sends than this leans on the pooled model more than on its own data.
POOL_PRIOR_SENDS = 2000


@dataclass(frozen=True)
class Send:
    """One logged first-step send, as `recovery.measure.send_log.LoggedSend` carries it."""

    store_id: int
    features: Mapping[str, Any]
    candidates: Sequence[float]
    chosen: float
    propensity: float
    ordered: bool


def rows(sends: Sequence[Send]) -> tuple[np.ndarray, np.ndarray]:
    """Model rows at the logged slot, and labels."""
    cols = [cart_columns(s.features) for s in sends]
    stacked = {key: np.asarray([c[key] for c in cols]) for key in cols[0]}
    return design(stacked, np.asarray([s.chosen for s in sends])), np.asarray([s.ordered for s in sends], dtype=np.int8)


def pooling_weights(store_ids: np.ndarray, store: int | None) -> np.ndarray:
    """Sample weights: the store's own sends count 1; all other stores' together count as
    POOL_PRIOR_SENDS sends (the pooled prior). No store: every send counts 1."""
    if store is None:
        return np.ones(len(store_ids))
    own = store_ids == store
    others = int((~own).sum())
    return np.where(own, 1.0, POOL_PRIOR_SENDS / others if others else 0.0)


def train_from_logs(sends: Sequence[Send], out_dir: Path, *, store: int | None = None, seed: int = 7) -> dict[str, Any]:
    """Fit on logged sends (pooled, or for one store with the others as its prior) and save."""
    if len({s.ordered for s in sends}) < 2:
        raise ValueError("need logged sends with and without an order to train")
    X, y = rows(sends)
    ids = np.asarray([s.store_id for s in sends])
    w = pooling_weights(ids, store)
    model, X_test, y_test = fit_rows(X, y, seed, sample_weight=w)
    return save_model(
        model, X_test, y_test, Path(out_dir), n_samples=len(sends), seed=seed,
        # store_sends: serving gives a store its own model only from POOL_PRIOR_SENDS of them (app/sendtime.py)
        source={"source": "logged sends", "store_id": store, "n_samples": len(sends), "seed": seed,
                "store_sends": int((ids == store).sum()) if store is not None else None,
                "note": "real outcomes: ordered within the window after abandonment"},
    )  # fmt: skip


def evaluate_logs(scorer: SendTimeScorer, sends: Sequence[Send], fixed_hours: float = 1.0) -> ope.Verdict:
    """IPS and DR of the saved model's policy vs the fixed delay, on the logged sends."""
    n = len(sends)
    y, logged, p = np.empty(n), np.empty(n), np.empty(n)
    inc, cha, q_log, q_inc, q_cha = (np.empty(n) for _ in range(5))
    for i, s in enumerate(sends):
        offsets = [float(o) for o in s.candidates]
        scores = scorer.predict(cart_design(s.features, offsets)).astype(np.float64)
        home = int(np.argmin(np.abs(np.asarray(offsets) - fixed_hours)))
        pick = offsets.index(scorer.best_offset(s.features, offsets))
        at = int(np.argmin(np.abs(np.asarray(offsets) - s.chosen)))
        y[i], logged[i], p[i] = float(s.ordered), offsets[at], s.propensity
        inc[i], cha[i] = offsets[home], offsets[pick]
        q_log[i], q_inc[i], q_cha[i] = scores[at], scores[home], scores[pick]
    return ope.compare(y, logged, p, incumbent=inc, challenger=cha, q_logged=q_log, q_incumbent=q_inc, q_challenger=q_cha)
