"""Several instruments: cross, isolated and portfolio accounts worked by hand, then the model's wiring.

The hand cases use two instruments X and Y (tick 1, contract 1, fixed margin: initial 10%,
maintenance 5%), so book prices in ticks are prices. The trader is long 10 X and 10 Y, both bought at
100. X's book is quoted 96 / 98 (mid 97) with a second bid at 95, Y's 99 / 101 (mid 100), so:

- X's mark is 97: a loss of 10 x 3 = 30 on X, none on Y;
- X's maintenance is 0.05 x 10 x 97 = 48.5, Y's 0.05 x 10 x 100 = 50, 98.5 together.
"""

import numpy as np
import pytest
from exchange_helpers import make_pair_exchange
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from abm.book import BUY, SELL
from abm.config import scenario_from_dict
from abm.invariants import check_ledger
from abm.ledger import ENGINE
from abm.runs import run_scenario

X, Y = 0, 1


def _quote(exchange, maker):
    books = exchange.books
    books[X].submit_limit(maker, BUY, 96, 10)
    books[X].submit_limit(maker, BUY, 95, 10)
    books[X].submit_limit(maker, SELL, 98, 10)
    books[Y].submit_limit(maker, BUY, 99, 10)
    books[Y].submit_limit(maker, BUY, 98, 10)
    books[Y].submit_limit(maker, SELL, 101, 10)


def _cross_case(margin_mode="cross", correlation=None, **liquidation):
    """One account with 120 of collateral, long 10 X and 10 Y at 100 (equity at the marks: 90)."""
    exchange = make_pair_exchange(correlation=correlation, **liquidation)
    ledger = exchange.ledger
    maker = int(ledger.add_accounts(1, 1e6, "market_maker")[0])
    counterparty = int(ledger.add_accounts(1, 1e6, "counterparty")[0])
    ledger.set_checked(counterparty, False)
    trader = int(ledger.add_accounts(1, 120.0, "leveraged_trader")[0])
    ledger.set_margin_mode(trader, margin_mode)
    if margin_mode == "portfolio":
        exchange.checker.uses_portfolio()
    ledger.open_position(trader, X, 10, 100.0, counterparty)
    ledger.open_position(trader, Y, 10, 100.0, counterparty)
    _quote(exchange, maker)
    return exchange, maker, counterparty, trader


def _records(exchange):
    return [
        (r["account_id"], r["instrument"], r["quantity"], r["average_price"], r["round"])
        for r in exchange.liquidator.liquidations
    ]


def test_cross_account_is_checked_as_one_and_liquidated_account_wide():
    exchange, maker, _, trader = _cross_case(fee=0.005)
    ledger, liquidator = exchange.ledger, exchange.liquidator
    marks = exchange.marks_from_books()
    check = exchange.checker.check(marks())
    # Equity 120 - 30 = 90 < 98.5: the account is below maintenance although Y alone is not losing.
    assert check.equity[trader] == pytest.approx(90.0)
    assert check.maintenance_requirement[trader] == pytest.approx(98.5)
    assert trader in check.breached.tolist()
    liquidator.run(0, marks)
    # largest_loss first: X (loss -30) before Y (0). X: 10 sold at 96, realising 10 x (96 - 100) = -40,
    # fee 0.005 x 960 = 4.80. Y: 10 sold at 99, realising -10, fee 0.005 x 990 = 4.95. Both in round 0,
    # both recorded with the account's equity before the round (90).
    assert _records(exchange) == [(trader, X, 10, 96.0, 0), (trader, Y, 10, 99.0, 0)]
    assert [r["equity_before"] for r in liquidator.liquidations] == pytest.approx([90.0, 90.0])
    # Collateral 120 - 40 - 4.80 - 10 - 4.95 = 60.25; the fund holds the fees 9.75.
    assert ledger.collateral[trader] == pytest.approx(60.25)
    assert ledger.collateral[ENGINE] == pytest.approx(9.75)
    assert ledger.held_instruments(trader) == []
    assert liquidator.totals.liquidations == [1, 1]
    # Notional at the round's marks: 10 x 97 = 970 in X, 10 x 100 = 1000 in Y.
    assert liquidator.totals.liquidated_notional == pytest.approx([970.0, 1000.0])
    assert ledger.position[maker].tolist() == [10, 10]
    check_ledger(ledger, 0, marks())


