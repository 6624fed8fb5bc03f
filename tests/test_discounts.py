"""Discount arms: Thompson sampling on profit finds the profitable arm and beats every fixed arm."""

from __future__ import annotations

import numpy as np

from app.effectiveness import bandit_checks
from recovery.sequence import discounts
from recovery.sequence.discounts import ArmStats


def test_bandit_beats_every_fixed_arm_and_ends_on_the_best_arm() -> None:
    r = bandit_checks(n_stores=60, shoppers=20_000, batch=500, seed=3)
    fixed = r["fixed_regret"]
    assert isinstance(fixed, dict) and r["bandit_regret"] < min(fixed.values())
    assert r["within_2pct_rate"] >= 0.85 and r["best_arm_rate"] >= 0.7


def test_profit_not_conversion_decides() -> None:
    # 15 % off converts most, but gives most of a 40 % margin away: 10 % earns more per shown offer
    stats = {0: ArmStats(10_000, 800, 800 * 60.0), 5: ArmStats(10_000, 1000, 1000 * 60.0),
             10: ArmStats(10_000, 1300, 1300 * 60.0), 15: ArmStats(10_000, 1400, 1400 * 60.0)}  # fmt: skip
    assert discounts.best_arm(stats) == 10
    assert discounts.best_arm(stats, margin=0.9) == 15  # a fat margin affords the deeper discount
    rng = np.random.default_rng(1)
    picks = [discounts.assign(stats, rng, floor=0.1)[0] for _ in range(400)]
    assert picks.count(10) > 300 and {0, 5, 15} <= set(picks)  # the floor keeps every arm measured


def test_assignment_probability_is_recorded() -> None:
    rng = np.random.default_rng(2)
    few = {a: ArmStats(40, 4, 240.0) for a in discounts.DEFAULT_ARMS}
    draws = [discounts.assign(few, rng, floor=0.1) for _ in range(2000)]
    for arm in discounts.DEFAULT_ARMS:  # the recorded probability is how often the arm is drawn
        recorded = [p for a, p in draws if a == arm]
        assert abs(len(recorded) / len(draws) - float(np.mean(recorded))) < 0.04
    certain = {a: ArmStats(50_000, 5000 if a == 5 else 1000, (5000 if a == 5 else 1000) * 60.0) for a in (0, 5, 10, 15)}
    arm, p = discounts.assign(certain, np.random.default_rng(3), floor=0.1)
    assert (arm, round(p, 3)) == (5, 0.925) or (arm != 5 and round(p, 3) == 0.025)


def test_segments() -> None:
    assert discounts.segment(150.0, returning=True) == "high_value"
    assert discounts.segment(40.0, returning=True) == "returning"
    assert discounts.segment(40.0, returning=False) == "new"
