"""Traders that come back after a liquidation: the delay, the top-up, the re-entry, the reserve."""

import numpy as np
import pytest

from abm import MarketModel

# The spiral's longs (agents.1: 200 traders, collateral 100, 10-25x, contract size 0.1), with no
# margin-call top-ups so that every deposit in the journal is a return.
NO_TOP_UPS = {"agents.1.margin_call": {"top_up": 0.0, "reduce": 0.5, "ignore": 0.5}}


def _run(comeback, seed=7, **overrides):
    settings = {"agents.1.comeback": comeback}
    model = MarketModel("spiral", rng=seed, check_invariants=True, **NO_TOP_UPS, **settings, **overrides)
    model.run()
    return model, model.results()


def test_a_liquidated_trader_returns_after_the_delay_topped_up_at_its_leverage():
    settings = {"agents.1.comeback": {"delay": 40}}
    model = MarketModel("spiral", rng=7, check_invariants=True, **NO_TOP_UPS, **settings)
    book, ledger = model.market.book, model.ledger
    returns = []
    while model.running:
        deposits_before = ledger.deposits.copy()
        mark_before = model.market.mark
        model.step()
        t = model.steps - 1  # the step just run
        for account in np.flatnonzero(ledger.deposits > deposits_before).tolist():
            # Back exactly 40 steps after a liquidation of the account (its count rose at t - 40).
            # The deposit topped the flat account's equity up to its opening collateral, 100.
            # It re-opened with a bid at the touch for int(leverage x 100 / (mark x 0.1)) lots at the
            # mark it saw (the last step's): what filled this step plus what still rests.
            leverage = model.population.agent_of(account).leverage
            target = int(leverage * 100.0 / (mark_before * 0.1))
            resting = sum(book.order(order)[3] for order in book.open_orders(account))
            filled = ledger.position_of(account)
            returns.append((t, account, filled + resting, target))
    assert len(returns) == model.comebacks.returned > 0
    result = model.results()
    journal = result.ledger
    for t, account, lots, target in returns:
        assert lots == target
        assert (result.liquidations.query("account_id == @account").step == t - 40).any()
        deposit = journal.query("kind == 'deposit' and account_id == @account and step == @t")
        assert len(deposit) == 1
        before = journal[(journal.account_id == account) & (journal.index <= deposit.index[0])].amount.sum()
        assert before == pytest.approx(100.0)


def test_a_market_order_return_takes_the_book_at_once():
    model, result = _run({"delay": 40, "order": "market"})
    deposits = result.ledger.query("kind == 'deposit'")
    assert len(deposits) == model.comebacks.returned > 0
    first = deposits.iloc[0]
    step, account = int(first.step), int(first.account_id)
    bought = result.trades.query("step == @step and taker == @account and taker_side == 1").quantity.sum()
    leverage = model.population.agent_of(account).leverage
    mark = result.timeseries.set_index("step").loc[step - 1, "mark"]
    assert bought == int(leverage * 100.0 / (mark * 0.1))  # the first return of the wave fills in full


def test_the_reserve_limits_what_the_returns_draw():
    model, result = _run({"delay": 40, "reserve": 1_000.0})
    deposits = result.ledger.query("kind == 'deposit'").amount
    # Each return draws at most 100 (an account's opening collateral): about ten returns, and the
    # last one gets what is left.
    assert deposits.sum() == pytest.approx(1_000.0)
    assert model.comebacks.deposited == pytest.approx(1_000.0)
    unlimited, _ = _run({"delay": 40})
    assert model.comebacks.returned < unlimited.comebacks.returned


def test_share_and_max_returns():
    nobody, result = _run({"delay": 40, "share": 0.0})
    assert nobody.comebacks.returned == 0 and not (result.ledger.kind == "deposit").any()
    once, result = _run({"delay": 20, "max_returns": 1})
    assert once.comebacks.returned > 0
    assert not result.ledger.query("kind == 'deposit'").account_id.duplicated().any()


def test_comebacks_beyond_the_horizon_leave_the_run_unchanged():
    # share = 1 draws nothing: a return that never comes leaves every table as without comebacks.
    _, late = _run({"delay": 5_000})
    plain = MarketModel("spiral", rng=7, **NO_TOP_UPS)
    plain.run()
    base = plain.results()
    assert late.trades.equals(base.trades)
    assert np.array_equal(late.timeseries.mark.to_numpy(), base.timeseries.mark.to_numpy())


def test_leverage_rebuilds_after_the_crash():
    # Without returns the liquidated longs' open interest is gone; with them, it comes back.
    _, without = _run({"delay": 5_000})
    _, with_returns = _run({"delay": 40})
    liquidated = without.liquidations.account_id.unique()
    accounts_without = without.accounts.set_index("account_id").loc[liquidated]
    accounts_with = with_returns.accounts.set_index("account_id").loc[liquidated]
    assert (accounts_without.position == 0).all()
    assert (accounts_with.position != 0).sum() > 0