def test_isolated_positions_are_liquidated_alone():
    # The same trader isolated: each position an account of its own with half the collateral (60).
    exchange = make_pair_exchange(fee=0.005)
    ledger = exchange.ledger
    maker = int(ledger.add_accounts(1, 1e6, "market_maker")[0])
    counterparty = int(ledger.add_accounts(1, 1e6, "counterparty")[0])
    ledger.set_checked(counterparty, False)
    in_x, in_y = ledger.add_accounts(2, 60.0, "leveraged_trader").tolist()
    ledger.set_margin_mode([in_x, in_y], "isolated")
    ledger.open_position(in_x, X, 10, 100.0, counterparty)
    ledger.open_position(in_y, Y, 10, 100.0, counterparty)
    _quote(exchange, maker)
    marks = exchange.marks_from_books()
    exchange.liquidator.run(0, marks)
    # X's slice: equity 60 - 30 = 30 < 48.5, liquidated: 10 at 96, collateral 60 - 40 - 4.80 = 15.20.
    # Y's slice: equity 60 >= 50, untouched, and so is Y's book (its bid stays at 99).
    assert _records(exchange) == [(in_x, X, 10, 96.0, 0)]
    assert ledger.collateral[in_x] == pytest.approx(15.20)
    assert ledger.collateral[in_y] == pytest.approx(60.0)
    assert ledger.position_of(in_y, Y) == 10
    assert exchange.books[Y].best_bid() == 99
    check_ledger(ledger, 0, marks())


@pytest.mark.parametrize(
    ("order", "expected", "collateral"),
    [
        # Partial, target ratio 1.5: the account must come down to a requirement of 90 / 1.5 = 60, an
        # excess of 98.5 - 60 = 38.5.
        # largest_maintenance: Y (50) before X (48.5). Y's maintenance per lot is 5: ceil(38.5 / 5) = 8
        # lots, sold at 99: realised 8 x -1 = -8, fee 0.005 x 792 = 3.96 -> 120 - 8 - 3.96 = 108.04.
        ("largest_maintenance", [(Y, 8, 99.0)], 108.04),
        # largest_loss: X (-30) first, 4.85 per lot: ceil(38.5 / 4.85) = 8 lots at 96: realised -32,
        # fee 0.005 x 768 = 3.84 -> 120 - 32 - 3.84 = 84.16.
        ("largest_loss", [(X, 8, 96.0)], 84.16),
        # pro_rata: keep 90 / (1.5 x 98.5) = 0.609 of each, int(10 x 0.609) = 6, so cut 4 of each:
        # X 4 at 96 (realised -16, fee 1.92), Y 4 at 99 (realised -4, fee 1.98) -> 96.10.
        ("pro_rata", [(X, 4, 96.0), (Y, 4, 99.0)], 96.10),
    ],
)
def test_partial_account_wide_cut_follows_the_order(order, expected, collateral):
    exchange, _, _, trader = _cross_case(fee=0.005, mode="partial", order=order)
    marks = exchange.marks_from_books()
    exchange.liquidator.run(0, marks)
    first_round = [(i, q, p) for _, i, q, p, r in _records(exchange) if r == 0]
    assert first_round == expected
    assert exchange.ledger.collateral[trader] == pytest.approx(collateral, abs=1e-9)
    check_ledger(exchange.ledger, 0, marks())


def test_portfolio_account_meets_the_correlation_offset_requirement():
    # Correlation 0.5 between X and Y: maintenance sqrt(48.5^2 + 50^2 + 2 x 0.5 x 48.5 x 50)
    # = sqrt(2352.25 + 2500 + 2425) = sqrt(7277.25) = 85.307; equity 90 is above it, so the portfolio
    # account is not liquidated where the cross account (98.5) is.
    exchange, _, _, trader = _cross_case(margin_mode="portfolio", correlation=0.5, fee=0.005)
    marks = exchange.marks_from_books()
    check = exchange.checker.check(marks())
    assert check.maintenance_requirement[trader] == pytest.approx(np.sqrt(7277.25))
    assert check.maintenance_requirement[trader] == pytest.approx(85.307, abs=1e-3)
    assert trader not in check.breached.tolist()
    # Initial: sqrt(97^2 + 100^2 + 97 x 100) = sqrt(29109) = 170.61 (cross: 197).
    assert check.initial_requirement[trader] == pytest.approx(np.sqrt(29109.0))
    exchange.liquidator.run(0, marks)
    assert exchange.liquidator.liquidations == []


