"""Reliability: the money breakdown, caught breaches (in-process and through ``abm run --check``),
market edge cases, the manifest, and odd random scenarios.

Expected figures are worked out by hand in the comments (contract size 1, tick 1.0 in the hand-built
ledgers) or computed independently with numpy / hashlib in the test.
"""

from __future__ import annotations

import hashlib
import json
import pickle

import numpy as np
import pandas as pd
import pytest
from exchange_helpers import constant, make_exchange
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from abm import MarketModel, cli
from abm.book import BUY, SELL, OrderBook
from abm.config import load_scenario, resolve_scenario, scenario_from_dict
from abm.errors import InvariantError
from abm.invariants import InvariantChecker, check_book, check_ledger, money_breakdown
from abm.ledger import ENGINE, Ledger
from abm.liquidation import Liquidator
from abm.outputs import read_run_tables
from abm.runs import run_scenario


def short_spiral(steps: int) -> list[str]:
    """Overrides for a short spiral: its shocks (at step 300 of 600) moved to the middle."""
    middle = steps // 2
    return [f"steps={steps}", f"shocks.0.step={middle}", f"shocks.1.step={middle}"]


def edge_scenario(**changes):
    data = {
        "name": "edge",
        "steps": 20,
        "market": {"tick_size": 0.01, "initial_price": 100.0, "mark_price": "index"},
        "agents": [
            {"kind": "market_maker", "count": 2},
            {
                "kind": "leveraged_trader",
                "count": 25,
                "side": "long",
                "leverage": {"distribution": "uniform", "low": 2, "high": 9},
            },
        ],
        "liquidation": {"insurance_fund": 0.0},
    }
    data.update(changes)
    return scenario_from_dict(data)


# ----------------------------------------------------------------------------- money breakdown


def test_breakdown_names_where_the_money_is():
    exchange = make_exchange(fee=0.005)
    book, ledger, liquidator = exchange.book, exchange.ledger, exchange.liquidator
    maker = int(ledger.add_accounts(1, 1000.0, "market_maker")[0])
    counterparty = int(ledger.add_accounts(1, 1000.0, "counterparty")[0])
    ledger.set_checked(counterparty, False)
    victim = int(ledger.add_accounts(1, 40.0, "leveraged_trader")[0])
    ledger.open_position(victim, 0, 10, 100.0, counterparty)
    book.submit_limit(maker, BUY, 99, 10)
    book.submit_limit(maker, SELL, 101, 10)
    # Mark 100: equity 40 < maintenance 50. The victim sells 10 @99 to the maker: loses 10, pays the fee
    # 0.005 x 990 = 4.95 to the fund. Collateral: victim 40 - 10 - 4.95 = 25.05, fund 4.95.
    liquidator.run(0, constant(100.0))
    breakdown = money_breakdown(ledger, [100.0])
    assert breakdown.fees_collected == pytest.approx(4.95)
    assert breakdown.insurance_fund == pytest.approx(4.95)
    assert breakdown.collateral_by_kind["leveraged_trader"] == pytest.approx(25.05)
    assert breakdown.collateral_by_kind == pytest.approx(
        {"leveraged_trader": 25.05, "market_maker": 1000.0, "counterparty": 1000.0}
    )
    # Unrealised PnL at 100: maker long 10 @99 (+10), counterparty short 10 @100 (0).
    assert breakdown.unrealised_pnl == pytest.approx(10.0)
    assert breakdown.expected == pytest.approx(2040.0)  # 1000 + 1000 + 40 + fund 0
    assert breakdown.held == pytest.approx(4.95 + 25.05 + 2000.0 + 10.0)
    assert breakdown.balanced and breakdown.tolerance < 1e-6
    assert json.dumps(breakdown.as_dict())  # plain JSON types


def test_tolerance_of_a_checked_spiral_is_far_below_a_cent():
    scenario = load_scenario(resolve_scenario("spiral"), short_spiral(120))
    model = MarketModel(scenario, rng=7, check_invariants=True)
    model.run()
    breakdown = model.last_money_breakdown
    assert breakdown.tolerance < 1e-3
    assert abs(breakdown.difference) <= breakdown.tolerance
    assert model._invariant_checker.checks == 120


# ----------------------------------------------------------------------------- caught breaches


