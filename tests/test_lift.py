"""The lift report: intervals that cover the true lift, CUPED that earns its keep, a sequential
test that survives peeking, and labels that say what each figure is."""

from __future__ import annotations

import numpy as np
import pytest

from app.effectiveness import lift_checks
from ml.lift_sim import Population, experiments
from recovery.measure import lift


def test_newcombe_interval_covers_the_true_lift_over_1000_experiments() -> None:
    checks = lift_checks(n_experiments=1000, shoppers=2000, holdout_share=0.5, seed=5)
    assert checks["newcombe_coverage"] >= 0.94
    assert checks["cuped_coverage"] >= 0.93


def test_small_holdouts_keep_their_coverage_where_a_wald_interval_does_not() -> None:
    # ~30 holdout shoppers per experiment, as a small store's first weeks
    y, _, treated, true = experiments(1000, 300, 0.1, seed=7, population=Population(intent_sd=1.0))
    k1, n1, k0, n0 = (y * treated).sum(1), treated.sum(1), (y * ~treated).sum(1), (~treated).sum(1)
    d, low, high = lift.newcombe(k1, n1, k0, n0)
    assert np.mean((low <= true) & (true <= high)) >= 0.94
    p1, p0 = k1 / n1, k0 / n0
    se = np.sqrt(p1 * (1 - p1) / n1 + p0 * (1 - p0) / n0)
    assert np.mean((d - 1.96 * se <= true) & (true <= d + 1.96 * se)) < 0.93  # the naive interval


def test_cuped_cuts_the_variance_where_pre_period_data_exists() -> None:
    assert lift_checks(n_experiments=200, seed=6)["cuped_variance_reduction"] >= 0.20
    # and without pre-period information it changes nothing
    y, _, treated, _ = experiments(1, 2000, 0.5, seed=1)
    adjusted, theta = lift.cuped(y[0], np.zeros(2000), treated[0])
    assert theta == 0 and np.array_equal(adjusted, y[0])


def test_the_sequential_test_survives_peeking_where_a_fixed_test_does_not() -> None:
    # No true lift; the merchant looks after every 50 shoppers, 40 times, and stops at "significant".
    rng = np.random.default_rng(3)
    n_exp, looks, step = 400, 40, 50
    y = (rng.random((n_exp, looks * step)) < 0.2).astype(float)
    treated = rng.random((n_exp, looks * step)) < 0.5
    fixed_hits = seq_hits = 0
    for e in range(n_exp):
        fixed_hit = seq_hit = False
        for look in range(1, looks + 1):
            yy, tt = y[e, : look * step], treated[e, : look * step]
            k1, n1, k0, n0 = yy[tt].sum(), tt.sum(), yy[~tt].sum(), (~tt).sum()
            _, low, high = (float(v) for v in lift.newcombe(k1, n1, k0, n0))
            fixed_hit |= low > 0 or high < 0
            p1, p0 = k1 / n1, k0 / n0
            seq_hit |= lift.msprt(p1 - p0, p1 * (1 - p1) / n1 + p0 * (1 - p0) / n0)[0] < 0.05
        fixed_hits += fixed_hit
        seq_hits += seq_hit
    assert fixed_hits / n_exp > 0.15  # peeking at a fixed interval "finds" lift that is not there
    assert seq_hits / n_exp <= 0.05


def test_report_is_not_yet_significant_until_the_interval_excludes_zero() -> None:
    early = lift.report(60, 12, 6, 1, aov=80.0)
    assert early.lift_low < 0 < early.lift_high and early.verdict == "not yet significant"
    later = lift.report(6000, 1500, 600, 90, aov=80.0)
    assert later.lift_low > 0 and later.sequential_p < 0.05 and later.verdict == "significant lift"
    assert later.incremental_revenue == pytest.approx(later.lift * 6000 * 80.0)
    assert later.incremental_low == pytest.approx(later.lift_low * 6000 * 80.0)
    text = "\n".join(lift.lines(later, "USD"))
    for label in ("treated 1500/6000", "holdout 90/600", "lift (absolute)", "lift (relative)",
                  "always-valid", "incremental revenue", "caused by messages", "significant lift"):  # fmt: skip
        assert label in text
    assert lift.report(10, 2, 0, 0).verdict == "no holdout yet"


def test_wilson_and_relative_intervals_behave_at_the_edges() -> None:
    low, high = lift.wilson(0, 20)
    assert low == 0 and 0 < high < 0.2
    rel, rlow, rhigh = lift.relative(30, 100, 0, 50)  # empty holdout cell: still finite
    assert np.isfinite([rel, rlow, rhigh]).all() and rlow < rel < rhigh
