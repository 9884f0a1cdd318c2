"""The margin check given again while nothing it depends on moved, and made afresh when anything did.

Fixed rule (initial 10%, maintenance 5%, call buffer 20%), one instrument of contract 1. Figures
worked by hand in the comments.
"""

import numpy as np
import pandas as pd
import pytest
from exchange_helpers import make_exchange, make_pair_exchange

from abm.errors import InvariantError


def _case():
    """A long of 10 at 100 with 60 of collateral against a short of 10 with plenty."""
    exchange = make_exchange()
    ledger = exchange.ledger
    long, short = ledger.add_accounts(2, [60.0, 10_000.0], "leveraged_trader").tolist()
    ledger.trade(long, short, 0, 10, 100.0)
    return exchange, long, short


def test_a_check_with_nothing_moved_is_the_last_one():
    exchange, long, _ = _case()
    checker = exchange.checker
    # Mark 95: the long's equity 60 + 10 x (95 - 100) = 10; maintenance 5% x 950 = 47.5: breached.
    first = checker.check([95.0])
    assert first.equity[long] == pytest.approx(10.0)
    assert first.maintenance_requirement[long] == pytest.approx(47.5)
    assert first.breached.tolist() == [long]
    again = checker.check(np.array([95.0]))
    assert again is first and checker.reused == 1


def test_a_moved_mark_is_checked_afresh():
    exchange, long, _ = _case()
    checker = exchange.checker
    checker.check([95.0])
    # Mark 99: equity 60 - 10 = 50 against maintenance 49.5 (not breached) and the call line
    # 49.5 x 1.2 = 59.4: margin-called.
    moved = checker.check([99.0])
    assert moved.equity[long] == pytest.approx(50.0)
    assert moved.breached.tolist() == [] and moved.called[long]
    assert checker.reused == 0


# Every ledger operation that changes what a check reads, each applied to the case above.
OPERATIONS = {
    "deposit": lambda ledger, a, b: ledger.deposit(a, 40.0),
    "withdraw": lambda ledger, a, b: ledger.withdraw(a, 5.0),
    "transfer": lambda ledger, a, b: ledger.transfer(b, a, 40.0, "fee"),
    "pay_fee": lambda ledger, a, b: ledger.pay_fee(a, b, 5.0),
    "trade": lambda ledger, a, b: ledger.trade(b, a, 0, 4, 95.0),
    "pay_funding": lambda ledger, a, b: ledger.pay_funding(0, 0.01, 95.0),
    "revalue": lambda ledger, a, b: ledger.revalue(np.array([a]), np.array([-3.0])),
    "revalue_collateral": lambda ledger, a, b: ledger.revalue_collateral(np.array([a]), 0.5),
    "collect": lambda ledger, a, b: ledger.collect(np.array([a]), np.array([2.0]), b, "assessment"),
    "charge_pro_rata": lambda ledger, a, b: ledger.charge_pro_rata(
        np.array([0.0, 1.0, 0.0])[: ledger.n_accounts], b, 1.0
    ),
    "set_checked": lambda ledger, a, b: ledger.set_checked(a, False),
    "add_accounts": lambda ledger, a, b: ledger.add_accounts(1, 5.0, "noise"),
    "absorb_dust": lambda ledger, a, b: ledger.absorb_dust(a, b),
    "cover_deficit": lambda ledger, a, b: ledger.cover_deficit(a, b),
}


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_every_ledger_operation_makes_the_next_check_afresh(operation):
    exchange, long, short = _case()
    checker = exchange.checker
    kept = checker.check([95.0])
    OPERATIONS[operation](exchange.ledger, long, short)
    after = checker.check([95.0])
    assert after is not kept and checker.reused == 0
    fresh = checker._pass(np.array([95.0]))  # what a pass over the accounts gives now
    for name in ("equity", "maintenance_requirement", "breached", "called", "exposed"):
        assert np.array_equal(getattr(after, name), getattr(fresh, name)), name


