"""A/B/n statistics on rates (click-through, conversion): the two-proportion z-test of each
variant against the first (as statsmodels' ``proportions_ztest`` with a pooled variance), the
chi-square test of independence over all variants (as scipy's ``chi2_contingency`` without
Yates' correction), and the Bayesian probability that each variant's rate is the best (Beta(1, 1)
priors, the posterior integrated numerically — no sampling, so the same counts always give the
same answer)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

# Grid points for the posterior integral; enough for four decimals at campaign sizes.
GRID = 4001


@dataclass(frozen=True)
class Arm:
    key: str
    trials: int  # people who received it
    successes: int  # people who clicked (or converted)

    @property
    def rate(self) -> float:
        return self.successes / self.trials if self.trials else 0.0


@dataclass(frozen=True)
class ZTest:
    key: str
    against: str
    difference: float  # this rate minus the baseline's
    z: float
    p_value: float


@dataclass(frozen=True)
class Comparison:
    arms: list[Arm]
    z_tests: list[ZTest]  # each arm after the first against the first
    chi2: float
    chi2_p_value: float
    degrees_of_freedom: int
    probability_best: dict[str, float]
    significant: bool  # the chi-square test at ``alpha``
    alpha: float


def two_proportion_z(a: Arm, b: Arm) -> tuple[float, float]:
    """z and the two-sided p-value for ``b``'s rate against ``a``'s, pooled variance."""
    if not a.trials or not b.trials:
        return 0.0, 1.0
    pooled = (a.successes + b.successes) / (a.trials + b.trials)
    variance = pooled * (1 - pooled) * (1 / a.trials + 1 / b.trials)
    if variance <= 0:
        return 0.0, 1.0
    z = (b.rate - a.rate) / math.sqrt(variance)
    return z, float(2 * stats.norm.sf(abs(z)))


def chi_square(arms: Sequence[Arm]) -> tuple[float, float, int]:
    """Pearson's chi-square over the arms' successes and failures (no continuity correction)."""
    table = np.array([[arm.successes, arm.trials - arm.successes] for arm in arms], dtype=float)
    table = table[table.sum(axis=1) > 0]
    if len(table) < 2 or (table.sum(axis=0) == 0).any():
        return 0.0, 1.0, max(len(table) - 1, 0)
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    chi2 = float(((table - expected) ** 2 / expected).sum())
    dof = (table.shape[0] - 1) * (table.shape[1] - 1)
    return chi2, float(stats.chi2.sf(chi2, dof)), dof


def probability_best(arms: Sequence[Arm]) -> dict[str, float]:
    """P(arm's rate is the highest) under independent Beta(1 + successes, 1 + failures)
    posteriors: ∫ f_i(x) ∏_{j≠i} F_j(x) dx, on a grid over [0, 1]."""
    if not arms:
        return {}
    posteriors = [stats.beta(1 + a.successes, 1 + a.trials - a.successes) for a in arms]
    # Where the posteriors have their mass (narrow for large arms): the grid spans only that.
    low = min(float(p.ppf(1e-10)) for p in posteriors)
    high = max(float(p.ppf(1 - 1e-10)) for p in posteriors)
    x = np.linspace(low, high, GRID)
    pdfs = np.array([p.pdf(x) for p in posteriors])
    cdfs = np.array([p.cdf(x) for p in posteriors])
    out = {}
    for i, arm in enumerate(arms):
        others = np.prod(np.delete(cdfs, i, axis=0), axis=0) if len(arms) > 1 else np.ones_like(x)
        out[arm.key] = float(np.trapezoid(pdfs[i] * others, x))
    total = sum(out.values()) or 1.0
    return {k: v / total for k, v in out.items()}  # the grid's small error, spread evenly


def compare(arms: Sequence[Arm], alpha: float = 0.05) -> Comparison:
    arms = list(arms)
    z_tests = []
    for arm in arms[1:]:
        z, p = two_proportion_z(arms[0], arm)
        z_tests.append(ZTest(arm.key, arms[0].key, arm.rate - arms[0].rate, z, p))
    chi2, p, dof = chi_square(arms)
    return Comparison(arms, z_tests, chi2, p, dof, probability_best(arms), p < alpha and len(arms) > 1, alpha)