def test_portfolio_offsets_a_long_against_a_short():
    # Long 10 X, short 10 Y, correlation 0.5: signed requirements 48.5 and -50, so
    # sqrt(48.5^2 + 50^2 - 2 x 0.5 x 48.5 x 50) = sqrt(2352.25 + 2500 - 2425) = sqrt(2427.25) = 49.27,
    # about half the cross sum 98.5. At correlation 1 it would be |48.5 - 50| = 1.5.
    exchange = make_pair_exchange(correlation=0.5)
    ledger = exchange.ledger
    counterparty = int(ledger.add_accounts(1, 1e6, "counterparty")[0])
    ledger.set_checked(counterparty, False)
    trader = int(ledger.add_accounts(1, 120.0, "leveraged_trader")[0])
    ledger.set_margin_mode(trader, "portfolio")
    exchange.checker.uses_portfolio()
    ledger.open_position(trader, X, 10, 100.0, counterparty)
    ledger.open_position(trader, Y, -10, 100.0, counterparty)
    check = exchange.checker.check(np.array([97.0, 100.0]))
    assert check.maintenance_requirement[trader] == pytest.approx(np.sqrt(2427.25))
    assert exchange.checker.account_requirements(trader, [97.0, 100.0])[1] == pytest.approx(np.sqrt(2427.25))


def test_a_liquidation_in_one_instrument_is_the_parent_of_a_breach_in_the_other():
    # A cross account (A) long X and Y, and an account (B) long only Y whose equity is just enough
    # until Y's bid falls. Round 0: A (equity 90 < 98.5) sells 10 X at 96 and 10 Y at 99, which eats
    # Y's first bid level: Y's mid goes from (99 + 101) / 2 = 100 to (98 + 101) / 2 = 99.5.
    # B: collateral 50.5, long 10 Y at 100: at mid 100 equity 50.5 >= 50 (safe); at 99.5 equity
    # 50.5 - 5 = 45.5 < 0.05 x 995 = 49.75: breached in round 1, with A's Y sale as its parent.
    exchange, _, counterparty, cross = _cross_case(fee=0.0)
    ledger = exchange.ledger
    only_y = int(ledger.add_accounts(1, 50.5, "leveraged_trader")[0])
    ledger.open_position(only_y, Y, 10, 100.0, counterparty)
    exchange.liquidator.run(0, exchange.marks_from_books())
    records = exchange.liquidator.liquidations
    assert [(r["account_id"], r["instrument"], r["round"], r["parents"]) for r in records] == [
        (cross, X, 0, []),
        (cross, Y, 0, []),
        (only_y, Y, 1, [1]),
    ]
    # B's Y parent is A's Y sale (id 1), not A's X sale: only orders in an instrument it holds count.


# ----------------------------------------------------------------------------- random multi-instrument runs

NAMES = ("A", "B", "C", "D")


