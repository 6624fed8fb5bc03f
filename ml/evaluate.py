"""`cartresq evaluate --simulated`: the send-time policy table on fresh simulator seeds.

For each seed: a model trained on `n_train` simulated sends (uniformly random slots, a different
seed) is judged on `n_carts` fresh abandoned carts against the hidden truth: the expected
purchase rate after the first reminder under fixed 1 h, the best fixed delay (chosen in hindsight
on these very carts), the model's policy, and the oracle (each cart's best slot from the truth).
Then the promotion gate runs as production would: DR/IPS on `n_logged` logged sends with known
propensities; the *served* policy is the model only if the gate promotes it, else fixed 1 h.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.pipeline import Pipeline

from ml import ope
from ml.design import columns_from_raw, design
from ml.features import DEFAULT_OFFSETS, FEATURES
from ml.decide import choose, lower_gains
from ml.sim_truth import abandon_hour_weights, sigmoid, true_logit
from ml.simulator import ShopperModel, prior_history, simulate_outcomes
from ml.train import fit_rows, simulated_design

OFFSETS = np.asarray(DEFAULT_OFFSETS, dtype=np.float64)
_OFFSET_COL = FEATURES.index("send_offset_hours")
_EVAL_STREAM = 0xE7A1
_TRAIN_SEED_BASE, _LOG_SEED_BASE = 10_000, 20_000


def eval_carts(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`n` abandoned carts: raw rows (FEATURES order, offset 0), hidden intents, email history."""
    model = ShopperModel(seed)
    rng = np.random.default_rng([seed, _EVAL_STREAM])
    hours = rng.choice(24, size=n, p=abandon_hour_weights())
    days = rng.integers(7, size=n)
    rows, intents = np.zeros((n, len(FEATURES))), np.empty(n)
    i = filled = 0
    while filled < n:
        shopper = model.shopper(i)
        i += 1
        if shopper.abandons:
            cart = shopper.features(int(hours[filled]), int(days[filled]))
            rows[filled, :-1] = [cart[name] for name in FEATURES[:-1]]
            intents[filled] = shopper.intent
            filled += 1
    return rows, intents, prior_history(rows, seed)


def true_rates(rows: np.ndarray, intents: np.ndarray) -> np.ndarray:
    """(n carts, n offsets) true P(buy after the first reminder) at each candidate slot."""
    out = np.empty((len(rows), OFFSETS.size))
    for j, o in enumerate(OFFSETS):
        x = rows.copy()
        x[:, _OFFSET_COL] = o
        out[:, j] = sigmoid(true_logit(x, intents))
    return out


def model_scores(model: Pipeline, rows: np.ndarray, history: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n, slots) P(buy) and the (n, slots, features) model rows behind them."""
    cols = columns_from_raw(rows, history)
    X = np.stack([design(cols, np.full(len(rows), o)) for o in OFFSETS], axis=1)
    p = model.predict_proba(X.reshape(-1, X.shape[-1]))[:, 1].reshape(X.shape[:2])
    return p, X


def choices(model: Pipeline, p: np.ndarray, X: np.ndarray, default_hours: float = 1.0) -> np.ndarray:
    """What the served scorer's best_offset picks, for many carts at once: slot index per row."""
    home = int(np.argmin(np.abs(OFFSETS - default_hours)))
    return np.asarray(choose(lower_gains(p, X, getattr(model, "cov_", None), home), home))


@dataclass(frozen=True)
class SeedResult:
    seed: int
    fixed_1h: float
    best_fixed: float
    best_fixed_hours: float
    model: float
    oracle: float
    verdict: ope.Verdict
    ece: float

    @property
    def served(self) -> float:
        return self.model if self.verdict.promote else self.fixed_1h

    @property
    def captured(self) -> float:
        gain = self.oracle - self.best_fixed
        return (self.model - self.best_fixed) / gain if gain > 0 else float("nan")


def ece(p: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error over equal-count bins of the prediction."""
    order = np.argsort(p)
    return float(
        sum(abs(p[c].mean() - y[c].mean()) * c.size for c in np.array_split(order, bins)) / p.size
    )


def run_seed(seed: int, n_carts: int = 20_000, n_train: int = 15_000, n_logged: int = 20_000) -> SeedResult:
    X, y = simulated_design(n_train, _TRAIN_SEED_BASE + seed)
    model, X_test, y_test = fit_rows(X, y, seed)
    rows, intents, history = eval_carts(n_carts, seed)
    truth = true_rates(rows, intents)
    idx = np.arange(n_carts)
    picks = choices(model, *model_scores(model, rows, history))
    fixed = truth.mean(axis=0)
    best = int(np.argmax(fixed))
    home = int(np.argmin(np.abs(OFFSETS - 1.0)))
    # The gate: logged sends at uniformly random slots (propensity 1/15), as exploration logs them.
    log_seed = _LOG_SEED_BASE + seed
    raw, outcome = simulate_outcomes(n_logged, log_seed)
    hist = prior_history(raw, log_seed)
    logged = raw[:, _OFFSET_COL].astype(np.float64)
    q, Xq = model_scores(model, raw, hist)
    picked = choices(model, q, Xq)
    target = OFFSETS[picked]
    slot = np.searchsorted(OFFSETS, logged)
    verdict = ope.compare(
        outcome.astype(np.float64), logged, np.full(n_logged, 1.0 / OFFSETS.size),
        incumbent=np.full(n_logged, 1.0), challenger=target,
        q_logged=q[np.arange(n_logged), slot], q_incumbent=q[:, home], q_challenger=q[np.arange(n_logged), picked],
    )  # fmt: skip
    return SeedResult(
        seed=seed, fixed_1h=float(fixed[home]), best_fixed=float(fixed[best]),
        best_fixed_hours=float(OFFSETS[best]), model=float(truth[idx, picks].mean()),
        oracle=float(truth.max(axis=1).mean()), verdict=verdict,
        ece=ece(model.predict_proba(X_test)[:, 1], y_test.astype(np.float64)),
    )  # fmt: skip


def report(results: Sequence[SeedResult]) -> str:
    lines = [
        "| seed | fixed 1 h | best fixed | model policy | served policy | oracle | captured | ECE |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        served = "model" if r.verdict.promote else "fixed 1 h"
        lines.append(
            f"| {r.seed} | {r.fixed_1h:.2%} | {r.best_fixed:.2%} ({r.best_fixed_hours:g} h) | {r.model:.2%} "
            f"| {r.served:.2%} ({served}) | {r.oracle:.2%} | {r.captured:.0%} | {r.ece:.4f} |"
        )
    mean = {k: float(np.mean([getattr(r, k) for r in results])) for k in ("fixed_1h", "best_fixed", "model", "served", "oracle")}
    gain = mean["oracle"] - mean["best_fixed"]
    lines.append(
        f"| mean | {mean['fixed_1h']:.2%} | {mean['best_fixed']:.2%} | {mean['model']:.2%} | {mean['served']:.2%} "
        f"| {mean['oracle']:.2%} | {(mean['model'] - mean['best_fixed']) / gain:.0%} | |"
    )
    for r in results:
        lines.append(f"\nseed {r.seed}: promotion gate on {r.verdict.difference_dr.n} logged sends (propensity 1/15)")
        lines += ["  " + line for line in r.verdict.lines()]
    return "\n".join(lines)
