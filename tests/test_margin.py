"""Margin rules and policy: figures against independent hand calculations, APC tools, notice, plugins."""

from __future__ import annotations

import math
from importlib.metadata import EntryPoint
from statistics import NormalDist

import numpy as np
import pytest

from abm.margin import (
    BUILTIN_RULES,
    POLICY_FIGURES,
    CustomMargin,
    MarginPolicy,
    MarginRule,
    MarginRuleError,
    build_margin_policy,
    load_rule_class,
)
from abm.margin import plugins as plugins_module

# --------------------------------------------------------------------------- fixtures and helpers


def _prices_from_returns(returns: np.ndarray, start: float = 100.0) -> np.ndarray:
    return start * np.exp(np.concatenate(([0.0], np.cumsum(returns))))


@pytest.fixture(scope="module")
def fat_tailed_prices() -> np.ndarray:
    """400 steps of Student-t(4) returns with 1% scale (a fixed series, seeded Generator)."""
    rng = np.random.default_rng(20240601)
    return _prices_from_returns(0.01 * rng.standard_t(4, size=400))


def _run(policy: MarginPolicy, prices: np.ndarray, until: int | None = None) -> list[dict[str, float]]:
    """Review every step like the model does; return state() after each step."""
    states = []
    last = prices.size - 1 if until is None else until
    for step in range(last + 1):
        policy.review(step, prices[: step + 1])
        states.append(policy.state())
    return states


def _loop_ewma_variance(returns: np.ndarray, decay: float, start_variance: float) -> float:
    variance = start_variance
    for value in returns:
        variance = decay * variance + (1.0 - decay) * value * value
    return variance


# --------------------------------------------------------------------------- fixed and tiered


def test_fixed_rule_keeps_the_configured_rates(fat_tailed_prices):
    policy = build_margin_policy({"rule": "fixed", "initial": 0.08, "maintenance": 0.03})
    states = _run(policy, fat_tailed_prices, until=50)
    assert {(s["imr"], s["mmr"]) for s in states} == {(0.08, 0.03)}
    initial, maintenance = policy.requirements(np.array([0.0, 1_000.0, 2_500.0]))
    np.testing.assert_allclose(initial, [0.0, 80.0, 200.0])
    np.testing.assert_allclose(maintenance, [0.0, 30.0, 75.0])


TIERS = {
    "rule": "tiered",
    "tiers": [
        {"notional_floor": 0.0, "initial": 0.01, "maintenance": 0.004},
        {"notional_floor": 50_000.0, "initial": 0.02, "maintenance": 0.01},
        {"notional_floor": 250_000.0, "initial": 0.05, "maintenance": 0.025},
    ],
}


def test_tiered_requirements_equal_a_hand_computed_table():
    # Maintenance amounts: 0; 50,000 x (0.01 - 0.004) = 300; 300 + 250,000 x (0.025 - 0.01) = 4,050.
    # Initial amounts:     0; 50,000 x (0.02 - 0.01) = 500;  500 + 250,000 x (0.05 - 0.02) = 8,000.
    table = [
        # notional, initial, maintenance
        (10_000.0, 100.0, 40.0),
        (50_000.0, 500.0, 200.0),  # 50,000 x 0.02 - 500 ; 50,000 x 0.01 - 300
        (100_000.0, 1_500.0, 700.0),  # 2,000 - 500 ; 1,000 - 300
        (250_000.0, 4_500.0, 2_200.0),  # 12,500 - 8,000 ; 6,250 - 4,050
        (300_000.0, 7_000.0, 3_450.0),  # 15,000 - 8,000 ; 7,500 - 4,050
    ]
    policy = build_margin_policy(TIERS)
    notional = np.array([row[0] for row in table])
    initial, maintenance = policy.requirements(notional)
    np.testing.assert_allclose(initial, [row[1] for row in table])
    np.testing.assert_allclose(maintenance, [row[2] for row in table])


def test_tiered_requirements_are_continuous_at_the_boundaries():
    policy = build_margin_policy(TIERS)
    for boundary in (50_000.0, 250_000.0):
        below, at = policy.requirements(np.array([np.nextafter(boundary, 0.0), boundary]))
        assert below[0] == pytest.approx(below[1], abs=1e-6)
        assert at[0] == pytest.approx(at[1], abs=1e-6)