def _drop_a_cent_at(monkeypatch, step_to_break: int) -> dict:
    """Make settlement lose one cent from the taker of the first fill settled in ``step_to_break``."""
    original = Ledger.settle
    seen: dict = {}

    def leaky_settle(self, fills, instrument, round_index, is_liquidation):
        result = original(self, fills, instrument, round_index, is_liquidation)
        if self.step == step_to_break and fills and "account" not in seen:
            seen["account"] = fills[0].taker
            self._collateral[fills[0].taker] -= 0.01
        return result

    monkeypatch.setattr(Ledger, "settle", leaky_settle)
    return seen


def test_a_cent_lost_in_settlement_is_caught_at_its_step(monkeypatch):
    seen = _drop_a_cent_at(monkeypatch, 4)
    model = MarketModel(
        load_scenario(resolve_scenario("spiral"), short_spiral(20)), rng=1, check_invariants=True
    )
    with pytest.raises(InvariantError) as caught:
        model.run()
    error = caught.value
    assert (error.step, error.invariant) == (4, "conservation")
    assert seen["account"] in error.accounts
    assert "step 4: money not conserved (invariant conservation)" in str(error)
    assert "difference -0.01" in str(error)
    # Attributes survive a trip to a worker process and back.
    again = pickle.loads(pickle.dumps(error))
    assert (again.step, again.invariant, again.accounts, str(again)) == (
        4,
        "conservation",
        error.accounts,
        str(error),
    )


def test_run_check_stops_at_the_injected_cent(monkeypatch, tmp_path, capsys):
    seen = _drop_a_cent_at(monkeypatch, 6)
    out_dir = tmp_path / "run"
    status = cli.main(
        [
            "run",
            "spiral",
            *[part for override in short_spiral(30) for part in ("--set", override)],
            "--check",
            "--out",
            str(out_dir),
            "--no-progress",
            "--no-report",
        ]
    )
    err = capsys.readouterr().err
    assert status == cli.EXIT_INTERNAL
    assert "error: invariant breached: step 6: money not conserved (invariant conservation)" in err
    assert "accounts changed since the last check: [" in err
    assert str(seen["account"]) in err.split("accounts changed since the last check:")[1]
    assert "nothing written" in err and "Traceback" not in err
    assert not out_dir.exists()
    assert list(tmp_path.iterdir()) == []  # no temp directory left either


def test_run_check_stops_at_a_corrupted_position(monkeypatch, tmp_path, capsys):
    original = Liquidator.run

    def corrupting(self, step, marks_fn, enabled=True):
        check = original(self, step, marks_fn, enabled)
        if step == 3:
            self.ledger._position[7, 0] += 2  # two lots out of nowhere
        return check

    monkeypatch.setattr(Liquidator, "run", corrupting)
    out_dir = tmp_path / "run"
    status = cli.main(
        ["run", "calm", "--steps", "10", "--check", "--out", str(out_dir), "--no-progress", "--no-report"]
    )
    err = capsys.readouterr().err
    assert status == cli.EXIT_INTERNAL
    assert "step 3: positions in PERP sum to 2, not 0" in err and "invariant zero_sum" in err
    assert "accounts [7" in err or ", 7," in err or " 7]" in err
    assert not out_dir.exists()


def test_without_check_the_same_corruption_goes_unnoticed(monkeypatch):
    original = Liquidator.run

    def corrupting(self, step, marks_fn, enabled=True):
        check = original(self, step, marks_fn, enabled)
        if step == 3:
            self.ledger._position[7, 0] += 2
        return check

    monkeypatch.setattr(Liquidator, "run", corrupting)
    result = run_scenario(load_scenario(resolve_scenario("calm"), ["steps=10"]), seed=1)
    assert result.accounts["position"].sum() == 2  # the reason for --check


def test_non_finite_collateral_and_stale_entry_are_named():
    exchange = make_exchange()
    ledger = exchange.ledger
    a, b = ledger.add_accounts(2, 100.0, "noise").tolist()
    ledger.trade(a, b, 0, 5, 100.0)
    ledger._collateral[b] = np.nan
    with pytest.raises(InvariantError, match=r"step 2: non-finite .* accounts \[2\]") as caught:
        check_ledger(ledger, 2, [100.0])
    assert caught.value.invariant == "finite"
    ledger._collateral[b] = 100.0
    ledger.trade(b, a, 0, 5, 100.0)  # both flat again
    ledger._entry_price[a, 0] = 100.0
    with pytest.raises(InvariantError, match="flat_entry") as caught:
        check_ledger(ledger, 3, [100.0])
    assert caught.value.accounts == (a,)


