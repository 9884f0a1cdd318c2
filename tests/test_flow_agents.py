"""Agents that make the market move by itself: metaorder splitters and strategy switchers."""

import math

import numpy as np
import pytest

from abm import MarketModel
from abm.agents import MetaorderTrader, SwitchingTrader
from abm.book import BUY, SELL
from abm.config import ScenarioError, load_scenario, resolve_scenario, scenario_from_dict


def _with(name, **group):
    data = load_scenario(resolve_scenario(name)).model_dump(mode="json")
    data["agents"].append(group)
    return data


def _model(kind_class, name="calm", seed=1, steps=None, **group):
    model = MarketModel(_with(name, **group), rng=seed, **({"steps": steps} if steps else {}))
    return model, next(iter(model.agents_by_type[kind_class]))


def test_metaorder_lengths_have_the_pareto_tail():
    # floor(min_length x U^(-1/alpha)) >= l exactly when U <= (min_length / l)^alpha. With
    # min_length 2 and alpha 1.5: P(L >= 2) = 1, P(L >= 8) = (2/8)^1.5 = 0.125, P(L >= 32) = 1/64.
    model, trader = _model(MetaorderTrader, kind="metaorder", count=1, min_length=2, max_length=1_000)
    lengths = []
    for _ in range(40_000):
        trader._start(0)
        lengths.append(trader.remaining)
    lengths = np.array(lengths)
    assert lengths.min() == 2 and lengths.max() <= 1_000
    for length, share in ((8, 0.125), (32, 1 / 64)):
        # within 4 binomial standard errors of 40,000 draws
        assert (lengths >= length).mean() == pytest.approx(
            share, abs=4 * math.sqrt(share * (1 - share) / 40_000)
        )


def test_a_metaorder_leans_against_the_position_and_stops_at_the_limit():
    model, trader = _model(MetaorderTrader, kind="metaorder", count=1, max_position=100)
    # At +100 lots (the limit) a buy has probability 1/2 - 100 / 200 = 0: every new metaorder sells.
    for _ in range(200):
        trader._start(100)
        assert trader.side == SELL
    # Flat: half of them buy (within 4 standard errors of 2,000 draws: 0.5 +- 0.045).
    sides = []
    for _ in range(2_000):
        trader._start(0)
        sides.append(trader.side)
    assert np.mean(np.array(sides) == BUY) == pytest.approx(0.5, abs=0.045)


def test_metaorder_signs_are_persistent():
    # One trader acting every step sends one child order a step: the signs of its market orders
    # repeat within a metaorder, so their autocorrelation is positive and falls with the lag.
    model, trader = _model(
        MetaorderTrader,
        steps=1_500,
        kind="metaorder",
        count=1,
        arrival_rate=1.0,
        child_size=1,
        max_position=10**6,
    )
    model.run()
    trades = model.results().trades
    signs = trades[trades.taker == trader.account].groupby("step").taker_side.first().to_numpy(float)
    assert len(signs) == 1_500  # a child order every step
    centred = signs - signs.mean()
    acf = [centred[:-k] @ centred[k:] / (centred @ centred) for k in (1, 5, 20)]
    assert acf[0] > acf[1] > acf[2] > 0.0


def test_a_switcher_trades_the_strategy_it_draws():
    model, trader = _model(
        SwitchingTrader,
        kind="switching",
        count=1,
        chartist_aggression=5_000.0,
        fundamentalist_aggression=3_000.0,
    )
    for _ in range(30):
        model.step()
    trader.pool.record = lambda *args: None  # hold the share where the test puts it
    market, ledger = model.market, model.ledger
    marks = market.mark_history(model.steps - 1)
    trend = math.log(marks[-1] / marks[-11])  # trend_window 10
    mispricing = math.log(market.fundamental / (market.book.mid() * market.tick_size))  # V / mid
    for share, strategy, demand in (
        (1.0, "chartist", 5_000.0 * trend),
        (0.0, "fundamentalist", 3_000.0 * mispricing),
    ):
        trader.pool.share = share
        before = ledger.position_of(trader.account)
        trader.step()
        # A market order of int(|aggression x signal|) lots, at most max_order (20), the signal's way.
        expected = int(math.copysign(min(20, int(abs(demand))), demand))
        assert trader.strategy == strategy
        assert ledger.position_of(trader.account) - before == expected


def test_a_young_run_gives_the_chartists_the_trend_so_far():
    # trend_window 50 after 20 steps: the trend is the log return since the first mark, not 0.
    model, trader = _model(
        SwitchingTrader, kind="switching", count=1, chartist_aggression=400_000.0, trend_window=50
    )
    for _ in range(20):
        model.step()
    trader.pool.record = lambda *args: None
    trader.pool.share = 1.0
    marks = model.market.mark_history(model.steps - 1)
    assert len(marks) == 20  # fewer than the window: the trend runs from the first mark
    trend = math.log(marks[-1] / marks[0])
    assert trend != 0.0
    before = model.ledger.position_of(trader.account)
    trader.step()
    expected = int(math.copysign(min(20, int(abs(400_000.0 * trend))), trend))
    assert trader.strategy == "chartist"
    assert model.ledger.position_of(trader.account) - before == expected != 0


def test_trends_that_pay_bring_the_chartists_in():
    # slow_bleed's index drifts down 0.05% a step from step 100 to 500: following the trend pays and
    # leaning on the index does not, so the chartists' share rises from 0.5 (the first 100 steps: the
    # mark hardly moves, neither strategy earns) to 0.72 on average over steps 200-399 (seed 1).
    model, trader = _model(
        SwitchingTrader, name="slow_bleed", steps=400, kind="switching", count=20, arrival_rate=1.0
    )
    shares = []
    while model.running:
        model.step()
        shares.append(trader.pool.share)
    shares = np.array(shares)
    assert shares[:100].mean() == pytest.approx(0.5, abs=0.05)
    assert shares[200:].mean() > 0.6


def test_metaorder_lengths_must_be_in_order():
    with pytest.raises(
        ScenarioError, match=r"agents\.\d+.*max_length \(3\) must be at least min_length \(5\)"
    ):
        scenario_from_dict(_with("calm", kind="metaorder", count=1, min_length=5, max_length=3))
