"""Arrivals that follow volatility (``agents[i].activity``, abm.activity), worked by hand."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from abm.activity import ActivityFeedback
from abm.config import ActivityFeedback as Settings
from abm.config import ScenarioError, scenario_from_dict
from abm.model import MarketModel
from abm.population import Group


def _feed(feedback, market, log_returns):
    multipliers = []
    for size in log_returns:
        market.mark *= math.exp(size)
        multipliers.append(feedback.observe())
    return multipliers


def test_multiplier_sequence_worked_by_hand():
    # k = 2, horizons 1 and 3, baseline over at most 2 returns, clipped to 0.5-1.5.
    settings = Settings(sensitivity=2.0, horizons=[1, 3], baseline_steps=2)
    market = SimpleNamespace(mark=100.0)
    feedback = ActivityFeedback(settings, market)
    assert feedback.observe() == 1.0  # the first mark: no return yet
    got = _feed(feedback, market, [0.01, 0.03, 0.0, 0.05, -0.5])
    # Return 0.01: every average starts at it, ratio 1, multiplier 1.
    # 0.03: e1 = 0.03; e3 = 0.01 + 0.02 / 3 = 0.016667; b = 0.01 + 0.02 / min(2, 2) = 0.02;
    #       ratio = 0.023333 / 0.02 = 1.166667; 1 + 2 x 0.166667 = 1.333333.
    # 0.00: e1 = 0; e3 = 0.016667 - 0.016667 / 3 = 0.011111; b = 0.02 - 0.02 / 2 = 0.01;
    #       ratio 0.005556 / 0.01 = 0.555556; 1 + 2 x (-0.444444) = 0.111 -> clipped to 0.5.
    # 0.05: e1 = 0.05; e3 = 0.011111 + 0.038889 / 3 = 0.024074; b = 0.01 + 0.04 / 2 = 0.03;
    #       ratio 0.037037 / 0.03 = 1.234568; 1 + 2 x 0.234568 = 1.469136.
    # -0.5 (|r| 0.5): e1 = 0.5; e3 = 0.024074 + 0.475926 / 3 = 0.182716; b = 0.03 + 0.47 / 2 = 0.265;
    #       ratio 0.341358 / 0.265 = 1.288143; 1.576 -> clipped to 1.5.
    assert got == pytest.approx([1.0, 4.0 / 3.0, 0.5, 1.469136, 1.5], abs=1e-6)


def test_group_rate_is_the_configured_rate_times_the_multiplier_at_most_one():
    config = SimpleNamespace(arrival_rate=0.4, kind="noise")
    group = Group(0, config, accounts=None)
    assert group.arrival_rate == 0.4
    group.activity = SimpleNamespace(multiplier=1.5)
    assert group.arrival_rate == pytest.approx(0.6)
    group.activity = SimpleNamespace(multiplier=3.0)
    assert group.arrival_rate == 1.0


def _scenario(activity=None, shocks=()):
    noise = {"kind": "noise", "count": 40, "arrival_rate": 0.2, "market_order_share": 0.4}
    if activity is not None:
        noise["activity"] = activity
    return scenario_from_dict(
        {
            "name": "activity",
            "steps": 150,
            "seed": 5,
            "market": {"tick_size": 0.01, "mark_price": "index"},
            "fundamental": {"process": "gbm", "volatility": 0.0005},
            "agents": [{"kind": "market_maker", "count": 2, "levels": 5, "level_size": 20}, noise],
            "shocks": list(shocks),
        }
    )


def test_sensitivity_zero_leaves_the_run_unchanged():
    # Multiplier 1 exactly: the same binomial draws, so the same trades to the last lot.
    def trades(activity):
        model = MarketModel(_scenario(activity), check_invariants=True)
        model.run()
        return model.results().trades

    plain = trades(None)
    assert len(plain) > 100
    assert plain.equals(trades({"sensitivity": 0.0}))
    assert not plain.equals(trades({"sensitivity": 3.0}))


def test_a_jump_raises_the_rate_to_its_cap_the_step_after():
    # The mark is the index: a 5% jump at step 100 is a return 100 times the calm ones, so at step 101
    # every short average is far above the baseline and the multiplier is at max_multiplier.
    jump = {"type": "fundamental_jump", "step": 100, "size": -0.05}
    model = MarketModel(_scenario({"sensitivity": 1.0, "max_multiplier": 2.0}, [jump]))
    group = model.population.groups[1]
    for _ in range(101):
        model.step()
    assert group.activity.multiplier < 2.0
    model.step()  # step 101 reads the mark of step 100
    assert group.activity.multiplier == 2.0
    assert group.arrival_rate == pytest.approx(0.4)


def test_activity_is_refused_on_market_makers():
    with pytest.raises(ScenarioError, match="market makers quote every step"):
        scenario_from_dict(
            {
                "name": "bad",
                "agents": [{"kind": "market_maker", "count": 1, "activity": {"sensitivity": 1.0}}],
            }
        )


def test_activity_settings_are_checked():
    with pytest.raises(ScenarioError, match=r"agents\.0\.activity\.min_multiplier"):
        scenario_from_dict(
            {
                "name": "bad",
                "agents": [
                    {"kind": "noise", "count": 1, "activity": {"sensitivity": 1, "min_multiplier": 2}}
                ],
            }
        )
