"""Validation case 1 at a reduced size: stylized facts of the calm_facts scenario (two seeds, 3,000 steps).

Only the facts the model shows at this size are asserted; the full table over more seeds and steps,
and the facts the model does not reproduce, are in docs/validation.md.
"""

import pytest

from abm.config import load_scenario, resolve_scenario
from abm.runs import run_scenario
from abm.stylized import chi2_survival, stylized_facts

SEEDS = (1, 2)


# One worker runs this module (pytest -n): its module fixture is made once, not once per worker.
pytestmark = pytest.mark.xdist_group("test_case_calm_facts")


@pytest.fixture(scope="module")
def calm_runs():
    runs = []
    for seed in SEEDS:
        result = run_scenario(load_scenario(resolve_scenario("calm_facts"), ["steps=3000"]), seed=seed)
        runs.append((result, stylized_facts(result.timeseries, 1)))
    return runs


def test_calm_has_fat_tails_in_the_published_range(calm_runs):
    for _, facts in calm_runs:
        assert facts["excess_kurtosis"] > 0
        assert 2.0 <= facts["tail_index"] <= 5.0


def test_calm_volatility_clusters(calm_runs):
    for _, facts in calm_runs:
        assert facts["abs_acf_lag1"] > facts["acf_band"]
    # ARCH LM over both seeds: independent runs, so the statistics add up to a chi2 with 2 x 5 dof.
    combined = sum(facts["arch_lm"] for _, facts in calm_runs)
    assert chi2_survival(combined, 5 * len(SEEDS)) < 0.05


def test_calm_aggregational_gaussianity_and_volume_volatility(calm_runs):
    for _, facts in calm_runs:
        kurtosis = facts["kurtosis_by_interval"]
        assert kurtosis["64"] < kurtosis["1"]
        assert facts["volume_volatility_correlation"] > 0


def test_calm_moves_and_liquidates_next_to_nobody(calm_runs):
    for result, facts in calm_runs:
        assert facts["zero_return_share"] < 0.5  # the mark moves: not the static market of spiral's settings
        assert result.summary["liquidated_accounts"] <= 5
