"""Switching traders: chartists or fundamentalists by recent performance, after Brock and Hommes (1998).

Each trader of a group, when it acts, follows one of two strategies: as a **chartist** it extrapolates
the trend, ``chartist_aggression x log(p_t / p_{t - w})`` lots with ``w = trend_window``, or every step
so far while the run is younger than that (so a long window still reads a trend early on); as a
**fundamentalist** it trades toward the fundamental value ``V``, ``fundamentalist_aggression x
log(V / p)`` lots with ``p`` the mid, the mispricing :meth:`abm.market.Market.mispricing` gives the
fundamentalists. Each is a market order of at most ``max_order`` lots, within ``max_position``.
Which one it follows is drawn with the group's chartist share, a logit of the two strategies'
recent performance,

    n_chartist = 1 / (1 + exp(-intensity x (U_chartist - U_fundamentalist))),

where each fitness ``U`` is an exponential average (weight ``memory`` on the past) of the return a
unit position in the strategy's last direction earned: ``U <- memory x U + (1 - memory) x sign(signal)
x r`` with ``r`` the mark's log return since the last update. When trends pay, chartists gain share and
their trading makes the trends longer; when the price has run far from the index, the fundamentalists'
trades pay and they take over. The switching between the two regimes is what gives Brock-Hommes and
Lux-Marchesi markets their clustered volatility. The group's share and fitness live in one
:class:`StrategyPool`, updated once a step by the first of its traders to act.
"""

from __future__ import annotations

import math
import weakref

from abm.agents.base import TraderAgent
from abm.book import BUY, SELL

__all__ = ["StrategyPool", "SwitchingTrader"]

# One pool per (model, group): the traders of a group share their strategies' fitness.
_POOLS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class StrategyPool:
    """The fitness of the chartist and fundamentalist strategies of one group, and the chartist share.

    Example:
        >>> from types import SimpleNamespace
        >>> pool = StrategyPool(SimpleNamespace(intensity=1000.0, memory=0.5, initial_chartist_share=0.5))
        >>> pool.share
        0.5
        >>> pool.record(0.0, trend=1.0, mispricing=-1.0)  # a rising trend, the price above the index
        >>> pool.record(0.01, trend=1.0, mispricing=-1.0)  # up 1%: the trend-follower's bet paid
        >>> round(pool.chartist_fitness, 4), round(pool.fundamentalist_fitness, 4)  # 0.5 x (+-0.01)
        (0.005, -0.005)
        >>> round(pool.share, 5)  # 1 / (1 + exp(-1000 x (0.005 + 0.005)))
        0.99995
    """

    def __init__(self, settings) -> None:
        self.settings = settings
        self.chartist_fitness = 0.0
        self.fundamentalist_fitness = 0.0
        self.share = settings.initial_chartist_share
        self.updated_at = -1  # the step of the last update
        self.last_mark = math.nan
        self.trend_sign = 0.0
        self.mispricing_sign = 0.0

    def record(self, log_return: float, trend: float, mispricing: float) -> None:
        """Credit each strategy with ``log_return`` in its last direction, then set the new directions."""
        memory = self.settings.memory
        self.chartist_fitness = memory * self.chartist_fitness + (1.0 - memory) * self.trend_sign * log_return
        self.fundamentalist_fitness = (
            memory * self.fundamentalist_fitness + (1.0 - memory) * self.mispricing_sign * log_return
        )
        self.trend_sign = math.copysign(1.0, trend) if trend else 0.0
        self.mispricing_sign = math.copysign(1.0, mispricing) if mispricing else 0.0
        gap = self.settings.intensity * (self.chartist_fitness - self.fundamentalist_fitness)
        self.share = 1.0 / (1.0 + math.exp(-min(max(gap, -700.0), 700.0)))


class SwitchingTrader(TraderAgent):
    """A chartist or a fundamentalist each time it acts, drawn with its group's chartist share."""

    kind = "switching"

    def __init__(self, model, account: int, group, group_index: int) -> None:
        super().__init__(model, account, group, group_index)
        pools = _POOLS.setdefault(model, {})
        self.pool = pools.setdefault(group_index, StrategyPool(group))
        self.strategy = "fundamentalist"  # the one it followed last

    def step(self) -> None:
        """Bring the group's fitness up to date, draw a strategy and trade it."""
        model, market, group, pool = self.model, self.market, self.group, self.pool
        t = model.steps - 1
        marks = market.mark_history(t)  # the last is the mark now
        # The trend over trend_window steps, or over the run so far while it is younger.
        window = min(group.trend_window, len(marks) - 1)
        trend = math.log(marks[-1] / marks[-1 - window]) if window > 0 else 0.0
        mispricing = market.mispricing()  # what the fundamentalists read: log(V / p)
        if pool.updated_at != t:
            log_return = 0.0 if math.isnan(pool.last_mark) else math.log(marks[-1] / pool.last_mark)
            pool.record(log_return, trend, mispricing)
            pool.updated_at, pool.last_mark = t, marks[-1]
        if model.rng.random() < pool.share:
            self.strategy, demand = "chartist", group.chartist_aggression * trend
        else:
            self.strategy, demand = "fundamentalist", group.fundamentalist_aggression * mispricing
        size = min(group.max_order, int(abs(demand)))
        if size <= 0:
            return
        side = BUY if demand > 0 else SELL
        position = model.ledger.position_of(self.account, market.column)
        size = min(size, group.max_position - side * position)
        if size > 0:
            market.submit_market(self.account, side, size)
