"""Lift a merchant can trust: treated vs holdout conversion with intervals that mean what they say.

- Absolute lift (treated rate minus holdout rate) with Newcombe's hybrid Wilson score interval
  (method 10 of Newcombe 1998): good coverage even with a few dozen holdout shoppers.
- Relative lift (treated / holdout - 1) with the Katz log interval (0.5 added to empty cells).
- An always-valid test (mixture SPRT, Johari et al. 2017, normal mixing prior on the difference):
  its p-value and confidence sequence stay valid however often the dashboard is looked at.
- CUPED (Deng et al. 2013): subtracting theta * (pre-period metric - its mean) removes the part of
  each shopper's outcome their past predicts, shrinking the variance by corr^2.
- Incremental revenue = lift x treated carts x average recovered order (`average_order`, the one definition
  the dashboard, the CLI and the Performance page share), with the lift's interval.
The verdict stays "not yet significant" until both the fixed interval and the always-valid test
exclude zero; `why` says which of the two is not conclusive yet. numpy only, vectorised so simulations can check coverage over many experiments.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Z95 = 1.959963984540054
ALPHA = 0.05
#: Mixing prior's standard deviation on the absolute lift (5 points): the effect sizes expected.
MSPRT_TAU = 0.05


def wilson(k: np.ndarray | int, n: np.ndarray | int, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of k successes in n trials (0..1 when n = 0)."""
    k, n = np.asarray(k, dtype=np.float64), np.asarray(n, dtype=np.float64)
    safe = np.maximum(n, 1.0)
    p = k / safe
    centre = (p + z * z / (2 * safe)) / (1 + z * z / safe)
    half = z * np.sqrt(p * (1 - p) / safe + z * z / (4 * safe * safe)) / (1 + z * z / safe)
    empty = n == 0
    return np.where(empty, 0.0, centre - half), np.where(empty, 1.0, centre + half)


def newcombe(k1, n1, k0, n0, z: float = Z95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    """Difference p1 - p0 and its Newcombe hybrid score interval (vectorised)."""
    k1, n1, k0, n0 = (np.asarray(v, dtype=np.float64) for v in (k1, n1, k0, n0))
    p1, p0 = k1 / np.maximum(n1, 1), k0 / np.maximum(n0, 1)
    l1, u1 = wilson(k1, n1, z)
    l0, u0 = wilson(k0, n0, z)
    d = p1 - p0
    low = d - np.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2)
    high = d + np.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2)
    return d, low, high


def relative(k1: int, n1: int, k0: int, n0: int, z: float = Z95) -> tuple[float, float, float]:
    """Relative lift p1 / p0 - 1 and its Katz log interval; 0.5 is added to every cell if any is empty."""
    if 0 in (k1, k0, n1 - k1, n0 - k0):
        k1, k0, n1, n0 = k1 + 0.5, k0 + 0.5, n1 + 1, n0 + 1  # type: ignore[assignment]
    if not (n1 and n0):
        return float("nan"), float("nan"), float("nan")
    ratio = (k1 / n1) / (k0 / n0)
    se = float(np.sqrt(1 / k1 - 1 / n1 + 1 / k0 - 1 / n0))
    return ratio - 1, ratio * float(np.exp(-z * se)) - 1, ratio * float(np.exp(z * se)) - 1


def msprt(diff: float, variance: float, tau: float = MSPRT_TAU, alpha: float = ALPHA) -> tuple[float, float, float]:
    """Always-valid p-value and (1 - alpha) confidence sequence for a difference with `variance`.

    The p-value is 1 / Lambda at this look (Ville's inequality keeps it valid under peeking; the
    running minimum over looks would be sharper but needs the history)."""
    if not variance > 0:
        return 1.0, float("-inf"), float("inf")
    t2 = tau * tau
    log_lambda = 0.5 * np.log(variance / (variance + t2)) + t2 * diff * diff / (2 * variance * (variance + t2))
    p = float(min(1.0, np.exp(-log_lambda)))
    half = float(np.sqrt(variance * (variance + t2) / t2 * (np.log((variance + t2) / variance) + 2 * np.log(1 / alpha))))
    return p, diff - half, diff + half


def cuped(y: np.ndarray, x: np.ndarray, treated: np.ndarray) -> tuple[np.ndarray, float]:
    """Outcomes adjusted by the pre-period metric x (theta pooled over both groups), and theta."""
    y, x = np.asarray(y, dtype=np.float64), np.asarray(x, dtype=np.float64)
    var = float(np.var(x))
    theta = float(np.cov(x, y, ddof=0)[0, 1] / var) if var > 0 else 0.0
    return y - theta * (x - x.mean()), theta