@st.composite
def instrument_scenarios(draw):
    k = draw(st.integers(1, 4))
    names = NAMES[:k]
    steps = draw(st.integers(2, 30))
    instruments = [
        {
            "name": name,
            "tick_size": 0.01,
            "initial_price": draw(st.sampled_from([20.0, 100.0, 250.0])),
            "contract_size": draw(st.sampled_from([0.1, 1.0])),
            "fundamental": {"process": "gbm", "volatility": draw(st.floats(0.0, 0.01))},
            # Fixed (linear: the checker's matrix products) or tiered (per-instrument requirements).
            "margin": draw(
                st.sampled_from(
                    [
                        {"rule": "fixed", "initial": 0.1, "maintenance": 0.05},
                        {"rule": "fixed", "initial": 0.1, "maintenance": 0.02},
                        {
                            "rule": "tiered",
                            "tiers": [
                                {"notional_floor": 0, "initial": 0.1, "maintenance": 0.05},
                                {"notional_floor": 2000, "initial": 0.2, "maintenance": 0.1},
                            ],
                        },
                    ]
                )
            ),
        }
        for name in names
    ]
    # A correlation matrix from random factor loadings: L L' with unit rows is PSD with a unit diagonal.
    loadings = np.array(draw(st.lists(st.floats(-1.0, 1.0), min_size=k * 2, max_size=k * 2))).reshape(k, 2)
    loadings = np.vstack(
        [row / norm if (norm := np.linalg.norm(row)) > 1e-3 else [1.0, 0.0] for row in loadings]
    )
    correlation = np.clip(loadings @ loadings.T, -1.0, 1.0)
    np.fill_diagonal(correlation, 1.0)
    holdings = draw(st.lists(st.sampled_from(names), min_size=1, max_size=k, unique=True))
    crowd = {
        "kind": "leveraged_trader",
        "count": draw(st.integers(0, 20)),
        "collateral": draw(st.floats(10.0, 500.0)),
        "side": draw(st.sampled_from(["long", "short", "mixed"])),
        "leverage": {"distribution": "uniform", "low": 1.0, "high": draw(st.floats(1.0, 9.0))},
        "portfolio": [
            {
                "instrument": name,
                "weight": draw(st.floats(0.1, 3.0)),
                "side": draw(st.sampled_from([None, "long", "short"])),
            }
            for name in holdings
        ],
        "margin_mode": draw(st.sampled_from(["isolated", "cross", "portfolio"])),
        "strategy": draw(st.sampled_from(["hold", "momentum", "random"])),
        "arrival_rate": draw(st.floats(0.0, 1.0)),
    }
    groups = [
        {"kind": "market_maker", "count": draw(st.integers(0, 2)), "levels": 4, "level_size": 10},
        crowd,
        {"kind": "noise", "count": draw(st.integers(0, 6)), "max_size": 10, "arrival_rate": 0.5},
        {"kind": "fundamentalist", "count": draw(st.integers(0, 3))},
    ]
    shocks = []
    if draw(st.booleans()):
        shocks.append(
            {
                "type": "fundamental_jump",
                "step": draw(st.integers(0, steps - 1)),
                "size": draw(st.floats(-0.3, -0.05)),
                "instrument": draw(st.sampled_from(names)),
            }
        )
    if draw(st.booleans()):
        shocks.append(
            {
                "type": "market_order",
                "step": draw(st.integers(0, steps - 1)),
                "quantity": draw(st.integers(1, 200)),
                "instrument": draw(st.sampled_from(names)),
            }
        )
    if k > 1 and draw(st.booleans()):
        shocks.append(
            {
                "type": "correlation_regime",
                "step": draw(st.integers(0, steps - 1)),
                "over_steps": 5,
                "common": 0.9,
            }
        )
    return {
        "name": "random_instruments",
        "steps": steps,
        "instruments": instruments,
        "correlation": correlation.tolist(),
        "agents": groups,
        "liquidation": {
            "mode": draw(st.sampled_from(["full", "partial"])),
            "order": draw(st.sampled_from(["largest_loss", "largest_maintenance", "pro_rata"])),
            "insurance_fund": draw(st.floats(0.0, 1000.0)),
        },
        "shocks": shocks,
    }


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=instrument_scenarios(), seed=st.integers(0, 2**32 - 1))
def test_random_multi_instrument_scenarios_run_with_invariants(data, seed):
    # check_invariants checks, after every step, money conservation and zero-sum positions in every
    # instrument (raising InvariantError with the step and accounts); the tables must agree.
    scenario = scenario_from_dict(data)
    result = run_scenario(scenario, seed=seed, check_invariants=True)
    names = [instrument["name"] for instrument in data["instruments"]]
    assert list(result.timeseries["instrument"].unique()) == names
    assert len(result.timeseries) == data["steps"] * len(names)
    assert result.accounts.groupby("instrument")["position"].sum().eq(0).all()
    assert set(result.liquidations["instrument"]) <= set(names)
    assert np.isfinite(result.timeseries[["mark", "insurance_fund", "bad_debt"]].to_numpy()).all()


# ----------------------------------------------------------------------------- correlated fundamentals


