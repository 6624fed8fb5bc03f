"""The discount bandit (recovery.sequence.discounts) on simulated stores (ml.discount_sim), against the
hidden truth: issue 21 item 5's acceptance, best arm in >= 90 % of stores and less cumulative profit
regret than any fixed arm, at one or more horizons (shown offers per store).
`cartresq evaluate --simulated --discounts` prints `bandit_report`.
"""

from __future__ import annotations

import numpy as np

ACCEPT_BEST_ARM = 0.90


def bandit_checks(
    n_stores: int = 200, shoppers: int = 4000, batch: int = 100, seed: int = 11, margin: float = 0.40,
    horizons: tuple[int, ...] = (), **policy: float,
) -> dict[str, object]:  # fmt: skip
    """The discount bandit over simulated stores, all run side by side: how often it ends on the best
    arm, its cumulative profit regret against each fixed arm's (order-value units per store), and how
    often the off-policy estimate of each fixed arm's profit (recovery.measure.discount_eval, weighted
    by the recorded assignment probabilities) covers the truth. The policy is anytime, so one run gives
    the figures at every horizon in `horizons` (shown offers per store, multiples of `batch`) as well:
    `at[h]`. `policy` passes `floor` / `identify` to recovery.sequence.discounts.probabilities."""
    from ml.discount_sim import stores
    from recovery.sequence import discounts

    arms = np.asarray(discounts.DEFAULT_ARMS)
    k, steps = len(arms), shoppers // batch
    sim = stores(n_stores, seed)
    truth, conversion = sim.profit(arms, margin), sim.conversion(arms)
    rng = np.random.default_rng([seed, 1])
    value = np.repeat(sim.value[:, None], k, axis=1)  # the store's average order value, known beforehand
    shown, conv = np.zeros((n_stores, k)), np.zeros((n_stores, k))
    picks = np.zeros((n_stores, steps * batch), dtype=np.int8)
    propensity = np.zeros((n_stores, steps * batch))
    bought = np.zeros((n_stores, steps * batch), dtype=bool)
    rows = np.arange(n_stores)[:, None]
    out: dict[int, dict[str, object]] = {}
    cold = discounts.probabilities(shown[:1], conv[:1], value[:1], arms.tolist(), margin, rng, **policy)[0]
    for step in range(steps):
        p = discounts.probabilities(shown, conv, value, arms.tolist(), margin, rng, **policy)
        cut = slice(step * batch, (step + 1) * batch)
        drawn = np.minimum((rng.random((n_stores, batch))[..., None] > np.cumsum(p, axis=1)[:, None, :]).sum(2), k - 1)
        picks[:, cut], propensity[:, cut] = drawn, p[rows, drawn]
        bought[:, cut] = rng.random((n_stores, batch)) < conversion[rows, drawn]
        onehot = drawn[..., None] == np.arange(k)
        shown += onehot.sum(1)
        conv += (onehot & bought[:, cut, None]).sum(1)
        h = (step + 1) * batch
        if h in horizons or step == steps - 1:
            out[h] = _bandit_figures(h, shown, conv, value, picks, propensity, bought, truth, margin, arms)
    srt = np.sort(truth, axis=1)
    result = dict(out[steps * batch])
    result.update({
        "stores": n_stores, "shoppers": steps * batch, "at": out,
        "best_arm_share": {int(a): float(np.mean(truth.argmax(axis=1) == j)) for j, a in enumerate(arms)},
        "near_tie_rate": float(np.mean(srt[:, -2] >= 0.995 * srt[:, -1])),  # top two arms within 0.5 %
        "cold_start": {int(a): float(c) for a, c in zip(arms, cold, strict=True)}, "min_propensity": float(propensity.min()),
    })  # fmt: skip
    return result


