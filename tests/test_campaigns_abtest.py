"""A/B statistics equal the references: the z-test statsmodels' ``proportions_ztest``, the
chi-square scipy's ``chi2_contingency`` (no continuity correction), and the probability to be
best a large Monte Carlo draw from the same posteriors."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import chi2_contingency
from statsmodels.stats.proportion import proportions_ztest

from siyu.campaigns.abtest import Arm, chi_square, compare, probability_best, two_proportion_z

CASES = [
    [Arm("A", 10_000, 520), Arm("B", 10_000, 600)],
    [Arm("A", 1_000, 30), Arm("B", 1_200, 30), Arm("C", 900, 45)],
    [Arm("A", 250_000, 12_500), Arm("B", 250_000, 12_900)],
    [Arm("A", 40, 0), Arm("B", 40, 3)],
]


@pytest.mark.parametrize("arms", CASES)
def test_z_test_equals_statsmodels(arms: list[Arm]) -> None:
    for arm in arms[1:]:
        z, p = two_proportion_z(arms[0], arm)
        ref_z, ref_p = proportions_ztest([arm.successes, arms[0].successes], [arm.trials, arms[0].trials])
        assert z == pytest.approx(ref_z, rel=1e-9) and p == pytest.approx(ref_p, rel=1e-9, abs=1e-15)


@pytest.mark.parametrize("arms", CASES)
def test_chi_square_equals_scipy(arms: list[Arm]) -> None:
    chi2, p, dof = chi_square(arms)
    table = [[a.successes, a.trials - a.successes] for a in arms]
    ref = chi2_contingency(table, correction=False)
    assert (chi2, p, dof) == (pytest.approx(ref.statistic, rel=1e-9), pytest.approx(ref.pvalue, rel=1e-9), ref.dof)


@pytest.mark.parametrize("arms", CASES)
def test_probability_to_be_best_equals_a_large_monte_carlo_draw(arms: list[Arm]) -> None:
    rng = np.random.default_rng(7)
    draws = np.array([rng.beta(1 + a.successes, 1 + a.trials - a.successes, 400_000) for a in arms])
    wins = np.bincount(draws.argmax(axis=0), minlength=len(arms)) / draws.shape[1]
    got = probability_best(arms)
    assert sum(got.values()) == pytest.approx(1.0)
    for arm, expected in zip(arms, wins, strict=True):
        assert got[arm.key] == pytest.approx(expected, abs=0.005)


def test_a_clear_winner_is_significant_and_a_tie_is_not() -> None:
    clear = compare([Arm("A", 10_000, 500), Arm("B", 10_000, 650)])
    assert clear.significant and clear.z_tests[0].p_value < 0.001 and clear.probability_best["B"] > 0.99
    tie = compare([Arm("A", 10_000, 500), Arm("B", 10_000, 505)])
    assert not tie.significant and 0.3 < tie.probability_best["B"] < 0.7
    empty = compare([Arm("A", 0, 0), Arm("B", 0, 0)])
    assert not empty.significant and empty.chi2_p_value == 1.0
