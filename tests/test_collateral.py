"""Collateral that is not cash (abm.collateral): units, haircuts, depegs and revaluation, worked by hand.

Notation: an account posting collateral ``C`` in an asset at price ``p`` with haircut ``h`` holds
``C / (p (1 - h))`` units; quoted at ``q`` its holding is worth ``units x q x (1 - h)``, and every change
of that is a ``revaluation`` of the account's collateral (money from outside, in the journal).
"""

import math
from types import SimpleNamespace

import numpy as np
import pytest

from abm import config
from abm.collateral import CollateralBook
from abm.invariants import check_ledger
from tests.exchange_helpers import make_exchange


def _asset(**settings):
    values = dict(name="USDX", price=1.0, volatility=0.0, haircut=0.1, volatility_haircut=None)
    return SimpleNamespace(**{**values, **settings})


def _book_and_account(collateral=100.0, **asset):
    exchange = make_exchange()
    ledger = exchange.ledger
    account = int(ledger.add_accounts(1, collateral, "leveraged_trader")[0])
    book = CollateralBook([_asset(**asset)])
    book.hold(np.array([account]), "USDX", ledger.collateral[[account]])
    return exchange, ledger, book, account


def test_a_depeg_takes_the_haircut_value_away_and_the_peg_brings_it_back():
    exchange, ledger, book, account = _book_and_account()
    rng = np.random.default_rng(0)
    # 100 at 1.00 less 10%: 111.11 units. Quoted at 0.65: 111.11 x 0.65 x 0.9 = 65, so -35.
    assert book.units[0][0] == pytest.approx(100 / 0.9)
    book.reset()
    book.depeg("USDX", 0.65)
    assert book.step(rng, ledger) == pytest.approx(-35.0)
    assert ledger.collateral_of(account) == pytest.approx(65.0)
    check_ledger(ledger, 0, [100.0])  # money left the system as revaluation: conservation holds
    book.reset()  # the depeg is over: back to par, +35
    assert book.step(rng, ledger) == pytest.approx(35.0)
    assert ledger.collateral_of(account) == pytest.approx(100.0)
    journal = ledger.journal.frame(["X"])
    assert journal.loc[journal["kind"] == "revaluation", "amount"].tolist() == pytest.approx([-35.0, 35.0])
    check_ledger(ledger, 1, [100.0])


def test_an_account_without_positive_collateral_has_lost_its_holding():
    exchange, ledger, book, account = _book_and_account()
    counterparty = int(ledger.add_accounts(1, 1e6, "noise")[0])
    # Long 10 at 100, sold at 85: a realised loss of 150, so the collateral is 100 - 150 = -50: the
    # exchange has taken the asset to cover it, and a depeg changes nothing for the account.
    ledger.trade(account, counterparty, 0, 10, 100.0)
    ledger.trade(counterparty, account, 0, 10, 85.0)
    assert ledger.collateral_of(account) == pytest.approx(-50.0)
    book.reset()
    book.depeg("USDX", 0.5)
    assert book.step(np.random.default_rng(0), ledger) == 0.0
    assert ledger.collateral_of(account) == pytest.approx(-50.0) and book.units[0][0] == 0.0


def test_a_haircut_that_follows_the_assets_volatility():
    # Multiple 2 over 4 steps, EWMA decay 0.5 from 0, floor 5%. Quoted at 0.97: r = ln 0.97 = -0.0304592,
    # variance 0.5 x r^2 = 4.63882e-4, haircut 2 x sqrt(4.63882e-4 x 4) = 8.61516% (above the floor);
    # the unit is worth 0.97 x (1 - 0.0861516) = 0.886433, against 0.95 before.
    scaled = SimpleNamespace(multiple=2.0, horizon=4, decay=0.5, cap=0.5)
    exchange, ledger, book, account = _book_and_account(haircut=0.05, volatility_haircut=scaled)
    book.reset()
    book.depeg("USDX", 0.97)
    book.step(np.random.default_rng(0), ledger)
    assert book.haircut[0] == pytest.approx(2 * math.sqrt(0.5 * math.log(0.97) ** 2 * 4))
    assert book.unit_value[0] == pytest.approx(0.886433, abs=1e-6)
    assert ledger.collateral_of(account) == pytest.approx(100 / 0.95 * 0.886433, abs=1e-4)
    state = book.state()
    assert state == pytest.approx({"collateral_USDX_price": 0.97, "collateral_USDX_haircut": book.haircut[0]})


def test_a_volatile_asset_moves_by_the_runs_generator_and_reproducibly():
    def path(seed):
        exchange, ledger, book, account = _book_and_account(volatility=0.01)
        rng = np.random.default_rng(seed)
        for _ in range(50):
            book.reset()
            book.step(rng, ledger)
        return book.price[0], ledger.collateral_of(account)

    assert path(3) == path(3) and path(3) != path(4)
    price, collateral = path(3)
    # Every change of the price reached the collateral: 100 x price / 1.00 (the haircut is fixed).
    assert collateral == pytest.approx(100.0 * price)


