"""Utilisation, buffer and distance to liquidation, worked by hand (abm.margin.sensitivity).

Notation: contract 1, so a position's notional is lots x mark; the fixed rule asks 10% initial and 5%
maintenance of notional. An account's equity is its collateral plus its unrealised PnL.
"""

import numpy as np
import pytest

from abm.margin.sensitivity import account_sensitivity
from abm.runs import run_scenario
from tests.exchange_helpers import make_exchange, make_pair_exchange


def _open(ledger, collateral, lots, price=100.0):
    """One trader account with these positions (one per instrument) against a counterparty."""
    account = int(ledger.add_accounts(1, collateral, "leveraged_trader")[0])
    counterparty = int(ledger.add_accounts(1, 1e9, "noise")[0])
    for column, size in enumerate(lots):
        if size > 0:
            ledger.trade(account, counterparty, column, size, price)
        elif size < 0:
            ledger.trade(counterparty, account, column, -size, price)
    return account


def test_a_long_and_a_short_by_hand():
    exchange = make_exchange()
    ledger = exchange.ledger
    long = _open(ledger, 100.0, [10])
    short = _open(ledger, 100.0, [-10])
    under = _open(ledger, 40.0, [10])
    figures = account_sensitivity(exchange.checker, np.array([100.0]), [long, short, under])
    # Long 10 at 100 with 100 of collateral: notional 1,000, initial 100, maintenance 50.
    # Utilisation 100 / 100 = 1; buffer 100 / 50 - 1 = 1.
    assert figures.utilisation.tolist()[:2] == pytest.approx([1.0, 1.0])
    assert figures.buffer.tolist()[:2] == pytest.approx([1.0, 1.0])
    # A fall x: equity 100 - 1,000 x, maintenance 50 (1 - x); equal at 50 = 950 x, x = 1/19.
    # The short, a rise x: 100 - 1,000 x against 50 (1 + x): x = 50 / 1,050 = 1/21.
    # With 40 of collateral the long is under maintenance already (40 < 50): 0.
    np.testing.assert_allclose(figures.distance[:, 0], [1 / 19, 1 / 21, 0.0], atol=1e-9)
    np.testing.assert_allclose(figures.joint_distance, [1 / 19, 1 / 21, 0.0], atol=1e-9)
    assert figures.buffer[2] == pytest.approx(40 / 50 - 1)


def test_a_hedge_by_instrument_and_jointly_cross_and_portfolio_margined():
    exchange = make_pair_exchange(correlation=0.5)
    ledger = exchange.ledger
    cross = _open(ledger, 150.0, [10, -10])
    portfolio = _open(ledger, 100.0, [10, -10])
    ledger.set_margin_mode([portfolio], "portfolio")
    exchange.checker.uses_portfolio()
    marks = np.array([100.0, 100.0])
    figures = account_sensitivity(exchange.checker, marks, [cross, portfolio])
    # Cross, long 10 X and short 10 Y with 150: maintenance 50 + 50 = 100.
    #   X alone falls x: 150 - 1,000 x < 50 (1 - x) + 50, so x > 50 / 950 = 1/19.
    #   Y alone rises x: 150 - 1,000 x < 50 + 50 (1 + x), so x > 50 / 1,050 = 1/21.
    #   Both together: equity stays 150 (the hedge); a fall lowers maintenance (never), a rise raises it
    #   to 100 (1 + x) > 150 at x > 0.5.
    np.testing.assert_allclose(figures.distance[0], [1 / 19, 1 / 21], atol=1e-9)
    assert figures.joint_distance[0] == pytest.approx(0.5, abs=1e-9)
    # Portfolio (correlation offset, rho 0.5) with 100: s = (50, -50), maintenance
    # sqrt(50^2 + 50^2 - 2 x 0.5 x 50 x 50) = 50. Together by 1 + x: 50 (1 + x) > 100 at x > 1.
    assert figures.maintenance[1] == pytest.approx(50.0)
    assert figures.joint_distance[1] == pytest.approx(1.0, abs=1e-9)
    # X alone falls x: 100 - 1,000 x < sqrt(a^2 + b^2 - a b), a = 50 (1 - x), b = 50; at the answer
    # the two sides are equal (checked rather than solved: a quadratic).
    x = figures.distance[1, 0]
    a, b = 50 * (1 - x), 50.0
    assert 100 - 1000 * x == pytest.approx(np.sqrt(a * a + b * b - a * b), abs=1e-6) and 0 < x < 0.1


def test_every_run_snapshots_its_accounts_risk_before_the_stress_and_at_the_end():
    from abm.config import load_scenario, resolve_scenario

    result = run_scenario(load_scenario(resolve_scenario("spiral"), ["steps=320"]))
    snapshots = result.extra["account_snapshots"]
    before = snapshots[(snapshots["snapshot"] == "before_stress") & (snapshots["kind"] == "leveraged_trader")]
    held = before[before["position"] != 0]
    assert len(held) > 0
    # The spiral's longs: utilisation = initial / equity, under 1 (they opened within their margin);
    # a buffer above 0 (none is liquidated yet) and a fall of some percent liquidates each.
    np.testing.assert_allclose(held["utilisation"], held["initial"] / held["equity"])
    assert (held["buffer"] > 0).all() and (held["distance_to_liquidation"] > 0).all()
    assert (held["distance_to_liquidation"] < 0.5).all()
    np.testing.assert_allclose(held["joint_distance_to_liquidation"], held["distance_to_liquidation"])
    summary = result.summary
    assert summary["trader_median_distance_to_liquidation"] == pytest.approx(
        held["joint_distance_to_liquidation"].median()
    )


@pytest.mark.parametrize("pair", [False, True])
def test_the_closed_form_of_linear_rules_is_what_the_search_finds(pair):
    # Random cross accounts under the fixed rule: the closed form against the bisection.
    exchange = make_pair_exchange() if pair else make_exchange()
    ledger = exchange.ledger
    rng = np.random.default_rng(3)
    k = 2 if pair else 1
    accounts = [
        _open(ledger, float(rng.uniform(60.0, 400.0)), rng.integers(-20, 21, size=k).tolist())
        for _ in range(60)
    ]
    marks = np.full(k, 100.0)
    fast = account_sensitivity(exchange.checker, marks, accounts)
    exact = account_sensitivity(exchange.checker, marks, accounts, exact=True)
    np.testing.assert_allclose(fast.distance, exact.distance, atol=1e-9)
    np.testing.assert_allclose(fast.joint_distance, exact.joint_distance, atol=1e-9)
    assert np.isinf(fast.joint_distance).any() == np.isinf(exact.joint_distance).any()
