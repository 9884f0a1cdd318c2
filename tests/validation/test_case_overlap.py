"""Validation case 6 at a reduced size (after Caccioli, Shrestha, Moore and Farmer 2014): overlaps.

Six instruments, six groups of longs each holding ``d`` of them (overlapping), a 5% shock to A only.
Full size (5 leverages x 4 diversifications x 10 seeds) in docs/validation.md, case 6.
"""

import pytest

from abm.runs import run_scenario
from abm.validation import overlap_case_scenario, overlap_outcome


def _outcome(diversification, leverage):
    return overlap_outcome(run_scenario(overlap_case_scenario(diversification, leverage), seed=1).summary)


def test_below_a_critical_leverage_the_shock_liquidates_nobody():
    assert _outcome(2, 12.0) == (0.0, 0)


def test_contagion_needs_overlap_and_is_absorbed_by_wide_diversification():
    # One instrument each: only A's holders go (1 group of 6). Two each: both groups that hold A (half
    # their portfolio) go, and their forced sales reach a neighbour's book. Six each: the shock is a
    # sixth of each portfolio, and nobody goes.
    alone, alone_books = _outcome(1, 22.0)
    assert alone == pytest.approx(1 / 6) and alone_books == 1
    overlapping, overlapping_books = _outcome(2, 22.0)
    assert overlapping > alone and overlapping_books > 1
    assert _outcome(6, 22.0) == (0.0, 0)
