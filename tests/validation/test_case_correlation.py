"""Validation case 5 at a reduced size (after Cont and Wagalath): shared holders correlate a crash.

The contagion crash hits A only. With the crowd cross-margined, its liquidations sell B as well as A, so
A's and B's one-step mark returns co-move in the wave; with the crowd isolated, each position is sold
alone and B hardly moves. Full size (10 seeds, means with intervals) in docs/validation.md, case 5.
"""

import math

import pytest

from abm.runs import run_scenario
from abm.validation import correlation_case_scenario, return_correlation

WAVE = (300, 450)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_liquidation_wave_correlates_the_books_only_through_shared_holders(seed):
    shared = run_scenario(correlation_case_scenario("cross", steps=450), seed=seed).timeseries
    apart = run_scenario(correlation_case_scenario("isolated", steps=450), seed=seed).timeseries
    assert return_correlation(shared, "A", "B", *WAVE) > 0.1
    alone = return_correlation(apart, "A", "B", *WAVE)
    assert math.isnan(alone) or alone < 0.05  # NaN: B did not move at all
