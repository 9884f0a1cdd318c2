"""Arrivals that follow volatility: a group's arrival rate scaled by its market's recent |returns|.

A group with ``activity:`` (:class:`abm.config.ActivityFeedback`) gets one :class:`ActivityFeedback`.
Before the agents act in a step, it reads the mark of the group's (first) market and updates, from
the last one-step |log return| ``a``, exponential averages over each horizon ``h`` (``e <- e + (a - e)
/ h``) and a long baseline (``b <- b + (a - b) / min(n, baseline_steps)`` after ``n`` returns: their
plain mean until ``baseline_steps``). The rate multiplier is then ``clip(1 + k (mean(e) / b - 1),
min_multiplier, max_multiplier)``: busier after large moves, quieter in calm, a discrete self-exciting
flow (after Hawkes; the activity-volatility feedback of Lux and Marchesi 1999). The first return
starts every average at itself, so the multiplier is 1 until the marks start to differ in size.

No number is drawn here: with ``activity`` off the arrivals, and so the random stream, are unchanged.

Example (a market stand-in whose mark we set by hand):
    >>> from types import SimpleNamespace
    >>> from abm.config import ActivityFeedback as Settings
    >>> market = SimpleNamespace(mark=100.0)
    >>> feedback = ActivityFeedback(Settings(sensitivity=1.0, horizons=[2]), market)
    >>> for mark in (100.0, 101.0, 102.01, 102.01):
    ...     market.mark = mark
    ...     _ = feedback.observe()
    >>> round(feedback.multiplier, 4)  # returns a, a, 0 (a = ln 1.01): e = a / 2, b = 2a / 3, ratio 3/4
    0.75
"""

from __future__ import annotations

import math

__all__ = ["ActivityFeedback"]


class ActivityFeedback:
    """One group's arrival-rate multiplier, updated once a step from its market's mark.

    Args:
        config: The group's ``activity`` settings.
        market: The market whose mark it follows (anything with a ``mark``).

    Attributes:
        multiplier: The factor on the group's arrival rate this step.
    """

    def __init__(self, config, market) -> None:
        self.config = config
        self.market = market
        self.multiplier = 1.0
        self._averages: list[float] | None = None
        self._baseline = 0.0
        self._returns = 0
        self._last_mark: float | None = None

    def observe(self) -> float:
        """Take the mark's latest return into the averages; returns the new multiplier."""
        mark = float(self.market.mark)
        last, self._last_mark = self._last_mark, mark
        if last is None or not (mark > 0.0 and last > 0.0):
            return self.multiplier
        size = abs(math.log(mark / last))
        config = self.config
        self._returns += 1
        if self._averages is None:
            self._averages = [size] * len(config.horizons)
            self._baseline = size
        else:
            self._averages = [
                average + (size - average) / horizon
                for average, horizon in zip(self._averages, config.horizons, strict=True)
            ]
            self._baseline += (size - self._baseline) / min(self._returns, config.baseline_steps)
        if self._baseline > 0.0:
            ratio = sum(self._averages) / len(self._averages) / self._baseline
            raw = 1.0 + config.sensitivity * (ratio - 1.0)
            self.multiplier = min(config.max_multiplier, max(config.min_multiplier, raw))
        return self.multiplier
