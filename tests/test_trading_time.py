"""Arrivals in multifractal trading time (``trading_time:``, abm.trading_time), worked by hand."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from abm.config import ScenarioError, TradingTime, scenario_from_dict
from abm.model import MarketModel
from abm.population import Group
from abm.trading_time import TradingClock


class _Scripted:
    """A stand-in generator whose ``random(n)`` hands out the given uniforms in order."""

    def __init__(self, *draws):
        self.draws = [np.array(draw, dtype=float) for draw in draws]

    def random(self, n):
        draw = self.draws.pop(0)
        assert len(draw) == n, f"asked for {n} uniforms, the script has {len(draw)}"
        return draw


def test_clock_sequence_worked_by_hand():
    # Two factors, high 1.5 (low 0.5), redrawn with probability 1/4 (slowest: 4 steps) and 1/2 (2).
    settings = TradingTime(components=2, slowest_steps=4, fastest_steps=2, high=1.5)
    rng = _Scripted(
        [0.3, 0.7],  # step 0, every factor drawn: 0.3 < 0.5 high, 0.7 low -> 1.5 x 0.5 = 0.75
        [0.2, 0.6],  # step 1: 0.2 < 1/4 redraws the slow one, 0.6 >= 1/2 keeps the fast one
        [0.9],  # ... its new value: 0.9 -> low: 0.5 x 0.5 = 0.25
        [0.9, 0.1],  # step 2: the fast one is redrawn
        [0.4],  # ... high: 0.5 x 1.5 = 0.75
        [0.25, 0.5],  # step 3: 0.25 is not < 1/4 and 0.5 not < 1/2: nothing redrawn, no more draws
    )
    clock = TradingClock(settings, rng)
    assert clock.multiplier == 1.0  # before the first step
    assert clock.switch_probability.tolist() == pytest.approx([0.25, 0.5])
    assert [clock.advance() for _ in range(4)] == pytest.approx([0.75, 0.25, 0.75, 0.75])
    assert clock.factors.tolist() == [0.5, 1.5]
    assert rng.draws == []  # every scripted uniform used, none asked for beyond them


def test_clock_has_mean_one_and_its_slowest_factor_the_configured_pace():
    # Three factors redrawn every 1,000, 100 and 10 steps on average, high 1.2: the product's mean is
    # 1 (independent factors of mean 1); the slowest is redrawn about 200 times in 200,000 steps and
    # changes value at half of them (about 100, sd about 10).
    settings = TradingTime(components=3, slowest_steps=1_000, fastest_steps=10, high=1.2)
    clock = TradingClock(settings, np.random.default_rng(3))
    path = np.empty((200_000, 3))
    for t in range(len(path)):
        clock.advance()
        path[t] = clock.factors
    assert clock.switch_probability.tolist() == pytest.approx([0.001, 0.01, 0.1])
    assert path.prod(axis=1).mean() == pytest.approx(1.0, abs=0.03)
    changes = np.count_nonzero(np.diff(path, axis=0) != 0, axis=0)
    assert 70 <= changes[0] <= 130
    assert 700 <= changes[1] <= 1_300  # about 1,000
    assert 7_000 <= changes[2] <= 13_000  # about 10,000


def test_group_rate_is_the_configured_rate_times_both_factors_at_most_one():
    group = Group(0, SimpleNamespace(arrival_rate=0.2, kind="noise"), accounts=None)
    group.clock = SimpleNamespace(multiplier=2.0)
    assert group.arrival_rate == pytest.approx(0.4)  # 0.2 x 2
    group.activity = SimpleNamespace(multiplier=1.5)
    assert group.arrival_rate == pytest.approx(0.6)  # 0.2 x 1.5 x 2
    group.clock = SimpleNamespace(multiplier=4.0)
    assert group.arrival_rate == 1.0  # 0.2 x 1.5 x 4 = 1.2, at most 1


def _scenario(trading_time=None, shocks=()):
    return scenario_from_dict(
        {
            "name": "trading_time",
            "steps": 400,
            "seed": 5,
            "market": {"tick_size": 0.01, "mark_price": "index"},
            "fundamental": {"process": "gbm", "volatility": 0.0005},
            "agents": [
                {"kind": "market_maker", "count": 2, "levels": 5, "level_size": 20},
                {"kind": "noise", "count": 40, "arrival_rate": 0.1, "market_order_share": 0.5},
                {"kind": "fundamentalist", "count": 5, "arrival_rate": 0.1},
            ],
            "shocks": list(shocks),
            **({"trading_time": trading_time} if trading_time is not None else {}),
        }
    )


def test_the_clock_reaches_the_listed_kinds_and_newcomers():
    newcomers = {"count": 5, "leverage": {"distribution": "fixed", "value": 5.0}}
    inflow = {"type": "trader_inflow", "step": 10, "traders": newcomers}
    model = MarketModel(_scenario({"kinds": ["noise", "leveraged_trader"]}, [inflow]))
    makers, noise, fundamentalists = model.population.groups
    assert noise.clock is model.trading_clock
    assert makers.clock is None and fundamentalists.clock is None
    for _ in range(11):
        model.step()
    newcomers = model.population.groups[-1]
    assert newcomers.kind == "leveraged_trader" and newcomers.clock is model.trading_clock


def test_arrivals_follow_the_recorded_clock():
    # One slow factor (redrawn every 200 steps on average), high 1.8: the noise traders arrive at
    # 0.1 x 1.8 = 0.18 or 0.1 x 0.2 = 0.02 a step; their market orders make the volume.
    settings = {"components": 1, "slowest_steps": 200, "fastest_steps": 200, "high": 1.8, "kinds": ["noise"]}
    model = MarketModel(_scenario(settings), check_invariants=True)
    model.run()
    series = model.results().timeseries
    clock = series["margin_trading_time"].to_numpy()
    assert set(np.round(clock, 12)) == {0.2, 1.8}
    busy, quiet = series["volume"][clock > 1].mean(), series["volume"][clock < 1].mean()
    assert busy > 3 * quiet  # arrivals nine times as frequent: the volume follows them
    again = MarketModel(_scenario(settings))
    again.run()
    assert again.results().timeseries.equals(series)  # same scenario and seed, same table


def test_without_trading_time_there_is_no_clock_and_no_column():
    model = MarketModel(_scenario())
    model.run()
    assert model.trading_clock is None
    assert "margin_trading_time" not in model.results().timeseries.columns


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"fastest_steps": 50, "slowest_steps": 10}, "must not exceed slowest_steps"),
        ({"kinds": ["noise", "market_maker"]}, "market makers quote every step"),
        ({"kinds": ["noise", "noise"]}, "lists a kind twice"),
        ({"high": 1.0}, r"trading_time\.high"),
        ({"kinds": ["nobody"]}, r"trading_time\.kinds\.0"),
    ],
)
def test_settings_are_checked(settings, message):
    with pytest.raises(ScenarioError, match=message):
        _scenario(settings)
