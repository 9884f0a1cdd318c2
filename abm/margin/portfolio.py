"""Portfolio margin rules: one requirement for a portfolio-margined account's whole portfolio.

A rule is given, for the portfolio accounts, their positions and the requirements each position would
have alone under its instrument's rule, and returns the accounts' initial and maintenance requirements.
Accounts with ``margin_mode: portfolio`` meet these instead of the sum of their positions' requirements
(:class:`~abm.margin.check.MarginChecker`). The built-in rules are registered in
:data:`PORTFOLIO_RULE_CLASSES`, their settings in :data:`abm.margin.settings.PORTFOLIO_RULE_SETTINGS`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from abm.margin.settings import PORTFOLIO_RULE_SETTINGS, CorrelationOffsetMargin, SpanMargin
from abm.registry import Registry, literal_name

__all__ = [
    "PORTFOLIO_RULE_CLASSES",
    "CorrelationOffsetRule",
    "PortfolioMarginRule",
    "SpanRule",
    "build_portfolio_rule",
]


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

    def state(self, positions: np.ndarray, marks: np.ndarray) -> dict[str, float]:
        """The rule's own figures for these portfolio accounts now (keys stable across steps).

        Recorded every step, over every portfolio account, as ``margin_<name>`` columns of the time
        series (account-wide, repeated on each instrument's row); none by default.
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


@implements_portfolio(CorrelationOffsetMargin)
class CorrelationOffsetRule(PortfolioMarginRule):
    """``requirement = sqrt(s' C s)``, ``s`` each position's own requirement signed by its side.

    With every correlation 1 and every position on one side, this is the sum of the positions'
    requirements (no offset); with correlation 0 it is their root sum of squares; a long and a short in
    instruments of correlation ``rho`` need ``sqrt(a^2 + b^2 - 2 rho a b)``.

    Example:
        >>> rule = CorrelationOffsetRule(CorrelationOffsetMargin(rule="correlation_offset"),
        ...                              np.array([[1.0, 0.5], [0.5, 1.0]]))
        >>> positions = np.array([[10, 10], [10, -10]])       # long both; long one, short the other
        >>> standalone = np.array([[30.0, 40.0], [30.0, 40.0]])
        >>> rule.requirements(positions, np.ones(2), standalone, standalone)[1].round(4).tolist()
        [60.8276, 36.0555]
    """

    def __init__(
        self, config: CorrelationOffsetMargin, correlation: np.ndarray, instruments: Sequence[Any] = ()
    ) -> None:
        super().__init__(config, correlation, instruments)
        given = config.correlation
        self.correlation = (
            np.asarray(given, dtype=np.float64) if given is not None else self.scenario_correlation
        )

    def _combined(self, positions: np.ndarray, standalone: np.ndarray) -> np.ndarray:
        signed = np.sign(positions) * standalone
        quadratic = np.einsum("ai,ij,aj->a", signed, self.correlation, signed)
        return np.sqrt(np.maximum(quadratic, 0.0))

    def requirements(self, positions, marks, position_initial, position_maintenance):
        """Both requirements combined by the correlation matrix (see the class docstring)."""
        return self._combined(positions, position_initial), self._combined(positions, position_maintenance)


@implements_portfolio(SpanMargin)
class SpanRule(PortfolioMarginRule):
    """SPAN-style scanning risk per instrument, less inter-instrument spread credits.

    A position's loss in a scenario is ``-lots x contract x mark x range x move`` for the moves 0,
    +-1/3, +-2/3, +-1 and, counted at ``extreme_weight``, +-``extreme_move`` (in scan ranges); its
    scanning risk is the worst of them (0 at least): for a future, a full-range move against it, as
    ``2 x 0.35 = 0.7 < 1``. Spread pairs then credit offsetting positions (see :class:`SpanMargin`).

    Worked by hand (``tests/test_portfolio_margin.py`` has more): A at 100 with a 6% range, B at 50 with
    8%, contracts of 0.1, a credit of 50% between them. Long 10 A: ``10 x 0.1 x 100 x 0.06 = 6``; short
    20 B: ``20 x 0.1 x 50 x 0.08 = 8``; offsetting, so the pair uses ``min(6, 8) = 6`` of each and
    credits ``0.5 x 6 = 3``: maintenance ``6 + 8 - 3 = 11``, initial ``1.1 x 11 = 12.1``. Long both: 14
    and 15.4, no credit.

    >>> from types import SimpleNamespace as Item
    >>> config = SpanMargin(rule="span", scan_ranges={"A": 0.06, "B": 0.08},
    ...                     spread_credits=[{"pair": ["A", "B"], "rate": 0.5}])
    >>> instruments = [Item(name="A", contract_size=0.1), Item(name="B", contract_size=0.1)]
    >>> rule = SpanRule(config, np.eye(2), instruments)
    >>> positions, marks = np.array([[10, -20], [10, 20]]), np.array([100.0, 50.0])
    >>> initial, maintenance = rule.requirements(positions, marks, None, None)
    >>> maintenance.round(6).tolist(), initial.round(6).tolist()
    ([11.0, 14.0], [12.1, 15.4])
    """

    def __init__(self, config: SpanMargin, correlation: np.ndarray, instruments: Sequence[Any] = ()) -> None:
        super().__init__(config, correlation, instruments)
        self.scan_ranges = np.array([config.scan_ranges[name] for name in self.instrument_names], dtype=float)
        extreme, weight = config.extreme_move, config.extreme_weight
        # P&L of a position per unit of (lots x contract x mark x range), weighted, one per scenario.
        self.scenario_moves = np.array(
            [0.0, 1 / 3, -1 / 3, 2 / 3, -2 / 3, 1.0, -1.0, extreme * weight, -extreme * weight]
        )
        column = {name: i for i, name in enumerate(self.instrument_names)}
        self.pairs = [(column[c.pair[0]], column[c.pair[1]], c.rate) for c in config.spread_credits]

    def scanning_risk(self, positions: np.ndarray, marks: np.ndarray) -> np.ndarray:
        """Each position's worst loss over the risk array, ``(accounts, instruments)``."""
        exposure = np.asarray(positions, dtype=float) * (
            np.asarray(marks) * self.contract_sizes * self.scan_ranges
        )
        losses = -exposure[:, :, None] * self.scenario_moves  # (accounts, instruments, scenarios)
        return np.maximum(losses.max(axis=2), 0.0)

    def requirements(self, positions, marks, position_initial, position_maintenance):
        """Scanning risk less spread credits (maintenance), times ``initial_multiple`` (initial)."""
        scanning, credits = self._charges(positions, marks)
        maintenance = scanning - credits
        return maintenance * self.config.initial_multiple, maintenance

    def _charges(self, positions: np.ndarray, marks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # Each account's scanning risk and the credits its spreads earn.
        charges = self.scanning_risk(positions, marks)
        scanning = charges.sum(axis=1)
        remaining = charges.copy()
        credits = np.zeros(len(scanning))
        sides = np.sign(positions)
        for first, second, rate in self.pairs:
            offsetting = sides[:, first] * sides[:, second] < 0
            used = np.where(offsetting, np.minimum(remaining[:, first], remaining[:, second]), 0.0)
            credits += rate * used
            remaining[:, first] -= used
            remaining[:, second] -= used
        return scanning, credits

    def state(self, positions: np.ndarray, marks: np.ndarray) -> dict[str, float]:
        """Scanning risk and spread credits summed over the accounts: what the offsets save."""
        scanning, credits = self._charges(positions, marks)
        return {"span_scanning_risk": float(scanning.sum()), "span_credits": float(credits.sum())}


def build_portfolio_rule(
    config: Any, correlation: np.ndarray, instruments: Sequence[Any] = ()
) -> PortfolioMarginRule:
    """Build the portfolio rule of a ``portfolio_margin:`` section (None: correlation_offset)."""
    if config is None:
        config = CorrelationOffsetMargin(rule="correlation_offset")
    return PORTFOLIO_RULE_CLASSES[config.rule](config, correlation, instruments)
