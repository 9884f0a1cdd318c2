"""The portfolio rules' contract, their registry, and the EWMA covariance several of them keep.

A rule is given, for the portfolio accounts, their positions and the requirements each position would
have alone under its instrument's rule, and returns the accounts' initial and maintenance requirements
(:meth:`PortfolioMarginRule.requirements`, the one abstract method). Rules that learn from prices
override :meth:`~PortfolioMarginRule.review`, which the model calls every step with the marks so far.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from abm.margin.portfolio_settings import PORTFOLIO_RULE_SETTINGS
from abm.registry import Registry, literal_name

__all__ = [
    "PORTFOLIO_RULE_CLASSES",
    "EwmaCovariance",
    "LastResult",
    "PortfolioMarginRule",
    "implements_portfolio",
]


class LastResult:
    """One computation's result, given again while its inputs are unchanged.

    The recorder asks a rule for its state with the positions and marks the margin check has just
    margined; a rule keeps what both need here instead of computing it twice. Inputs compare element
    by element and are copied when kept, so a caller changing its arrays later cannot match a stale
    result.

    >>> last = LastResult()
    >>> positions = np.array([[3, -1]])
    >>> last.get(positions, np.array([100.0, 50.0])) is None
    True
    >>> last.keep("figures", positions, np.array([100.0, 50.0]))
    >>> positions[0, 0] = 4  # the caller's array moves on: the kept copy does not
    >>> last.get(positions, np.array([100.0, 50.0])) is None
    True
    >>> last.get(np.array([[3, -1]]), np.array([100.0, 50.0]))
    'figures'
    """

    __slots__ = ("_inputs", "_result")

    def __init__(self) -> None:
        self._inputs: tuple[np.ndarray, ...] | None = None
        self._result: Any = None

    def get(self, *inputs: Any) -> Any:
        """The result kept for these inputs, or None."""
        kept = self._inputs
        if kept is None or len(kept) != len(inputs):
            return None
        for before, now in zip(kept, inputs, strict=True):
            if not np.array_equal(before, now):
                return None
        return self._result

    def keep(self, result: Any, *inputs: Any) -> None:
        """Keep ``result`` as the answer for ``inputs`` (copied)."""
        self._inputs = tuple(np.array(value, copy=True) for value in inputs)
        self._result = result


class PortfolioMarginRule(ABC):
    """Base class of the portfolio rules.

    Args:
        config: The validated ``portfolio_margin:`` settings.
        correlation: The scenario's correlation matrix of the instruments (identity when it has none).
        instruments: The instruments (``name``, ``contract_size``), in order, for rules that value
            positions themselves.
    """

    def __init__(self, config: Any, correlation: np.ndarray, instruments: Sequence[Any] = ()) -> None:
        self.config = config
        self.scenario_correlation = np.asarray(correlation, dtype=np.float64)
        self.instrument_names = [instrument.name for instrument in instruments]
        self.contract_sizes = np.array([instrument.contract_size for instrument in instruments], dtype=float)

    @property
    def call_buffer(self) -> float:
        """Margin call when equity falls below maintenance x (1 + call_buffer)."""
        return float(self.config.call_buffer)

    @abstractmethod
    def requirements(
        self,
        positions: np.ndarray,
        marks: np.ndarray,
        position_initial: np.ndarray,
        position_maintenance: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Initial and maintenance requirements of portfolio accounts.

        Args:
            positions: ``(accounts, instruments)`` signed lots.
            marks: The marks, one per instrument.
            position_initial: Each position's initial requirement alone (its instrument's rule).
            position_maintenance: Each position's maintenance requirement alone.

        Returns:
            ``(initial, maintenance)``, one per account.
        """

    def review(self, step: int, mark_histories: Sequence[np.ndarray]) -> None:  # noqa: B027 (optional hook)
        """Take in the marks known at the start of ``step`` (nothing by default).

        Args:
            step: The step about to run.
            mark_histories: Per instrument, its marks ``0..step`` (the mark before the first step
                first), as :meth:`abm.market.Market.mark_history` gives them.
        """

    def reduce_only_threshold(self, maintenance: np.ndarray) -> np.ndarray | None:
        """Equity below which each account may only cut its positions (None: no such rung).

        Args:
            maintenance: The accounts' maintenance requirement under this rule.
        """
        return None

    def state(self, positions: np.ndarray, marks: np.ndarray) -> dict[str, float]:
        """The rule's own figures for these portfolio accounts now (keys stable across steps).

        Recorded every step, over every portfolio account, as ``margin_<name>`` columns of the time
        series (account-wide, repeated on each instrument's row); none by default.
        """
        return {}

    def instrument_state(self) -> dict[str, np.ndarray]:
        """The rule's figures per instrument now (one value each, in instrument order; none by default).

        Recorded every step as ``margin_<name>`` columns, each instrument's value on its own row.
        """
        return {}


