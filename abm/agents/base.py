"""The base of every trading agent: one ledger account, its group's settings and the market it trades.

Agents hold no money of their own: each indexes one account of the model's :class:`~abm.ledger.Ledger`
and shares its group's configuration object. An agent's ``step`` is called only in the steps it acts
(drawn by :meth:`abm.population.Population.draw_actors`); a trader that only holds a position costs
nothing per step beyond the vectorised marking.

All randomness comes from ``model.rng`` (one ``numpy.random.Generator`` per run).
"""

from __future__ import annotations

import math

import mesa

from abm.book import BUY, SELL

__all__ = ["TraderAgent"]


class TraderAgent(mesa.Agent):
    """Base: an agent bound to one ledger account, its group's settings and one market.

    Args:
        model: The owning :class:`abm.model.MarketModel`.
        account: The account id in the ledger.
        group: The group's configuration (shared by all agents of the group).
        group_index: Position of the group in the population.
    """

    kind = "trader"

    def __init__(self, model, account: int, group, group_index: int) -> None:
        super().__init__(model)
        self.account = account
        self.group = group
        self.group_index = group_index
        self.market = model.markets[0]

    @property
    def position(self) -> int:
        """Signed position in lots in the agent's market."""
        return self.model.ledger.position_of(self.account, self.market.column)

    def _trade_toward(self, target: int, market: bool = True) -> None:
        """Send an order moving the position toward ``target`` lots (capped by initial margin)."""
        model = self.model
        position = self.position
        cap = model.checker.max_position(self.account, self.market.column, model.marks)
        if abs(target) > abs(position):
            target = int(math.copysign(min(abs(target), max(cap, abs(position))), target))
        delta = target - position
        if delta == 0:
            return
        side = BUY if delta > 0 else SELL
        if market:
            self.market.submit_market(self.account, side, abs(delta))
        else:
            self.market.submit_limit(self.account, side, self.market.passive_price(side), abs(delta))