def _index_return_correlation(shocks, correlation, steps=2000):
    instruments = [
        {"name": name, "fundamental": {"process": "gbm", "volatility": 0.001}} for name in ("A", "B", "C")
    ]
    scenario = scenario_from_dict(
        {
            "name": "indexes",
            "steps": steps,
            "instruments": instruments,
            "correlation": correlation,
            "agents": [{"kind": "noise", "count": 0}],
            "shocks": shocks,
        }
    )
    ts = run_scenario(scenario, seed=3).timeseries
    returns = [np.diff(np.log(ts.loc[ts["instrument"] == name, "index"].to_numpy())) for name in "ABC"]
    return np.corrcoef(returns)


def test_index_returns_follow_the_configured_correlation_and_a_regime_replaces_it():
    # Pairwise 0.3 in calm; the regime sets every pair to 0.95 for the whole run. With 2,000 draws the
    # sample correlation's standard error is about (1 - rho^2) / sqrt(2000): 0.02 at 0.3, 0.002 at 0.95.
    calm = [[1.0, 0.3, 0.3], [0.3, 1.0, 0.3], [0.3, 0.3, 1.0]]
    measured = _index_return_correlation([], calm)
    assert measured[np.triu_indices(3, 1)] == pytest.approx([0.3, 0.3, 0.3], abs=0.08)
    regime = [{"type": "correlation_regime", "step": 0, "over_steps": 2000, "common": 0.95}]
    stressed = _index_return_correlation(regime, calm)
    assert stressed[np.triu_indices(3, 1)] == pytest.approx([0.95, 0.95, 0.95], abs=0.02)


def test_a_regime_lasts_its_steps_and_a_semi_definite_matrix_moves_together():
    # Every correlation 1 is only semi-definite (no Cholesky factor): the indexes move as one.
    ones = [[1.0] * 3] * 3
    measured = _index_return_correlation([], ones, steps=200)
    assert measured[np.triu_indices(3, 1)] == pytest.approx([1.0, 1.0, 1.0], abs=1e-9)
    # A regime of -0.5 between A and B for the first 1,000 of 2,000 steps, uncorrelated after it.
    regime = [
        {
            "type": "correlation_regime",
            "step": 0,
            "over_steps": 1000,
            "correlation": [[1.0, -0.5, 0.0], [-0.5, 1.0, 0.0], [0.0, 0.0, 1.0]],
        }
    ]
    identity = np.eye(3).tolist()
    measured = _index_return_correlation(regime, identity)
    # Half the run at -0.5, half at 0 (equal variances): the whole-run correlation is about -0.25.
    assert measured[0, 1] == pytest.approx(-0.25, abs=0.06)


# ----------------------------------------------------------------------------- margin calls in every mode


def _called_crowd(margin_mode, drop, reaction="top_up"):
    """20 traders long A and B (4 lots each at 100); the marks are the indexes, flat but for A's drop."""
    margin = {"rule": "fixed", "initial": 0.10, "maintenance": 0.05, "call_buffer": 0.5}
    data = {
        "name": "calls",
        "steps": 20,
        "instruments": [
            {
                "name": name,
                "contract_size": 1.0,
                "mark_price": "index",
                "fundamental": {"process": "gbm", "volatility": 0.0},
                "margin": margin,
            }
            for name in ("A", "B")
        ],
        "portfolio_margin": {"rule": "correlation_offset", "call_buffer": 0.5},
        "agents": [
            {"kind": "market_maker", "count": 2, "levels": 10, "level_size": 200, "inventory_limit": 100_000},
            {
                "kind": "leveraged_trader",
                "count": 20,
                "collateral": 100.0,
                "leverage": {"distribution": "fixed", "value": 8.0},
                "portfolio": [{"instrument": "A"}, {"instrument": "B"}],
                "margin_mode": margin_mode,
                "reserves": 1000.0,
                "margin_call": {"top_up": 0.0, "reduce": 0.0, "ignore": 0.0, reaction: 1.0},
            },
        ],
        "shocks": [{"type": "fundamental_jump", "step": 10, "size": drop, "instrument": "A"}],
    }
    result = run_scenario(scenario_from_dict(data), seed=1, check_invariants=True)
    accounts = result.accounts[result.accounts["kind"] == "leveraged_trader"]
    return result, accounts.pivot(index="account_id", columns="instrument")


