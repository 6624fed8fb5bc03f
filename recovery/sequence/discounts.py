"""Discounts as an experiment: offer arms per store (and segment), Thompson sampling on profit.

Each arm is a percent off (default 0 / 5 / 10 / 15; 0 means a plain reminder). What a shown arm
earns is conversion x order value x (margin - discount), with the merchant's margin (default
40 %): a discount that converts more but gives away the margin loses. Each new shopper gets an arm
by Thompson sampling on that profit (Beta posterior on conversion, order value shrunk toward the
store's average), except a floor share assigned uniformly so every arm keeps being measured. The
probability of the arm drawn is returned for the record. Segments (new / returning / high-value
carts) keep separate statistics. numpy only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

DEFAULT_ARMS: tuple[int, ...] = (0, 5, 10, 15)
DEFAULT_MARGIN = 0.40
#: Share of shoppers assigned uniformly at random, whatever the posterior says.
EXPLORATION_FLOOR = 0.10
#: Order value prior: this many pseudo-orders at the store's average order value.
VALUE_PRIOR_ORDERS = 5.0
HIGH_VALUE = 100.0  # cart value from which a cart is "high-value" (store currency)


@dataclass
class ArmStats:
    shown: int = 0
    converted: int = 0
    revenue: float = 0.0  # sum of order values of the conversions (a statistic, not money)


def segment(cart_value: float, returning: bool, high_value: float = HIGH_VALUE) -> str:
    if cart_value >= high_value:
        return "high_value"
    return "returning" if returning else "new"


def _arrays(stats: Mapping[int, ArmStats], arms: Sequence[int], prior_aov: float) -> tuple[np.ndarray, ...]:
    shown = np.array([stats.get(a, ArmStats()).shown for a in arms], dtype=np.float64)
    conv = np.array([stats.get(a, ArmStats()).converted for a in arms], dtype=np.float64)
    revenue = np.array([stats.get(a, ArmStats()).revenue for a in arms], dtype=np.float64)
    value = (revenue + VALUE_PRIOR_ORDERS * prior_aov) / (conv + VALUE_PRIOR_ORDERS)
    return shown, conv, value


def profit_samples(
    shown: np.ndarray, conv: np.ndarray, value: np.ndarray, arms: Sequence[int], margin: float,
    rng: np.random.Generator, size: int,
) -> np.ndarray:  # fmt: skip
    """(size, arms) posterior draws of profit per shown offer."""
    p = rng.beta(1.0 + conv, 1.0 + shown - conv, size=(size, len(arms)))
    return p * value * (margin - np.asarray(arms, dtype=np.float64) / 100.0)


def assign(
    stats: Mapping[int, ArmStats], rng: np.random.Generator, *, arms: Sequence[int] = DEFAULT_ARMS,
    margin: float = DEFAULT_MARGIN, prior_aov: float = 60.0, floor: float = EXPLORATION_FLOOR,
    draws: int = 400,
) -> tuple[int, float]:  # fmt: skip
    """(arm, its assignment probability) for one new shopper."""
    shown, conv, value = _arrays(stats, arms, prior_aov)
    k = len(arms)
    if rng.random() < floor:
        arm = int(rng.integers(k))
    else:
        arm = int(np.argmax(profit_samples(shown, conv, value, arms, margin, rng, 1)[0]))
    wins = np.bincount(np.argmax(profit_samples(shown, conv, value, arms, margin, rng, draws), axis=1), minlength=k)
    probability = floor / k + (1 - floor) * wins[arm] / draws  # Monte Carlo estimate of P(Thompson picks it)
    return arms[arm], float(probability)


def best_arm(stats: Mapping[int, ArmStats], *, arms: Sequence[int] = DEFAULT_ARMS, margin: float = DEFAULT_MARGIN,
             prior_aov: float = 60.0) -> int:  # fmt: skip
    """The arm with the highest posterior mean profit (what the report recommends)."""
    shown, conv, value = _arrays(stats, arms, prior_aov)
    mean_p = (1.0 + conv) / (2.0 + shown)
    return arms[int(np.argmax(mean_p * value * (margin - np.asarray(arms, dtype=np.float64) / 100.0)))]