def test_an_asset_that_tracks_an_index_moves_with_it():
    # A coin posted as collateral for a contract on that coin: 100 of collateral at price 100 less 10%
    # is 100 / 90 = 1.1111 units. The index falls from 100 to 90: the coin is at 100 x 90 / 100 = 90,
    # the unit worth 90 x 0.9 = 81 and the holding 1.1111 x 81 = 90: -10. Then to 45: 45 x 0.9 x 1.1111
    # = 45, another -45. Nothing is drawn from the generator.
    market = SimpleNamespace(index=100.0)
    exchange = make_exchange()
    ledger = exchange.ledger
    account = int(ledger.add_accounts(1, 100.0, "leveraged_trader")[0])
    book = CollateralBook([_asset(name="BTC", price=100.0, tracks="PERP")], {"PERP": market})
    book.hold(np.array([account]), "BTC", ledger.collateral[[account]])
    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    assert book.units[0][0] == pytest.approx(100 / 90)
    market.index = 90.0
    book.reset()
    assert book.step(rng, ledger) == pytest.approx(-10.0)
    assert book.state()["collateral_BTC_price"] == pytest.approx(90.0)
    market.index = 45.0
    book.reset()
    assert book.step(rng, ledger) == pytest.approx(-45.0)
    assert ledger.collateral_of(account) == pytest.approx(45.0)
    assert rng.bit_generator.state == state
    with pytest.raises(ValueError, match="tracks 'PERP': no such market given"):
        CollateralBook([_asset(name="BTC", tracks="PERP")])
    journal = ledger.journal.frame(["X"])
    assert journal.loc[journal["kind"] == "revaluation", "amount"].tolist() == pytest.approx([-10.0, -45.0])
    check_ledger(ledger, 1, [45.0])


def test_coin_margined_traders_collateral_follows_the_index_in_a_run():
    # depeg_collateral's first 200 longs with their collateral in the perpetual's own coin (no depeg, no
    # haircut) for 40 steps, the other 100 in cash: the coin's price is 100 x index / the index at the
    # start every step, and each coin long still holding it has had its collateral (100 at the start)
    # revalued by 100 x (index / start - 1); the cash longs not at all. Two basis arbitrageurs post
    # 10,000 each in the coin too: 10,000 x (index / start - 1) each.
    from abm.model import MarketModel

    data = _depeg_scenario()
    data["collateral_assets"] = [{"name": "BTC", "price": 100.0, "tracks": "PERP"}]
    data["agents"][1]["collateral_asset"] = "BTC"
    data["agents"].append(
        {
            "kind": "basis_arbitrageur",
            "label": "arbs",
            "count": 2,
            "collateral": 10_000.0,
            "collateral_asset": "BTC",
        }
    )
    data["shocks"] = []
    data["steps"] = 40
    model = MarketModel(config.scenario_from_dict(data), rng=3, check_invariants=True)
    start = model.markets[0].index
    model.run()
    result = model.results()
    series = result.timeseries
    assert series["margin_collateral_BTC_price"].to_numpy() == pytest.approx(
        100.0 * series["index"].to_numpy() / start, rel=1e-12
    )
    journal = result.ledger
    revalued = journal[journal["kind"] == "revaluation"].groupby("account_id")["amount"].sum()
    traders = result.accounts.loc[result.accounts["group"] == "usdx_longs", "account_id"]
    arbitrageurs = result.accounts.loc[result.accounts["group"] == "arbs", "account_id"]
    assert len(traders) == 200 and len(arbitrageurs) == 2
    assert sorted(revalued.index) == sorted([*traders, *arbitrageurs])  # the coin's holders, no other
    assert (model.ledger.collateral[traders.to_numpy()] > 0).all()  # each still holds its coin
    move = series["index"].iloc[-1] / start - 1.0
    assert move != 0.0
    assert revalued.loc[traders].to_numpy() == pytest.approx(100.0 * move, rel=1e-9)
    assert revalued.loc[arbitrageurs].to_numpy() == pytest.approx(10_000.0 * move, rel=1e-9)


def _depeg_scenario(**changes):
    data = config.load_scenario(config.resolve_scenario("depeg_collateral")).model_dump(
        mode="json", exclude_unset=True
    )
    for path, value in changes.items():
        target = data
        *parents, last = path.split(".")
        for key in parents:
            target = target[int(key)] if key.isdigit() else target[key]
        target[last] = value
    return data


@pytest.mark.parametrize(
    ("changes", "path", "words"),
    [
        (
            {"agents.1.collateral_asset": "USDY"},
            "agents.1.collateral_asset",
            "unknown collateral asset 'USDY'",
        ),
        (
            {"shocks.0.asset": "USDY"},
            "shocks.0.asset",
            "unknown collateral asset 'USDY' (the scenario has: USDX)",
        ),
        ({"collateral_assets.0.haircut": 1.0}, "collateral_assets.0.haircut", "must be < 1"),
        ({"shocks.0.fraction": 1.5}, "shocks.0.fraction", "must be < 1"),
        (
            {"collateral_assets.0.tracks": "BTCUSD"},
            "collateral_assets.0.tracks",
            "unknown instrument 'BTCUSD' (the scenario has: PERP)",
        ),
        (
            {"collateral_assets.0.tracks": "PERP", "collateral_assets.0.volatility": 0.01},
            "collateral_assets.0",
            "give volatility or tracks, not both",
        ),
    ],
)
def test_bad_collateral_settings_name_their_field(changes, path, words):
    with pytest.raises(config.ScenarioError) as caught:
        config.scenario_from_dict(_depeg_scenario(**changes))
    (line,) = caught.value.errors
    assert line.startswith(path) and words in line, line


def test_two_assets_of_one_name_are_bad_input():
    data = _depeg_scenario()
    data["collateral_assets"].append({"name": "USDX"})
    with pytest.raises(config.ScenarioError) as caught:
        config.scenario_from_dict(data)
    (line,) = caught.value.errors
    assert line.startswith("collateral_assets.1.name") and "duplicate collateral asset 'USDX'" in line