def test_tiered_opening_rate_is_the_average_bracket_rate():
    policy = build_margin_policy(TIERS)
    rate = policy.opening_initial_rate(np.array([0.0, 10_000.0, 100_000.0]))
    np.testing.assert_allclose(rate, [0.01, 0.01, 1_500.0 / 100_000.0])


def test_max_position_prices_a_new_position_bracket_by_bracket():
    from abm.ledger import Instrument, Ledger
    from abm.margin.check import MarginChecker

    # Equity 10,000, price 100, contract 1, the brackets above. The first bracket's 1% would allow
    # 10,000 / (1% x 100) = 10,000 lots (the old answer). Bracket by bracket, the requirement at a
    # notional N in the top bracket is 5% N - 8,000, which equals the equity at N = 18,000 / 5% =
    # 360,000: 3,600 lots. (In the middle bracket 2% N - 500 = 10,000 gives N = 525,000, beyond its
    # upper floor of 250,000, so the top bracket holds the answer.)
    ledger = Ledger([Instrument("X", 0.01, 1.0)])
    (account,) = ledger.add_accounts(1, 10_000.0, "leveraged_trader")
    checker = MarginChecker(ledger, [build_margin_policy(TIERS)], [0.0])
    assert checker.max_position(account, 0, np.array([100.0])) == 3_600
    # Its initial requirement fits, one more lot's does not: 3,600 lots need exactly 10,000.
    initial, _ = build_margin_policy(TIERS).requirements(np.array([360_000.0, 360_100.0]))
    assert initial[0] == pytest.approx(10_000.0) and initial[1] > 10_000.0
    # Equity 400 stays in the first bracket: 400 / 1% = 40,000 notional, 400 lots.
    ledger.withdraw(account, 9_600.0)
    assert checker.max_position(account, 0, np.array([100.0])) == 400


def test_a_decree_on_a_tiered_rule_scales_every_bracket_and_keeps_maintenance_below_initial():
    policy = build_margin_policy(TIERS)
    policy.review(0, np.array([100.0]))
    policy.announce(0, imr=0.02, mmr=0.016, notice_steps=0)
    notional = np.linspace(1.0, 1e6, 2001)
    initial, maintenance = policy.requirements(notional)
    assert np.all(maintenance < initial)
    # Base bracket: exactly the decreed rates.
    np.testing.assert_allclose(policy.requirements(np.array([10_000.0]))[0], [200.0])


# --------------------------------------------------------------------------- risk-based rules


EWMA = {"rule": "ewma_vol", "decay": 0.94, "horizon": 10, "confidence": 0.99, "floor": 0.001, "cap": 0.9}


def test_ewma_rule_matches_a_loop_ewma_started_from_the_sample_sd(fat_tailed_prices):
    config = {**EWMA, "min_observations": 30, "initial_multiple": 1.5}
    policy = build_margin_policy(config)
    states = _run(policy, fat_tailed_prices)
    returns = np.diff(np.log(fat_tailed_prices))
    z = NormalDist().inv_cdf(0.99)
    for step in (0, 29, 30, 31, 100, 400):
        if step < 30:
            expected_mmr = 0.001  # the floor until min_observations returns exist
        else:
            start = np.var(returns[:30], ddof=1)
            sigma = math.sqrt(_loop_ewma_variance(returns[30:step], 0.94, start))
            expected_mmr = min(max(z * sigma * math.sqrt(10), 0.001), 0.9)
            assert states[step]["sigma"] == pytest.approx(sigma, rel=1e-10)
        assert states[step]["mmr"] == pytest.approx(expected_mmr, rel=1e-10)
        assert states[step]["imr"] == pytest.approx(min(1.5 * expected_mmr, 1.0), rel=1e-10)


def test_ewma_rule_with_initial_sigma_starts_at_once(fat_tailed_prices):
    policy = build_margin_policy({**EWMA, "initial_sigma": 0.02})
    states = _run(policy, fat_tailed_prices, until=60)
    returns = np.diff(np.log(fat_tailed_prices))
    z = NormalDist().inv_cdf(0.99)
    assert states[0]["mmr"] == pytest.approx(z * 0.02 * math.sqrt(10))
    sigma = math.sqrt(_loop_ewma_variance(returns[:60], 0.94, 0.02**2))
    assert states[60]["mmr"] == pytest.approx(z * sigma * math.sqrt(10), rel=1e-10)


