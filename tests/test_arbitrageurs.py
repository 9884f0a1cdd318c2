"""Basis arbitrageurs: the spot hedge, the entry and exit rule, and the margin that bounds them."""

import numpy as np
import pytest
from processes import on_two_processes

from abm import MarketModel
from abm.agents import BasisArbitrageur
from abm.config import ScenarioError, load_scenario, resolve_scenario, scenario_from_dict


def _with_arbitrageurs(name, **group):
    data = load_scenario(resolve_scenario(name)).model_dump(mode="json")
    data["agents"].append({"kind": "basis_arbitrageur", **group})
    return data


def _model(name="flash_crash", seed=2, **group):
    model = MarketModel(_with_arbitrageurs(name, **group), rng=seed, check_invariants=True)
    return model, list(model.agents_by_type[BasisArbitrageur])


def test_the_spot_hedge_is_worked_at_the_index():
    # flash_crash's contract is 0.1 units. A long of 30 lots at index 100 is hedged by selling
    # 30 x 0.1 = 3 units of spot: hedge -3, hedge_cash 3 x 100 = 300, worth 300 - 3 x 100 = 0.
    model, (arbitrageur,) = _model(count=1)
    model.market.index = 100.0
    arbitrageur._match_hedge(30)
    assert (arbitrageur.hedge, arbitrageur.hedge_cash, arbitrageur.spot_value) == (-3.0, 300.0, 0.0)
    # Spot falls to 90: the short spot leg gains 3 x 10 = 30 (300 - 3 x 90), what the 30 lots lose
    # on the perpetual, 30 x 0.1 x 10 = 30, if the perpetual fell with spot.
    model.market.index = 90.0
    assert arbitrageur.spot_value == pytest.approx(30.0)
    # Cut to 10 lots: buy back 2 units at 90 (hedge -1, cash 300 - 180 = 120); the leg is still
    # worth 120 - 1 x 90 = 30, since spot trades at the index it values them at.
    arbitrageur._match_hedge(10)
    assert (arbitrageur.hedge, arbitrageur.hedge_cash) == (-1.0, 120.0)
    assert arbitrageur.spot_value == pytest.approx(30.0)


def test_it_enters_up_to_its_leverage_and_max_order_and_unwinds_when_the_basis_closes():
    model, (arbitrageur,) = _model(count=1, collateral=500.0, leverage=5.0, max_order=1_000)
    model.step()  # the makers quote
    market, ledger = model.market, model.ledger
    mid = market.book.mid() * market.tick_size
    # The index 2% above the mid: a basis of -2%, past entry_basis 0.5%; it buys. Its most is
    # int(5 x 500 / (mark 100 x 0.1)) = 250 lots, below max_order 1,000 and below what initial margin
    # 4% allows (500 / (0.04 x 10) = 1,250 lots).
    market.index = mid * 1.02
    assert market.mark == 100.0
    arbitrageur._trade_the_basis()
    assert ledger.position_of(arbitrageur.account, market.column) == 250
    # The basis inside entry_basis but outside exit_basis (0.3%): it holds.
    market.index = mid / 0.997
    arbitrageur._trade_the_basis()
    assert ledger.position_of(arbitrageur.account, market.column) == 250
    # At the index (a basis under exit_basis 0.1%) it unwinds, max_order lots a step: all 250.
    market.index = market.book.mid() * market.tick_size
    arbitrageur._trade_the_basis()
    assert ledger.position_of(arbitrageur.account, market.column) == 0


def test_in_a_flash_crash_they_buy_the_wick_hedged_and_leave_flat():
    model, arbitrageurs = _model(seed=3, count=5, collateral=20_000.0, max_order=100)
    held = []
    while model.running:
        model.step()
        positions = [model.ledger.position_of(a.account, a.market.column) for a in arbitrageurs]
        # After every step each one's spot hedge matches its perpetual (contract 0.1 units a lot).
        assert [a.hedge for a in arbitrageurs] == pytest.approx([-0.1 * p for p in positions])
        held.append(sum(positions))
    held = np.array(held)
    # Flat while the calm basis stays inside 0.5%; long from the sweep at 300; flat again at the end,
    # the mid back within 0.1% of the index.
    assert not held[:299].any()
    assert held[301] > 0 and (held >= 0).all()
    assert held[-1] == 0


