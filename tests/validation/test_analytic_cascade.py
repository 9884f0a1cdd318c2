"""Validation case 3: the clearing engine's cascade on a uniform book against closed-form values.

Book: ``depth`` lots on every tick, so x lots sold move the last price ceil(x / depth) ticks. Accounts of
``lots`` lots with liquidation prices ``(j - 1/2) x spacing`` ticks below the start. Expected counts are
computed here by hand: the discrete fixed point of "lots sold -> ticks fallen -> accounts crossed", and
the continuum total move D0 / (1 - m), m = lots / (depth x spacing).
"""

import math

import numpy as np
import pytest

from abm.validation import (
    branching_ratio,
    evenly_spaced_distances,
    expected_cascade_size,
    linear_cascade_move,
    mean_cascade_size,
    poisson_distances,
    truncated_cascade_size,
    uniform_book_cascade,
)


def _fixed_point(spacing, count, lots, depth, shock):
    """Accounts liquidated and ticks fallen, iterating the cascade by hand."""
    liquidated = 0
    while True:
        fall = math.ceil((shock + lots * liquidated) / depth)
        # account j (1-based) breaches when the fall exceeds (j - 1/2) x spacing
        crossed = min(count, max(0, math.ceil(fall / spacing + 0.5) - 1))
        if crossed == liquidated:
            return liquidated, fall
        liquidated = crossed


def test_closed_forms():
    assert branching_ratio(10, 1, 25.0) == pytest.approx(0.4)
    assert linear_cascade_move(100.0, 0.4) == pytest.approx(100.0 / 0.6)
    assert linear_cascade_move(100.0, 1.0) == math.inf
    assert expected_cascade_size(0.75) == pytest.approx(4.0)
    np.testing.assert_allclose(evenly_spaced_distances(3, 10.0), [5.0, 15.0, 25.0])
    gaps = np.diff(np.concatenate([[0.0], poisson_distances(20_000, 4.0, np.random.default_rng(1))]))
    assert gaps.min() > 0 and abs(gaps.mean() - 4.0) < 4 * 4.0 / math.sqrt(20_000)


def test_one_account_by_hand():
    # 10 lots per account, 1 lot per tick, liquidation price 12.5 ticks down; a 12-lot shock moves the
    # price 12 ticks: not enough. 13 lots: 13 ticks, the account goes and its 10 lots add 10 ticks.
    assert uniform_book_cascade([12.5], 10, 1, 12).liquidated == 0
    outcome = uniform_book_cascade([12.5], 10, 1, 13)
    assert (outcome.liquidated, outcome.price_move_ticks, outcome.lots_sold) == (1, 23, 23)


@pytest.mark.parametrize(
    ("spacing", "depth", "shock"),
    [
        (50.0, 1, 100),
        (25.0, 1, 30),
        (25.0, 1, 100),
        (25.0, 2, 300),
        (12.5, 1, 100),
        (12.5, 1, 300),
        (30.0, 3, 90),
    ],
)
def test_evenly_spaced_cascade_matches_the_fixed_point_and_the_continuum(spacing, depth, shock):
    lots, count = 10, 150
    outcome = uniform_book_cascade(evenly_spaced_distances(count, spacing), lots, depth, shock)
    expected, fall = _fixed_point(spacing, count, lots, depth, shock)
    assert outcome.liquidated == expected
    assert outcome.price_move_ticks == fall
    assert outcome.lots_sold == shock + lots * expected
    m = lots / (depth * spacing)
    assert m < 1
    continuum_move = (shock / depth) / (1 - m)
    # The discrete cascade stops when the next liquidation price is still below the mark, up to half a
    # spacing before the continuum: short of the continuum count by at most 1/(2(1-m)) + 1.5 accounts.
    continuum_count = math.floor(continuum_move / spacing + 0.5)
    shortfall = continuum_count - outcome.liquidated
    assert 0 <= shortfall <= 0.5 / (1 - m) + 1.5
    assert abs(outcome.price_move_ticks - continuum_move) <= (lots / depth) * (shortfall + 1) + 1


def test_supercritical_cascade_takes_every_account():
    lots, depth, spacing, count = 10, 1, 8.0, 60  # m = 1.25
    outcome = uniform_book_cascade(evenly_spaced_distances(count, spacing), lots, depth, 5)
    assert outcome.liquidated == count
    assert outcome.price_move_ticks == 5 + lots * count


def test_round_structure_of_a_cascade():
    # m = 0.8, shock 30: hand iteration gives rounds of 3 (fall 30), +4 (fall 60), +3 (fall 100) and so on.
    outcome = uniform_book_cascade(evenly_spaced_distances(100, 12.5), 10, 1, 30)
    expected, _ = _fixed_point(12.5, 100, 10, 1, 30)
    assert outcome.liquidated == expected == 10
    assert outcome.rounds >= 2


@pytest.mark.parametrize("m", [0.3, 0.6])
def test_mean_cascade_size_is_one_over_one_minus_m(m):
    mean, error = mean_cascade_size(m, 150, np.random.default_rng(int(m * 100)))
    assert error > 0
    assert abs(mean - 1 / (1 - m)) < 4 * error


def test_truncated_borel_mean():
    m = 0.5
    # P(T = 1) = exp(-m): the first liquidation sets off nothing; with room for 2, the rest count 2.
    assert truncated_cascade_size(m, 2) == pytest.approx(math.exp(-m) + 2 * (1 - math.exp(-m)))
    # P(T = 2) = exp(-2m) (2m) / 2
    p1, p2 = math.exp(-m), math.exp(-2 * m) * (2 * m) / 2
    assert truncated_cascade_size(m, 3) == pytest.approx(p1 + 2 * p2 + 3 * (1 - p1 - p2))
    assert truncated_cascade_size(0.6, 5_000) == pytest.approx(1 / (1 - 0.6))
