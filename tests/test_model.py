"""End-to-end properties of MarketModel on the shipped scenarios and on random valid scenarios."""

import math

import mesa
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from abm import MarketModel
from abm.config import load_scenario, resolve_scenario, scenario_from_dict
from abm.errors import InvariantError
from abm.ledger import ENGINE
from abm.runs import run_scenario


@pytest.fixture(scope="module")
def spiral():
    return load_scenario(resolve_scenario("spiral"))


@pytest.fixture(scope="module")
def spiral_run(spiral):
    return run_scenario(spiral, seed=7, check_invariants=True)


@pytest.fixture(scope="module")
def calm_run():
    return run_scenario(load_scenario(resolve_scenario("calm")), seed=7, check_invariants=True)


def test_spiral_cascades_at_least_three_links_deep(spiral_run):
    assert spiral_run.summary["cascade_depth"] >= 3
    assert spiral_run.summary["cascade_max_rounds"] >= 4
    liquidations = spiral_run.liquidations
    # Every edge of the DAG goes from round r to round r + 1 of the same step.
    for parent, child in spiral_run.cascade.edges:
        p, c = liquidations.loc[parent], liquidations.loc[child]
        assert (p["step"], p["round"] + 1) == (c["step"], c["round"])


def test_calm_liquidates_at_most_a_tenth_of_the_spiral(spiral_run, calm_run):
    assert spiral_run.summary["liquidated_accounts"] > 0
    assert calm_run.summary["liquidated_accounts"] <= spiral_run.summary["liquidated_accounts"] / 10


def test_counterfactual_without_liquidation_has_a_smaller_drawdown(spiral, spiral_run):
    counterfactual = run_scenario(spiral, seed=7, liquidation_enabled=False, check_invariants=True)
    assert counterfactual.summary["liquidations"] == 0
    amplification = spiral_run.summary["max_drawdown"] / counterfactual.summary["max_drawdown"]
    assert amplification > 1.0


def test_same_seed_gives_identical_tables(spiral):
    first = run_scenario(spiral, seed=11)
    second = run_scenario(spiral, seed=11)
    for name in ("timeseries", "trades", "liquidations", "accounts"):
        pd.testing.assert_frame_equal(getattr(first, name), getattr(second, name))
    assert first.summary == second.summary
    other = run_scenario(spiral, seed=12)
    assert not first.trades.equals(other.trades)


def test_tables_have_the_documented_columns(spiral_run):
    from abm.results import ACCOUNT_COLUMNS, LIQUIDATION_COLUMNS, TIMESERIES_COLUMNS, TRADE_COLUMNS

    assert set(TIMESERIES_COLUMNS) <= set(spiral_run.timeseries.columns)
    assert list(spiral_run.trades.columns) == list(TRADE_COLUMNS)
    assert set(LIQUIDATION_COLUMNS) <= set(spiral_run.liquidations.columns)
    assert list(spiral_run.accounts.columns) == list(ACCOUNT_COLUMNS)
    assert len(spiral_run.timeseries) == spiral_run.scenario.steps
    accounts = spiral_run.accounts
    assert accounts["position"].sum() == 0
    assert accounts.loc[ENGINE, "kind"] == "liquidation_engine"


def test_invariant_breach_is_caught_with_step_and_accounts(spiral):
    model = MarketModel(spiral, rng=3, check_invariants=True)
    model.step()
    model.ledger._position[5, 0] += 1  # an injected breach of the zero-sum invariant
    with pytest.raises(InvariantError, match=r"step 1: positions in PERP sum to 1"):
        model.step()


def test_money_conserved_and_positions_net_to_zero_every_step(spiral):
    model = MarketModel(spiral, rng=5)
    ledger = model.ledger
    expected = ledger.initial_money
    for _ in range(spiral.steps):
        model.step()
        assert ledger.position.sum() == 0
        total = ledger.money_total(model.marks)
        assert math.isclose(total, expected + ledger.total_deposits, rel_tol=1e-9, abs_tol=1e-6)


def test_keyword_overrides_and_batch_run():
    results = mesa.batch_run(
        MarketModel,
        parameters={"scenario": "calm", "steps": 30, "agents.1.count": [20, 40]},
        rng=[1, 2],
        max_steps=30,
        number_processes=1,
        display_progress=False,
    )
    assert len(results) == 4
    assert {row["agents.1.count"] for row in results} == {20, 40}
    assert all(np.isfinite(row["mark"]) for row in results)
    model = MarketModel("calm", rng=1, **{"steps": 30, "agents.1.count": 20})
    assert model.config.agents[1].count == 20 and model.horizon == 30


