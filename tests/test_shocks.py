"""Each shock type's effect on a small model, the ``when`` triggers, and the shock schema.

The models are made deterministic where the figure is worked out by hand: a constant fundamental, the
mark from the index, and makers alone (their quotes do not depend on the rng), so a baseline run gives
the same book every step and the shock's effect is the whole difference.
"""

import copy
import math

import numpy as np
import pytest

from abm import MarketModel
from abm.config import ScenarioError, scenario_from_dict
from abm.ledger import KIND_CODES
from abm.shocks import ShockSchedule, trigger_holds

MAKER = {
    "kind": "market_maker",
    "count": 2,
    "levels": 8,
    "half_spread_ticks": 2,
    "level_spacing_ticks": 2,
    "level_size": 20,
    "inventory_limit": 100_000,
}
LONGS = {
    "kind": "leveraged_trader",
    "count": 10,
    "collateral": 100.0,
    "side": "long",
    "leverage": {"distribution": "fixed", "value": 4.0},
    "arrival_rate": 0.0,
}


def scenario(shocks=(), agents=(MAKER,), steps=30, mark="index", fundamental=None, **extra):
    data = {
        "name": "shock-test",
        "steps": steps,
        "market": {"mark_price": mark, "contract_size": 1.0, "tick_size": 0.01},
        "fundamental": fundamental or {"process": "constant"},
        "agents": [copy.deepcopy(group) for group in agents],
        "margin": {"rule": "fixed", "initial": 0.1, "maintenance": 0.05},
        "liquidation": {"insurance_fund": 1000.0},
        "shocks": list(shocks),
        **extra,
    }
    return scenario_from_dict(data)


def run(shocks=(), seed=3, **kwargs):
    model = MarketModel(scenario(shocks, **kwargs), rng=seed, check_invariants=True)
    model.run()
    return model, model.recorder.to_frame()


# --------------------------------------------------------------------------- fundamental and index


def test_fundamental_jump_moves_index_and_mark_once():
    _, ts = run([{"type": "fundamental_jump", "step": 10, "size": -0.1}])
    index = ts["index"].to_numpy()
    assert np.all(index[:10] == 100.0)
    assert index[10:] == pytest.approx(90.0)  # 100 x (1 - 0.1), and it stays: a repricing
    assert ts["mark"].to_numpy()[10:] == pytest.approx(90.0)


def test_drift_regime_reprices_an_ou_fundamental_for_exactly_its_steps():
    # OU with no noise: the drift moves the level too, so the index compounds exp(-0.01) per regime step.
    fundamental = {"process": "ou", "volatility": 0.0, "mean_reversion": 0.2}
    shocks = [{"type": "regime", "step": 5, "over_steps": 4, "drift": -0.01}]
    _, ts = run(shocks, fundamental=fundamental, steps=20)
    index = ts["index"].to_numpy()
    assert np.all(index[:5] == 100.0)
    expected = 100.0 * np.exp(-0.01 * np.arange(1, 5))
    assert index[5:9] == pytest.approx(expected)
    assert index[9:] == pytest.approx(np.full(11, 100.0 * math.exp(-0.04)))  # no reversion afterwards


def test_volatility_regime_moves_a_constant_fundamental_only_while_it_lasts():
    shocks = [{"type": "regime", "step": 5, "over_steps": 6, "volatility": 0.01}]
    _, ts = run(shocks, steps=20)
    moves = np.diff(np.log(ts["index"].to_numpy()))  # moves[t - 1] is the move made in step t
    assert np.all(moves[:4] == 0.0)
    assert np.all(moves[4:10] != 0.0) and np.std(moves[4:10]) > 0.002
    assert np.all(moves[10:] == 0.0)


def test_stale_index_holds_the_mark_for_exactly_k_steps():
    fundamental = {"process": "gbm", "volatility": 0.002}
    shocks = [{"type": "stale_index", "step": 10, "over_steps": 5}]
    model, ts = run(shocks, fundamental=fundamental, steps=25)
    mark = ts["mark"].to_numpy()
    assert np.all(mark[10:15] == mark[9])  # held at the value published before the fault
    assert mark[15] != mark[9]
    assert np.all(np.diff(mark[:10]) != 0.0)  # live before: the fundamental moves every step
    assert model.market.index == model.market.fundamental


