"""Margin measures against hand calculations: procyclicality, liquidity, calm cost, backtests."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest

from abm.margin import (
    basel_traffic_light,
    calm_cost,
    christoffersen_independence,
    coverage_exception_flags,
    coverage_exceptions,
    kupiec_pof,
    largest_increase,
    margin_call_liquidity,
    peak_to_trough,
)


def _chi2_1_pvalue(statistic: float) -> float:
    # Independent route: chi2(1) = Z^2, so P(chi2 > s) = 2 * (1 - Phi(sqrt(s))).
    return 2.0 * (1.0 - NormalDist().cdf(math.sqrt(statistic)))


def test_peak_to_trough_is_the_largest_running_peak_over_running_trough():
    # Running max: 2, 4, 4, 4; running min: 2, 2, 1, 1; ratios 1, 2, 4, 4.
    assert peak_to_trough([2.0, 4.0, 1.0, 3.0]) == 4.0
    assert peak_to_trough(pd.Series([0.05, 0.05, 0.05])) == 1.0
    assert peak_to_trough([0.05, float("nan"), 0.1]) == 2.0


def test_largest_increase_over_a_window():
    series = [1.0, 2.0, 1.5, 3.0]
    assert largest_increase(series, 1) == pytest.approx(1.0)  # max(2/1, 1.5/2, 3/1.5) - 1
    assert largest_increase(series, 2) == pytest.approx(0.5)  # max(1.5/1, 3/2) - 1
    assert math.isnan(largest_increase(series, 4))
    assert largest_increase([4.0, 2.0, 1.0], 1) == pytest.approx(-0.5)


def test_margin_call_liquidity_totals_and_peaks():
    figures = margin_call_liquidity([0, 2, 5, 1], [0.0, 10.0, 140.0, 25.0])
    assert figures == {
        "total_calls": 8.0,
        "peak_calls": 5.0,
        "total_amount": 175.0,
        "peak_amount": 140.0,
        "peak_step": 2.0,
        "peak_to_mean": pytest.approx(140.0 / 43.75),
    }
    assert math.isnan(margin_call_liquidity([0, 0], [0.0, 0.0])["peak_to_mean"])


def test_calm_cost_averages_margin_per_open_interest_over_calm_steps():
    assert calm_cost([10.0, 30.0], [100.0, 200.0], [True, True]) == pytest.approx(0.125)  # (0.1 + 0.15) / 2
    # Stressed steps and steps without open interest do not count.
    assert calm_cost([10.0, 20.0, 30.0], [100.0, 100.0, 0.0], [True, False, True]) == pytest.approx(0.1)
    assert math.isnan(calm_cost([10.0], [100.0], [False]))


def test_coverage_exceptions_count_long_and_short_sides():
    prices = [100.0, 110.0, 99.0, 99.0, 120.0]
    # One-step moves: +10% (short exception), -10% (long), 0 (none), +21.2% (short); 4 steps x 2 sides.
    assert coverage_exceptions(prices, [0.05] * 5, horizon=1) == (3, 8)
    # A 15% margin covers the 10% moves, not the 21.2% one.
    assert coverage_exceptions(prices, [0.15] * 5, horizon=1) == (1, 8)
    # Two-step moves: -1%, -10%, +21.2%.
    assert coverage_exceptions(prices, [0.05] * 5, horizon=2) == (2, 6)
    np.testing.assert_array_equal(coverage_exception_flags(prices, [0.05] * 5, 1), [True, True, False, True])


def test_kupiec_on_a_hand_computed_case():
    # T = 250, x = 5, p = 0.01: LR = -2 [245 ln 0.99 + 5 ln 0.01 - 245 ln 0.98 - 5 ln 0.02]
    #                               = 2 [5 ln 2 - 245 ln(99/98)] = 2 [3.465736 - 2.487331] = 1.956810
    statistic, p_value = kupiec_pof(5, 250, 0.01)
    assert statistic == pytest.approx(2 * (5 * math.log(2) - 245 * math.log(99 / 98)), rel=1e-12)
    assert statistic == pytest.approx(1.956810, abs=1e-6)
    assert p_value == pytest.approx(_chi2_1_pvalue(statistic), rel=1e-9)
    assert statistic < 3.84  # not rejected at 5%


def test_kupiec_edge_cases_use_zero_log_zero():
    statistic, p_value = kupiec_pof(0, 250, 0.01)
    assert statistic == pytest.approx(-2 * 250 * math.log(0.99))  # 5.025: zero exceptions is too good
    assert p_value == pytest.approx(_chi2_1_pvalue(statistic), rel=1e-9)
    statistic, _ = kupiec_pof(10, 10, 0.01)
    assert statistic == pytest.approx(-2 * 10 * math.log(0.01))
    statistic, p_value = kupiec_pof(25, 2500, 0.01)
    assert statistic == pytest.approx(0.0, abs=1e-12) and p_value == pytest.approx(1.0)
    with pytest.raises(ValueError):
        kupiec_pof(3, 2, 0.01)


def _markov_log_likelihoods(flags: list[int]) -> tuple[float, float]:
    """Log-likelihoods under independence and first-order Markov, summed transition by transition."""
    pairs = list(zip(flags[:-1], flags[1:], strict=True))
    after = {0: [j for i, j in pairs if i == 0], 1: [j for i, j in pairs if i == 1]}
    pi = sum(j for _, j in pairs) / len(pairs)
    pi_given = {i: sum(after[i]) / len(after[i]) for i in (0, 1)}
    independent = sum(math.log(pi if j else 1 - pi) for _, j in pairs)
    markov = sum(math.log(pi_given[i] if j else 1 - pi_given[i]) for i, j in pairs)
    return independent, markov


def test_christoffersen_independence_on_clustered_exceptions():
    flags = [0, 0, 0, 0, 1, 1, 1, 0, 0, 0]  # n00 = 5, n01 = 1, n10 = 1, n11 = 2
    independent, markov = _markov_log_likelihoods(flags)
    statistic, p_value = christoffersen_independence(np.array(flags, dtype=bool))
    assert statistic == pytest.approx(-2 * (independent - markov), rel=1e-12)
    assert statistic > 0
    assert p_value == pytest.approx(_chi2_1_pvalue(statistic), rel=1e-9)


def test_christoffersen_is_zero_when_transitions_look_independent():
    # n00 = 4, n01 = 2, n10 = 2, n11 = 1: pi_01 = pi_11 = pi = 1/3.
    statistic, p_value = christoffersen_independence([0, 0, 1, 1, 0, 0, 0, 1, 0, 0])
    assert statistic == pytest.approx(0.0, abs=1e-12)
    assert p_value == pytest.approx(1.0)
    assert christoffersen_independence([False] * 20) == (0.0, 1.0)


@pytest.mark.parametrize(
    ("exceptions", "zone"),
    [(0, "green"), (4, "green"), (5, "yellow"), (9, "yellow"), (10, "red"), (30, "red")],
)
def test_basel_traffic_light_bands_at_250_observations(exceptions, zone):
    assert basel_traffic_light(exceptions) == zone
