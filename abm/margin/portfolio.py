"""Portfolio margin rules: one requirement for a portfolio-margined account's whole portfolio.

A rule is given, for the portfolio accounts, their positions and the requirements each position would
have alone under its instrument's rule, and returns the accounts' initial and maintenance requirements.
Accounts with ``margin_mode: portfolio`` meet these instead of the sum of their positions' requirements
(:class:`~abm.margin.check.MarginChecker`). The rules: ``sum_of_positions`` and ``correlation_offset``
(here), ``span``
(:mod:`abm.margin.span`), ``portfolio_var``, ``portfolio_es`` and ``parametric_var``
(:mod:`abm.margin.portfolio_var`); the contract is :class:`PortfolioMarginRule`
(:mod:`abm.margin.portfolio_base`). They are registered in :data:`PORTFOLIO_RULE_CLASSES`, their
settings in :data:`abm.margin.portfolio_settings.PORTFOLIO_RULE_SETTINGS`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from abm.margin.portfolio_base import PORTFOLIO_RULE_CLASSES, PortfolioMarginRule, implements_portfolio
from abm.margin.portfolio_settings import CorrelationOffsetMargin, SumOfPositionsMargin, UnifiedAccountMargin
from abm.margin.portfolio_var import ParametricVarRule, PortfolioEsRule, PortfolioVarRule
from abm.margin.span import SpanRule

__all__ = [
    "PORTFOLIO_RULE_CLASSES",
    "CorrelationOffsetRule",
    "ParametricVarRule",
    "PortfolioEsRule",
    "PortfolioMarginRule",
    "PortfolioVarRule",
    "SpanRule",
    "SumOfPositionsRule",
    "UnifiedAccountRule",
    "build_portfolio_rule",
]


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
        # s' C s row by row as one matrix product and a row sum: 1.1 ms at 10,000 x 10 against
        # 3.4 ms for einsum's loop; the sums' order differs from einsum's in the last bits.
        quadratic = ((signed @ self.correlation) * signed).sum(axis=1)
        return np.sqrt(np.maximum(quadratic, 0.0))

    def requirements(self, positions, marks, position_initial, position_maintenance):
        """Both requirements combined by the correlation matrix (see the class docstring)."""
        return self._combined(positions, position_initial), self._combined(positions, position_maintenance)


@implements_portfolio(SumOfPositionsMargin)
class SumOfPositionsRule(PortfolioMarginRule):
    """The sum of the positions' own requirements: cross margin's requirement, no offset.

    >>> rule = SumOfPositionsRule(SumOfPositionsMargin(rule="sum_of_positions"), np.eye(2))
    >>> alone = np.array([[30.0, 40.0]])
    >>> [float(x[0]) for x in rule.requirements(np.array([[10, -10]]), np.ones(2), 2 * alone, alone)]
    [140.0, 70.0]
    """

    def requirements(self, positions, marks, position_initial, position_maintenance):
        """The sums over the account's positions."""
        return position_initial.sum(axis=1), position_maintenance.sum(axis=1)


@implements_portfolio(UnifiedAccountMargin)
class UnifiedAccountRule(PortfolioMarginRule):
    """The uniMMR ladder: calls, reduce-only and liquidation at ratios of equity to maintenance.

    With the positions' maintenance ``M`` (summed) the account is liquidated below ``liquidation x M``
    (its maintenance requirement), margin-called below ``warning x M`` (so the call buffer is
    ``warning / liquidation - 1``) and may only cut below ``reduce_only x M``. Worked by hand: ``M =
    100`` at the default 1.5 / 1.2 / 1.05: equity 160 is free, 140 called, 115 called and reduce-only,
    104 liquidated.

    >>> rule = UnifiedAccountRule(UnifiedAccountMargin(rule="unified_account"), np.eye(1))
    >>> initial, maintenance = rule.requirements(np.array([[10]]), np.ones(1), np.array([[150.0]]),
    ...                                          np.array([[100.0]]))
    >>> float(maintenance[0]), float(initial[0]), round(rule.call_buffer, 6)
    (105.0, 150.0, 0.428571)
    >>> float(rule.reduce_only_threshold(maintenance)[0])
    120.0
    """

    @property
    def call_buffer(self) -> float:
        """The warning rung over the liquidation rung, less one."""
        return self.config.warning_ratio / self.config.liquidation_ratio - 1.0

    def requirements(self, positions, marks, position_initial, position_maintenance):
        """Initial: the positions' own; maintenance: the liquidation rung."""
        return position_initial.sum(axis=1), self.config.liquidation_ratio * position_maintenance.sum(axis=1)

    def reduce_only_threshold(self, maintenance: np.ndarray) -> np.ndarray:
        """The reduce-only rung: ``reduce_only / liquidation`` x the maintenance requirement."""
        return maintenance * (self.config.reduce_only_ratio / self.config.liquidation_ratio)


def build_portfolio_rule(
    config: Any, correlation: np.ndarray, instruments: Sequence[Any] = ()
) -> PortfolioMarginRule:
    """Build the portfolio rule of a ``portfolio_margin:`` section (None: correlation_offset)."""
    if config is None:
        config = CorrelationOffsetMargin(rule="correlation_offset")
    return PORTFOLIO_RULE_CLASSES[config.rule](config, correlation, instruments)