def _bandit_figures(h, shown, conv, value, picks, propensity, bought, truth, margin, arms):  # type: ignore[no-untyped-def]
    """The figures after h shown offers per store."""
    from recovery.measure import discount_eval
    from recovery.sequence import discounts

    best = truth.max(axis=1)
    rows = np.arange(truth.shape[0])
    got = truth[rows, discounts.best_arms(shown, conv, value, arms.tolist(), margin)]
    regret = (best[:, None] - truth[rows[:, None], picks[:, :h]]).sum(1)
    covered = 0
    for s in rows:
        values = discount_eval.arm_values(arms[picks[s, :h]], propensity[s, :h], bought[s, :h],
                                          np.full(h, value[s, 0]), arms.tolist(), margin)  # fmt: skip
        covered += sum(v.low <= truth[s, i] <= v.high for i, v in enumerate(values))
    fixed = {int(a): float(np.mean(h * (best - truth[:, j]))) for j, a in enumerate(arms)}
    return {
        "best_arm_rate": float(np.mean(got == best)), "within_1pct_rate": float(np.mean(got >= 0.99 * best)),
        "within_2pct_rate": float(np.mean(got >= 0.98 * best)), "bandit_regret": float(regret.mean()),
        "fixed_regret": fixed, "regret_vs_best_fixed": float(regret.mean() / min(fixed.values())),
        "ips_coverage": covered / truth.size,
    }  # fmt: skip


def bandit_report(seeds: list[int], n_stores: int = 100, offers: int = 100_000, horizons: tuple[int, ...] = (20_000, 50_000),
                  batch: int = 250) -> list[str]:  # fmt: skip
    """The figures over `seeds` x `n_stores` stores at each horizon, pooled over the stores, and whether
    both halves of the acceptance are met there (regret below every fixed arm's on every seed)."""
    runs = [bandit_checks(n_stores=n_stores, shoppers=offers, batch=batch, seed=s, horizons=horizons) for s in seeds]
    first = runs[0]
    cold = ", ".join(f"{a} %: {p:.0%}" for a, p in first["cold_start"].items())  # type: ignore[attr-defined]
    lines = [
        f"discount bandit (Thompson on profit, dose-response posterior, margin 40 %, uniform floor 8 %, "
        f"identification share on the outer arms) over {len(seeds)} seeds x {n_stores} simulated stores "
        f"(seeds {','.join(map(str, seeds))}); before any data it assigns {cold}; smallest recorded probability "
        f"{min(float(r['min_propensity']) for r in runs):.1%}",  # type: ignore[arg-type]
    ]  # fmt: skip
    for h in sorted(first["at"]):  # type: ignore[attr-defined]
        at = [r["at"][h] for r in runs]  # type: ignore[index]
        mean = {key: float(np.mean([f[key] for f in at])) for key in
                ("best_arm_rate", "within_1pct_rate", "within_2pct_rate", "bandit_regret", "ips_coverage")}  # fmt: skip
        fixed = {a: float(np.mean([f["fixed_regret"][a] for f in at])) for a in at[0]["fixed_regret"]}
        worst = max(float(f["regret_vs_best_fixed"]) for f in at)
        met = mean["best_arm_rate"] >= ACCEPT_BEST_ARM and worst < 1.0
        lines += [
            f"after {h:,} shown offers per store:",
            f"  best arm in {mean['best_arm_rate']:.1%} of stores; within 1 % of the best profit in "
            f"{mean['within_1pct_rate']:.1%}, within 2 % in {mean['within_2pct_rate']:.1%}",
            f"  cumulative profit regret per store (order-value units): bandit {mean['bandit_regret']:,.0f}; fixed arms "
            + ", ".join(f"{a} %: {r:,.0f}" for a, r in fixed.items())
            + f"; bandit / best fixed arm at most {worst:.2f} on a seed",
            f"  IPS 95 % interval of each fixed arm's profit covers the truth in {mean['ips_coverage']:.1%} of (store, arm) pairs",
            f"  acceptance (best arm >= {ACCEPT_BEST_ARM:.0%}, regret below every fixed arm): {'MET' if met else 'not met'}",
        ]  # fmt: skip
    return lines