# ----------------------------------------------------------------------------- random scenarios

group_strategy = st.one_of(
    st.fixed_dictionaries(
        {
            "kind": st.just("leveraged_trader"),
            "count": st.integers(0, 30),
            "collateral": st.floats(10.0, 1000.0),
            "side": st.sampled_from(["long", "short", "mixed"]),
            "leverage": st.fixed_dictionaries(
                {"distribution": st.just("uniform"), "low": st.just(1.0), "high": st.floats(1.0, 9.0)}
            ),
            "strategy": st.sampled_from(["hold", "momentum", "value", "random"]),
            "arrival_rate": st.floats(0.0, 1.0),
            "reentry_rate": st.floats(0.0, 0.5),
            "reserves": st.floats(0.0, 100.0),
        }
    ),
    st.fixed_dictionaries(
        {
            "kind": st.just("noise"),
            "count": st.integers(0, 10),
            "max_size": st.integers(1, 20),
            "arrival_rate": st.floats(0.0, 1.0),
        }
    ),
    st.fixed_dictionaries({"kind": st.just("fundamentalist"), "count": st.integers(0, 5)}),
)


@st.composite
def scenarios(draw):
    steps = draw(st.integers(1, 40))
    maker = {
        "kind": "market_maker",
        "count": draw(st.integers(0, 3)),
        "levels": draw(st.integers(1, 8)),
        "level_size": draw(st.integers(1, 20)),
    }
    groups = [maker, *draw(st.lists(group_strategy, max_size=3))]
    shocks = []
    if draw(st.booleans()):
        shocks.append({"type": "fundamental_jump", "step": draw(st.integers(0, steps - 1)), "size": -0.1})
    if draw(st.booleans()):
        shocks.append(
            {
                "type": "market_order",
                "step": draw(st.integers(0, steps - 1)),
                "quantity": draw(st.integers(1, 200)),
                "over_steps": draw(st.integers(1, 3)),
            }
        )
    return {
        "name": "random",
        "steps": steps,
        "market": {"mark_price": draw(st.sampled_from(["mid", "last", "index", "index_ema_basis"]))},
        "agents": groups,
        "margin": {"rule": "fixed", "initial": 0.1, "maintenance": draw(st.floats(0.01, 0.09))},
        "liquidation": {
            "mode": draw(st.sampled_from(["full", "partial"])),
            "insurance_fund": draw(st.floats(0.0, 1000.0)),
            "adl": draw(st.booleans()),
            "price_limit": draw(st.sampled_from(["none", "bankruptcy"])),
            "max_lots_per_round": draw(st.one_of(st.none(), st.integers(1, 50))),
        },
        "shocks": shocks,
    }


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=scenarios(), seed=st.integers(0, 2**32 - 1))
def test_random_valid_scenarios_run_with_invariants(data, seed):
    scenario = scenario_from_dict(data)
    result = run_scenario(scenario, seed=seed, check_invariants=True)
    money = result.timeseries[["mark", "insurance_fund", "bad_debt", "socialised_loss"]].to_numpy()
    assert np.isfinite(money).all()
    assert result.accounts["position"].sum() == 0


def test_realised_volatility_is_the_sample_std_of_the_window_log_returns(spiral_run):
    # The model keeps the marks' logs and writes the std out by hand; it must give the very bits of
    # the plain formula over the same window (vol_window marks back from the step).
    ts = spiral_run.timeseries
    marks = np.concatenate([[spiral_run.scenario.market.initial_price], ts["mark"].to_numpy()])
    window = spiral_run.scenario.market.vol_window
    recorded = ts["realised_vol"].to_numpy()
    for t in range(2, len(ts)):  # the value recorded at step t was computed from marks[0..t]
        start = max(0, t - window)
        expected = float(np.std(np.diff(np.log(marks[start : t + 1])), ddof=1))
        assert recorded[t] == expected, t
    assert recorded[350] > 0.0  # the spiral moved the mark


