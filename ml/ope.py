"""Off-policy evaluation of send-time policies on logged sends, and the promotion rule.

Each logged first-step send has the slot the serving policy chose and that slot's probability
under it (its propensity). A target policy is judged by:
- IPS: mean of y * 1[a = pi(x)] / p;
- doubly robust (DR): mean of q(x, pi(x)) + 1[a = pi(x)] / p * (y - q(x, a)), unbiased if either
  the propensities or the outcome model q are right, and with far less variance than IPS.
Intervals are normal (mean +- 1.96 standard errors of the per-send terms). numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Z95 = 1.959963984540054
#: A challenger must beat the incumbent by more than this (absolute conversion) at the lower bound:
#: ties and near-ties go to the default.
NEAR_TIE = 0.0005


@dataclass(frozen=True)
class Estimate:
    value: float
    low: float
    high: float
    n: int

    @classmethod
    def of(cls, terms: np.ndarray) -> Estimate:
        t = np.asarray(terms, dtype=np.float64)
        se = float(t.std(ddof=1) / np.sqrt(t.size)) if t.size > 1 else float("inf")
        mean = float(t.mean()) if t.size else float("nan")
        return cls(mean, mean - Z95 * se, mean + Z95 * se, int(t.size))

    def __str__(self) -> str:
        return f"{self.value:.2%} [{self.low:.2%}, {self.high:.2%}]"


def _check(y: np.ndarray, propensity: np.ndarray) -> None:
    if y.shape != propensity.shape:
        raise ValueError("outcomes and propensities differ in length")
    if np.any(~np.isfinite(propensity)) or np.any(propensity <= 0) or np.any(propensity > 1):
        raise ValueError("propensities must lie in (0, 1]")


def ips_terms(y: np.ndarray, logged: np.ndarray, target: np.ndarray, propensity: np.ndarray) -> np.ndarray:
    y, p = np.asarray(y, dtype=np.float64), np.asarray(propensity, dtype=np.float64)
    _check(y, p)
    match = np.isclose(np.asarray(logged, dtype=np.float64), np.asarray(target, dtype=np.float64))
    return np.asarray(match * y / p, dtype=np.float64)


def dr_terms(
    y: np.ndarray, logged: np.ndarray, target: np.ndarray, propensity: np.ndarray,
    q_logged: np.ndarray, q_target: np.ndarray,
) -> np.ndarray:  # fmt: skip
    """Per-send DR terms. `q_logged`/`q_target`: the outcome model at the logged / target slot."""
    y, p = np.asarray(y, dtype=np.float64), np.asarray(propensity, dtype=np.float64)
    _check(y, p)
    match = np.isclose(np.asarray(logged, dtype=np.float64), np.asarray(target, dtype=np.float64))
    return np.asarray(q_target + match / p * (y - q_logged), dtype=np.float64)


@dataclass(frozen=True)
class Verdict:
    incumbent_ips: Estimate
    challenger_ips: Estimate
    incumbent_dr: Estimate
    challenger_dr: Estimate
    difference_dr: Estimate  # challenger minus incumbent, paired on the same sends

    @property
    def promote(self) -> bool:
        """Only when the challenger's DR lower bound is above the incumbent's value, and the
        paired difference's lower bound is above the near-tie margin."""
        return bool(
            self.challenger_dr.low > self.incumbent_dr.value and self.difference_dr.low > NEAR_TIE
        )

    def lines(self) -> list[str]:
        return [
            f"incumbent   IPS {self.incumbent_ips}   DR {self.incumbent_dr}",
            f"challenger  IPS {self.challenger_ips}   DR {self.challenger_dr}",
            f"difference  DR {self.difference_dr.value:+.2%} "
            f"[{self.difference_dr.low:+.2%}, {self.difference_dr.high:+.2%}] over {self.difference_dr.n} sends",
            "promote: yes" if self.promote else "promote: no (the incumbent, the store's fixed delay, stays)",
        ]


def compare(
    y: np.ndarray, logged: np.ndarray, propensity: np.ndarray, *,
    incumbent: np.ndarray, challenger: np.ndarray,
    q_logged: np.ndarray, q_incumbent: np.ndarray, q_challenger: np.ndarray,
) -> Verdict:  # fmt: skip
    """IPS and DR estimates of both policies' conversion on the same logged sends."""
    inc = dr_terms(y, logged, incumbent, propensity, q_logged, q_incumbent)
    cha = dr_terms(y, logged, challenger, propensity, q_logged, q_challenger)
    return Verdict(
        incumbent_ips=Estimate.of(ips_terms(y, logged, incumbent, propensity)),
        challenger_ips=Estimate.of(ips_terms(y, logged, challenger, propensity)),
        incumbent_dr=Estimate.of(inc),
        challenger_dr=Estimate.of(cha),
        difference_dr=Estimate.of(cha - inc),
    )