def test_open_interest_out_of_step_with_positions_is_named():
    exchange = make_exchange()
    ledger = exchange.ledger
    a, b = ledger.add_accounts(2, 100.0, "noise").tolist()
    ledger.trade(a, b, 0, 5, 100.0)
    check_ledger(ledger, 1, [100.0])  # consistent: passes
    ledger._open_interest[0] += 1
    message = r"step 4: the ledger's open interest in X is 6 lots but"
    with pytest.raises(InvariantError, match=message) as caught:
        check_ledger(ledger, 4, [100.0])
    assert caught.value.invariant == "open_interest"
    assert caught.value.accounts == (a,)


def test_crossed_book_is_named_with_its_owners(monkeypatch):
    book = OrderBook()
    book.submit_limit(3, SELL, 100, 5)
    # A matching engine that forgets to match: the bid rests through the ask.
    monkeypatch.setattr(
        OrderBook, "_match", lambda self, taker, side, taker_id, quantity, limit, fills: quantity
    )
    book.submit_limit(4, BUY, 101, 5)
    with pytest.raises(InvariantError, match=r"step 9: book crossed, best bid 101 >= best ask 100") as caught:
        check_book(book, 9)
    assert (caught.value.invariant, caught.value.accounts) == ("book_crossed", (3, 4))


def test_checker_names_the_accounts_changed_in_the_step():
    exchange = make_exchange()
    ledger = exchange.ledger
    a, b, c = ledger.add_accounts(3, 100.0, "noise").tolist()
    checker = InvariantChecker(ledger)
    ledger.trade(a, b, 0, 2, 100.0)
    checker.check(0, 100.0)
    ledger.trade(b, a, 0, 2, 110.0)  # a gains 20, b loses 20
    ledger._collateral[c] -= 5.0  # c was not in any trade: the leak
    with pytest.raises(InvariantError) as caught:
        checker.check(1, 110.0)
    assert caught.value.accounts == (a, b, c)  # |20|, |20|, |5|: largest change first


# ----------------------------------------------------------------------------- market edge cases


def test_market_order_into_an_empty_side_fills_nothing():
    book = OrderBook()
    book.submit_limit(1, BUY, 99, 5)
    assert book.submit_market(2, BUY, 10) == []  # no asks: dropped, nothing rests
    assert len(book) == 1 and book.best_ask() is None


def test_liquidation_into_a_thin_side_sends_the_rest_to_the_engine():
    exchange = make_exchange(fund=100.0, fee=0.0)
    book, ledger, liquidator = exchange.book, exchange.ledger, exchange.liquidator
    maker = int(ledger.add_accounts(1, 1000.0, "market_maker")[0])
    short = int(ledger.add_accounts(1, 1000.0, "noise")[0])
    victim = int(ledger.add_accounts(1, 40.0, "leveraged_trader")[0])
    ledger.open_position(victim, 0, 10, 100.0, short)
    book.submit_limit(maker, BUY, 99, 3)  # only 3 lots bid
    # Mark 100, equity 40 < 50. 3 lots sell @99 (loss 3): collateral 37, position 7 at entry 100.
    # Bankruptcy price 100 - 37 / 7; the engine takes the 7 there and the victim ends at exactly 0.
    liquidator.run(0, constant(100.0))
    record = liquidator.liquidations[0]
    assert (record["quantity"], record["filled_quantity"], record["adl_quantity"]) == (10, 3, 0)
    assert ledger.position[ENGINE, 0] == 7
    assert ledger.entry_price[ENGINE, 0] == pytest.approx(100.0 - 37.0 / 7.0)
    assert ledger.position[victim, 0] == 0 and ledger.collateral[victim] == pytest.approx(0.0, abs=1e-9)
    check_ledger(ledger, 0, [100.0])


def test_empty_fund_and_adl_off_still_backstops_with_the_engine():
    exchange = make_exchange(fund=0.0, adl=False)
    ledger, liquidator = exchange.ledger, exchange.liquidator
    victim = int(ledger.add_accounts(1, 20.0, "leveraged_trader")[0])
    short = int(ledger.add_accounts(1, 1000.0, "noise")[0])
    ledger.open_position(victim, 0, 10, 100.0, short)
    liquidator.run(0, constant(100.0))
    # No bids, no fund, no ADL: the engine holds the position at the bankruptcy price 98.
    assert ledger.position[ENGINE, 0] == 10 and ledger.entry_price[ENGINE, 0] == pytest.approx(98.0)
    assert ledger.position[short, 0] == -10  # nobody was deleveraged
    check_ledger(ledger, 0, [100.0])


