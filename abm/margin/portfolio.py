"""Portfolio margin rules: one requirement for a portfolio-margined account's whole portfolio.

A rule is given, for the portfolio accounts, their positions and the requirements each position would
have alone under its instrument's rule, and returns the accounts' initial and maintenance requirements.
Accounts with ``margin_mode: portfolio`` meet these instead of the sum of their positions' requirements
(:class:`~abm.margin.check.MarginChecker`). The built-in rules are registered in
:data:`PORTFOLIO_RULE_CLASSES`, their settings in :data:`abm.margin.settings.PORTFOLIO_RULE_SETTINGS`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import numpy as np

from abm.margin.settings import PORTFOLIO_RULE_SETTINGS, CorrelationOffsetMargin
from abm.registry import Registry, literal_name

__all__ = [
    "PORTFOLIO_RULE_CLASSES",
    "CorrelationOffsetRule",
    "PortfolioMarginRule",
    "build_portfolio_rule",
]


class PortfolioMarginRule(ABC):
    """Base class of the portfolio rules.

    Args:
        config: The validated ``portfolio_margin:`` settings.
        correlation: The scenario's correlation matrix of the instruments (identity when it has none).
    """

    def __init__(self, config: Any, correlation: np.ndarray) -> None:
        self.config = config
        self.scenario_correlation = np.asarray(correlation, dtype=np.float64)

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

    def figures(self) -> dict[str, float]:
        """The rule's own figures after the last check (keys stable across steps)."""
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

    def __init__(self, config: CorrelationOffsetMargin, correlation: np.ndarray) -> None:
        super().__init__(config, correlation)
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


def build_portfolio_rule(config: Any, correlation: np.ndarray) -> PortfolioMarginRule:
    """Build the portfolio rule of a ``portfolio_margin:`` section (None: correlation_offset)."""
    if config is None:
        config = CorrelationOffsetMargin(rule="correlation_offset")
    return PORTFOLIO_RULE_CLASSES[config.rule](config, correlation)