def test_a_deposit_lifts_the_breach_it_was_reused_for():
    exchange, long, _ = _case()
    checker = exchange.checker
    assert checker.check([95.0]).breached.tolist() == [long]
    # 40 more: equity 10 + 40 = 50 >= maintenance 47.5, below the call line 47.5 x 1.2 = 57: called.
    exchange.ledger.deposit(long, 40.0)
    after = checker.check([95.0])
    assert after.equity[long] == pytest.approx(50.0)
    assert after.breached.tolist() == [] and after.called[long]


def test_new_rates_in_force_are_checked_afresh():
    exchange, long, _ = _case()
    checker = exchange.checker
    checker.check([99.0])  # called, not breached (above)
    policy = checker.policies[0]
    # Maintenance raised to 6% at once: 6% x 990 = 59.4 > equity 50: breached.
    policy.announce(0, 0.12, 0.06, 0)
    after = checker.check([99.0])
    assert policy.mmr == pytest.approx(0.06)
    assert after.maintenance_requirement[long] == pytest.approx(59.4)
    assert after.breached.tolist() == [long]


def test_portfolio_accounts_are_always_checked_afresh():
    exchange = make_pair_exchange(correlation=0.5)
    ledger, checker = exchange.ledger, exchange.checker
    a, b = ledger.add_accounts(2, 1_000.0, "leveraged_trader").tolist()
    ledger.set_margin_mode(a, "portfolio")
    checker.uses_portfolio()
    ledger.trade(a, b, 0, 5, 100.0)
    first = checker.check([100.0, 100.0])
    assert checker.check([100.0, 100.0]) is not first and checker.reused == 0


def test_verify_reuse_catches_a_write_behind_the_ledgers_back():
    exchange, long, _ = _case()
    checker = exchange.checker
    checker.verify_reuse = True
    checker.check([95.0])
    exchange.ledger._collateral[long] += 100.0  # no operation: the version does not move
    with pytest.raises(InvariantError, match="margin check reused while its inputs moved") as caught:
        checker.check([95.0])
    assert caught.value.invariant == "margin_check_reuse" and caught.value.step == 0
    assert caught.value.accounts == (long,)


def test_every_ledger_method_that_writes_what_a_check_reads_advances_the_version():
    """Read from the source, so that a new operation cannot forget it."""
    import inspect
    import re

    from abm.ledger import Ledger

    writes = re.compile(
        r"(self\._(position|collateral|entry_price|checked|margin_mode)\[[^\]]*\]"
        r"|\b(position|entry)\[account, instrument\])\s*(=|\+=|-=)[^=]"
    )
    forgetful = []
    for name, method in inspect.getmembers(Ledger, inspect.isfunction):
        source = inspect.getsource(method)
        if writes.search(source) and "self.state_version += 1" not in source:
            forgetful.append(name)
    assert forgetful == []
    assert "add_accounts" in {name for name, _ in inspect.getmembers(Ledger, inspect.isfunction)}


def test_the_recorder_sums_a_reused_check_once(monkeypatch):
    """A row from a reused check takes the sums of the row before (the golden tables hold the figures)."""
    from abm.config import load_scenario
    from abm.model import MarketModel
    from abm.recorder import RunRecorder

    summed = []
    original = RunRecorder._sums
    monkeypatch.setattr(RunRecorder, "_sums", lambda self, *args: summed.append(1) or original(self, *args))
    model = MarketModel(load_scenario("calm", ["steps=300"]), check_invariants=True)
    model.run()
    reused = model.checker.reused
    assert reused > 0  # calm has steps in which nobody trades and no mark moves
    # One sum per step, less the steps whose final check was given again (a check reused within a
    # step's liquidation rounds is not one the recorder sees twice).
    assert len(summed) < 300
    assert len(model.results().timeseries) == 300