@pytest.mark.parametrize(
    ("margin_mode", "drop", "deposit_a", "deposit_b"),
    [
        # Cross: one account, 100 of collateral, 8x: 800 of notional, 4 lots of each at 100. A falls 12%
        # to 88: equity 100 - 4 x 12 = 52; notional 352 + 400 = 752, maintenance 37.6, called below
        # 1.5 x 37.6 = 56.4 (not liquidated: 52 > 37.6). The top-up restores initial margin 75.2: 23.2.
        ("cross", -0.12, 23.2, 23.2),
        # Isolated: two accounts of 50 (4 lots each). A falls 7% to 93: A's equity 50 - 28 = 22, maintenance
        # 0.05 x 372 = 18.6, called below 27.9; top-up to initial 37.2: 15.2. B's account is not called.
        ("isolated", -0.07, 15.2, 0.0),
        # Portfolio (no correlation given: 0): A falls 16% to 84: equity 100 - 64 = 36; maintenance
        # sqrt(16.8^2 + 20^2) = 26.12, called below 1.5 x 26.12 = 39.18; initial sqrt(33.6^2 + 40^2)
        # = sqrt(2728.96) = 52.2394, so the top-up is 16.2394.
        ("portfolio", -0.16, np.sqrt(2728.96) - 36.0, np.sqrt(2728.96) - 36.0),
    ],
)
def test_margin_calls_are_answered_per_account_in_every_mode(margin_mode, drop, deposit_a, deposit_b):
    result, crowd = _called_crowd(margin_mode, drop)
    assert len(result.liquidations) == 0
    # Account-wide columns repeat on an account's rows; an isolated slice's other row is flat.
    deposits = crowd["deposits"]
    if margin_mode == "isolated":
        in_a = crowd["position"]["A"] != 0
        assert deposits["A"][in_a].to_numpy() == pytest.approx(np.full(20, deposit_a))
        assert deposits["A"][~in_a].to_numpy() == pytest.approx(np.full(20, deposit_b))
    else:
        assert deposits["A"].to_numpy() == pytest.approx(np.full(20, deposit_a))
        assert (crowd["position"] == 4).all().all()


def test_a_cross_account_answers_a_call_by_cutting_every_position_by_the_same_share():
    # Reduce instead of top up (cross, A down 12%): initial 75.2 against equity 52, so the account keeps
    # 52 / 75.2 = 0.69 of each position: int(4 x 0.69) = 2 lots of A and 2 of B.
    result, crowd = _called_crowd("cross", -0.12, reaction="reduce")
    assert len(result.liquidations) == 0
    assert (crowd["position"] == 2).all().all()
    assert (crowd["deposits"] == 0).all().all()


def test_the_linear_fast_path_agrees_with_the_per_instrument_requirements(monkeypatch):
    # Random positions in both instruments; the checker's matrix products (every rule one bracket)
    # against the per-instrument requirements it uses for bracketed rules.
    exchange = make_pair_exchange()
    ledger = exchange.ledger
    rng = np.random.default_rng(5)
    counterparty = int(ledger.add_accounts(1, 1e9, "counterparty")[0])
    ledger.set_checked(counterparty, False)
    accounts = ledger.add_accounts(200, rng.uniform(10, 500, 200), "leveraged_trader")
    for column in (X, Y):
        ledger.open_positions(accounts, column, rng.integers(-20, 21, 200), 100.0, counterparty)
    marks = np.array([97.0, 103.5])
    fast = exchange.checker.check(marks)
    for policy in exchange.checker.policies:
        monkeypatch.setattr(policy, "linear_rates", lambda: None)
    slow = exchange.checker.check(marks)
    for name in ("equity", "notional", "initial_requirement", "maintenance_requirement"):
        assert getattr(fast, name) == pytest.approx(getattr(slow, name), rel=1e-12), name
    assert fast.breached.tolist() == slow.breached.tolist() and (fast.called == slow.called).all()
    assert fast.position_maintenance == pytest.approx(slow.position_maintenance, rel=1e-12)
    totals = fast.exposed_totals()
    assert totals[0] == pytest.approx(slow.position_initial[slow.exposed].sum(axis=0), rel=1e-12)
