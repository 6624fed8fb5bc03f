"""Simulated stores' response to a discount, known to the test and hidden from the policy.

Store s converts a shown offer of d % with logit(c0_s) + beta_s * log(1 + d / 5): diminishing
returns, and a store-specific sensitivity beta_s, so the most profitable arm differs by store.
Order value is a store constant; profit per shown offer = conversion x value x (margin - d).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Stores:
    base: np.ndarray  # conversion at 0 %
    beta: np.ndarray  # sensitivity to the discount
    value: np.ndarray  # average order value

    def conversion(self, percent: np.ndarray | float) -> np.ndarray:
        """(stores, arms) or (stores,) conversion for the given discount(s)."""
        d = np.asarray(percent, dtype=np.float64)
        logit = np.log(self.base / (1 - self.base))[:, None] + self.beta[:, None] * np.log1p(np.atleast_1d(d) / 5.0)
        out = 1.0 / (1.0 + np.exp(-logit))
        return out if d.ndim else out[:, 0]

    def profit(self, arms: np.ndarray, margin: float) -> np.ndarray:
        """(stores, arms) true expected profit per shown offer."""
        a = np.asarray(arms, dtype=np.float64)
        return self.conversion(a) * self.value[:, None] * (margin - a / 100.0)


def stores(n: int, seed: int) -> Stores:
    rng = np.random.default_rng([seed, 0xD15C])
    return Stores(
        base=rng.uniform(0.04, 0.15, n), beta=rng.uniform(0.0, 0.9, n), value=rng.uniform(40.0, 140.0, n)
    )