# --------------------------------------------------------------------------- the pass over the holders
def _few_holders():
    """20 accounts, 4 of them holding positions (fewer than 1 in 4: the pass runs over the holders).

    Account 0 is the insurance fund. Traders a (60 of collateral) and b (105) are long 10 at 100,
    c (200) is long 5 at 100 but not margin-checked, d (10,000) is short 25 at 100; the other 15
    traders are flat with 5.0 each.
    """
    exchange = make_exchange()
    ledger = exchange.ledger
    a, b, c, d = ledger.add_accounts(4, [60.0, 105.0, 200.0, 10_000.0], "leveraged_trader").tolist()
    ledger.add_accounts(15, 5.0, "noise")
    ledger.trade(a, d, 0, 10, 100.0)
    ledger.trade(b, d, 0, 10, 100.0)
    ledger.trade(c, d, 0, 5, 100.0)
    ledger.set_checked(c, False)
    return exchange, (a, b, c, d)


def test_the_pass_over_the_holders_by_hand(monkeypatch):
    import abm.margin.check

    exchange, (a, b, c, d) = _few_holders()
    calls = []
    held_pass = exchange.checker._held_pass
    monkeypatch.setattr(exchange.checker, "_held_pass", lambda *args: calls.append(1) or held_pass(*args))
    check = exchange.checker.check([95.0])
    assert calls == [1]
    # Mark 95. a: equity 60 - 10 x 5 = 10 against maintenance 5% x 950 = 47.5: breached. b: equity
    # 105 - 50 = 55, not breached, under the call line 47.5 x 1.2 = 57: called. c: equity 175,
    # not checked, so neither. d: equity 10,000 + 25 x 5 = 10,125, maintenance 5% x 2,375 = 118.75.
    assert check.equity[[a, b, c, d]].tolist() == [10.0, 55.0, 175.0, 10_125.0]
    assert check.maintenance_requirement[[a, b, d]].tolist() == pytest.approx([47.5, 47.5, 118.75])
    assert check.initial_requirement[a] == pytest.approx(95.0)  # 10% x 950
    assert check.breached.tolist() == [a]
    assert np.flatnonzero(check.called).tolist() == [b]
    assert np.flatnonzero(check.exposed).tolist() == [a, b, d]
    flat = np.arange(d + 1, d + 16)
    assert check.equity[flat].tolist() == [5.0] * 15 and not check.notional[flat].any()
    # The full pass gives the same check, bit for bit.
    monkeypatch.setattr(abm.margin.check, "_SPARSE_SHARE", 0)
    full = exchange.checker._pass(np.array([95.0]))
    assert calls == [1]
    for name in MarginCheckFields:
        assert np.array_equal(getattr(check, name), getattr(full, name)), name


MarginCheckFields = (
    "marks",
    "equity",
    "notional",
    "initial_requirement",
    "maintenance_requirement",
    "breached",
    "called",
    "exposed",
    "position_notional",
    "position_initial",
    "position_maintenance",
)


def test_the_pass_over_the_holders_gives_the_full_pass_tables(monkeypatch):
    # The spiral's short run, every check over the holders unless every account holds (share 1)
    # against every check over all accounts (share 0): the same tables (its shock liquidates most traders,
    # so most later checks see few holders).
    import abm.margin.check
    from abm.config import load_scenario
    from abm.runs import run_scenario

    def tables(share: int):
        monkeypatch.setattr(abm.margin.check, "_SPARSE_SHARE", share)
        scenario = load_scenario("spiral", ["steps=160", "shocks.0.step=60", "shocks.1.step=60"])
        result = run_scenario(scenario, seed=2, check_invariants=True)
        return result.timeseries, result.trades, result.liquidations, result.accounts

    over_holders, over_all = tables(1), tables(0)
    assert len(over_holders[2]) > 100
    for held, full in zip(over_holders, over_all, strict=True):
        pd.testing.assert_frame_equal(held, full)
