"""The margin-rule comparison at reduced size: the results the experiment is expected to show.

The full experiment is ``abm sweep scenarios/policy_comparison.yaml`` (13 rule set-ups x 20 seeds); here four
of its rules run on the first three of its common seeds, straight from the sweep file, so the test
exercises the shipped calibration rather than one of its own.
"""

import numpy as np
import pytest
from processes import summaries

from abm.sweep.spec import load_sweep

RULES = ("fixed", "ewma_vol", "ewma_speed_limit", "ewma_buffer")


# One worker runs this module (pytest -n): its module fixture is made once, not once per worker.
pytestmark = pytest.mark.xdist_group("test_policy_comparison")


@pytest.fixture(scope="module")
def comparison():
    plan = load_sweep("scenarios/policy_comparison.yaml")
    points = {point.group: point for point in plan.points}
    assert set(RULES) <= set(points), f"policy_comparison.yaml lost a rule: {sorted(points)}"
    seeds = plan.seeds.seeds[:3]
    done = iter(summaries([(points[rule].scenario, seed) for rule in RULES for seed in seeds]))
    return {rule: [next(done) for _ in seeds] for rule in RULES}


def mean(results, key):
    return float(np.mean([summary[key] for summary in results]))


def test_every_rule_gets_the_same_seeds():
    plan = load_sweep("scenarios/policy_comparison.yaml")
    assert len(plan.points) >= 11
    assert len(set(plan.seeds.seeds)) == len(plan.seeds.seeds) == 20


def test_volatility_rule_raises_margins_faster_than_fixed(comparison):
    assert mean(comparison["fixed"], "mmr_stress_increase") == 0.0
    assert mean(comparison["ewma_vol"], "mmr_stress_increase") > 1.0  # more than doubles in the stress
    largest_increase = "mmr_largest_increase"
    assert mean(comparison["ewma_vol"], largest_increase) > mean(comparison["fixed"], largest_increase)


@pytest.mark.parametrize("tool", ["ewma_speed_limit", "ewma_buffer"])
def test_speed_limit_and_buffer_lower_procyclicality(comparison, tool):
    assert mean(comparison[tool], "mmr_stress_increase") < mean(comparison["ewma_vol"], "mmr_stress_increase")


def test_calm_cost_equal_under_the_floor_and_higher_with_a_buffer(comparison):
    fixed = mean(comparison["fixed"], "calm_margin_per_notional")
    assert mean(comparison["ewma_vol"], "calm_margin_per_notional") == pytest.approx(fixed, rel=1e-6)
    assert mean(comparison["ewma_buffer"], "calm_margin_per_notional") > fixed * 1.1