def test_a_margin_call_is_met_from_reserves_else_the_position_is_cut():
    # One arbitrageur with 100 at 20x buys int(20 x 100 / (100 x 0.1)) = 200 lots; then the mark
    # falls 3% to 97 and the call is answered. The requirement is initial margin 4% of the notional,
    # 200 x 0.1 x 97 x 0.04 = 77.6; its equity E is about 100 - 200 x 0.1 x 3 = 40 (less the spread).
    def called(reserves):
        model, (arbitrageur,) = _model(
            count=1, collateral=100.0, leverage=20.0, max_order=1_000, reserves=reserves
        )
        model.step()
        market, ledger = model.market, model.ledger
        market.index = market.book.mid() * market.tick_size * 1.02
        arbitrageur._trade_the_basis()
        assert ledger.position_of(arbitrageur.account, market.column) == 200
        model.marks = np.array([97.0])
        equity = ledger.account_equity(arbitrageur.account, model.marks)
        assert 30.0 < equity < 40.0
        arbitrageur._answer_margin_call()
        return arbitrageur, ledger, 77.6 - equity, equity

    # Reserves 100 cover the shortfall 77.6 - E: deposited exactly, the 200 lots kept.
    arbitrageur, ledger, shortfall, _ = called(100.0)
    assert ledger.deposits[arbitrageur.account] == pytest.approx(shortfall)
    assert arbitrageur.reserves == pytest.approx(100.0 - shortfall)
    assert ledger.position_of(arbitrageur.account) == 200
    # Reserves 20 do not: all 20 go in, and the position is cut to what E + 20 carries at 4%:
    # int((E + 20) / (0.04 x 97 x 0.1)) lots, sold into the book at once.
    arbitrageur, ledger, shortfall, equity = called(20.0)
    assert ledger.deposits[arbitrageur.account] == pytest.approx(20.0) and arbitrageur.reserves == 0.0
    assert ledger.position_of(arbitrageur.account) == int((equity + 20.0) / (0.04 * 97.0 * 0.1))


def _deepest_discount(collateral, seed):
    # module level: it runs in another process
    model, arbitrageurs = _model(
        "crash_2020_03_12",
        seed,
        count=10,
        collateral=collateral,
        entry_basis=0.01,
        exit_basis=0.002,
        leverage=10.0,
        max_order=200,
    )
    held = 0
    while model.running:
        model.step()
        held = max(held, sum(abs(model.ledger.position_of(a.account)) for a in arbitrageurs))
    ts = model.results().timeseries
    return (ts["mid"] / ts["index"] - 1.0).min(), held


def test_thinly_funded_arbitrageurs_bound_the_crash_basis_less():
    # crash_2020_03_12 with ten arbitrageurs entering at a 1% basis, exiting at 0.2%, up to 10x.
    # What they can hold is 10 x their equity: with 300 each they hold at most 10.7-12.9k lots
    # between them on seeds 1-3 (short the pre-crash premium, their gains let them grow), with 3,000
    # each 19.2-20k; the thin ones leave the crash discount deeper on every seed (-1.8 to -2.7%
    # against -0.8 to -1.6%).
    runs = on_two_processes(
        _deepest_discount, [(collateral, seed) for seed in (1, 2, 3) for collateral in (300.0, 3_000.0)]
    )
    for (thin, thin_held), (funded, funded_held) in zip(runs[::2], runs[1::2], strict=True):
        assert thin < funded < 0.0
        assert thin_held < funded_held


def test_exit_basis_must_be_inside_entry_basis():
    data = _with_arbitrageurs("calm", count=1, entry_basis=0.002, exit_basis=0.002)
    with pytest.raises(ScenarioError, match=r"agents\.\d+.*exit_basis \(0\.002\) must be below entry_basis"):
        scenario_from_dict(data)