def test_misprint_moves_the_index_mark_but_not_the_book():
    longs = {**LONGS, "leverage": {"distribution": "fixed", "value": 9.0}}
    shocks = [{"type": "index_misprint", "step": 10, "over_steps": 2, "size": -0.1}]
    model, ts = run(shocks, agents=(MAKER, longs), steps=20)
    assert ts["index"].to_numpy()[10:12] == pytest.approx([90.0, 90.0])
    assert np.all(ts["index"].to_numpy()[12:] == 100.0)
    assert ts["mark"].to_numpy()[10] == pytest.approx(90.0)
    # The makers quote around the book, not the oracle: mark and book diverge by the misprint.
    assert abs(ts["mid"].to_numpy()[10] - 100.0) < 0.5
    # 9x longs at 100 hold 9 x 100 / 100 = 9 lots: equity at 90 is 100 - 90 = 10 < 0.05 x 810 = 40.5.
    assert ts["liquidations"].to_numpy()[10] == 10


def test_misprint_reaches_an_index_ema_basis_mark():
    shocks = [{"type": "index_misprint", "step": 10, "size": -0.05}]
    _, ts = run(shocks, mark="index_ema_basis", steps=15)
    mark = ts["mark"].to_numpy()
    # Mark = index + EMA basis; the basis (mid - index) is at most a tick or so, the print moves it 5.
    assert mark[10] == pytest.approx(95.0, abs=0.5)
    assert mark[11] == pytest.approx(100.0, abs=0.5)


# --------------------------------------------------------------------------- programs


def _exogenous_fills(model, result_steps):
    trades = model.ledger.trades
    step = np.array(trades.step)
    taker = np.array(trades.taker)
    quantity = np.array(trades.quantity)
    mine = taker == model.exogenous_account
    return np.array([quantity[mine & (step == t)].sum() for t in range(result_steps)])


def test_sell_program_all_at_once_and_twap():
    model, _ = run([{"type": "market_order", "step": 5, "quantity": 50}], steps=10)
    fills = _exogenous_fills(model, 10)
    assert fills[5] == 50 and fills.sum() == 50
    model, _ = run([{"type": "market_order", "step": 5, "quantity": 50, "over_steps": 4}], steps=12)
    fills = _exogenous_fills(model, 12)
    assert fills[5:9].tolist() == [13, 13, 12, 12]  # 50 = 4 x 12 + 2: the first two take the extra lot
    assert model.ledger.position[model.exogenous_account, 0] == -50


def test_volume_share_program_trades_its_share_of_the_previous_step():
    noise = {"kind": "noise", "count": 10, "arrival_rate": 0.5, "max_size": 5}
    shocks = [{"type": "market_order", "step": 10, "quantity": 40, "volume_share": 0.5, "side": "buy"}]
    model, ts = run(shocks, agents=(MAKER, noise), steps=40)
    fills = _exogenous_fills(model, 40)
    volume = ts["volume"].to_numpy()
    done = 0
    for t in range(10, 40):
        wanted = min(max(1, round(0.5 * volume[t - 1])), 40 - done)
        assert fills[t] == wanted, t
        done += fills[t]
        if done == 40:
            break
    assert fills.sum() == 40 and model.ledger.position[model.exogenous_account, 0] == 40


# --------------------------------------------------------------------------- liquidity


