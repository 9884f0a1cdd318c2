"""The base of every trading agent: its ledger account(s), its group's settings and the markets it trades.

Agents hold no money of their own: each indexes one account of the model's :class:`~abm.ledger.Ledger`
(an isolated-margin trader one per position) and shares its group's configuration object. An agent's
``step`` is called only in the steps it acts (drawn by :meth:`abm.population.Population.draw_actors`);
a trader that only holds a position costs nothing per step beyond the vectorised marking.

All randomness comes from ``model.rng`` (one ``numpy.random.Generator`` per run).
"""

from __future__ import annotations

import math

import mesa

from abm.book import BUY, SELL

__all__ = ["TraderAgent"]


class TraderAgent(mesa.Agent):
    """Base: an agent bound to one ledger account, its group's settings and the markets it trades.

    Args:
        model: The owning :class:`abm.model.MarketModel`.
        account: The agent's (primary) account id in the ledger.
        group: The group's configuration (shared by all agents of the group).
        group_index: Position of the group in the population.

    Attributes:
        markets: The markets the agent trades (its group's ``instruments``, default every one; the first
            only for kinds that trade one).
        market: The first of them.
    """

    kind = "trader"

    def __init__(self, model, account: int, group, group_index: int) -> None:
        super().__init__(model)
        self.account = account
        self.group = group
        self.group_index = group_index
        self.markets = model.markets_of(group)
        self.market = self.markets[0]

    @property
    def position(self) -> int:
        """Signed position in lots in the agent's (first) market."""
        return self.model.ledger.position_of(self.account, self.market.column)

    def _trade_toward(self, target: int, market: bool = True, venue=None, account: int | None = None) -> None:
        """Send an order moving a position toward ``target`` lots (capped by initial margin).

        Args:
            target: The wanted position.
            market: A market order (else a passive limit order).
            venue: The market (default the agent's first).
            account: The account that holds the position (default the agent's).
        """
        model = self.model
        venue = self.market if venue is None else venue
        account = self.account if account is None else account
        position = model.ledger.position_of(account, venue.column)
        if model.ledger.reduce_only[account]:  # a unified account's reduce-only rung: cut, never add
            target = min(max(target, 0), position) if position >= 0 else max(min(target, 0), position)
        cap = model.checker.max_position(account, venue.column, model.marks)
        if abs(target) > abs(position):
            target = int(math.copysign(min(abs(target), max(cap, abs(position))), target))
        delta = target - position
        if delta == 0:
            return
        side = BUY if delta > 0 else SELL
        if market:
            venue.submit_market(account, side, abs(delta))
        else:
            venue.submit_limit(account, side, venue.passive_price(side), abs(delta))

    def _top_up_to_initial(self, account: int) -> float:
        """Deposit from ``self.reserves`` what ``account`` lacks of its initial requirement.

        For agents that keep off-exchange ``reserves``. Returns what it still lacks (0 or less: nothing).
        """
        model = self.model
        ledger = model.ledger
        initial_requirement = model.checker.account_requirements(account, model.marks)[0]
        shortfall = initial_requirement - ledger.account_equity(account, model.marks)
        amount = min(max(shortfall, 0.0), self.reserves)
        if amount > 0.0:
            self.reserves -= amount
            ledger.deposit(account, amount)
        return shortfall - amount

    def _reduce_to_initial(self, account: int) -> None:
        """Cut an account's positions so that its initial requirement fits its equity."""
        model = self.model
        ledger = model.ledger
        held = ledger.held_instruments(account)
        if len(held) == 1:
            market = model.markets[held[0]]
            cap = model.checker.max_position(account, market.column, model.marks)
            position = ledger.position_of(account, market.column)
            if abs(position) > cap:
                self._trade_toward(int(math.copysign(cap, position)), venue=market, account=account)
            return
        # Several positions: keep the same share of each, the share the equity can carry.
        initial, _ = model.checker.account_requirements(account, model.marks)
        equity = ledger.account_equity(account, model.marks)
        if initial <= equity or initial <= 0.0:
            return
        keep = max(equity, 0.0) / initial
        for column in held:
            position = ledger.position_of(account, column)
            target = int(math.copysign(int(abs(position) * keep), position))
            self._trade_toward(target, venue=model.markets[column], account=account)