def test_ewma_rule_is_clipped_to_its_cap():
    returns = np.tile([0.2, -0.2], 30)
    policy = build_margin_policy({**EWMA, "cap": 0.3, "min_observations": 10})
    states = _run(policy, _prices_from_returns(returns))
    assert states[-1]["mmr"] == 0.3
    assert states[-1]["imr"] == pytest.approx(0.45)


def _horizon_returns_by_loop(prices: np.ndarray, step: int, horizon: int, lookback: int) -> np.ndarray:
    first = max(horizon, step - lookback + 1)
    return np.array([math.log(prices[t] / prices[t - horizon]) for t in range(first, step + 1)])


def test_historical_var_matches_numpy_quantiles_of_both_tails(fat_tailed_prices):
    config = {"rule": "historical_var", "lookback": 100, "horizon": 5, "confidence": 0.99}
    config |= {"min_observations": 40, "floor": 0.001, "cap": 0.9}
    policy = build_margin_policy(config)
    states = _run(policy, fat_tailed_prices)
    for step in (43, 44, 120, 400):
        returns = _horizon_returns_by_loop(fat_tailed_prices, step, 5, 100)
        if returns.size < 40:
            assert states[step]["mmr"] == 0.001
            assert math.isnan(states[step]["var"])
            continue
        long_loss = 1.0 - math.exp(np.quantile(returns, 0.01))  # price falls: a long loses
        short_loss = math.exp(np.quantile(returns, 0.99)) - 1.0  # price rises: a short loses
        expected = max(long_loss, short_loss)
        assert states[step]["var"] == pytest.approx(expected, rel=1e-12)
        assert states[step]["mmr"] == pytest.approx(expected, rel=1e-12)
    # Horizon returns exist from t = 5, so the 40th arrives at step 44: the floor until then.
    assert states[43]["mmr"] == 0.001
    assert states[44]["mmr"] != 0.001


def test_expected_shortfall_is_the_tail_mean_beyond_var(fat_tailed_prices):
    config = {"rule": "expected_shortfall", "lookback": 200, "horizon": 3, "confidence": 0.975}
    config |= {"min_observations": 50, "floor": 0.001, "cap": 0.9}
    policy = build_margin_policy(config)
    states = _run(policy, fat_tailed_prices)
    returns = _horizon_returns_by_loop(fat_tailed_prices, 400, 3, 200)
    lower, upper = np.quantile(returns, 0.025), np.quantile(returns, 0.975)
    long_tail = [1.0 - math.exp(r) for r in returns if r <= lower]
    short_tail = [math.exp(r) - 1.0 for r in returns if r >= upper]
    expected = max(sum(long_tail) / len(long_tail), sum(short_tail) / len(short_tail))
    assert states[-1]["es"] == pytest.approx(expected, rel=1e-12)
    assert states[-1]["mmr"] == pytest.approx(expected, rel=1e-12)
    assert states[-1]["es"] >= states[-1]["var"]


def test_expected_shortfall_tail_includes_the_var_observation():
    # 41 one-step returns at 97.5%: the 2.5% quantile sits at the 2nd smallest return
    # (40 x 0.025 = 1, up to rounding), so the long tail is the two smallest returns and the
    # short tail the two largest.
    returns = np.random.default_rng(11).normal(0.0, 0.01, 41)
    prices = _prices_from_returns(returns)
    config = {"rule": "expected_shortfall", "lookback": 41, "horizon": 1, "confidence": 0.975}
    config |= {"min_observations": 41, "floor": 0.0001, "cap": 0.9}
    states = _run(build_margin_policy(config), prices)
    ordered = np.sort(returns)
    long_es = np.mean(1.0 - np.exp(ordered[:2]))
    short_es = np.mean(np.exp(ordered[-2:]) - 1.0)
    assert states[-1]["es"] == pytest.approx(max(long_es, short_es), rel=1e-12)


DYNAMIC = {"rule": "dynamic_leverage", "max_leverage": 20.0, "min_leverage": 2.0, "base_volatility": 0.005}


def test_dynamic_leverage_matches_a_loop_ewma(fat_tailed_prices):
    policy = build_margin_policy({**DYNAMIC, "decay": 0.9, "maintenance_fraction": 0.4})
    states = _run(policy, fat_tailed_prices, until=150)
    returns = np.diff(np.log(fat_tailed_prices))
    sigma = math.sqrt(_loop_ewma_variance(returns[:150], 0.9, 0.005**2))
    leverage = min(max(20.0 * 0.005 / sigma, 2.0), 20.0)
    assert states[150]["max_leverage"] == pytest.approx(leverage, rel=1e-10)
    assert states[150]["imr"] == pytest.approx(1.0 / leverage, rel=1e-10)
    assert states[150]["mmr"] == pytest.approx(0.4 / leverage, rel=1e-10)
    assert states[0]["imr"] == pytest.approx(1.0 / 20.0)


