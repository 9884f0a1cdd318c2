"""Coverage of a portfolio rule, backtested on every portfolio account's own positions.

At every step each portfolio-margined account with a position is one observation: its positions and
maintenance requirement are kept, and ``horizon`` steps later the loss those positions (held fixed)
made at the marks is compared with that maintenance: an exception when ``loss > maintenance``, with
``loss = -sum_i lots_i x contract_i x (mark_i(t + h) - mark_i(t))``. Counts are pooled over accounts
and steps (Kupiec's proportion of failures at ``1 - confidence``); a step is an exception step when any
account had one (Christoffersen's independence test on those flags). Pooled accounts share their
shocks, so the p-values are indicative, as the per-instrument backtest's are.

Example: one account long 10 (contract 1) with 20 of maintenance; the mark falls from 100 to 97.5 over
the horizon: the loss 25 exceeds 20, one exception in one observation.

>>> backtest = PortfolioBacktest(horizon=1, confidence=0.99, contract_sizes=np.ones(1))
>>> backtest.observe(np.array([[10]]), np.array([20.0]), np.array([100.0]))
>>> backtest.observe(np.array([[10]]), np.array([20.0]), np.array([97.5]))
>>> backtest.exceptions, backtest.observations
(1, 1)
"""

from __future__ import annotations

from collections import deque

import numpy as np

from abm.margin import measures

__all__ = ["PortfolioBacktest"]


class PortfolioBacktest:
    """Exceptions of a portfolio rule's maintenance over ``horizon`` steps (see the module docstring).

    Args:
        horizon: Steps between a requirement and the loss it is held against.
        confidence: The rule's confidence (the expected exception rate is ``1 - confidence``).
        contract_sizes: One per instrument.
    """

    def __init__(self, horizon: int, confidence: float, contract_sizes: np.ndarray) -> None:
        self.horizon = int(horizon)
        self.confidence = float(confidence)
        self.contract_sizes = np.asarray(contract_sizes, dtype=np.float64)
        self._pending: deque[tuple[np.ndarray, np.ndarray, np.ndarray]] = deque()
        self.exceptions = 0
        self.observations = 0
        self.flags: list[bool] = []  # per evaluated step: did any account have an exception

    def observe(self, positions: np.ndarray, maintenance: np.ndarray, marks: np.ndarray) -> None:
        """Take in this step's portfolio accounts (positions, maintenance) and marks; score the one due."""
        marks = np.asarray(marks, dtype=np.float64)
        held = np.any(positions != 0, axis=1)
        self._pending.append((np.asarray(positions[held], dtype=np.float64), maintenance[held].copy(), marks))
        if len(self._pending) <= self.horizon:
            return
        lots, required, then = self._pending.popleft()
        if len(lots) == 0:
            self.flags.append(False)
            return
        loss = -(lots @ ((marks - then) * self.contract_sizes))
        exceeded = int(np.count_nonzero(loss > required))
        self.exceptions += exceeded
        self.observations += len(lots)
        self.flags.append(exceeded > 0)

    def summary(self) -> dict[str, float]:
        """The pooled counts and both tests' p-values (NaN without observations)."""
        nan = float("nan")
        kupiec = (
            measures.kupiec_pof(self.exceptions, self.observations, 1.0 - self.confidence)
            if self.observations
            else (nan, nan)
        )
        independence = measures.christoffersen_independence(self.flags) if self.flags else (nan, nan)
        return {
            "portfolio_coverage_horizon": self.horizon,
            "portfolio_coverage_confidence": self.confidence,
            "portfolio_coverage_exceptions": self.exceptions,
            "portfolio_coverage_observations": self.observations,
            "portfolio_kupiec_pvalue": float(kupiec[1]),
            "portfolio_christoffersen_pvalue": float(independence[1]),
        }
