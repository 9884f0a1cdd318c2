"""The portfolio-margin comparison at reduced size: the results the experiment is expected to show.

The full experiment is ``abm sweep scenarios/portfolio_comparison.yaml`` (8 methods x 2 stresses x 20
seeds; results in docs/margin-rules.md). Here some of its methods run on its first three common seeds,
straight from the sweep file (460 steps: both stresses start at step 300), so the test exercises the
shipped calibration.
"""

import pytest
from processes import summaries

from abm.sweep.spec import load_sweep

METHODS = {
    "crash_in_a": ("fixed", "correlation_offset", "span", "parametric_var"),
    "correlation_breakdown": ("fixed", "correlation_offset", "portfolio_var"),
}


# One worker runs this module (pytest -n): its module fixture is made once, not once per worker.
pytestmark = pytest.mark.xdist_group("test_portfolio_comparison")


@pytest.fixture(scope="module")
def comparison():
    plan = load_sweep("scenarios/portfolio_comparison.yaml")
    points = {(point.labels["shocks"], point.labels["portfolio_margin"]): point for point in plan.points}
    seeds = plan.seeds.seeds[:3]
    keys = [(stress, method) for stress, methods in METHODS.items() for method in methods]
    runs = [(points[key].scenario.model_copy(update={"steps": 460}), seed) for key in keys for seed in seeds]
    done = iter(summaries(runs))
    return {key: [next(done) for _ in seeds] for key in keys}


def test_every_method_and_stress_is_in_the_sweep_on_twenty_common_seeds():
    plan = load_sweep("scenarios/portfolio_comparison.yaml")
    labels = {(point.labels["shocks"], point.labels["portfolio_margin"]) for point in plan.points}
    assert {(stress, method) for stress, methods in METHODS.items() for method in methods} <= labels
    assert len(plan.points) == 16 and len(set(plan.seeds.seeds)) == 20


def test_offsets_in_calm_grow_from_no_offset_to_span_to_correlation_to_var(comparison):
    def offset(method):
        return [summary["portfolio_calm_offset"] for summary in comparison["crash_in_a", method]]

    for fixed, span, correlation in zip(
        offset("fixed"), offset("span"), offset("correlation_offset"), strict=True
    ):
        assert fixed == pytest.approx(0.0, abs=1e-12) and 0.0 < span < correlation
    assert min(offset("parametric_var")) > max(offset("correlation_offset"))


def test_in_the_crash_a_correlation_offset_leaves_more_bad_debt_than_no_offset(comparison):
    for fixed, offset in zip(
        comparison["crash_in_a", "fixed"], comparison["crash_in_a", "correlation_offset"], strict=True
    ):
        assert offset["bad_debt"] > fixed["bad_debt"]


def test_the_correlation_breakdown_liquidates_the_hedges_the_offsets_under_margined(comparison):
    for index, fixed in enumerate(comparison["correlation_breakdown", "fixed"]):
        for method in ("correlation_offset", "portfolio_var"):
            offset = comparison["correlation_breakdown", method][index]
            assert offset["liquidated_notional"] > fixed["liquidated_notional"], (method, index)


def test_a_risk_based_portfolio_margin_swings_more_than_a_scanning_one(comparison):
    for fixed, span, parametric in zip(
        comparison["crash_in_a", "fixed"],
        comparison["crash_in_a", "span"],
        comparison["crash_in_a", "parametric_var"],
        strict=True,
    ):
        assert fixed["portfolio_margin_peak_to_trough"] == pytest.approx(1.0)
        assert parametric["portfolio_margin_peak_to_trough"] > 2 * span["portfolio_margin_peak_to_trough"]
