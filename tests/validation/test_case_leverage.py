"""Validation case 2 at a reduced size: leverage caps 1 and 20 (two seeds, 2,000 steps each).

The full sweep (1 to 20, more seeds and steps) is in docs/validation.md, with what it does not show.
"""

import numpy as np
import pytest

from abm.runs import run_scenario
from abm.stylized import stylized_facts
from abm.validation import leverage_case_scenario

# --------------------------------------------------------------------------- case 2: leverage


# One worker runs this module (pytest -n): its module fixture is made once, not once per worker.
pytestmark = pytest.mark.xdist_group("test_case_leverage")


@pytest.fixture(scope="module")
def leverage_sweep():
    facts = {}
    for level in (1.0, 20.0):
        facts[level] = [
            stylized_facts(run_scenario(leverage_case_scenario(level, 2000), seed=seed).timeseries, 1)
            for seed in (1, 2)
        ]
    return facts


def test_higher_leverage_clusters_volatility_more(leverage_sweep):
    def mean_abs_acf(level):
        return np.mean([np.mean(f["abs_acf"][:10]) for f in leverage_sweep[level]])

    def mean_arch(level):
        return np.mean([f["arch_lm"] for f in leverage_sweep[level]])

    assert mean_abs_acf(20.0) > mean_abs_acf(1.0)
    assert mean_arch(20.0) > mean_arch(1.0)


def test_leverage_one_is_close_to_normal(leverage_sweep):
    for facts in leverage_sweep[1.0]:
        # near normal: a modest excess kurtosis and a thin tail (tail index above the published 2-5 band)
        assert facts["excess_kurtosis"] < 3.0
        assert facts["tail_index"] > 4.0


def test_higher_leverage_fattens_the_tails(leverage_sweep):
    # Thurner, Farmer and Geanakoplos's headline: at the cap a fund's losses raise its leverage, so it
    # sells into the fall. Paired by seed: more excess kurtosis and a smaller tail index at 20 than at 1.
    for at_one, at_twenty in zip(leverage_sweep[1.0], leverage_sweep[20.0], strict=True):
        assert at_twenty["excess_kurtosis"] > at_one["excess_kurtosis"] + 1.0
        assert at_twenty["tail_index"] < at_one["tail_index"]