def test_bankruptcy_limit_never_goes_below_one_tick():
    exchange = make_exchange(fund=0.0, price_limit="bankruptcy")
    ledger, liquidator = exchange.ledger, exchange.liquidator
    victim = int(ledger.add_accounts(1, 99.5, "leveraged_trader")[0])
    short = int(ledger.add_accounts(1, 1000.0, "noise")[0])
    ledger.open_position(victim, 0, 1, 100.0, short)
    # Bankruptcy price 100 - 99.5 = 0.5, below one tick: the limit is clamped to 1 tick.
    assert liquidator._bankruptcy_tick(victim, 0, SELL, [100.0]) == 1


def test_index_driven_toward_zero_runs_with_invariants():
    scenario = edge_scenario(
        agents=[
            {"kind": "market_maker", "count": 2},
            {
                "kind": "leveraged_trader",
                "count": 20,
                "side": "mixed",
                "leverage": {"distribution": "uniform", "low": 2, "high": 9},
            },
            {"kind": "noise", "count": 5},
            {"kind": "fundamentalist", "count": 3},
        ],
        shocks=[
            {"type": "fundamental_jump", "step": 2, "size": -0.99},
            {"type": "fundamental_jump", "step": 5, "size": -0.99},
        ],
    )
    result = run_scenario(scenario, seed=3, check_invariants=True)
    marks = result.timeseries["mark"].to_numpy()
    # 100 x 0.01 x 0.01 = 0.01: the index mark may sit at or below one tick; book prices stay >= 1 tick.
    assert marks.min() < 0.02 and np.isfinite(marks).all()
    assert (result.trades["price"] >= 0.01 - 1e-12).all()
    assert np.isfinite(result.accounts[["collateral", "equity"]].to_numpy()).all()
    assert result.accounts["position"].sum() == 0


@pytest.mark.parametrize("adl", [True, False])
def test_every_trader_liquidated_with_an_empty_fund_at_step_zero(adl):
    scenario = edge_scenario(
        liquidation={"insurance_fund": 0.0, "adl": adl},
        shocks=[{"type": "fundamental_jump", "step": 0, "size": -0.9}],
    )
    result = run_scenario(scenario, seed=3, check_invariants=True)
    traders = result.accounts[result.accounts["kind"] == "leveraged_trader"]
    assert (traders["liquidated"] > 0).all() and len(traders) == 25
    assert (result.liquidations["step"] == 0).sum() == 25
    # The book held far fewer lots than the traders: the engine took the rest on.
    assert result.accounts.loc[ENGINE, "position"] > 0
    assert result.accounts["position"].sum() == 0


@pytest.mark.parametrize(
    "agents",
    [
        [],
        [
            {"kind": "market_maker", "count": 0},
            {"kind": "leveraged_trader", "count": 10},
            {"kind": "noise", "count": 3},
        ],
        [{"kind": "leveraged_trader", "count": 0}, {"kind": "market_maker", "count": 2}],
    ],
    ids=["no_agents", "no_makers", "no_traders"],
)
def test_zero_agents_of_a_kind(agents):
    result = run_scenario(edge_scenario(agents=agents), seed=2, check_invariants=True)
    assert len(result.timeseries) == 20
    assert np.isfinite(result.timeseries["mark"]).all()


def test_one_step_run_through_the_cli(tmp_path, capsys):
    out_dir = tmp_path / "one"
    status = cli.main(
        ["run", "calm", "--steps", "1", "--check", "--out", str(out_dir), "--no-progress", "--no-report"]
    )
    assert status == 0, capsys.readouterr().err
    run = read_run_tables(out_dir, verify=True)
    assert len(run["timeseries"]) == 1
    assert run["manifest"]["invariant_check_result"] == "passed"


# ----------------------------------------------------------------------------- the manifest