def test_dynamic_leverage_apply_to_new_tightens_only_new_exposure():
    # Volatility 4x the base: max leverage 20 x 0.005 / sigma falls towards 5x.
    prices = _prices_from_returns(np.tile([0.02, -0.02], 100))
    policy = build_margin_policy({**DYNAMIC, "apply_to": "new"})
    _run(policy, prices)
    opening = policy.opening_initial_rate(np.array([1_000.0]))[0]
    assert opening > 0.15  # near 1/5
    initial, maintenance = policy.requirements(np.array([1_000.0]))
    assert initial[0] == pytest.approx(1_000.0 / 20.0)  # held positions keep 1/max_leverage
    assert maintenance[0] == pytest.approx(0.5 * 1_000.0 / 20.0)
    everyone = build_margin_policy({**DYNAMIC, "apply_to": "all"})
    _run(everyone, prices)
    assert everyone.requirements(np.array([1_000.0]))[0][0] == pytest.approx(1_000.0 * opening)


# --------------------------------------------------------------------------- APC tools


def _calm_then_stress(calm: int, stress: int, calm_sd: float, stress_sd: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    returns = np.concatenate((rng.normal(0, calm_sd, calm), rng.normal(0, stress_sd, stress)))
    return _prices_from_returns(returns)


def test_floor_lookback_holds_the_rate_up_after_a_stress_ends():
    # 200 volatile steps, then 150 calm ones: the EWMA forgets the stress, the 300-step floor does not.
    prices = _calm_then_stress(200, 150, 0.02, 0.002, seed=3)
    config = {**EWMA, "initial_sigma": 0.01, "apc": {"floor_lookback": 300}}
    states = _run(build_margin_policy(config), prices)
    plain = _run(build_margin_policy({**EWMA, "initial_sigma": 0.01}), prices)
    returns = np.diff(np.log(prices))
    z = NormalDist().inv_cdf(0.99)
    floor = min(max(z * np.std(returns[-300:], ddof=1) * math.sqrt(10), 0.001), 0.9)
    assert states[-1]["floor_mmr"] == pytest.approx(floor, rel=1e-10)
    assert states[-1]["raw_mmr"] == pytest.approx(plain[-1]["mmr"])
    assert plain[-1]["mmr"] < floor
    assert states[-1]["mmr"] == pytest.approx(floor, rel=1e-10)


def test_buffer_is_built_in_calm_and_released_when_short_vol_jumps():
    prices = _calm_then_stress(300, 30, 0.001, 0.01, seed=5)
    config = {
        "rule": "fixed",
        "initial": 0.1,
        "maintenance": 0.05,
        "apc": {"buffer": 0.25, "release_ratio": 2.0},
    }
    states = _run(build_margin_policy(config), prices)
    returns = np.diff(np.log(prices))
    for step in (100, 300, 305, 330):
        window = returns[max(0, step - 200) : step]  # long window 200 returns, short 20 (defaults)
        ratio = np.std(window[-20:], ddof=1) / np.std(window, ddof=1)
        assert states[step]["vol_ratio"] == pytest.approx(ratio, rel=1e-10)
        expected = 0.05 if ratio > 2.0 else 0.05 * 1.25
        assert states[step]["mmr"] == pytest.approx(expected)
    assert states[300]["mmr"] == pytest.approx(0.0625)  # calm: raw x (1 + b)
    assert states[330]["mmr"] == pytest.approx(0.05)  # stress: released
    assert states[330]["buffer_level"] == 0.0


def test_buffer_on_initial_only_leaves_the_liquidation_line():
    prices = _calm_then_stress(300, 30, 0.001, 0.01, seed=5)
    config = {
        "rule": "fixed",
        "initial": 0.1,
        "maintenance": 0.05,
        "apc": {"buffer": 0.25, "buffer_on": "initial"},
    }
    states = _run(build_margin_policy(config), prices)
    assert states[300]["imr"] == pytest.approx(0.125)  # calm: initial carries the buffer
    assert states[300]["mmr"] == pytest.approx(0.05)  # the maintenance line does not move
    assert states[330]["imr"] == pytest.approx(0.1)  # released in the stress


def test_rebuild_after_keeps_the_buffer_released_after_the_stress_reading():
    # A stress burst of 30 steps, then calm again: without hysteresis the buffer comes back as soon as
    # the short/long volatility ratio falls below 2; with rebuild_after=n it stays released for n steps
    # after the last review that saw the ratio above 2.
    prices = _calm_then_stress(300, 30, 0.001, 0.01, seed=5)
    calm_again = prices[-1] * np.exp(np.cumsum(np.full(120, 0.0)))
    prices = np.concatenate([prices, calm_again])
    base = {"rule": "fixed", "initial": 0.1, "maintenance": 0.05}
    plain = _run(build_margin_policy({**base, "apc": {"buffer": 0.25}}), prices)
    held = _run(build_margin_policy({**base, "apc": {"buffer": 0.25, "rebuild_after": 60}}), prices)
    stressed = [step for step, state in enumerate(plain) if state["vol_ratio"] > 2.0]
    last = max(stressed)
    first_rebuilt = next(step for step in range(last + 1, len(prices)) if plain[step]["buffer_level"] > 0)
    assert first_rebuilt == last + 1  # without hysteresis: rebuilt at the first calm reading
    assert all(held[step]["buffer_level"] == 0.0 for step in range(last, last + 61))
    assert held[last + 61]["buffer_level"] == pytest.approx(0.25)


def test_speed_limit_caps_each_change_and_then_catches_up():
    # A calm path, then one jump of 30%: the EWMA target jumps at once, the rate climbs 10% per review.
    returns = np.full(80, 0.001)
    returns[40] = 0.3
    prices = _prices_from_returns(returns)
    config = {**EWMA, "initial_sigma": 0.001, "apc": {"speed_limit": 0.1}}
    states = _run(build_margin_policy(config), prices)
    mmr = np.array([s["mmr"] for s in states])
    step_change = mmr[1:] / mmr[:-1] - 1.0
    assert np.all(np.abs(step_change) <= 0.1 + 1e-12)
    assert step_change[40] == pytest.approx(0.1)  # the jump day (step 41) is capped
    unlimited = _run(build_margin_policy({**EWMA, "initial_sigma": 0.001}), prices)
    assert unlimited[41]["mmr"] / unlimited[40]["mmr"] > 10
    # Catching up continues while the target stays above the rate in force.
    assert mmr[60] > mmr[50] > mmr[41]


def test_a_change_announced_with_notice_takes_effect_exactly_notice_steps_later(fat_tailed_prices):
    notice = 5
    config = {**EWMA, "initial_sigma": 0.01, "apc": {"notice_steps": notice}}
    states = _run(build_margin_policy(config), fat_tailed_prices, until=120)
    immediate = _run(build_margin_policy({**EWMA, "initial_sigma": 0.01}), fat_tailed_prices, until=120)
    for step in range(notice, 121):
        # Announced at step - notice, in force now; what is announced now is not yet in force.
        assert states[step]["mmr"] == immediate[step - notice]["mmr"]
        assert states[step]["announced_mmr"] == immediate[step]["mmr"]
        assert states[step]["pending_effective_step"] == step + notice
    for step in range(notice):
        assert states[step]["mmr"] == immediate[0]["mmr"]  # nothing came due before the notice ran out


def test_review_every_is_respected(fat_tailed_prices):
    policy = build_margin_policy({**EWMA, "initial_sigma": 0.01, "review_every": 10})
    states = _run(policy, fat_tailed_prices, until=55)
    mmr = [s["mmr"] for s in states]
    changes = [step for step in range(1, 56) if mmr[step] != mmr[step - 1]]
    assert changes == [10, 20, 30, 40, 50]
    # The EWMA still uses every return, not only those at review steps.
    returns = np.diff(np.log(fat_tailed_prices))
    sigma = math.sqrt(_loop_ewma_variance(returns[:50], 0.94, 0.01**2))
    assert states[55]["sigma"] == pytest.approx(sigma, rel=1e-10)


def test_stressed_weight_blends_raw_and_stressed_rates(fat_tailed_prices):
    config = {**EWMA, "initial_sigma": 0.01, "apc": {"stressed_weight": 0.25, "stressed_volatility": 0.03}}
    states = _run(build_margin_policy(config), fat_tailed_prices, until=80)
    stressed = NormalDist().inv_cdf(0.99) * 0.03 * math.sqrt(10)
    assert states[80]["stressed_mmr"] == pytest.approx(stressed)
    assert states[80]["mmr"] == pytest.approx(0.75 * states[80]["raw_mmr"] + 0.25 * stressed)


def test_stressed_weight_without_a_stressed_volatility_is_refused():
    with pytest.raises(MarginRuleError, match="stressed_volatility"):
        build_margin_policy({"rule": "fixed", "apc": {"stressed_weight": 0.25}})


# --------------------------------------------------------------------------- exchange decrees


def test_a_decree_lasts_under_a_constant_rule_and_respects_its_notice():
    policy = build_margin_policy({"rule": "fixed", "initial": 0.1, "maintenance": 0.05})
    prices = np.full(30, 100.0)
    for step in range(30):
        if step == 10:
            policy.announce(10, imr=0.2, mmr=0.1, notice_steps=3)
        policy.review(step, prices[: step + 1])
        expected = 0.1 if step >= 13 else 0.05
        assert policy.mmr == expected, step
        if 10 <= step < 13:
            assert policy.state()["announced_mmr"] == 0.1
            assert policy.state()["pending_effective_step"] == 13


def test_a_decree_is_moved_by_the_rules_next_change(fat_tailed_prices):
    policy = build_margin_policy({**EWMA, "initial_sigma": 0.01})
    _run(policy, fat_tailed_prices, until=20)
    policy.announce(21, imr=0.9, mmr=0.6, notice_steps=0)
    assert (policy.imr, policy.mmr) == (0.9, 0.6)  # notice 0: in force at once
    policy.review(21, fat_tailed_prices[:22])
    assert policy.mmr < 0.6  # the EWMA target moved, so the rule's level replaces the decree


def test_invalid_decrees_are_refused():
    policy = build_margin_policy({"rule": "fixed"})
    with pytest.raises(MarginRuleError, match="0 < mmr <= imr <= 1"):
        policy.announce(0, imr=0.05, mmr=0.1, notice_steps=0)
    with pytest.raises(MarginRuleError, match="notice_steps"):
        policy.announce(0, imr=0.2, mmr=0.1, notice_steps=-1)


def test_review_needs_the_whole_price_history():
    policy = build_margin_policy({"rule": "fixed"})
    with pytest.raises(ValueError, match="prices"):
        policy.review(5, np.ones(3))


# --------------------------------------------------------------------------- user rules


class ConstantRule(MarginRule):
    """A user rule: a constant maintenance level, initial twice that."""

    figure_names = ("level",)

    def __init__(self, config, level: float = 0.05):
        super().__init__(config)
        self.level = level

    def rates(self, step, prices):
        return 2 * self.level, self.level

    def figures(self):
        return {"level": self.level}


class MinimalRule(MarginRule):
    """The least a rule needs: rates() only."""

    def rates(self, step, prices):
        return 0.2, 0.1


class BrokenRule(MarginRule):
    def rates(self, step, prices):
        return 0.05, 0.2  # maintenance above initial


class NotARule:
    pass


class AbstractRule(MarginRule):
    pass


@pytest.mark.parametrize("separator", [":", "."])
def test_a_user_rule_loads_from_a_dotted_path_with_its_params(separator):
    config = CustomMargin(rule=f"{__name__}{separator}ConstantRule", params={"level": 0.07})
    policy = build_margin_policy(config)
    assert isinstance(policy.rule, ConstantRule)
    assert policy.rule.config is config
    policy.review(0, np.array([100.0]))
    assert (policy.imr, policy.mmr) == (0.14, 0.07)
    assert policy.state()["level"] == 0.07
    assert set(POLICY_FIGURES) <= set(policy.state())


def test_a_minimal_user_rule_gets_its_first_rates_at_the_first_review():
    policy = build_margin_policy({"rule": f"{__name__}:MinimalRule"})
    with pytest.raises(MarginRuleError, match="review"):
        _ = policy.imr
    assert math.isnan(policy.state()["imr"])
    policy.review(0, np.array([100.0]))
    assert (policy.imr, policy.mmr) == (0.2, 0.1)


@pytest.mark.parametrize(
    ("rule", "params", "message"),
    [
        ("no_such_package.rules:Anything", {}, "no module named 'no_such_package.rules'.*PYTHONPATH"),
        (f"{__name__}:Missing", {}, "has no 'Missing'; MarginRule subclasses there: .*ConstantRule"),
        (f"{__name__}:NotARule", {}, "not a subclass of abm.margin.MarginRule"),
        (f"{__name__}:AbstractRule", {}, "does not implement rates"),
        (f"{__name__}:ConstantRule", {"lvl": 0.1}, r"rejected params \['lvl'\].*accepts: level"),
    ],
)
def test_user_rule_errors_say_how_to_fix_them(rule, params, message):
    with pytest.raises(MarginRuleError, match=message):
        build_margin_policy({"rule": rule, "params": params})


def test_a_user_rule_returning_invalid_rates_is_reported_with_its_step():
    policy = build_margin_policy({"rule": f"{__name__}:BrokenRule"})
    with pytest.raises(MarginRuleError, match=r"rates\(\) at step 0 .*0 < mmr <= imr <= 1"):
        policy.review(0, np.array([100.0]))


def test_rules_registered_as_entry_points_are_found(monkeypatch):
    entry = EntryPoint(name="acme.constant", value=f"{__name__}:ConstantRule", group="abm.margin_rules")
    monkeypatch.setattr(
        plugins_module, "entry_points", lambda group: [entry] if group == "abm.margin_rules" else []
    )
    assert load_rule_class("acme.constant") is ConstantRule
    assert plugins_module.available_rules()["acme.constant"] == f"{__name__}:ConstantRule"
    policy = build_margin_policy({"rule": "acme.constant", "params": {"level": 0.02}})
    policy.review(0, np.array([100.0]))
    assert policy.mmr == 0.02


# --------------------------------------------------------------------------- conformance of every built-in


def _builtin_configs() -> list[dict]:
    apc = {"buffer": 0.25, "floor_lookback": 60, "speed_limit": 0.5, "notice_steps": 2}
    apc |= {"stressed_weight": 0.25, "stressed_volatility": 0.02}
    plain = [
        {"rule": "fixed"},
        TIERS,
        {"rule": "ewma_vol"},
        {"rule": "historical_var", "lookback": 50},
        {"rule": "expected_shortfall", "lookback": 50},
        {"rule": "dynamic_leverage"},
        {"rule": "dynamic_leverage", "apply_to": "new"},
    ]
    return plain + [{**config, "apc": apc, "review_every": 3} for config in plain]


def test_the_conformance_configs_cover_every_builtin_rule():
    assert {config["rule"] for config in _builtin_configs()} == set(BUILTIN_RULES)


@pytest.mark.parametrize(
    "config", _builtin_configs(), ids=lambda c: c["rule"] + ("+apc" if "apc" in c else "")
)
def test_every_builtin_rule_conforms(config, fat_tailed_prices):
    policy = build_margin_policy(config)
    # Construction stores the config and does little else: no review has run, no figure is computed.
    assert policy.rule.config is policy.config
    assert policy.config.rule == config["rule"]
    assert math.isnan(policy.state()["raw_mmr"])
    prices = fat_tailed_prices[:150]
    states = _run(policy, prices)
    again = _run(build_margin_policy(config), prices)
    keys = list(states[0])
    notional = np.sort(np.random.default_rng(0).uniform(0.0, 1e6, 500))
    for step, (state, repeat) in enumerate(zip(states, again, strict=True)):
        assert list(state) == keys, step  # same columns every step
        assert all(isinstance(value, float) for value in state.values())
        np.testing.assert_array_equal(np.array(list(state.values())), np.array(list(repeat.values())))
        assert 0.0 < state["mmr"] <= state["imr"] <= 1.0
        assert 0.0 < state["opening_imr"] <= 1.0
    assert set(POLICY_FIGURES) <= set(keys)
    initial, maintenance = policy.requirements(notional)
    assert initial.shape == maintenance.shape == notional.shape
    assert np.all(np.diff(initial) > 0) and np.all(np.diff(maintenance) > 0)  # monotone in notional
    assert np.all(maintenance < initial)
    assert np.all((maintenance >= 0) & (initial <= notional))  # rates within [0, 1]
    # Vectorised: the array answer equals the answer account by account.
    one_by_one = np.array([policy.requirements(np.array([value]))[1][0] for value in notional[:20]])
    np.testing.assert_array_equal(one_by_one, maintenance[:20])
    opening = policy.opening_initial_rate(notional)
    assert opening.shape == notional.shape and np.all((opening > 0) & (opening <= 1))
