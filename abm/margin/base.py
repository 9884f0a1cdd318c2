"""The margin-rule interface and the bracket arithmetic shared by every rule.

A margin rule turns the mark-price history into a pair of rates ``(imr, mmr)``: the initial and the
maintenance margin as fractions of position notional. The :class:`~abm.margin.policy.MarginPolicy`
wraps a rule with the review schedule, the anti-procyclicality tools and the notice period, so a rule
only has to answer "what would my rates be now?".
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

__all__ = [
    "MarginRule",
    "MarginRuleError",
    "RULE_FIGURES",
    "bracket_notional",
    "bracket_requirement",
    "log_returns",
]

# Figures every built-in rule reports (NaN where they do not apply), so runs with different rules
# produce the same time-series columns and can be stacked.
RULE_FIGURES: tuple[str, ...] = ("sigma", "var", "es", "max_leverage")


class MarginRuleError(ValueError):
    """A margin rule could not be loaded, built or evaluated; the message says how to fix it."""


class MarginRule(ABC):
    """Base class of every margin rule, built-in or user-written.

    The minimum a rule needs is ``rates(step, prices)``; everything else has a default. Construction
    stores the configuration (and any keyword parameters) and does nothing else, so a rule can be built
    before any price exists; the work happens in :meth:`rates`, which the policy calls at each review.

    Attributes:
        config: The validated ``margin:`` section this rule was built from.
        figure_names: Extra figures the rule reports through :meth:`figures` beyond
            :data:`RULE_FIGURES` (keys must be the same at every step).
    """

    figure_names: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: Any) -> None:
        self.config = config

    @abstractmethod
    def rates(self, step: int, prices: np.ndarray) -> tuple[float, float]:
        """Return the rule's raw ``(initial_rate, maintenance_rate)`` at a review.

        Args:
            step: The current step.
            prices: Mark-price history ``prices[0..step]`` (float64). Successive reviews see the
                same history extended, so a rule may keep running state between calls.

        Returns:
            ``(imr, mmr)`` with ``0 < mmr <= imr <= 1``.
        """

    def initial_rates(self) -> tuple[float, float] | None:
        """Rates in force before the first review (None: the first review sets them at once)."""
        return None

    def figures(self) -> dict[str, float]:
        """The rule's own figures after the last review (e.g. ``sigma``); keys stable across steps."""
        return {}

    def stressed_rates(self, stressed_volatility: float) -> tuple[float, float] | None:
        """Rates the rule would set if per-step volatility were ``stressed_volatility``.

        Used by the ``apc.stressed_weight`` tool; None (the default) makes that tool a no-op.
        """
        return None

    def window_rates(self, prices: np.ndarray) -> tuple[float, float] | None:
        """Rates computed on ``prices`` alone (a long look-back window), for ``apc.floor_lookback``.

        Must not change the rule's running state. None (the default, or too little data) means no floor.
        """
        return None

    def held_rates(self) -> tuple[float, float] | None:
        """Rates for positions already held when they differ from those for new exposure.

        None (the default) means every position is held to the rates in force.
        """
        return None

    def brackets(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Notional brackets as ``(floors, initial_rates, maintenance_rates)``, or None for a flat rate.

        The policy scales the bracket rates with the base-bracket rates in force, so a change of the
        rates (by the rule, an anti-procyclicality tool or an exchange decree) moves every bracket.
        """
        return None


def log_returns(prices: np.ndarray) -> np.ndarray:
    """One-step log returns ``r_t = ln(p_t / p_{t-1})`` of a price array.

    Args:
        prices: Positive prices, oldest first.

    Returns:
        An array one shorter than ``prices`` (empty for fewer than two prices).
    """
    prices = np.asarray(prices, dtype=np.float64)
    if prices.size < 2:
        return np.empty(0, dtype=np.float64)
    return np.diff(np.log(prices))


def bracket_requirement(notional: np.ndarray, floors: np.ndarray, rates: np.ndarray) -> np.ndarray:
    """Margin requirement by notional bracket, continuous at the bracket boundaries (Binance style).

    In the bracket ``k`` that contains the notional ``N`` (``floors[k] <= N < floors[k+1]``)::

        requirement = N * rates[k] - amount[k]
        amount[0] = 0,  amount[k] = amount[k-1] + floors[k] * (rates[k] - rates[k-1])

    so the requirement is the integral of the bracket rate over notional: continuous, and increasing
    in ``N`` whenever every rate is positive.

    Args:
        notional: Position notionals (>= 0), any shape.
        floors: Bracket lower bounds, starting at 0, strictly increasing.
        rates: Rate of each bracket.

    Returns:
        The requirement for each notional, same shape as ``notional``.
    """
    notional = np.asarray(notional, dtype=np.float64)
    floors = np.asarray(floors, dtype=np.float64)
    rates = np.asarray(rates, dtype=np.float64)
    if floors.size == 1:
        return notional * rates[0]
    amounts = np.concatenate(([0.0], np.cumsum(floors[1:] * np.diff(rates))))
    bracket = np.searchsorted(floors, notional, side="right") - 1
    bracket = np.clip(bracket, 0, floors.size - 1)
    return notional * rates[bracket] - amounts[bracket]


def bracket_notional(requirement: float, floors: np.ndarray, rates: np.ndarray) -> float:
    """The largest notional whose :func:`bracket_requirement` is at most ``requirement`` (its inverse).

    The requirement is continuous and increasing in the notional (every rate positive), linear within
    a bracket: in bracket ``k`` the notional is ``(requirement + amount[k]) / rates[k]``, taken in the
    first bracket whose upper floor it does not reach.

    Example: equity 10,000 against brackets at 0 / 50,000 / 250,000 with rates 1% / 2% / 5% (amounts
    0, 500 and 8,000) buys a notional of (10,000 + 8,000) / 5% = 360,000, not 10,000 / 1% = 1,000,000:

    >>> float(bracket_notional(10_000.0, np.array([0.0, 50_000.0, 250_000.0]), np.array([0.01, 0.02, 0.05])))
    360000.0
    """
    floors = np.asarray(floors, dtype=np.float64)
    rates = np.asarray(rates, dtype=np.float64)
    if requirement <= 0.0:
        return 0.0
    amounts = np.concatenate(([0.0], np.cumsum(floors[1:] * np.diff(rates))))
    for k in range(floors.size):
        notional = (requirement + amounts[k]) / rates[k]
        if k + 1 == floors.size or notional < floors[k + 1]:
            return float(notional)
    raise AssertionError("unreachable: the last bracket has no upper floor")