def test_liquidity_withdrawal_lowers_depth_and_widens_the_spread_for_exactly_k_steps():
    shocks = [{"type": "liquidity_withdrawal", "step": 10, "over_steps": 5, "share": 0.5, "spread_factor": 3}]
    _, base = run(steps=25)
    _, shocked = run(shocks, steps=25)
    for column in ("spread", "depth_bid", "depth_ask"):
        assert base[column].nunique() == 1  # a still market: the same book every step
    spread, depth = shocked["spread"].to_numpy(), shocked["depth_bid"].to_numpy()
    calm = np.r_[0:10, 15:25]
    assert np.all(spread[calm] == base["spread"].iloc[0]) and np.all(depth[calm] == base["depth_bid"].iloc[0])
    # Half spread 2 ticks x 3 = 6 each side: 12 ticks = 0.12 (from 0.04); each level quotes 20 x 0.5 lots.
    assert spread[10:15] == pytest.approx(np.full(5, 0.12))
    assert base["spread"].iloc[0] == pytest.approx(0.04)
    assert np.all(depth[10:15] == base["depth_bid"].iloc[0] // 2)


def test_liquidity_returns_at_the_configured_speed():
    shocks = [{"type": "liquidity_withdrawal", "step": 5, "over_steps": 2, "share": 1.0, "recovery_steps": 3}]
    _, ts = run(shocks, steps=15)
    depth = ts["depth_bid"].to_numpy()
    full = depth[0]
    # 2 makers x 8 levels x 20 lots; strength 1, 1, then 3/4, 2/4, 1/4 of the depth still withheld.
    assert full == 2 * 8 * 20
    assert depth[5:10].tolist() == [0, 0, full // 4, full // 2, 3 * full // 4]
    assert np.all(depth[10:] == full)


# --------------------------------------------------------------------------- margin


@pytest.mark.parametrize("notice", [0, 4])
def test_margin_hike_takes_effect_exactly_notice_steps_later(notice):
    hike = {"initial": 0.2, "maintenance": 0.1, "notice_steps": notice}
    shocks = [{"type": "margin_change", "step": 8, **hike}]
    _, ts = run(shocks, steps=20)
    mmr = ts["mmr"].to_numpy()
    effective = 8 + notice
    assert np.all(mmr[:effective] == 0.05) and np.all(mmr[effective:] == 0.1)
    assert np.all(ts["imr"].to_numpy()[effective:] == 0.2)


def test_margin_hike_by_a_factor_liquidates_accounts_it_puts_under_water():
    # 9x longs: equity 100, notional 900; mmr 0.05 -> 45 (safe); x3 -> 0.15 x 900 = 135 > 100 (breach).
    longs = {**LONGS, "leverage": {"distribution": "fixed", "value": 9.0}}
    shocks = [{"type": "margin_change", "step": 5, "factor": 3.0}]
    _, ts = run(shocks, agents=(MAKER, longs), steps=10)
    assert ts["mmr"].iloc[5] == pytest.approx(0.15) and ts["imr"].iloc[5] == pytest.approx(0.3)
    assert ts["liquidations"].to_numpy()[:5].sum() == 0 and ts["liquidations"].iloc[5] == 10


# --------------------------------------------------------------------------- collateral


def test_collateral_haircut_cuts_trader_collateral_and_money_is_conserved():
    shocks = [{"type": "collateral_haircut", "step": 5, "size": 0.3}]
    model = MarketModel(scenario(shocks, agents=(MAKER, LONGS), steps=10), rng=1, check_invariants=True)
    for _ in range(5):
        model.step()
    ledger = model.ledger
    makers = model.population.maker_accounts
    traders = np.flatnonzero(ledger.kind == KIND_CODES["leveraged_trader"])
    before = ledger.collateral[traders].copy()
    makers_before = ledger.collateral[makers].copy()
    model.step()  # check_invariants: conservation counts the haircut
    assert ledger.collateral[traders] == pytest.approx(before * 0.7)
    assert ledger.collateral[makers] == pytest.approx(makers_before)
    assert ledger.total_revaluation == pytest.approx(-0.3 * before.sum())


def test_collateral_haircut_accepts_every_agent_kind_in_the_schema():
    from abm.config.schema import CollateralHaircut
    from abm.ledger import SYSTEM_KINDS

    allowed = CollateralHaircut.model_fields["kinds"].annotation.__args__[0].__args__
    agent_kinds = set(KIND_CODES) - set(SYSTEM_KINDS)
    assert set(allowed) == agent_kinds


def test_funding_spike_moves_money_from_longs_to_shorts_and_conserves_it():
    # 4x longs at 100 with 100 collateral hold 4 lots; rate 0.001 over 5 steps at mark 100 costs each
    # long 5 x 0.001 x 4 x 100 = 2.0; the counterparty, short 40 lots, receives 10 x 2.0 = 20.
    shocks = [{"type": "funding_spike", "step": 3, "over_steps": 5, "rate": 0.001}]
    model, _ = run(shocks, agents=(LONGS,), steps=12)
    ledger = model.ledger
    traders = np.flatnonzero(ledger.kind == KIND_CODES["leveraged_trader"])
    assert ledger.position[traders, 0] == pytest.approx(np.full(10, 4))
    assert ledger.collateral[traders] == pytest.approx(np.full(10, 98.0))
    counterparty = model.counterparty_account
    received = ledger.collateral[counterparty] - ledger.initial_collateral[counterparty]
    assert received == pytest.approx(20.0)
    assert ledger.total_funding == pytest.approx(20.0)
    assert ledger.money_total(model.marks) == pytest.approx(ledger.initial_money)


# --------------------------------------------------------------------------- traders


def test_trader_inflow_adds_leveraged_accounts_at_the_mark():
    newcomers = {"count": 30, "collateral": 50.0, "leverage": {"distribution": "fixed", "value": 6.0}}
    newcomers["label"] = "crowd"
    shocks = [{"type": "trader_inflow", "step": 4, "over_steps": 3, "traders": newcomers}]
    model, ts = run(shocks, agents=(MAKER, LONGS), steps=10)
    accounts = model.accounts_table()
    crowd = accounts[accounts["group"] == "crowd"]
    assert len(crowd) == 30
    assert (crowd["position"] == 3).all()  # 6 x 50 / 100
    open_interest = ts["open_interest"].to_numpy()
    # 10 longs of 4 lots, then 10 newcomers of 3 lots join in each of steps 4, 5, 6.
    assert open_interest[:4].tolist() == [40] * 4
    assert open_interest[4:7].tolist() == [70, 100, 130]
    assert np.all(open_interest[7:] == 130)


def test_trader_inflow_through_the_book_lifts_the_price():
    newcomers = {
        "count": 20,
        "collateral": 100.0,
        "leverage": {"distribution": "fixed", "value": 5.0},
        "initial_position": False,
    }
    shocks = [{"type": "trader_inflow", "step": 5, "traders": newcomers}]
    model, ts = run(shocks, mark="mid", steps=8)
    assert model.counterparty_account == -1  # bought from the makers, nobody else
    # 20 x (5 x 100 / 100) = 100 lots bought from asks of 40 lots a level: the mid moves up.
    assert ts["volume"].iloc[5] == 100
    assert ts["mid"].iloc[5] > ts["mid"].iloc[4]
    assert model.accounts_table().query("kind == 'leveraged_trader'")["position"].tolist() == [5] * 20


def test_trader_outflow_withdraws_free_collateral_from_a_share_of_traders():
    # 4x longs: equity 100, notional 400, initial requirement 40: free collateral 60; they take half.
    shocks = [{"type": "trader_outflow", "step": 3, "share": 0.4, "fraction": 0.5}]
    model, _ = run(shocks, agents=(MAKER, LONGS), steps=6)
    deposits = model.accounts_table().query("kind == 'leveraged_trader'")["deposits"].to_numpy()
    assert np.sort(deposits).tolist() == [-30.0] * 4 + [0.0] * 6
    assert model.ledger.total_deposits == pytest.approx(-120.0)


# --------------------------------------------------------------------------- triggers


def test_condition_fires_once_at_the_first_step_it_holds():
    fundamental = {"process": "gbm", "volatility": 0.0, "drift": -0.005}
    shocks = [{"type": "fundamental_jump", "when": {"mark_below": 97.0}, "size": -0.02}]
    model, ts = run(shocks, fundamental=fundamental, steps=20)
    mark = ts["mark"].to_numpy()
    # The mark after step t is 100 exp(-0.005 (t + 1)) until the jump; < 97 first after step 6.
    first = int(np.argmax(mark < 97.0)) + 1
    assert first == 7 and model.shocks.started_at == [7]
    index = ts["index"].to_numpy()
    assert index[7] == pytest.approx(100.0 * math.exp(-0.04) * 0.98)
    assert index[19] == pytest.approx(100.0 * math.exp(-0.1) * 0.98)  # one jump only


def test_condition_is_armed_from_step():
    fundamental = {"process": "gbm", "volatility": 0.0, "drift": -0.005}
    shocks = [{"type": "stale_index", "step": 12, "when": {"drawdown_above": 0.02}}]
    model, _ = run(shocks, fundamental=fundamental, steps=20)
    assert model.shocks.started_at == [12]  # drawdown passed 2% at step 4, but the trigger waits


def test_condition_that_never_holds_never_fires():
    shocks = [{"type": "fundamental_jump", "when": {"mark_above": 150.0}, "size": 0.1}]
    model, ts = run(shocks, steps=10)
    assert model.shocks.started_at == [None] and np.all(ts["index"].to_numpy() == 100.0)


@pytest.mark.parametrize(
    ("condition", "mark", "peak", "volatility", "holds"),
    [
        ({"mark_below": 95.0}, 94.9, 100.0, 0.0, True),
        ({"mark_below": 95.0}, 95.0, 100.0, 0.0, False),
        ({"mark_above": 105.0}, 105.1, 105.1, 0.0, True),
        ({"drawdown_above": 0.1}, 89.0, 100.0, 0.0, True),
        ({"drawdown_above": 0.1}, 91.0, 100.0, 0.0, False),
        ({"volatility_above": 0.002}, 100.0, 100.0, 0.003, True),
        ({"volatility_above": 0.002}, 100.0, 100.0, 0.001, False),
    ],
)
def test_trigger_conditions(condition, mark, peak, volatility, holds):
    shock = scenario([{"type": "stale_index", "when": condition}]).shocks[0]
    assert trigger_holds(shock.when, mark, peak, volatility) is holds


def test_volatility_trigger_starts_a_drought():
    fundamental = {"process": "constant"}
    shocks = [
        {"type": "regime", "step": 5, "over_steps": 30, "volatility": 0.01},
        {"type": "liquidity_withdrawal", "when": {"volatility_above": 0.004}, "over_steps": 3, "share": 1.0},
    ]
    model, ts = run(shocks, fundamental=fundamental, steps=40)
    start = model.shocks.started_at[1]
    vol = ts["realised_vol"].to_numpy()
    assert start is not None and vol[start - 1] > 0.004 and np.all(vol[: start - 1] <= 0.004)
    assert np.all(ts["depth_bid"].to_numpy()[start : start + 3] == 0)


# --------------------------------------------------------------------------- schema


@pytest.mark.parametrize(
    ("shock", "fragment"),
    [
        ({"type": "fundamental_jump", "size": -0.1}, "give a `step`, or a `when` condition"),
        ({"type": "stale_index", "when": {"mark_below": 90.0, "mark_above": 110.0}}, "exactly one condition"),
        ({"type": "stale_index", "when": {}}, "exactly one condition"),
        ({"type": "margin_change", "step": 1, "factor": 2.0, "initial": 0.2}, "not both"),
        ({"type": "margin_change", "step": 1, "initial": 0.2}, "both initial and maintenance"),
        ({"type": "margin_change", "step": 1, "initial": 0.1, "maintenance": 0.2}, "must not exceed"),
        ({"type": "liquidity_withdrawal", "step": 1}, "share > 0, spread_factor > 1"),
        ({"type": "regime", "step": 1}, "drift, volatility or both"),
        ({"type": "collateral_haircut", "step": 1, "size": 1.0}, "must be < 1"),
    ],
)
def test_invalid_shocks_are_rejected_with_a_message(shock, fragment):
    with pytest.raises(ScenarioError) as caught:
        scenario([shock])
    assert any(fragment in line and line.startswith("shocks.0") for line in caught.value.errors), caught.value


def test_inflow_leverage_is_checked_against_initial_margin():
    traders = {"count": 5, "leverage": {"distribution": "fixed", "value": 20.0}}
    with pytest.raises(ScenarioError) as caught:
        scenario([{"type": "trader_inflow", "step": 1, "traders": traders}])
    assert any(line.startswith("shocks.0.traders.leverage") for line in caught.value.errors)


def test_every_shock_type_has_a_handler():
    from abm.config import SHOCK_TYPES
    from abm.shocks import HANDLERS

    assert set(HANDLERS) == set(SHOCK_TYPES)


def test_schedule_reports_started_steps_for_plain_shocks():
    data = scenario([{"type": "fundamental_jump", "step": 2, "size": 0.01}], steps=5)
    schedule = ShockSchedule(data.shocks)
    assert schedule.started_at == [None]
    model = MarketModel(data, rng=0)
    model.run()
    assert model.shocks.started_at == [2]


# The portfolio comparison's correlation breakdown: a correlation regime and two drift regimes for
# 100 steps, after which the correlated draws and the regimes must be back to the configured ones.
_BREAKDOWN = (
    "shocks=[{type: correlation_regime, step: 300, over_steps: 100, common: 0.0},"
    " {type: regime, step: 300, over_steps: 100, drift: -0.0004, volatility: 0.001, instrument: A},"
    " {type: regime, step: 300, over_steps: 100, drift: 0.0004, volatility: 0.001, instrument: B}]"
)


@pytest.mark.parametrize(
    ("scenario", "overrides"),
    [
        ("spiral", []),
        ("oracle_venues", []),
        ("depeg_collateral", []),
        ("liquidity_drought", []),
        ("contagion", []),
        ("portfolio_stress", [_BREAKDOWN]),
    ],
)
def test_the_quiet_steps_shortcut_gives_the_full_passs_run(monkeypatch, scenario, overrides):
    # ShockSchedule.apply skips the reset when no shock acted in the last step and none runs, starts
    # or waits for a condition now. Forcing the full pass on every step must give the same run: the
    # time series (effects, index, funding paid) and the liquidations, step by step.
    from abm.config import load_scenario

    def run():
        model = MarketModel(load_scenario(scenario, overrides), rng=3)
        model.run()
        return model.results()

    shortcut = run()
    full_apply = ShockSchedule.apply

    def always_full(self, ctx, step):
        self._quiet = False
        return full_apply(self, ctx, step)

    monkeypatch.setattr(ShockSchedule, "apply", always_full)
    full = run()
    assert shortcut.timeseries.equals(full.timeseries)
    assert shortcut.liquidations.equals(full.liquidations)