def test_manifest_has_everything_to_reproduce_the_run(tmp_path, capsys):
    out_dir = tmp_path / "run"
    argv = ["run", "calm", "--steps", "15", "--seed", "21", "--check", "--out", str(out_dir), "--no-progress"]
    assert cli.main([*argv, "--no-report"]) == 0, capsys.readouterr().err
    run = read_run_tables(out_dir)
    manifest = run["manifest"]
    assert manifest["seed"] == 21
    assert manifest["seed_sequence"] == {"entropy": 21, "spawn_key": []}
    assert np.random.SeedSequence(21).entropy == 21
    for key in ("abm_version", "git_commit", "git_dirty", "python", "platform", "start_time", "end_time"):
        assert key in manifest
    assert {"numpy", "pandas", "mesa"} <= {k for k, v in manifest["versions"].items() if v}
    assert manifest["command_line"] == ["abm", *argv, "--no-report"]
    assert manifest["invariant_checks"] is True and manifest["invariant_check_result"] == "passed"
    text = json.dumps(manifest["scenario"], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert manifest["scenario_sha256"] == hashlib.sha256(text.encode()).hexdigest()
    for relative, entry in manifest["files"].items():
        assert hashlib.sha256((out_dir / relative).read_bytes()).hexdigest() == entry["sha256"]
    # Rebuild the run from the manifest alone: same tables.
    again = run_scenario(scenario_from_dict(manifest["scenario"]), seed=manifest["seed_sequence"]["entropy"])
    pd.testing.assert_frame_equal(again.trades.reset_index(drop=True), run["trades"], check_dtype=False)
    assert np.array_equal(again.timeseries["mark"].to_numpy(), run["timeseries"]["mark"].to_numpy())


# ----------------------------------------------------------------------------- odd random scenarios


@st.composite
def odd_scenarios(draw):
    steps = draw(st.integers(1, 25))
    traders = {
        "kind": "leveraged_trader",
        "count": draw(st.integers(0, 25)),
        "collateral": draw(st.floats(1.0, 500.0)),
        "side": draw(st.sampled_from(["long", "short", "mixed"])),
        "leverage": {"distribution": "uniform", "low": 1.0, "high": draw(st.floats(1.0, 9.9))},
        "strategy": draw(st.sampled_from(["hold", "momentum", "value", "random"])),
        "initial_position": draw(st.booleans()),
    }
    makers = {
        "kind": "market_maker",
        "count": draw(st.integers(0, 2)),
        "levels": draw(st.integers(1, 4)),
        "level_size": draw(st.integers(1, 5)),
    }
    shocks = [
        {
            "type": "fundamental_jump",
            "step": draw(st.integers(0, steps - 1)),
            "size": draw(st.floats(-0.95, 1.0)),
        }
    ]
    if draw(st.booleans()):
        shocks.append(
            {
                "type": "market_order",
                "side": draw(st.sampled_from(["buy", "sell"])),
                "step": draw(st.integers(0, steps - 1)),
                "quantity": draw(st.integers(1, 5000)),
            }
        )
    return {
        "name": "odd",
        "steps": steps,
        "market": {"mark_price": draw(st.sampled_from(["mid", "last", "index", "index_ema_basis"]))},
        "agents": [makers, traders, {"kind": "noise", "count": draw(st.integers(0, 4))}],
        "margin": {"rule": "fixed", "initial": 0.1, "maintenance": draw(st.floats(0.005, 0.099))},
        "liquidation": {
            "mode": draw(st.sampled_from(["full", "partial"])),
            "target_ratio": draw(st.floats(1.01, 5.0)),
            "fee": draw(st.sampled_from([0.0, 0.005, 0.1])),
            "max_rounds": draw(st.integers(1, 5)),
            "insurance_fund": draw(st.sampled_from([0.0, 1e-6, 1e6])),
            "adl": draw(st.booleans()),
            "price_limit": draw(st.sampled_from(["none", "bankruptcy"])),
            "max_lots_per_round": draw(st.one_of(st.none(), st.integers(1, 5))),
        },
        "shocks": shocks,
    }


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=odd_scenarios(), seed=st.integers(0, 2**32 - 1))
def test_odd_scenarios_keep_every_invariant(data, seed):
    result = run_scenario(scenario_from_dict(data), seed=seed, check_invariants=True)
    money = result.timeseries[["mark", "index", "insurance_fund", "bad_debt", "socialised_loss"]].to_numpy()
    assert np.isfinite(money).all()
    assert np.isfinite(result.accounts[["collateral", "equity", "entry_price"]].to_numpy()).all()
    assert result.accounts["position"].sum() == 0
    assert len(result.timeseries) == data["steps"]
