"""Validation case 4 at a reduced size: the mechanism of the volatility-based leverage rule.

The defaults under each rule need many long runs to compare: they are in docs/validation.md.
"""

import numpy as np
import pytest

from abm.runs import run_scenario
from abm.validation import POLICY_BASE_VOLATILITY, fund_defaults, policy_case_scenario

# --------------------------------------------------------------------------- case 4: policy


def test_volatility_based_rule_cuts_the_funds_leverage_when_volatility_rises():
    level = 10.0
    scenario = policy_case_scenario("dynamic_leverage", level, 800)
    result = run_scenario(scenario, seed=1)
    timeseries = result.timeseries
    allowed = timeseries["margin_max_leverage"].to_numpy()
    sigma = timeseries["margin_sigma"].to_numpy()
    # the rule's leverage: level x base volatility / sigma, clipped to [1, level]
    expected = np.clip(level * POLICY_BASE_VOLATILITY / sigma, 1.0, level)
    np.testing.assert_allclose(allowed, expected, rtol=1e-9)
    assert allowed.min() < level  # volatility did rise above the base: the rule bit
    assert np.all(timeseries["imr"].to_numpy() == pytest.approx(1.0 / allowed))
    fixed = run_scenario(policy_case_scenario("fixed", level, 800), seed=1)
    assert np.all(fixed.timeseries["imr"].to_numpy() == pytest.approx(1.0 / level))
    for run in (result, fixed):
        kinds = run.accounts.set_index("account_id")["kind"]
        by_account = int((run.liquidations["account_id"].map(kinds) == "value_fund").sum())
        assert fund_defaults(run.liquidations) == by_account
