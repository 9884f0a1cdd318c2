"""The agents of validation cases 2 and 4: AR(1) noise demand and leveraged value funds (TFG 2012)."""

import math

import numpy as np
import pytest

from abm.agents import AR1NoiseTrader, ValueFund
from abm.config import scenario_from_dict
from abm.config.schema import AGENT_KINDS
from abm.model import MarketModel


def _scenario(fund=None, noise=None, margin=None):
    maker = {
        "kind": "market_maker",
        "count": 1,
        "levels": 50,
        "half_spread_ticks": 1,
        "level_spacing_ticks": 1,
        "level_size": 50,
        "inventory_limit": 1_000_000,
        "anchor_weight": 1.0,
        "collateral": 1e9,
    }
    agents = [maker]
    agents.append({"kind": "ar1_noise", "count": 1, "rho": 0.9, "sigma": 0.1, "scale": 100, **(noise or {})})
    agents.append(
        {"kind": "value_fund", "count": 4, "collateral": 1000.0, "aggression": 10.0, **(fund or {})}
    )
    return scenario_from_dict(
        {
            "name": "tfg_test",
            "steps": 50,
            "market": {"tick_size": 0.01, "initial_price": 100.0, "contract_size": 1.0},
            "fundamental": {"process": "constant"},
            "agents": agents,
            "margin": margin or {"rule": "fixed", "initial": 0.04, "maintenance": 0.02},
            "liquidation": {"insurance_fund": 1e6},
        }
    )


def _agents(model, cls):
    return [agent for agent in model.agents if isinstance(agent, cls)]


def test_new_kinds_are_registered():
    assert {"value_fund", "ar1_noise"} <= set(AGENT_KINDS)
    model = MarketModel(_scenario(), rng=1)
    assert len(_agents(model, ValueFund)) == 4 and len(_agents(model, AR1NoiseTrader)) == 1
    assert set(model.accounts_table()["kind"]) >= {"value_fund", "ar1_noise"}


def test_aggression_is_spread_evenly_across_the_group():
    model = MarketModel(_scenario(fund={"aggression": 10.0, "aggression_high": 40.0}), rng=1)
    assert sorted(fund.aggression for fund in _agents(model, ValueFund)) == [10.0, 20.0, 30.0, 40.0]


def test_ar1_k_step_transition_has_the_closed_form_moments():
    model = MarketModel(_scenario(), rng=3)
    noise = _agents(model, AR1NoiseTrader)[0]
    rho, sigma, k, draws = 0.9, 0.1, 5, 20_000
    values = np.empty(draws)
    for i in range(draws):
        noise.log_demand, noise._updated_step = 1.0, 0
        noise._advance(k - 1)  # k steps: 0..k-1
        values[i] = noise.log_demand
    # x_k = rho^k x_0 + sum_{j<k} rho^j sigma eps: mean rho^k, variance sigma^2 (1 - rho^2k) / (1 - rho^2)
    variance = sigma**2 * sum(rho ** (2 * j) for j in range(k))
    assert abs(values.mean() - rho**k) < 4 * math.sqrt(variance / draws)
    assert values.var() == pytest.approx(variance, rel=0.05)
    assert noise._updated_step == k


def test_ar1_noise_trades_to_its_target_in_lots():
    model = MarketModel(_scenario(), rng=5)
    noise = _agents(model, AR1NoiseTrader)[0]
    for _ in range(10):
        model.step()
        noise.step()  # acting twice in a step does not advance the AR(1) twice
        assert noise.position == round(100 * (math.exp(noise.log_demand) - 1))


def _give_position(model, fund, lots):
    maker = model.population.makers[0]
    model.ledger.open_position(fund.account, 0, lots, model.market.mark, maker.account)


def test_fund_above_its_cap_sells_back_to_it_at_once():
    model = MarketModel(_scenario(fund={"max_leverage": 5.0, "adjustment": 0.1}), rng=1)
    fund = _agents(model, ValueFund)[0]
    _give_position(model, fund, 80)  # 8x: 80 lots at 100 on 1,000 of equity
    fund.step()
    assert fund.position == 50  # 5 x 1,000 / 100, at once despite adjustment 0.1


def test_fund_cap_is_the_exchanges_when_that_is_lower():
    margin = {"rule": "fixed", "initial": 0.5, "maintenance": 0.25}  # the exchange allows 2x
    model = MarketModel(_scenario(fund={"max_leverage": 10.0}, margin=margin), rng=1)
    fund = _agents(model, ValueFund)[0]
    _give_position(model, fund, 40)  # 4x
    fund.step()
    assert fund.position == 20  # 1,000 / (0.5 x 100)


def test_fund_closes_a_share_of_the_gap_below_the_cap():
    model = MarketModel(_scenario(fund={"max_leverage": 20.0, "adjustment": 0.25, "aggression": 50.0}), rng=1)
    fund = _agents(model, ValueFund)[0]
    market = model.market
    market.fundamental = 110.0  # the future at 100 is cheap: log(110/100) = 0.0953, leverage 4.77
    equity = model.ledger.account_equity(fund.account, model.marks)
    wanted = int(min(50.0 * math.log(110.0 / (market.book.mid() * 0.01)), 20.0) * equity / market.mark)
    fund.step()
    assert fund.position == math.ceil(0.25 * wanted)
    market.fundamental = 90.0  # now dear: the fund wants nothing and sells a quarter of its position
    before = fund.position
    fund.step()
    assert fund.position == before - math.ceil(0.25 * before)


def test_fund_pays_out_equity_above_the_ceiling():
    model = MarketModel(_scenario(fund={"payout_above": 600.0}), rng=1)
    fund = _agents(model, ValueFund)[0]
    model.market.fundamental = 90.0  # no trade wanted
    fund.step()
    assert fund.position == 0
    assert model.ledger.account_equity(fund.account, model.marks) == pytest.approx(600.0)
    assert model.ledger.deposits[fund.account] == pytest.approx(-400.0)


def test_fund_is_recapitalised_after_a_liquidation():
    model = MarketModel(_scenario(fund={"reentry_steps": 3}), rng=1)
    fund = _agents(model, ValueFund)[0]
    model.market.fundamental = 90.0
    ledger = model.ledger
    ledger._collateral[fund.account] = 10.0  # what a liquidation left
    ledger.count_liquidation(fund.account)
    for _ in range(3):
        model.step()
        assert ledger.account_equity(fund.account, model.marks) == pytest.approx(10.0)
    model.step()
    assert ledger.account_equity(fund.account, model.marks) == pytest.approx(1000.0)
    assert ledger.deposits[fund.account] == pytest.approx(990.0)
