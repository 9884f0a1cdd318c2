"""The portfolio rule's coverage backtest (abm.margin.backtest), worked by hand, and in every run."""

import numpy as np
import pytest

from abm.config import load_scenario, resolve_scenario
from abm.margin.backtest import PortfolioBacktest
from abm.runs import run_scenario


def test_exceptions_over_a_two_step_horizon_by_hand():
    # Two instruments, contract 1; horizon 2. Steps 0-3 with marks (100, 50), (99, 51), (97, 52),
    # (98, 50). Account a: long 10 X, short 10 Y, maintenance 30; account b: flat (no observation).
    backtest = PortfolioBacktest(horizon=2, confidence=0.95, contract_sizes=np.ones(2))
    positions = np.array([[10, -10], [0, 0]])
    maintenance = np.array([30.0, 0.0])
    for marks in ([100.0, 50.0], [99.0, 51.0], [97.0, 52.0], [98.0, 50.0]):
        backtest.observe(positions, maintenance, np.array(marks))
    # Step 0 -> 2: X -3, Y +2: loss -(10 x -3 - 10 x 2) = 50 > 30: an exception.
    # Step 1 -> 3: X -1, Y -1: loss -(10 x -1 - 10 x -1) = 0: none. Two observations, one exception.
    assert (backtest.exceptions, backtest.observations, backtest.flags) == (1, 2, [True, False])
    summary = backtest.summary()
    assert summary["portfolio_coverage_exceptions"] == 1 and summary["portfolio_coverage_observations"] == 2
    # Kupiec at p = 5% with 1 of 2: LR = -2 [ln(0.95 x 0.05) - ln(0.5 x 0.5)] = 3.3215, p = 0.0684.
    assert summary["portfolio_kupiec_pvalue"] == pytest.approx(0.06840, abs=1e-4)


def test_every_portfolio_run_backtests_its_rule():
    summary = run_scenario(load_scenario(resolve_scenario("portfolio_stress"), ["steps=360"])).summary
    # correlation_offset (no liquidation period of its own: 10 steps, 99%): every portfolio account
    # with a position is an observation every step but the last ten.
    assert summary["portfolio_coverage_horizon"] == 10
    assert 0 < summary["portfolio_coverage_exceptions"] < summary["portfolio_coverage_observations"]
    assert summary["portfolio_coverage_observations"] <= 500 * (360 - 10)
    cash = run_scenario(load_scenario(resolve_scenario("calm"), ["steps=100"])).summary
    assert "portfolio_coverage_exceptions" not in cash  # no portfolio accounts, no backtest
