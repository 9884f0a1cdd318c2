"""The unified account's uniMMR ladder: warning (a call), reduce-only, liquidation, worked by hand.

Notation: contract 1; the instruments' fixed rule asks 10% initial and 5% maintenance, so 10 lots long
at 100 (notional 1,000) need M = 50 of maintenance. uniMMR = equity / M; the default ladder calls
below 1.5 (75), lets the account only cut below 1.2 (60) and liquidates below 1.05 (52.5).
"""

import numpy as np
import pytest

from abm import config
from abm.margin.portfolio import build_portfolio_rule
from abm.margin.portfolio_settings import UnifiedAccountMargin
from abm.model import MarketModel
from tests.exchange_helpers import make_exchange


def test_each_rung_of_the_ladder_by_hand():
    exchange = make_exchange()
    ledger, checker = exchange.ledger, exchange.checker
    checker.portfolio_rule = build_portfolio_rule(UnifiedAccountMargin(rule="unified_account"), np.eye(1))
    counterparty = int(ledger.add_accounts(1, 1e9, "noise")[0])
    collateral = [80.0, 70.0, 55.0, 52.0]  # uniMMR 1.6, 1.4, 1.1, 1.04
    accounts = ledger.add_accounts(4, np.array(collateral), "leveraged_trader")
    ledger.set_checked(accounts, True)
    ledger.set_margin_mode(accounts, "portfolio")
    checker.uses_portfolio()
    for account in accounts.tolist():
        ledger.trade(account, counterparty, 0, 10, 100.0)
    check = checker.check(np.array([100.0]))
    free, warned, cutting, liquidated = accounts.tolist()
    # Maintenance requirement: the liquidation rung, 1.05 x 50 = 52.5.
    assert check.maintenance_requirement[accounts].tolist() == pytest.approx([52.5] * 4)
    assert check.breached.tolist() == [liquidated]
    assert check.called[accounts].tolist() == [False, True, True, False]  # below 75, not liquidated
    assert check.reduce_only[accounts].tolist() == [False, False, True, False]  # below 60


def test_bad_ladders_name_their_field():
    data = config.load_scenario(config.resolve_scenario("contagion")).model_dump(
        mode="json", exclude_unset=True
    )
    data["agents"][1]["margin_mode"] = "portfolio"
    data["portfolio_margin"] = {"rule": "unified_account", "reduce_only_ratio": 1.6}
    with pytest.raises(config.ScenarioError) as caught:
        config.scenario_from_dict(data)
    (line,) = caught.value.errors
    assert line.startswith("portfolio_margin") and "the ladder must rise" in line, line


def _unified_contagion(steps=360, **ladder):
    data = config.load_scenario(config.resolve_scenario("contagion")).model_dump(
        mode="json", exclude_unset=True
    )
    data["agents"][1]["margin_mode"] = "portfolio"
    data["portfolio_margin"] = {"rule": "unified_account", **ladder}
    return config.scenario_from_dict({**data, "steps": steps})


def test_an_order_from_a_reduce_only_account_may_cut_but_never_add_or_turn():
    model = MarketModel(_unified_contagion(), rng=3)
    model.step()
    ledger = model.ledger
    trader = next(
        agent
        for agent in model.agents
        if getattr(agent, "group", None) is not None and agent.group.label == "crowd"
    )
    account, market = trader.account, model.markets[0]
    held = ledger.position_of(account, 0)
    assert held > 0
    flags = np.zeros(ledger.n_accounts, dtype=bool)
    flags[account] = True
    ledger.set_reduce_only(flags)
    trader._trade_toward(2 * held, venue=market, account=account)  # add: nothing sent
    assert ledger.position_of(account, 0) == held
    trader._trade_toward(-held, venue=market, account=account)  # turn short: only the cut to 0
    assert ledger.position_of(account, 0) == 0
    ledger.set_reduce_only(None)
    assert not ledger.reduce_only.any()


def test_a_crash_walks_unified_accounts_down_the_ladder():
    # The contagion crash with the crowd in unified accounts: accounts pass through the reduce-only
    # rung (flagged at the end of some step) before they are liquidated, and the run keeps every
    # invariant.
    model = MarketModel(_unified_contagion(steps=600), rng=7, check_invariants=True)
    ever_reduce_only = np.zeros(0, dtype=bool)
    while model.running:
        model.step()
        flags = np.asarray(model.ledger.reduce_only)
        if len(ever_reduce_only) < len(flags):
            ever_reduce_only = np.r_[ever_reduce_only, np.zeros(len(flags) - len(ever_reduce_only), bool)]
        ever_reduce_only |= flags
    liquidated = np.flatnonzero(np.asarray(model.ledger.liquidated) > 0)
    assert len(liquidated) > 0 and ever_reduce_only[liquidated].any()
