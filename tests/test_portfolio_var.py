"""Portfolio VaR and ES (historical, filtered, with a stress window) and parametric VaR, worked by hand.

Notation: an account's exposure to instrument i is ``e_i = lots x contract x mark``; a scenario of
log returns ``R`` loses ``-sum_i e_i (exp(R_i) - 1)``; ``k = ceil((1 - confidence) x scenarios)``;
VaR is the k-th largest loss, ES the mean of the k largest. Histories are built from log returns,
so the returns are exact: ``marks = 100 x exp(cumsum([0, r1, r2, ...]))``.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from abm import config
from abm.margin.portfolio import build_portfolio_rule
from abm.margin.portfolio_settings import PORTFOLIO_RULE_SETTINGS
from abm.runs import run_scenario

CONTRACT = 0.1
MARKS_100 = np.array([100.0, 100.0])


def _history(*returns: list[float]) -> list[np.ndarray]:
    return [100.0 * np.exp(np.cumsum([0.0, *r])) for r in returns]


def _rule(names: str, **settings):
    model = PORTFOLIO_RULE_SETTINGS[settings["rule"]].model_validate(settings)
    instruments = [SimpleNamespace(name=name, contract_size=CONTRACT) for name in names]
    return build_portfolio_rule(model, np.eye(len(names)), instruments)


def _maintenance(rule, positions, marks=MARKS_100):
    positions = np.array(positions)
    standalone = np.abs(positions) * marks[: positions.shape[1]] * CONTRACT * 0.05  # a fixed 5% rule
    return rule.requirements(positions, marks[: positions.shape[1]], standalone * 1.5, standalone)[1]


A = [-0.02, 0.01, -0.04, 0.03, 0.00]
B = [-0.01, 0.02, -0.05, 0.01, 0.01]


@pytest.mark.parametrize("rule", ["portfolio_var", "portfolio_es"])
def test_a_hedge_needs_its_spread_losses_and_a_lone_long_its_own(rule):
    # One-step scenarios (liquidation_steps 1), the 5 returns above, confidence 0.6: k = ceil(0.4 x 5) = 2.
    margin = _rule("AB", rule=rule, confidence=0.6, liquidation_steps=1, window=5, min_scenarios=5)
    margin.review(5, _history(A, B))  # step 5: marks 0..5, the 5 returns
    # Long 10 A, short 10 B at 100 (contract 0.1): e = (100, -100), loss = 100 (e^b - e^a):
    #   s1 100 (e^-0.01 - e^-0.02) = 0.98512   s2 100 (e^0.02 - e^0.01) = 1.01512
    #   s3 -0.95600   s4 100 (e^0.01 - e^0.03) = -2.04044   s5 100 (e^0.01 - 1) = 1.00502
    # VaR: the 2nd largest, 1.00502 (s5); ES: (1.01512 + 1.00502) / 2 = 1.01007.
    # Long 10 A alone: loss = -100 (e^a - 1): 1.98013, -1.00502, 3.92106, -3.04545, 0:
    # VaR 1.98013, ES (3.92106 + 1.98013) / 2 = 2.95059.
    expected = {"portfolio_var": [1.00502, 1.98013], "portfolio_es": [1.01007, 2.95059]}[rule]
    assert _maintenance(margin, [[10, -10], [10, 0]]).tolist() == pytest.approx(expected, abs=1e-5)
    # Initial is 1.1 x maintenance; the account binding the most is the hedge... both bind at different
    # scenarios (s5 for the hedge, s1 for the long); the tie goes to the earliest: s1, which ended in step 0.
    state = margin.state(np.array([[10, -10], [10, 0]]), MARKS_100)
    assert state == {f"{rule}_scenarios": 5.0, f"{rule}_ready": 1.0, f"{rule}_binding_step": 0.0}
    assert margin.state(np.array([[10, -10]]), MARKS_100)[f"{rule}_binding_step"] == 4.0  # s5: step 4


def test_the_window_keeps_the_latest_returns_and_periods_overlap():
    # Returns 0.01, -0.03, 0.02, -0.01; window 3 keeps -0.03, 0.02, -0.01; two-step periods of them:
    # -0.01 and +0.01. Long 10 at 100: losses 100 (1 - e^-0.01) = 0.99502 and -1.00502; confidence 0.7,
    # k = ceil(0.6) = 1: VaR 0.99502. A window of 4 adds the period 0.01 - 0.03 = -0.02: three
    # scenarios, k = ceil(0.9) = 1, VaR 100 (1 - e^-0.02) = 1.98013.
    history = _history([0.01, -0.03, 0.02, -0.01])
    short = _rule("A", rule="portfolio_var", confidence=0.7, liquidation_steps=2, window=3, min_scenarios=1)
    short.review(4, history)
    assert short.scenario_steps.tolist() == [2, 3]  # the periods ended in steps 2 and 3
    assert _maintenance(short, [[10]])[0] == pytest.approx(0.99502, abs=1e-5)
    whole = _rule("A", rule="portfolio_var", confidence=0.7, liquidation_steps=2, window=4, min_scenarios=1)
    whole.review(4, history)
    assert _maintenance(whole, [[10]])[0] == pytest.approx(1.98013, abs=1e-5)


def test_a_stress_window_joins_the_scenarios_once_the_run_has_passed_it():
    # As above (window 3, two-step periods -0.01, +0.01), with the stress period steps 0..1: the
    # two-step period ending in step 1 is marks 0 -> 2: 0.01 - 0.03 = -0.02. Confidence 0.7,
    # k = ceil(0.3 x 3) = 1: VaR 100 (1 - e^-0.02) = 1.98013, bound by the stress period (step 1);
    # without it, k = ceil(0.3 x 2) = 1: 0.99502.
    history = _history([0.01, -0.03, 0.02, -0.01])
    settings = dict(rule="portfolio_var", confidence=0.7, liquidation_steps=2, window=3, min_scenarios=1)
    floored = _rule("A", **settings, stress_window={"start": 0, "end": 1})
    plain = _rule("A", **settings)
    for rule in (floored, plain):
        rule.review(4, history)
    assert _maintenance(floored, [[10]])[0] == pytest.approx(1.98013, abs=1e-5)
    assert floored.state(np.array([[10]]), MARKS_100[:1])["portfolio_var_binding_step"] == 1.0
    assert _maintenance(plain, [[10]])[0] == pytest.approx(0.99502, abs=1e-5)
    # Before the run has passed step 1 (a review at step 2 sees marks 0..2, the end of step 1: it has),
    # at step 1 it has not: no stress scenarios yet.
    early = _rule("A", **settings, stress_window={"start": 0, "end": 1})
    early.review(1, [history[0][:2]])
    assert early.scenario_moves.shape[1] == 0


def test_filtered_scenarios_are_rescaled_by_volatility_now_over_then():
    # Returns 0.01, -0.03, 0.02; EWMA decay 0.5, seeded with the first two returns. Forecasts before
    # each return: none, none, sqrt((0.01^2 + 0.03^2) / 2) = sqrt(5e-4); now, after the third:
    # 0.5 x 5e-4 + 0.5 x 0.02^2 = 4.5e-4. So r3 becomes 0.02 x sqrt(4.5 / 5) = 0.018974 and the
    # first two keep their size. Short 10 at 100 (e = -100): loss 100 (e^r - 1); confidence 0.7, k = 1:
    # 100 (e^0.018974 - 1) = 1.91548 filtered, 100 (e^0.02 - 1) = 2.02013 plain.
    history = _history([0.01, -0.03, 0.02])
    settings = dict(rule="portfolio_var", confidence=0.7, liquidation_steps=1, window=3, min_scenarios=3)
    filtered = _rule("A", **settings, filtered=True, decay=0.5)
    plain = _rule("A", **settings)
    for step in range(4):  # the model reviews every step: the forecasts are read as returns arrive
        filtered.review(step, [history[0][: step + 1]])
        plain.review(step, [history[0][: step + 1]])
    assert _maintenance(filtered, [[-10]])[0] == pytest.approx(1.91548, abs=1e-5)
    assert _maintenance(plain, [[-10]])[0] == pytest.approx(2.02013, abs=1e-5)


def test_before_its_minimum_of_scenarios_a_portfolio_is_margined_position_by_position():
    margin = _rule("AB", rule="portfolio_es", liquidation_steps=1, window=5, min_scenarios=6)
    margin.review(5, _history(A, B))  # 5 scenarios < 6
    # The fixed 5% of _maintenance: 10 lots x 0.1 x 100 x 0.05 = 5 per position, 10 for both.
    assert _maintenance(margin, [[10, -10]])[0] == pytest.approx(10.0)
    assert margin.state(np.array([[10, -10]]), MARKS_100)["portfolio_es_ready"] == 0.0


def test_parametric_var_from_the_ewma_covariance_in_force_on_its_review_schedule():
    # A: 0.01, -0.01, 0.02; B: 0.02, 0.0, -0.02; decay 0.5, seeded with the first two returns:
    #   AA (1e-4 + 1e-4) / 2 = 1e-4, BB (4e-4 + 0) / 2 = 2e-4, AB (2e-4 + 0) / 2 = 1e-4;
    # then the third (0.02, -0.02): AA 0.5e-4 + 2e-4 = 2.5e-4, BB 1e-4 + 2e-4 = 3e-4,
    # AB 0.5e-4 - 2e-4 = -1.5e-4.
    # Long 10 A and 10 B at 100 (e = 100 each): e'Se = 1e4 (2.5 + 3 - 3) 1e-4 = 2.5; z(0.99) = 2.326348,
    # one step: 2.326348 x sqrt(2.5) = 3.67828. Mean correlation -1.5 / sqrt(2.5 x 3) = -0.547723.
    history = _history([0.01, -0.01, 0.02], [0.02, 0.0, -0.02])
    margin = _rule("AB", rule="parametric_var", liquidation_steps=1, decay=0.5, min_history=2, review_every=3)
    for step in range(3):  # steps 0-2: at step 2 the seed is there, but 2 is not a review step
        margin.review(step, [h[: step + 1] for h in history])
    assert _maintenance(margin, [[10, 10]])[0] == pytest.approx(10.0)  # 5% of each position, 5 + 5
    margin.review(3, history)  # step 3: a review, with the third return read
    assert _maintenance(margin, [[10, 10]])[0] == pytest.approx(3.67828, abs=1e-5)
    state = margin.state(np.array([[10, 10]]), MARKS_100)
    assert state["parametric_var_mean_correlation"] == pytest.approx(-0.547723, abs=1e-6)
    assert margin.instrument_state()["parametric_var_sigma"] == pytest.approx(
        [math.sqrt(2.5e-4), math.sqrt(3e-4)]
    )


def _contagion(**rule) -> dict:
    data = config.load_scenario(config.resolve_scenario("contagion")).model_dump(
        mode="json", exclude_unset=True
    )
    data["agents"][1]["margin_mode"] = "portfolio"
    data["portfolio_margin"] = rule
    return data


@pytest.mark.parametrize(
    ("rule", "path", "words"),
    [
        (
            {"rule": "portfolio_var", "confidence": 1.0},
            "portfolio_margin.confidence",
            "must be < 1 (got 1.0)",
        ),
        (
            {"rule": "parametric_var", "confidence": 0.5},
            "portfolio_margin.confidence",
            "must be > 0.5 (got 0.5)",
        ),
        (
            {"rule": "portfolio_es", "window": 5, "liquidation_steps": 10},
            "portfolio_margin.window",
            "shorter than liquidation_steps",
        ),
        (
            {"rule": "portfolio_var", "stress_window": {"start": 300, "end": 100}},
            "portfolio_margin.stress_window.end",
            "end (100) is before start (300)",
        ),
    ],
)
def test_bad_var_settings_name_their_field(rule, path, words):
    with pytest.raises(config.ScenarioError) as caught:
        config.scenario_from_dict(_contagion(**rule))
    (line,) = caught.value.errors
    assert line.startswith(path) and words in line, line


@pytest.mark.parametrize(
    "rule",
    [
        {"rule": "portfolio_es", "confidence": 0.975, "filtered": True},
        {"rule": "parametric_var"},
        {"rule": "span", "scan_ranges": {"A": 0.001, "B": 0.001}, "volatility_scaling": {}},
    ],
    ids=lambda rule: rule["rule"],
)
def test_a_run_under_each_learning_rule_keeps_every_invariant_and_records_its_state(rule):
    # The contagion market (crash in A at step 300) with its crowd portfolio-margined by the rule.
    scenario = config.scenario_from_dict({**_contagion(**rule), "steps": 340})
    result = run_scenario(scenario, check_invariants=True)
    series = result.timeseries
    a, b = series[series.instrument == "A"], series[series.instrument == "B"]
    held, alone = a["margin_portfolio_maintenance"], a["margin_portfolio_standalone_maintenance"]
    assert (held >= 0).all() and (alone >= 0).all() and alone.iloc[0] > 0
    name = rule["rule"]
    if name == "span":
        # The ranges follow each instrument's own volatility: in this calm (marks move 2e-5 a step)
        # they stay at their 0.1% floor; A's rises with its crash at step 300, B's less.
        ranges_a, ranges_b = a["margin_span_scan_range"].to_numpy(), b["margin_span_scan_range"].to_numpy()
        assert (ranges_a >= 0.001).all() and ranges_a[-1] > ranges_a[299] and ranges_a[-1] > ranges_b[-1]
    else:
        ready = a[f"margin_{name}_ready"].to_numpy()
        assert ready[0] == 0 and ready[-1] == 1  # margined position by position until it has history
        # Before the rule is ready it asks the positions' own sums exactly.
        np.testing.assert_allclose(held[ready == 0], alone[ready == 0], rtol=1e-12)
        # Then, from the calm history, less (the marks hardly move before the crash at step 300).
        calm = (ready == 1) & (np.arange(len(ready)) < 300)
        assert (held[calm] < alone[calm]).all()


@pytest.mark.parametrize("rule", ["portfolio_var", "parametric_var"])
def test_a_minimum_rate_floors_the_requirement_at_a_share_of_gross_notional(rule):
    # The hedge of the first test needs 1.00502 by historical VaR, 2.52 by parametric VaR on the same
    # returns; 2% of its gross notional, 0.02 x (100 + 100) = 4, binds both. A flat account needs 0.
    settings = dict(rule=rule, liquidation_steps=1, minimum_rate=0.02)
    if rule == "portfolio_var":
        settings.update(confidence=0.6, window=5, min_scenarios=5)
    else:
        settings.update(min_history=2)
    margin = _rule("AB", **settings)
    margin.review(5, _history(A, B))
    assert _maintenance(margin, [[10, -10], [0, 0]]).tolist() == pytest.approx([4.0, 0.0])
    floorless = _rule("AB", **{**settings, "minimum_rate": 0.0})
    floorless.review(5, _history(A, B))
    assert 1.0 < _maintenance(floorless, [[10, -10]])[0] < 4.0


def test_the_portfolio_measures_of_a_run_by_hand():
    import pandas as pd

    from abm.metrics import portfolio_summary

    # Six steps, the first shock at step 3. Maintenance asked 2, 2, 1, 4, 8, 0; the positions alone
    # would need 4 each step; gross notional 100 (0 at the last step: nobody holds a position).
    # Rates 0.02, 0.02, 0.01, 0.04, 0.08, none. Calm (steps 0-2): mean rate 0.05 / 3 = 0.016667, offset
    # 1 - (2 + 2 + 1) / 12 = 0.583333. Peak over trough 0.08 / 0.01 = 8. Largest rise over 1 step
    # (vol_window 1): 0.04 / 0.01 - 1 = 3.
    frame = pd.DataFrame(
        {
            "step": range(6),
            "margin_portfolio_maintenance": [2.0, 2.0, 1.0, 4.0, 8.0, 0.0],
            "margin_portfolio_standalone_maintenance": [4.0] * 6,
            "margin_portfolio_gross_notional": [100.0] * 5 + [0.0],
        }
    )
    scenario = SimpleNamespace(shocks=[SimpleNamespace(step=3)])
    summary = portfolio_summary(frame, scenario, SimpleNamespace(vol_window=1))
    assert summary == pytest.approx(
        {
            "portfolio_calm_margin_per_notional": 0.05 / 3,
            "portfolio_calm_offset": 1 - 5 / 12,
            "portfolio_margin_peak_to_trough": 8.0,
            "portfolio_margin_largest_increase": 3.0,
        }
    )
    # No portfolio accounts, no measures.
    assert portfolio_summary(frame[["step"]], scenario, SimpleNamespace(vol_window=1)) == {}


def test_the_filter_factor_is_clipped_after_a_still_spell():
    # Returns 0, 0, 0, 0.02; decay 0.5 seeded with two returns: the forecast before the third and the
    # fourth return is 0 (nothing moved), after the fourth 0.5 x 0.02^2 = 2e-4. The fourth return's
    # factor sqrt(2e-4) / 0 is unbounded: clipped to max_scale 5, it becomes 0.1, so a short of 10 at
    # 100 (e = -100) loses 100 (e^0.1 - 1) = 10.51709 in the worst scenario (confidence 0.75, four
    # scenarios, k = 1); the still returns stay 0.
    history = _history([0.0, 0.0, 0.0, 0.02])
    settings = dict(rule="portfolio_var", confidence=0.75, liquidation_steps=1, window=4, min_scenarios=4)
    margin = _rule("A", **settings, filtered=True, decay=0.5, max_scale=5.0)
    for step in range(5):
        margin.review(step, [history[0][: step + 1]])
    assert _maintenance(margin, [[-10]])[0] == pytest.approx(10.51709, abs=1e-5)


@pytest.mark.parametrize("rule", ["portfolio_var", "portfolio_es"])
@pytest.mark.parametrize("confidence", [0.99, 0.9])  # k = 3 (argmax passes) and k = 25 (a sort)
def test_many_accounts_are_margined_in_chunks_exactly_as_in_one_piece(rule, confidence):
    # Past 2,048 accounts the losses are made and searched in chunks; every account's requirement
    # and binding scenario must equal those of the losses of all accounts made and searched in one
    # piece, -(exposure @ moves), bit for bit.
    rng = np.random.default_rng(7)
    returns = rng.normal(0.0, 0.01, size=(3, 260))
    model = _rule("ABC", rule=rule, confidence=confidence, window=250, liquidation_steps=1)
    model.review(250, _history(*returns))
    positions = rng.integers(-30, 31, size=(5_000, 3))
    marks = np.array([101.0, 99.0, 100.5])
    exposure = positions * (marks * CONTRACT)
    tails, kth = model.tail(-(exposure @ model.scenario_moves))
    expected = tails[:, -1] if rule == "portfolio_var" else tails.mean(axis=1)
    initial, maintenance = model.requirements(positions, marks, None, None)
    np.testing.assert_array_equal(maintenance, np.maximum(expected, 0.0))
    np.testing.assert_array_equal(initial, maintenance * model.config.initial_multiple)
    np.testing.assert_array_equal(model._exposure_tail(exposure)[1], kth)


@pytest.mark.parametrize("rule", ["portfolio_var", "portfolio_es"])
def test_the_recorded_state_reuses_the_margin_checks_tail_search_for_the_same_inputs_only(rule, monkeypatch):
    # The recorder asks state() for the positions and marks the margin check has just margined: the
    # tail search is not repeated for them, and is for anything else (a position, a mark, new
    # scenarios); the figures equal those of a rule that searches afresh.
    rng = np.random.default_rng(11)
    returns = rng.normal(0.0, 0.01, size=(2, 260))
    model = _rule("AB", rule=rule, window=250, liquidation_steps=1)
    model.review(250, _history(*returns))
    positions = rng.integers(-30, 31, size=(50, 2))
    marks = np.array([101.0, 99.0])
    searches: list[int] = []
    search = type(model).tail

    def counted(self, losses):
        searches.append(len(losses))
        return search(self, losses)

    monkeypatch.setattr(type(model), "tail", counted)
    first = model.requirements(positions, marks, None, None)[1]
    state = model.state(positions, marks)
    assert searches == [50]
    positions[3, 0] += 1
    moved_position = model.requirements(positions, marks, None, None)[1]
    moved_mark = model.requirements(positions, np.array([101.0, 99.5]), None, None)[1]  # a new mark
    model.review(251, _history(*rng.normal(0.0, 0.01, size=(2, 261))))
    new_scenarios = model.requirements(positions, marks, None, None)[1]
    assert searches == [50, 50, 50, 50]
    monkeypatch.undo()

    def fresh(history, positions, marks):
        rule_now = _rule("AB", rule=rule, window=250, liquidation_steps=1)
        rule_now.review(len(history[0]) - 1, history)
        return rule_now.requirements(positions, marks, None, None)[1], rule_now.state(positions, marks)

    original = positions.copy()
    original[3, 0] -= 1
    np.testing.assert_array_equal(first, fresh(_history(*returns), original, marks)[0])
    assert state == fresh(_history(*returns), original, marks)[1]
    np.testing.assert_array_equal(moved_position, fresh(_history(*returns), positions, marks)[0])
    moved_marks = np.array([101.0, 99.5])
    np.testing.assert_array_equal(moved_mark, fresh(_history(*returns), positions, moved_marks)[0])
    assert not np.array_equal(new_scenarios, moved_position)