def mean_diff(y: np.ndarray, treated: np.ndarray, z: float = Z95) -> tuple[float, float, float, float]:
    """Difference of group means (treated - holdout), its Welch variance and normal interval."""
    treated = np.asarray(treated, dtype=bool)
    a, b = np.asarray(y, dtype=np.float64)[treated], np.asarray(y, dtype=np.float64)[~treated]
    if a.size < 2 or b.size < 2:
        return float("nan"), float("nan"), float("-inf"), float("inf")
    d, v = float(a.mean() - b.mean()), float(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
    return d, v, d - z * np.sqrt(v), d + z * np.sqrt(v)


def average_order(revenue: object, orders: int) -> float:
    """The order value incremental revenue is priced at: recovered carts' orders (attributed to a message, not
    cancelled) in the report's currency, over their number. Every view passes the same two figures, so the same
    counts give the same incremental revenue everywhere. 0 without a recovered order."""
    return float(revenue) / orders if orders else 0.0  # type: ignore[arg-type]  # an average for an estimate, not money


def estimate(value: float) -> str:
    """An estimated amount as every view prints it: whole units (cents would claim a precision it has not)."""
    return f"{value:,.0f}"


@dataclass(frozen=True)
class LiftReport:
    treated_carts: int
    treated_ordered: int
    holdout_carts: int
    holdout_ordered: int
    lift: float  # absolute, treated minus holdout rate
    lift_low: float
    lift_high: float
    relative: float
    relative_low: float
    relative_high: float
    sequential_p: float  # always valid
    sequential_low: float
    sequential_high: float
    aov: float  # the average recovered order (`average_order`)
    #: Estimated orders caused by messages, in money: lift x treated carts x AOV (interval alike).
    incremental_revenue: float
    incremental_low: float
    incremental_high: float
    cuped_lift: float | None = None
    cuped_low: float | None = None
    cuped_high: float | None = None
    cuped_variance_reduction: float | None = None

    @property
    def interval_excludes_zero(self) -> bool:
        return bool(self.lift_low > 0 or self.lift_high < 0)

    @property
    def sequential_conclusive(self) -> bool:
        return self.sequential_p < ALPHA

    @property
    def significant(self) -> bool:
        return self.interval_excludes_zero and self.sequential_conclusive

    @property
    def why(self) -> str:
        """The verdict's reason, naming the test that decides it (both must exclude zero)."""
        seq = (f"the always-valid test (safe to check any time): p = {self.sequential_p:.3f}, 95% confidence sequence "
               f"[{self.sequential_low * 100:+.1f}, {self.sequential_high * 100:+.1f}] points")  # fmt: skip
        if self.holdout_carts == 0 or self.treated_carts == 0:
            return "it needs abandoned carts in both the holdout and the treated group"
        if not self.interval_excludes_zero:
            return f"the 95% interval (Newcombe) still includes zero, and so does {seq}: the difference may be chance"
        if not self.sequential_conclusive:
            return (f"the 95% interval (Newcombe) excludes zero, but {seq}, still includes zero: a single look's "
                    "interval is not enough while the results are checked as they come; more carts will settle it")
        return f"both the 95% interval (Newcombe) and {seq}, exclude zero"

    @property
    def verdict(self) -> str:
        if self.holdout_carts == 0 or self.treated_carts == 0:
            return "no holdout yet"
        return ("significant " + ("lift" if self.lift > 0 else "loss")) if self.significant else "not yet significant"


def report(
    treated_carts: int, treated_ordered: int, holdout_carts: int, holdout_ordered: int, aov: float = 0.0,
    *, pre: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> LiftReport:  # fmt: skip
    """The lift report. `pre` = (outcome 0/1, pre-period metric, treated flag) per shopper, for CUPED."""
    d, lo, hi = (float(v) for v in newcombe(treated_ordered, treated_carts, holdout_ordered, holdout_carts))
    rel = relative(treated_ordered, treated_carts, holdout_ordered, holdout_carts)
    p1 = treated_ordered / max(treated_carts, 1)
    p0 = holdout_ordered / max(holdout_carts, 1)
    var = p1 * (1 - p1) / max(treated_carts, 1) + p0 * (1 - p0) / max(holdout_carts, 1)
    seq = msprt(d, var) if treated_carts and holdout_carts else (1.0, float("-inf"), float("inf"))
    scale = treated_carts * aov
    extra: dict[str, float] = {}
    if pre is not None:
        y, x, flag = pre
        adjusted, _ = cuped(y, x, flag)
        plain = mean_diff(y, flag)
        c_d, c_v, c_lo, c_hi = mean_diff(adjusted, flag)
        extra = dict(cuped_lift=c_d, cuped_low=c_lo, cuped_high=c_hi,
                     cuped_variance_reduction=1 - c_v / plain[1] if plain[1] > 0 else 0.0)  # fmt: skip
    return LiftReport(
        treated_carts, treated_ordered, holdout_carts, holdout_ordered, d, lo, hi, *rel, *seq,
        aov, d * scale, lo * scale, hi * scale, **extra,
    )  # fmt: skip


def lines(r: LiftReport, currency: str = "") -> list[str]:
    """The report as a merchant reads it, each figure labelled for what it is."""
    cur = f" {currency}" if currency else ""
    out = [
        f"conversion (ordered after abandonment)  treated {r.treated_ordered}/{r.treated_carts} "
        f"({r.treated_ordered / max(r.treated_carts, 1):.1%}), holdout {r.holdout_ordered}/{r.holdout_carts} "
        f"({r.holdout_ordered / max(r.holdout_carts, 1):.1%})",
        f"lift (absolute)       {r.lift * 100:+.1f} points, 95% CI [{r.lift_low * 100:+.1f}, {r.lift_high * 100:+.1f}]",
        f"lift (relative)       {r.relative:+.0%}, 95% CI [{r.relative_low:+.0%}, {r.relative_high:+.0%}]",
        f"always-valid test     p = {r.sequential_p:.3f}, 95% confidence sequence "
        f"[{r.sequential_low * 100:+.1f}, {r.sequential_high * 100:+.1f}] points (safe to check any time)",
    ]
    if r.cuped_lift is not None:
        out.append(
            f"lift with CUPED       {r.cuped_lift * 100:+.1f} points, 95% CI [{(r.cuped_low or 0) * 100:+.1f}, "
            f"{(r.cuped_high or 0) * 100:+.1f}] (variance {-(r.cuped_variance_reduction or 0):+.0%} from pre-period behaviour)"
        )
    out += [
        f"incremental revenue   {estimate(r.incremental_revenue)}{cur}, 95% CI [{estimate(r.incremental_low)}, "
        f"{estimate(r.incremental_high)}] (caused by messages: lift x treated carts x average recovered order "
        f"{r.aov:,.2f})",
        f"verdict               {r.verdict}: {r.why}",
    ]
    return out
