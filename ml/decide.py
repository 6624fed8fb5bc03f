"""Which slot to send at: the slot whose gain over the default delay is largest *at its lower
confidence bound*, and the default unless that bound is clearly positive.

With 15,000 logged sends, the shape of the offset curve near its flat peak is uncertain; a model
that trusts its point estimates picks 30 minutes for many carts on some training sets and loses to a
fixed 1 h. Scoring each slot by gain - z * standard error (the coefficient covariance is saved
with the model) keeps the choices the data supports (mostly: landing the send at a good local hour)
and leaves the rest at the default. numpy only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: One-sided 90 % lower bound on a slot's gain in log-odds over the default slot.
Z_PESSIMISM = 1.2816
#: The bound must clear this (log-odds, ~1 % of the odds): near-ties go to the default.
MARGIN = 0.01


def home_slot(offsets: Sequence[float] | np.ndarray, default_hours: float) -> int:
    return int(np.argmin(np.abs(np.asarray(offsets, dtype=np.float64) - default_hours)))


def lower_gains(
    p: np.ndarray, rows: np.ndarray, cov: np.ndarray | None, home: int, z: float = Z_PESSIMISM
) -> np.ndarray:
    """Lower bounds of each slot's log-odds gain over slot `home`. `p`: (..., k) probabilities;
    `rows`: (..., k, features) model rows; `cov`: (features, features) coefficient covariance."""
    q = np.clip(np.asarray(p, dtype=np.float64), 1e-9, 1 - 1e-9)
    logit = np.log(q) - np.log1p(-q)
    gain = logit - logit[..., home : home + 1]
    if cov is None:
        return gain
    d = np.asarray(rows, dtype=np.float64) - np.asarray(rows, dtype=np.float64)[..., home : home + 1, :]
    var = np.einsum("...kf,fg,...kg->...k", d, cov, d)
    return gain - z * np.sqrt(np.maximum(var, 0.0))


def choose(bounds: np.ndarray, home: int) -> np.ndarray | int:
    """Slot index (per cart): the best lower bound if it clears MARGIN, else the default slot."""
    best = np.argmax(bounds, axis=-1)
    top = np.take_along_axis(bounds, np.expand_dims(best, -1), axis=-1)[..., 0]
    picked = np.where(top > MARGIN, best, home)
    return int(picked) if np.ndim(picked) == 0 else picked
