"""The SPAN-style portfolio rule: hand-worked risk arrays and credits, bad input, and a whole run.

Every case below is worked by hand in its comments. Notation: a position's exposure is
``lots x contract x mark x scan range``, its loss in a scenario ``-exposure x move``; the moves are
0, +-1/3, +-2/3, +-1 and +-extreme_move x extreme_weight.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from abm import config
from abm.cli import main
from abm.margin.portfolio import SpanRule, build_portfolio_rule
from abm.margin.portfolio_settings import SpanMargin
from abm.runs import run_scenario

CONTRACT = 0.1


def _rule(ranges: dict[str, float], credits=(), **settings) -> SpanRule:
    span = SpanMargin(rule="span", scan_ranges=ranges, spread_credits=list(credits), **settings)
    instruments = [SimpleNamespace(name=name, contract_size=CONTRACT) for name in ranges]
    rule = build_portfolio_rule(span, np.eye(len(ranges)), instruments)
    assert isinstance(rule, SpanRule)
    return rule


def test_a_credit_is_the_rate_times_the_smaller_leg_and_a_leg_is_spread_once():
    # Marks and ranges: A 100 / 6%, B 50 / 8%, C 200 / 5%; pairs (A, B) at 50%, then (A, C) at 40%.
    rule = _rule(
        {"A": 0.06, "B": 0.08, "C": 0.05},
        [{"pair": ["A", "B"], "rate": 0.5}, {"pair": ["A", "C"], "rate": 0.4}],
    )
    marks = np.array([100.0, 50.0, 200.0])
    # Long 10 A: 10 x 0.1 x 100 x 0.06 = 6. Short 5 B: 5 x 0.1 x 50 x 0.08 = 2. Short 3 C:
    # 3 x 0.1 x 200 x 0.05 = 3. Scanning risk 6 + 2 + 3 = 11.
    # (A, B) offset: uses min(6, 2) = 2 of each, credit 0.5 x 2 = 1; A has 4 left, B 0.
    # (A, C) offset: uses min(4, 3) = 3, credit 0.4 x 3 = 1.2 (not min(6, 3): A's 2 are spread already).
    # Maintenance 11 - 1 - 1.2 = 8.8; initial 1.1 x 8.8 = 9.68.
    initial, maintenance = rule.requirements(np.array([[10, -5, -3]]), marks, None, None)
    assert maintenance[0] == pytest.approx(8.8) and initial[0] == pytest.approx(9.68)
    # The long's 6 is bound by the full fall, the shorts' 2 + 3 = 5 by the full rise (the extremes
    # weigh 0.7 < 1 range): the fall bound the larger part, 6 / 11.
    assert rule.state(np.array([[10, -5, -3]]), marks) == pytest.approx(
        {
            "span_scanning_risk": 11.0,
            "span_intra_spread_charges": 0.0,
            "span_credits": 2.2,
            "span_binding_move": -1.0,
            "span_binding_share": 6 / 11,
        }
    )
    # Same sides earn nothing (long A, long B): 6 + 2 = 8; a flat account needs 0.
    initial, maintenance = rule.requirements(np.array([[10, 5, 0], [0, 0, 0]]), marks, None, None)
    assert maintenance.tolist() == pytest.approx([8.0, 0.0])


def test_the_extreme_moves_bind_only_when_they_weigh_more_than_a_full_range():
    marks = np.array([100.0])
    # Long 10 A at 6%: exposure 6. Default extremes: 2 x 0.35 = 0.7 ranges < 1, so the charge is 6.
    assert _rule({"A": 0.06}).requirements(np.array([[10]]), marks, None, None)[1][0] == pytest.approx(6.0)
    # Counted at 60%: 2 x 0.6 = 1.2 ranges > 1, so 1.2 x 6 = 7.2; a short the same by symmetry.
    heavy = _rule({"A": 0.06}, extreme_weight=0.6)
    _, maintenance = heavy.requirements(np.array([[10], [-10]]), marks, None, None)
    assert maintenance.tolist() == pytest.approx([7.2, 7.2])
    # The scenario that bound is then the extreme rise, +1.2 ranges: shorts of 10 and 5 lots carry
    # 7.2 + 3.6 = 10.8 of the 18 against the long's 7.2, a share of 0.6. With no position, none.
    state = heavy.state(np.array([[10], [-10], [-5]]), marks)
    assert (state["span_binding_move"], state["span_binding_share"]) == pytest.approx((1.2, 0.6))
    state = heavy.state(np.array([[0]]), marks)
    assert (state["span_binding_move"], state["span_binding_share"]) == (0.0, 0.0)


def test_a_combined_commodity_scans_its_members_together_and_charges_their_spread():
    # A 100 / 6%, B 50 / 8%, C 200 / 5%, contracts of 0.1. A and B form the combined commodity AB with
    # an intra-commodity spread rate of 25%; a 40% credit between AB and C.
    rule = _rule(
        {"A": 0.06, "B": 0.08, "C": 0.05},
        [{"pair": ["AB", "C"], "rate": 0.4}],
        combined_commodities=[{"name": "AB", "instruments": ["A", "B"], "intra_spread_rate": 0.25}],
    )
    assert rule.commodity_names == ["C", "AB"]
    marks = np.array([100.0, 50.0, 200.0])
    # Long 10 A (exposure 6), short 20 B (-8), long 3 C (3). AB's members move by the same share of
    # their ranges: a loss of -(6 - 8) x move, worst at a full rise: scanning risk |6 - 8| = 2, net
    # short. Its spread charge: 0.25 x (6 + 8 - 2) = 3. C alone: 3, long. AB (short) and C (long)
    # offset: credit 0.4 x min(2, 3) = 0.8. Maintenance 2 + 3 + 3 - 0.8 = 7.2; initial 1.1 x 7.2 = 7.92.
    positions = np.array([[10, -20, 3]])
    initial, maintenance = rule.requirements(positions, marks, None, None)
    assert maintenance[0] == pytest.approx(7.2) and initial[0] == pytest.approx(7.92)
    # The scenario that bound: AB's 2 by the rise, C's 3 by the fall: the fall, with 3 / 5.
    assert rule.state(positions, marks) == pytest.approx(
        {
            "span_scanning_risk": 5.0,
            "span_intra_spread_charges": 3.0,
            "span_credits": 0.8,
            "span_binding_move": -1.0,
            "span_binding_share": 0.6,
        }
    )
    # Members on the same side do not offset: long 10 A and long 20 B scan at 6 + 8 = 14, charge 0;
    # with C flat no credit. Long 10 A against short 10 B (-4): scanning 2, charge 0.25 x (10 - 2) = 2.
    _, maintenance = rule.requirements(np.array([[10, 20, 0], [10, -10, 0]]), marks, None, None)
    assert maintenance.tolist() == pytest.approx([14.0, 4.0])


def test_the_intra_spread_rate_runs_from_perfect_correlation_to_margining_apart():
    # Long 10 A (6), short 20 B (-8), one commodity. Rate 0: the scanning risk alone, |6 - 8| = 2.
    # Rate 1: 2 + (14 - 2) = 14, what A and B ask as two combined commodities of their own.
    positions, marks = np.array([[10, -20]]), np.array([100.0, 50.0])
    apart = _rule({"A": 0.06, "B": 0.08}).requirements(positions, marks, None, None)[1][0]
    assert apart == pytest.approx(14.0)
    for rate, expected in ((0.0, 2.0), (0.5, 8.0), (1.0, apart)):
        combined = [{"name": "AB", "instruments": ["A", "B"], "intra_spread_rate": rate}]
        rule = _rule({"A": 0.06, "B": 0.08}, combined_commodities=combined)
        assert rule.requirements(positions, marks, None, None)[1][0] == pytest.approx(expected)


def test_three_members_net_before_they_are_charged():
    # A 100 / 6% (10 lots: 6), B 50 / 8% (-20 lots: -8), D 100 / 4% (15 lots: 6), all in ABD at 10%.
    # Net 6 - 8 + 6 = 4, long: scanning risk 4, bound by the fall. Own risks 6 + 8 + 6 = 20; the
    # offset 20 - 4 = 16 is twice the short side's 8; the charge 0.1 x 16 = 1.6. Maintenance 5.6.
    combined = [{"name": "ABD", "instruments": ["A", "B", "D"], "intra_spread_rate": 0.1}]
    rule = _rule({"A": 0.06, "B": 0.08, "D": 0.04}, combined_commodities=combined)
    positions, marks = np.array([[10, -20, 15]]), np.array([100.0, 50.0, 100.0])
    assert rule.requirements(positions, marks, None, None)[1][0] == pytest.approx(5.6)
    state = rule.state(positions, marks)
    assert (state["span_scanning_risk"], state["span_intra_spread_charges"]) == pytest.approx((4.0, 1.6))
    assert (state["span_binding_move"], state["span_binding_share"]) == (-1.0, 1.0)


TIERED = {
    "name": "X",
    "instruments": ["A", "B", "C", "D"],
    "intra_spread_rate": 0.5,
    "tiers": [
        {"name": "front", "instruments": ["A", "B"], "intra_spread_rate": 0.1},
        {"name": "back", "instruments": ["C", "D"], "intra_spread_rate": 0.2},
    ],
    "tier_spreads": [{"tiers": ["front", "back"], "rate": 0.3}],
}


def test_tiers_charge_their_own_offsets_then_the_tier_spreads_then_the_rest():
    # A 100 / 6%, B 50 / 8%, C 100 / 5%, D 100 / 5%, contracts of 0.1; all four one commodity X.
    rule = _rule({"A": 0.06, "B": 0.08, "C": 0.05, "D": 0.05}, combined_commodities=[TIERED])
    marks = np.array([100.0, 50.0, 100.0, 100.0])
    # Account 1: long 10 A (6), short 10 B (-4), short 10 C (-5), long 2 D (1). Net 6 - 4 - 5 + 1 = -2:
    # scanning risk 2. Within front: own 6 + 4 = 10, net +2, charge 0.1 x (10 - 2) = 0.8. Within back:
    # own 6, net -4, charge 0.2 x (6 - 4) = 0.4. The spread front (+2) / back (-4): uses 2 of each,
    # charge 0.3 x 2 x 2 = 1.2; left front 0, back 2. The rest: 0 + 2 - |-2| = 0, nothing at 50%.
    # Maintenance 2 + 0.8 + 0.4 + 1.2 = 4.4 (untiered at 50%: 2 + 0.5 x (16 - 2) = 9).
    # Account 2: long 10 A (6), long 10 B (4), short 10 C (-5), short 2 D (-1). Front +10 and back -6
    # offset nothing within; the spread uses 6: 0.3 x 12 = 3.6; left front 4, and 4 - |10 - 6| = 0
    # beyond it. Maintenance 4 + 3.6 = 7.6.
    positions = np.array([[10, -10, -10, 2], [10, 10, -10, -2]])
    initial, maintenance = rule.requirements(positions, marks, None, None)
    assert maintenance.tolist() == pytest.approx([4.4, 7.6])
    assert initial.tolist() == pytest.approx([4.84, 8.36])
    state = rule.state(positions, marks)
    assert (state["span_scanning_risk"], state["span_intra_spread_charges"]) == pytest.approx((6.0, 6.0))


def test_what_no_tier_spread_covers_pays_the_commoditys_rate():
    # A 100 / 6% (10 lots: 6), B 50 / 8% (-20 lots: -8), C 100 / 5% (6 lots: 3), one commodity at 50%
    # with no tiers and one spread, A against B, at 10%. Members in no tier are legs of their own.
    combined = [
        {
            "name": "X",
            "instruments": ["A", "B", "C"],
            "intra_spread_rate": 0.5,
            "tier_spreads": [{"tiers": ["A", "B"], "rate": 0.1}],
        }
    ]
    rule = _rule({"A": 0.06, "B": 0.08, "C": 0.05}, combined_commodities=combined)
    # Net 6 - 8 + 3 = 1: scanning risk 1. The spread A / B uses 6 of each: 0.1 x 12 = 1.2; left A 0,
    # B 2, C 3; the rest 0 + 2 + 3 - 1 = 4 at 50%: 2. Maintenance 1 + 1.2 + 2 = 4.2 (untiered at 50%:
    # 1 + 0.5 x (17 - 1) = 9).
    positions, marks = np.array([[10, -20, 6]]), np.array([100.0, 50.0, 100.0])
    assert rule.requirements(positions, marks, None, None)[1][0] == pytest.approx(4.2)


def test_tiers_at_the_commodity_rate_charge_what_no_tiers_do():
    # Within, between and beyond the spreads, the three parts of the offset add up to all of it, so with
    # every rate the commodity's the tiered charge is the untiered one, account by account.
    ranges = {"A": 0.06, "B": 0.08, "C": 0.05, "D": 0.05}
    same = {
        **TIERED,
        "intra_spread_rate": 0.3,
        "tiers": [{**tier, "intra_spread_rate": 0.3} for tier in TIERED["tiers"]],
        "tier_spreads": [{"tiers": ["front", "back"], "rate": 0.3}],
    }
    plain = {key: TIERED[key] for key in ("name", "instruments")} | {"intra_spread_rate": 0.3}
    tiered, untiered = (_rule(ranges, combined_commodities=[c]) for c in (same, plain))
    positions = np.random.default_rng(5).integers(-30, 31, size=(500, 4))
    marks = np.array([100.0, 50.0, 100.0, 100.0])
    np.testing.assert_allclose(
        tiered.requirements(positions, marks, None, None)[1],
        untiered.requirements(positions, marks, None, None)[1],
        rtol=1e-12,
        atol=1e-12,
    )


def _scaled(history_returns, **settings) -> SpanRule:
    # One instrument, scan-range floor 2%, ranges 2 sds over 4 steps, EWMA decay 0.5 seeded with two
    # returns; reviewed at the step after the returns (marks 0..n).
    scaling = {"multiple": 2.0, "liquidation_steps": 4, "decay": 0.5, "min_history": 2}
    rule = _rule({"A": settings.pop("floor", 0.02)}, volatility_scaling=scaling, **settings)
    marks = 100.0 * np.exp(np.cumsum([0.0, *history_returns]))
    rule.review(len(history_returns), [marks])
    return rule


def test_scaled_scan_ranges_follow_volatility_through_the_apc_tools():
    returns = [0.01, -0.03, 0.02]
    # EWMA: seed (0.01^2 + 0.03^2) / 2 = 5e-4, then 0.5 x 5e-4 + 0.5 x 0.02^2 = 4.5e-4: sigma 0.0212132;
    # range 2 x sqrt(4) x 0.0212132 = 0.0848528. Long 10 lots at 100: charge 100 x 0.0848528 = 8.48528.
    marks = np.array([100.0])
    plain = _scaled(returns)
    assert plain.instrument_state()["span_scan_range"] == pytest.approx([0.0848528])
    assert plain.requirements(np.array([[10]]), marks, None, None)[1][0] == pytest.approx(8.48528, abs=1e-5)
    # The fixed range floors it: a 10% floor gives 10.
    assert _scaled(returns, floor=0.1).requirements(np.array([[10]]), marks, None, None)[1][0] == (
        pytest.approx(10.0)
    )
    # Speed limit 0.5 from the 2% it starts at: clip(0.0849, 0.01, 0.03) = 0.03.
    assert _scaled(returns, apc={"speed_limit": 0.5}).scan_ranges == pytest.approx([0.03])
    # A 25% buffer, not released (too little history for the volatility ratio): 1.25 x 0.0848528.
    buffered = _scaled(returns, apc={"buffer": 0.25})
    assert buffered.scan_ranges == pytest.approx([0.1060660])
    assert buffered.instrument_state()["span_buffer_level"] == pytest.approx([0.25])
    # Stressed weight 0.5 at a stressed sigma of 5%: 0.5 x 0.0848528 + 0.5 x 4 x 0.05 = 0.1424264.
    stressed = _scaled(returns, apc={"stressed_weight": 0.5, "stressed_volatility": 0.05})
    assert stressed.scan_ranges == pytest.approx([0.1424264])
    # Lookback floor over the last 3 returns: sd (ddof 1) = sqrt((1 + 9 + 4) e-4 / 2) = 0.0264575,
    # range 4 x 0.0264575 = 0.1058301 > 0.0848528.
    assert _scaled(returns, apc={"floor_lookback": 3}).scan_ranges == pytest.approx([0.1058301])


def test_scaled_ranges_wait_for_their_history_and_their_review_step():
    # One return is below min_history (2): the fixed 2%. Reviewed every 2 steps, a review at step 3 is
    # skipped: the fixed range stays although three returns exist.
    assert _scaled([0.01]).scan_ranges.tolist() == [0.02]
    assert _scaled([0.01, -0.03, 0.02], review_every=2).scan_ranges.tolist() == [0.02]
    assert _scaled([0.01, -0.03, 0.02, 0.0], review_every=2).scan_ranges[0] > 0.02


def _span_contagion(**span) -> dict:
    data = config.load_scenario(config.resolve_scenario("contagion")).model_dump(
        mode="json", exclude_unset=True
    )
    data["agents"][1]["margin_mode"] = "portfolio"
    data["portfolio_margin"] = {"rule": "span", "scan_ranges": {"A": 0.04, "B": 0.04}, **span}
    return data


def _tiered(**tiers) -> dict:
    # A and B one combined commodity, with the tiers or tier spreads given.
    return {
        "combined_commodities": [{"name": "AB", "instruments": ["A", "B"], "intra_spread_rate": 0.2, **tiers}]
    }


@pytest.mark.parametrize(
    ("span", "path", "words"),
    [
        ({"scan_ranges": {"A": 0.0, "B": 0.04}}, "portfolio_margin.scan_ranges", "(0, 1]"),
        ({"scan_ranges": {"A": 0.04}}, "portfolio_margin.scan_ranges", "no scan range for B"),
        ({"scan_ranges": {"A": 0.04, "B": 0.04, "C": 0.1}}, "portfolio_margin.scan_ranges", "'C' is not"),
        (
            {"spread_credits": [{"pair": ["A", "B"], "rate": 1.5}]},
            "portfolio_margin.spread_credits.0.rate",
            "must be <= 1 (got 1.5)",
        ),
        (
            {"spread_credits": [{"pair": ["A", "Z"], "rate": 0.5}]},
            "portfolio_margin.spread_credits.0.pair",
            "'Z' is neither an instrument nor a combined commodity (A, B)",
        ),
        (
            {"spread_credits": [{"pair": ["A", "A"], "rate": 0.5}]},
            "portfolio_margin.spread_credits.0.pair",
            "two different legs",
        ),
        (
            {"combined_commodities": [{"name": "AB", "instruments": ["A", "Q"], "intra_spread_rate": 0.2}]},
            "portfolio_margin.combined_commodities.0.instruments",
            "'Q' is not an instrument (A, B)",
        ),
        (
            {"combined_commodities": [{"name": "AB", "instruments": ["A"], "intra_spread_rate": 0.2}]},
            "portfolio_margin.combined_commodities.0.instruments",
            "at least 2 items",
        ),
        (
            {"combined_commodities": [{"name": "A", "instruments": ["A", "B"], "intra_spread_rate": 0.2}]},
            "portfolio_margin.combined_commodities.0.name",
            "'A' is already the name",
        ),
        (
            {"combined_commodities": [{"name": "AB", "instruments": ["A", "B"], "intra_spread_rate": 2}]},
            "portfolio_margin.combined_commodities.0.intra_spread_rate",
            "must be <= 1",
        ),
        (
            {
                "combined_commodities": [
                    {"name": "AB", "instruments": ["A", "B"], "intra_spread_rate": 0.2},
                    {"name": "BA", "instruments": ["B", "A"], "intra_spread_rate": 0.2},
                ]
            },
            "portfolio_margin.combined_commodities.1.instruments",
            "'B' is already in the combined commodity 'AB'",
        ),
        (
            {
                "combined_commodities": [{"name": "AB", "instruments": ["A", "B"], "intra_spread_rate": 0.2}],
                "spread_credits": [{"pair": ["AB", "B"], "rate": 0.5}],
            },
            "portfolio_margin.spread_credits.0.pair",
            "'B' is in the combined commodity 'AB'",
        ),
        (
            _tiered(tiers=[{"name": "A", "instruments": ["A"], "intra_spread_rate": 0.1}]),
            "portfolio_margin.combined_commodities.0.tiers.0.name",
            "'A' is already the name",
        ),
        (
            _tiered(tiers=[{"name": "t", "instruments": ["Q"], "intra_spread_rate": 0.1}]),
            "portfolio_margin.combined_commodities.0.tiers.0.instruments",
            "'Q' is not a member of 'AB' (A, B)",
        ),
        (
            _tiered(
                tiers=[
                    {"name": "t", "instruments": ["A"], "intra_spread_rate": 0.1},
                    {"name": "u", "instruments": ["A", "B"], "intra_spread_rate": 0.1},
                ]
            ),
            "portfolio_margin.combined_commodities.0.tiers.1.instruments",
            "'A' is already in the tier 't'",
        ),
        (
            _tiered(tiers=[{"name": "t", "instruments": ["A"], "intra_spread_rate": 1.5}]),
            "portfolio_margin.combined_commodities.0.tiers.0.intra_spread_rate",
            "must be <= 1",
        ),
        (
            _tiered(
                tiers=[{"name": "t", "instruments": ["A"], "intra_spread_rate": 0.1}],
                tier_spreads=[{"tiers": ["A", "B"], "rate": 0.1}],
            ),
            "portfolio_margin.combined_commodities.0.tier_spreads.0.tiers",
            "'A' is in the tier 't': a tier spread is between tiers, so name 't'",
        ),
        (
            _tiered(tier_spreads=[{"tiers": ["A", "Z"], "rate": 0.1}]),
            "portfolio_margin.combined_commodities.0.tier_spreads.0.tiers",
            "'Z' is neither a tier of 'AB' nor a member in none (A, B)",
        ),
        (
            _tiered(tier_spreads=[{"tiers": ["B", "B"], "rate": 0.1}]),
            "portfolio_margin.combined_commodities.0.tier_spreads.0.tiers",
            "two different legs",
        ),
        ({"apc": {"buffer": 0.2}}, "portfolio_margin", "add volatility_scaling"),
        (
            {"volatility_scaling": {}, "apc": {"notice_steps": 5}},
            "portfolio_margin",
            "apc.notice_steps is not available for scan ranges",
        ),
        ({"volatility_scaling": {"decay": 1.0}}, "portfolio_margin.volatility_scaling.decay", "< 1"),
    ],
)
def test_bad_span_settings_name_their_field(span, path, words):
    with pytest.raises(config.ScenarioError) as caught:
        config.scenario_from_dict(_span_contagion(**span))
    (line,) = caught.value.errors
    assert line.startswith(path) and words in line, line


def test_a_bad_span_file_exits_2_with_the_field_and_its_line(tmp_path, capsys):
    import yaml

    path = tmp_path / "span.yaml"
    path.write_text(
        yaml.safe_dump(_span_contagion(spread_credits=[{"pair": ["A", "Q"], "rate": 0.5}]), sort_keys=False)
    )
    assert main(["validate", str(path)]) == 2
    error = capsys.readouterr().err
    assert "portfolio_margin.spread_credits.0.pair" in error and "line " in error


def test_a_run_with_span_accounts_keeps_every_invariant():
    # The contagion market with its crowd margined by SPAN (4% ranges; long A and long B, so no credit):
    # the crash in A liquidates through the same waterfall, and every invariant holds every step.
    scenario = config.scenario_from_dict({**_span_contagion(), "steps": 340})
    result = run_scenario(scenario, check_invariants=True)
    assert result.summary["liquidations"] > 0
    # The rule's state every step: the crowd's scanning risk (gone with the crowd once it is
    # liquidated), and no credits (long A and long B).
    risk = result.timeseries["margin_span_scanning_risk"].to_numpy()
    assert risk[0] > 0 and (risk >= 0).all() and risk[-1] < risk[0]
    assert (result.timeseries["margin_span_credits"] == 0).all()
    # The crowd is long, so a full fall bound all of its scanning risk while it held any.
    held = risk > 0
    assert (result.timeseries["margin_span_binding_move"][held] == -1.0).all()
    assert (result.timeseries["margin_span_binding_share"][held] == 1.0).all()


def test_a_run_with_a_combined_commodity_charges_the_hedges_spreads():
    # portfolio_stress: crowded longs in A and B, and hedgers long A / short B, every one portfolio-
    # margined under SPAN with 2% ranges, A and B one combined commodity charging 25% of its offset.
    data = config.load_scenario(config.resolve_scenario("portfolio_stress")).model_dump(
        mode="json", exclude_unset=True
    )
    data["portfolio_margin"] = {
        "rule": "span",
        "scan_ranges": {"A": 0.02, "B": 0.02},
        "call_buffer": 0.25,
        "combined_commodities": [{"name": "AB", "instruments": ["A", "B"], "intra_spread_rate": 0.25}],
    }
    result = run_scenario(config.scenario_from_dict({**data, "steps": 320}), check_invariants=True)
    series = result.timeseries[result.timeseries["instrument"] == "A"]
    scanning, charges, maintenance, alone = (
        series[f"margin_{name}"].to_numpy()
        for name in (
            "span_scanning_risk",
            "span_intra_spread_charges",
            "portfolio_maintenance",
            "portfolio_standalone_maintenance",
        )
    )
    # Maintenance is the scanning risk plus the spread charges (no credit pair), every step.
    assert maintenance == pytest.approx(scanning + charges)
    # Each position alone needs 2% of its notional under the instruments' fixed rule, which is what a
    # 2% range asks of it alone (a full range, extremes 0.7): the offset is alone - scanning, and the
    # charge a quarter of it. The hedges offset, so it is positive.
    assert charges == pytest.approx(0.25 * (alone - scanning))
    assert charges[0] > 0.05 * maintenance[0]
    # With two members, a tier spread between them covers the whole offset: at 25%, and 90% for the
    # rest (none is left), it charges what the commodity's 25% did, so the run is the same run.
    data["portfolio_margin"]["combined_commodities"][0] |= {
        "intra_spread_rate": 0.9,
        "tier_spreads": [{"tiers": ["A", "B"], "rate": 0.25}],
    }
    tiered = run_scenario(config.scenario_from_dict({**data, "steps": 320}))
    pd.testing.assert_frame_equal(tiered.timeseries, result.timeseries, check_exact=False, rtol=1e-12)
    assert tiered.summary.keys() == result.summary.keys()
    for key, value in result.summary.items():
        assert tiered.summary[key] == (
            pytest.approx(value, nan_ok=True) if isinstance(value, float) else value
        )


# --------------------------------------------------------------------------- every portfolio rule

# One example setting per registered rule: a new rule must add itself here to be held to the contract.
EXAMPLES = {
    "correlation_offset": {"rule": "correlation_offset"},
    "sum_of_positions": {"rule": "sum_of_positions"},
    "unified_account": {"rule": "unified_account"},
    "span": {
        "rule": "span",
        "scan_ranges": {"A": 0.06, "B": 0.08},
        "spread_credits": [{"pair": ["A", "B"], "rate": 0.5}],
        "volatility_scaling": {"min_history": 20},
        "apc": {"buffer": 0.1, "speed_limit": 0.5},
    },
    "portfolio_var": {"rule": "portfolio_var", "window": 100, "filtered": True},
    "portfolio_es": {"rule": "portfolio_es", "window": 100, "stress_window": {"start": 10, "end": 60}},
    "parametric_var": {"rule": "parametric_var", "min_history": 20},
}


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_portfolio_rule_meets_the_contract(name):
    from abm.margin.portfolio import PORTFOLIO_RULE_CLASSES
    from abm.margin.portfolio_settings import PORTFOLIO_RULE_SETTINGS

    assert set(EXAMPLES) == set(PORTFOLIO_RULE_CLASSES) == set(PORTFOLIO_RULE_SETTINGS)
    settings = PORTFOLIO_RULE_SETTINGS[name].model_validate(EXAMPLES[name])
    instruments = [SimpleNamespace(name=n, contract_size=CONTRACT) for n in ("A", "B")]
    rule = build_portfolio_rule(settings, np.array([[1.0, 0.6], [0.6, 1.0]]), instruments)
    rng = np.random.default_rng(3)
    # 200 steps of correlated marks, reviewed every step as the model does.
    returns = rng.multivariate_normal([0.0, 0.0], [[1e-4, 6e-5], [6e-5, 1e-4]], size=200)
    histories = [100.0 * np.exp(np.cumsum(np.r_[0.0, returns[:, i]])) for i in range(2)]
    for step in range(201):
        rule.review(step, [history[: step + 1] for history in histories])
    positions = rng.integers(-50, 51, size=(40, 2))
    positions[0] = 0  # a flat account
    marks = np.array([100.0, 50.0])
    notional = np.abs(positions) * marks * CONTRACT
    standalone = (notional * 0.04, notional * 0.02)  # a fixed 4% / 2% rule per instrument
    initial, maintenance = rule.requirements(positions, marks, *standalone)
    assert initial.shape == maintenance.shape == (40,)
    assert initial[0] == maintenance[0] == 0.0
    assert (maintenance >= 0).all() and (initial >= maintenance - 1e-12).all()
    # Linear positions: twice the positions, twice the requirement (no size effect in either rule).
    doubled = rule.requirements(2 * positions, marks, 2 * standalone[0], 2 * standalone[1])
    np.testing.assert_allclose(doubled[1], 2 * maintenance, rtol=1e-12)
    state = rule.state(positions, marks)
    assert all(isinstance(value, float) for value in state.values())
    assert set(rule.state(2 * positions, marks)) == set(state)  # the same columns every step
    for name, values in rule.instrument_state().items():
        assert np.asarray(values).shape == (2,), name  # one value per instrument

    # This hedge (long A, short B, correlation 0.6) needs no more than its two legs margined apart by
    # the same rule (a property of the hedge, not a theorem: VaR is not subadditive in general).
    def maintenance_of(book):
        own = np.abs(book) * marks * CONTRACT
        return rule.requirements(book, marks, own * 0.04, own * 0.02)[1]

    legs = maintenance_of(np.array([[30, 0], [0, -30]]))
    both = maintenance_of(np.array([[30, -30]]))
    assert both[0] <= legs.sum() + 1e-9
    assert rule.call_buffer >= 0


def test_the_sum_of_positions_rule_asks_what_cross_margin_asks():
    # 200 accounts with random positions in X and Y, held twice: once cross-margined, once under the
    # sum_of_positions rule. Same requirements (up to rounding: a matrix product against a sum), and the
    # same accounts breached at marks that put about half of them under.
    from abm.margin.portfolio_settings import SumOfPositionsMargin
    from tests.exchange_helpers import make_pair_exchange

    exchange = make_pair_exchange(correlation=0.5)
    ledger, checker = exchange.ledger, exchange.checker
    checker.portfolio_rule = build_portfolio_rule(SumOfPositionsMargin(rule="sum_of_positions"), np.eye(2))
    rng = np.random.default_rng(11)
    lots = rng.integers(-10, 11, size=(200, 2))
    cross = ledger.add_accounts(200, rng.uniform(5.0, 95.0, 200), "leveraged_trader")
    portfolio = ledger.add_accounts(200, ledger.collateral[cross], "leveraged_trader")
    ledger.set_checked(np.r_[cross, portfolio], True)
    ledger.set_margin_mode(portfolio, "portfolio")
    checker.uses_portfolio()
    counterparty = ledger.open_system_account("counterparty", 0.0)
    for accounts in (cross, portfolio):
        for account, (x, y) in zip(accounts.tolist(), lots.tolist(), strict=True):
            for column, size in ((0, x), (1, y)):
                if size > 0:
                    ledger.trade(account, counterparty, column, size, 100.0)
                elif size < 0:
                    ledger.trade(counterparty, account, column, -size, 100.0)
    result = checker.check(np.array([98.0, 103.0]))
    for requirement in (result.initial_requirement, result.maintenance_requirement):
        np.testing.assert_allclose(requirement[portfolio], requirement[cross], rtol=1e-12)
    breached = set(result.breached.tolist())
    assert 20 < len(breached & set(cross.tolist())) < 180
    assert {account - 200 for account in breached if account in set(portfolio.tolist())} == (
        breached & set(cross.tolist())
    )


@pytest.mark.parametrize("weight", [0.35, 0.6])
def test_the_scanning_risk_is_the_risk_arrays_worst_loss(weight):
    # The closed form (|exposure| x the largest move) against the whole risk array, on random books.
    rule = _rule({"A": 0.06, "B": 0.08, "C": 0.05}, extreme_weight=weight)
    rng = np.random.default_rng(5)
    positions, marks = rng.integers(-50, 51, size=(200, 3)), np.array([100.0, 50.0, 200.0])
    worst = np.maximum(rule.risk_array(positions, marks).max(axis=2), 0.0)
    np.testing.assert_allclose(rule.scanning_risk(positions, marks), worst, rtol=1e-12, atol=1e-12)


def test_the_recorded_state_reuses_the_margin_checks_charges_for_the_same_inputs_only(monkeypatch):
    # The hand case of the first test: long 10 A, short 5 B, short 3 C; maintenance 8.8.
    rule = _rule(
        {"A": 0.06, "B": 0.08, "C": 0.05},
        [{"pair": ["A", "B"], "rate": 0.5}, {"pair": ["A", "C"], "rate": 0.4}],
    )
    marks = np.array([100.0, 50.0, 200.0])
    positions = np.array([[10, -5, -3]])
    computed: list[int] = []
    commodity_risk = rule.commodity_risk

    def counted(positions, marks):
        computed.append(len(positions))
        return commodity_risk(positions, marks)

    monkeypatch.setattr(rule, "commodity_risk", counted)
    assert rule.requirements(positions, marks, None, None)[1][0] == pytest.approx(8.8)
    assert rule.state(positions, marks)["span_credits"] == pytest.approx(2.2)
    assert computed == [1]  # the state took the check's charges
    # The caller's array moves on after the check (long 20 A): A's exposure is 20 x 0.1 x 100 x 0.06
    # = 12, scanning 12 + 2 + 3 = 17, credits 0.5 x min(12, 2) = 1 and 0.4 x min(10, 3) = 1.2: 14.8.
    positions[0, 0] = 20
    assert rule.requirements(positions, marks, None, None)[1][0] == pytest.approx(14.8)
    # A's mark at 50 instead (long 20 A: 20 x 0.1 x 50 x 0.06 = 6, as long 10 at 100): 8.8 again.
    assert rule.requirements(positions, np.array([50.0, 50.0, 200.0]), None, None)[1][0] == pytest.approx(8.8)
    # A review that doubles A's range (as volatility scaling does) at the marks of the start: A's
    # exposure 24, scanning 24 + 2 + 3 = 29, credits 1 + 0.4 x 3 = 2.2, maintenance 26.8.
    rule.scan_ranges = np.array([0.12, 0.08, 0.05])
    assert rule.requirements(positions, marks, None, None)[1][0] == pytest.approx(26.8)
    assert computed == [1, 1, 1, 1]