PORTFOLIO_RULE_CLASSES: Registry[type[PortfolioMarginRule]] = Registry("portfolio margin rule class")


def implements_portfolio(settings: type) -> Callable[[type[PortfolioMarginRule]], type[PortfolioMarginRule]]:
    """Register a class as the implementation of a registered portfolio rule's settings."""
    name = literal_name(settings, "rule")
    PORTFOLIO_RULE_SETTINGS[name]  # a class for an unregistered rule is a mistake: fail at import

    def register(cls: type[PortfolioMarginRule]) -> type[PortfolioMarginRule]:
        PORTFOLIO_RULE_CLASSES.add(name, cls)
        return cls

    return register


class EwmaCovariance:
    """The EWMA covariance of the instruments' one-step log mark returns, updated as marks arrive.

    Seeded with the mean cross-products ``R' R / n`` of the first ``seed_returns`` returns (zero mean,
    as RiskMetrics has it), then ``S <- decay x S + (1 - decay) x r r'`` for every later return ``r``.
    It reads each return once, however often it is asked.

    Example (one instrument; returns 0.01, -0.03, then 0.02 with decay 0.5):

    >>> ewma = EwmaCovariance(decay=0.5, seed_returns=2, instruments=1)
    >>> marks = [np.exp(np.cumsum([0.0, 0.01, -0.03, 0.02]))]
    >>> ewma.update(marks)
    >>> ewma.ready, round(float(ewma.covariance[0, 0]), 8)   # (0.01^2 + 0.03^2) / 2, then one update
    (True, 0.00045)
    """

    def __init__(self, decay: float, seed_returns: int, instruments: int) -> None:
        self.decay = float(decay)
        self.seed_returns = int(seed_returns)
        self.covariance = np.zeros((instruments, instruments))
        self.ready = False
        self.seen = 0  # returns read so far

    def update(self, mark_histories: Sequence[np.ndarray]) -> None:
        """Read the returns of these mark histories not read yet."""
        available = min(len(history) for history in mark_histories) - 1
        if available <= self.seen:
            return
        start = self.seen if self.ready else 0
        if not self.ready and available < self.seed_returns:
            return
        log_marks = np.log(np.column_stack([history[start : available + 1] for history in mark_histories]))
        returns = np.diff(log_marks, axis=0)
        if not self.ready:
            seed = returns[: self.seed_returns]
            self.covariance = seed.T @ seed / self.seed_returns
            returns = returns[self.seed_returns :]
            self.ready = True
        decay = self.decay
        for r in returns:  # a few returns per review: the recursion is cheaper than a weighted sum
            self.covariance *= decay
            self.covariance += (1.0 - decay) * np.outer(r, r)
        self.seen = available

    @property
    def sigma(self) -> np.ndarray:
        """Per-step sd of each instrument (zeros before the seed)."""
        return np.sqrt(np.diag(self.covariance))
