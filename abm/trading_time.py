"""Trading time: one multifractal clock that scales the arrival rates of several kinds at once.

A scenario with ``trading_time:`` (:class:`abm.config.TradingTime`) gets one :class:`TradingClock`.
Its value is the product of ``components`` factors, each ``high`` or ``low = 2 - high`` with equal
chance, so each has mean 1 and, being independent, so has the product. The ``j``-th factor is redrawn
(high or low afresh, so it keeps its value half the time) in a step with probability ``1 / d_j``; the
``d_j`` run geometrically from ``slowest_steps`` down to ``fastest_steps``. This is the binomial
Markov-switching multifractal of Calvet and Fisher (2004), here as *trading time* (Mandelbrot, Fisher
and Calvet 1997): the market's clock runs faster or slower over time scales from a few steps to
thousands, and every group of the listed kinds arrives that much more or less often. With
``v = (high - 1)^2`` each factor's variance, the clock's autocovariance at lag ``l`` is
``prod_j (1 + v (1 - p_j)^l) - 1`` (``p_j = 1 / d_j``), about ``v sum_j (1 - p_j)^l`` for a small
``v``: it falls over the whole range of the time scales, not at one of them.

The clock is drawn from the run's generator once a step, just before the agents are drawn (step 3 of
the step order): the first step draws every factor, later steps one uniform per factor and one more
per factor redrawn. A scenario without ``trading_time`` draws nothing, so its stream is unchanged.

Example (one factor, redrawn every step: each step's clock is 1.5 or 0.5):
    >>> import numpy as np
    >>> from abm.config import TradingTime
    >>> clock = TradingClock(TradingTime(components=1, slowest_steps=1, fastest_steps=1, high=1.5),
    ...                      np.random.default_rng(1))
    >>> sorted({clock.advance() for _ in range(20)})
    [0.5, 1.5]
    >>> clock.switch_probability.tolist()
    [1.0]
"""

from __future__ import annotations

import numpy as np

__all__ = ["TradingClock"]


class TradingClock:
    """The trading-time factor of a run, advanced once a step.

    Args:
        config: The scenario's ``trading_time`` settings.
        rng: The run's generator.

    Attributes:
        multiplier: This step's factor on the arrival rates (1 before the first step).
        factors: Each component's value now, slowest first (None before the first step).
        switch_probability: Each component's chance of being redrawn in a step, slowest first.
        kinds: The agent kinds whose arrivals follow the clock.
    """

    def __init__(self, config, rng: np.random.Generator) -> None:
        self.config = config
        self.kinds = frozenset(config.kinds)
        self.switch_probability = 1.0 / np.geomspace(
            config.slowest_steps, config.fastest_steps, config.components
        )
        self._high, self._low = config.high, 2.0 - config.high
        self._rng = rng
        self.factors: np.ndarray | None = None
        self.multiplier = 1.0

    def advance(self) -> float:
        """Redraw the factors due this step; returns the new multiplier."""
        rng = self._rng
        if self.factors is None:  # the first step: every factor from its stationary distribution
            self.factors = np.where(rng.random(len(self.switch_probability)) < 0.5, self._high, self._low)
        else:
            redrawn = rng.random(len(self.factors)) < self.switch_probability
            count = int(np.count_nonzero(redrawn))
            if count:
                self.factors[redrawn] = np.where(rng.random(count) < 0.5, self._high, self._low)
        self.multiplier = float(np.prod(self.factors))
        return self.multiplier