def test_the_insurance_fund_is_reported_at_its_worth_with_the_engine_inventory_marked():
    from abm.ledger import ENGINE

    # Spiral, seed 7: the engine takes positions over in the crash and unwinds them for hundreds of
    # steps. Each row's insurance_fund must be the engine's cash plus its inventory at that step's
    # marks (account equity), insurance_fund_cash the cash alone.
    model = MarketModel("spiral", rng=7, steps=450)
    differed = 0
    for _ in range(450):
        model.step()
        worth = model.ledger.account_equity(ENGINE, model.marks)
        cash = model.ledger.collateral_of(ENGINE)
        assert model.recorder.latest("insurance_fund") == pytest.approx(worth, abs=1e-9)
        assert model.recorder.latest("insurance_fund_cash") == pytest.approx(cash, abs=1e-9)
        differed += abs(worth - cash) > 1.0
    assert differed > 10  # the engine held inventory worth visibly less (or more) than it paid


def test_batch_run_reports_the_run_figures_not_the_last_step() -> None:
    # mesa.batch_run keeps the last step's values: each headline reporter is its figure so far, so the
    # last row must equal the run's summary (it once reported the last step's 0 liquidations).
    import mesa

    from abm.runs import run_scenario

    parameters = {
        "scenario": "spiral",
        "steps": 360,
        "margin.maintenance": [0.02, 0.03],
    }
    rows = mesa.batch_run(MarketModel, parameters=parameters, rng=[4], max_steps=360, display_progress=False)
    assert len(rows) == 2
    for row in rows:
        scenario = load_scenario("spiral", ["steps=360", f"margin.maintenance={row['margin.maintenance']}"])
        summary = run_scenario(scenario, seed=4).summary
        assert summary["liquidations"] > 0
        for name in ("liquidations", "cascade_depth"):
            assert row[name] == summary[name], name
        for name in ("liquidated_notional", "max_drawdown", "bad_debt", "insurance_fund_min"):
            assert row[name] == pytest.approx(summary[name], rel=1e-9, abs=1e-9), name


def test_agent_reporters_are_collected_when_asked() -> None:
    model = MarketModel("spiral", rng=3, agent_reporting=True, **{"steps": 320, "agents.1.count": 20})
    for _ in range(5):
        model.step()
    agents = model.datacollector.get_agent_vars_dataframe()
    assert list(agents.columns) == ["equity", "leverage", "position"]
    assert len(agents) == 5 * len(model.agents)
    assert (agents["equity"] > 0).all()
    quiet = MarketModel("spiral", rng=3, **{"steps": 320, "agents.1.count": 20})
    quiet.step()
    assert not quiet.datacollector.agent_reporters


def test_the_headline_collector_stores_what_mesas_collector_stores() -> None:
    # The collector skips Mesa's deep copy of numbers; alongside it, Mesa's own DataCollector with the
    # same reporters, collected at the same steps, must hold equal columns and the same step times.
    model = MarketModel("spiral", rng=5, steps=360)
    from abm.reporters import model_reporters

    mesas = mesa.DataCollector(model_reporters=model_reporters(model.headline))
    for _ in range(360):
        model.step()
        mesas.collect(model)
    ours = model.datacollector
    assert type(ours).collect is not mesa.DataCollector.collect
    assert ours._collection_steps == mesas._collection_steps
    assert list(ours.model_vars) == list(mesas.model_vars)
    for name, values in mesas.model_vars.items():
        assert len(values) == 360, name
        np.testing.assert_array_equal(ours.model_vars[name], values, err_msg=name)
    assert ours.model_vars["liquidations"][-1] > 0  # the spiral's liquidations reach the collector
    frame = ours.get_model_vars_dataframe()
    pd.testing.assert_frame_equal(frame, mesas.get_model_vars_dataframe())


def test_actors_through_a_mask_are_the_actors_sorted(monkeypatch) -> None:
    # draw_actors orders the step's actors through a mask over the accounts when they are many, by a
    # sort (or np.unique with margin calls) when few: the same accounts, the same order, so the
    # same tables. The spiral's short run has margin calls, liquidations and every group acting.
    import abm.population

    def tables(share: int):
        monkeypatch.setattr(abm.population, "_MASK_SHARE", share)
        scenario = load_scenario("spiral", ["steps=120", "shocks.0.step=60", "shocks.1.step=60"])
        result = run_scenario(scenario, seed=3)
        return result.trades, result.liquidations, result.timeseries

    always, never = tables(10**9), tables(0)
    assert len(always[1]) > 0  # liquidations happened
    for mask_path, sort_path in zip(always, never, strict=True):
        pd.testing.assert_frame_equal(mask_path, sort_path)
