"""Fundamentalists: buy below and sell above the fundamental value, in proportion to the mispricing."""

from __future__ import annotations

from abm.agents.base import TraderAgent
from abm.book import BUY, SELL
from abm.config import FundamentalistGroup

__all__ = ["Fundamentalist"]


class Fundamentalist(TraderAgent):
    """Buys below and sells above the fundamental value, in proportion to the mispricing."""

    kind = "fundamentalist"

    def step(self) -> None:
        """In each market it trades, trade toward the fundamental when the mispricing is large enough."""
        for market in self.markets:
            self._trade(market)

    def _trade(self, market) -> None:
        group: FundamentalistGroup = self.group
        market.cancel_orders(self.account)  # stale quotes are withdrawn each time it acts
        mispricing = market.mispricing()
        if abs(mispricing) < group.threshold:
            return
        side = BUY if mispricing > 0 else SELL
        size = min(group.max_order, max(1, int(group.aggression * abs(mispricing))))
        position = self.model.ledger.position_of(self.account, market.column)
        room = group.max_position - side * position
        size = min(size, room)
        if size <= 0:
            return
        if self.model.rng.random() < group.market_order_share:
            market.submit_market(self.account, side, size)
        else:
            market.submit_limit(self.account, side, market.passive_price(side, -1), size)
