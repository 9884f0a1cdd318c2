"""Noise traders: a random side, a market order or a limit order a random number of ticks behind the touch."""

from __future__ import annotations

from abm.agents.base import TraderAgent
from abm.book import BUY, SELL
from abm.config import NoiseTraderGroup

__all__ = ["NoiseTrader"]


class NoiseTrader(TraderAgent):
    """Random side; a market order, or a limit order a random number of ticks behind the touch."""

    kind = "noise"

    def step(self) -> None:
        """In each market it trades, replace its previous order with one random order within the limit."""
        for market in self.markets:
            self._trade(market)

    def _trade(self, market) -> None:
        group: NoiseTraderGroup = self.group
        rng = self.model.rng
        side = BUY if rng.random() < 0.5 else SELL
        position = self.model.ledger.position_of(self.account, market.column)
        if abs(position + side) > group.max_position and (position > 0) == (side > 0):
            side = -side
        size = int(rng.integers(group.min_size, group.max_size + 1))
        # An order lives until its owner acts again: the new one replaces it, in one book call (the
        # draws above do not depend on the book, so they may come before the cancel).
        if rng.random() < group.market_order_share:
            market.replace_with_market(self.account, side, size)
        else:
            offset = int(rng.integers(0, group.max_offset_ticks + 1))
            market.replace_with_passive(self.account, side, offset, size)
