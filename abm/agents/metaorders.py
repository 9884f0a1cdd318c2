"""Metaorder traders: order flow with long memory, after Lillo, Mike and Farmer (2005).

A trader splits a large order (a metaorder) into ``child_size``-lot market orders, one each step it
acts, until the metaorder is done. Its length in child orders is drawn from a Pareto tail,
``P(L >= l) = (min_length / l) ** tail_exponent`` (capped at ``max_length``), and its side at random,
leaning against the trader's position so that it stays within ``max_position``. With a tail exponent
``alpha`` in (1, 2) the signs of the market orders are persistent with an autocorrelation that decays
as ``lag ** -(alpha - 1)``: the long memory of order signs measured on the London Stock Exchange
(``alpha`` about 1.5; Lillo, Mike and Farmer 2005), and with it volatility that comes from the agents'
own flow rather than from the index.
"""

from __future__ import annotations

import math

from abm.agents.base import TraderAgent
from abm.book import BUY, SELL

__all__ = ["MetaorderTrader"]


class MetaorderTrader(TraderAgent):
    """Works one metaorder at a time: ``child_size`` lots by market order each step it acts."""

    kind = "metaorder"

    def __init__(self, model, account: int, group, group_index: int) -> None:
        super().__init__(model, account, group, group_index)
        self.side = BUY
        self.remaining = 0  # child orders left in the current metaorder

    def step(self) -> None:
        """Start a metaorder when none is running, then send its next child order."""
        market = self.market
        position = self.model.ledger.position_of(self.account, market.column)
        if self.remaining <= 0:
            self._start(position)
        group = self.group
        size = group.child_size
        if self.side * position + size > group.max_position:
            self.remaining = 0  # at the limit: this metaorder is over
            return
        market.submit_market(self.account, self.side, size)
        self.remaining -= 1

    def _start(self, position: int) -> None:
        group, rng = self.group, self.model.rng
        # A buy with probability 1/2 - position / (2 max_position): even when flat, never toward the limit.
        lean = min(max(position / group.max_position, -1.0), 1.0)
        self.side = BUY if rng.random() < 0.5 * (1.0 - lean) else SELL
        uniform = 1.0 - rng.random()  # in (0, 1]
        # floor(min_length x U^(-1/alpha)) >= l exactly when U <= (min_length / l)^alpha: the Pareto tail.
        length = group.min_length * uniform ** (-1.0 / group.tail_exponent)
        self.remaining = int(min(math.floor(length), group.max_length))
