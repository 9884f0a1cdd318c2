"""Leveraged position takers: the accounts whose liquidation makes the spiral."""

from __future__ import annotations

import math

from abm.agents.base import TraderAgent
from abm.book import BUY, SELL
from abm.config import LeveragedTraderGroup

__all__ = ["LeveragedTrader"]


class LeveragedTrader(TraderAgent):
    """A leveraged position taker.

    Holds ``side x leverage x equity / price`` lots. Strategies: ``hold`` (keep the position,
    re-enter when flat with ``reentry_rate``), ``momentum`` (follow the sign of the return over
    ``lookback``), ``value`` (trade toward the fundamental), ``random`` (a fresh random side).
    After a margin call it tops up from reserves, cuts the position back to initial margin, or
    ignores the call, with the group's probabilities.
    """

    kind = "leveraged_trader"

    def __init__(
        self, model, account: int, group: LeveragedTraderGroup, group_index: int, side: int, leverage: float
    ):
        super().__init__(model, account, group, group_index)
        self.side = side
        self.leverage = leverage
        self.reserves = group.reserves

    def target_lots(self, side: int) -> int:
        """Position (lots) at the target leverage on ``side`` for the current equity and mark."""
        model = self.model
        market = self.market
        equity = model.ledger.account_equity(self.account, model.marks)
        if equity <= 0.0:
            return 0
        return side * int(self.leverage * equity / (market.mark * market.contract_size))

    def step(self) -> None:
        """Act: answer a pending margin call first, else follow the strategy."""
        ledger = self.model.ledger
        if ledger.margin_called[self.account]:
            ledger.clear_margin_call(self.account)
            self.answer_margin_call()
            return
        group = self.group
        rng = self.model.rng
        strategy = group.strategy
        if strategy == "hold":
            if self.position == 0 and group.reentry_rate > 0.0 and rng.random() < group.reentry_rate:
                self._trade_toward(self.target_lots(self.side))
            return
        if strategy == "random":
            side = BUY if rng.random() < 0.5 else SELL
        else:
            if strategy == "momentum":
                signal = self.market.momentum(group.lookback, self.model.steps - 1)
            else:
                signal = self.market.mispricing()
            if abs(signal) < group.threshold:
                return
            side = BUY if signal > 0 else SELL
        self._trade_toward(self.target_lots(side))

    def answer_margin_call(self) -> None:
        """Top up, reduce to initial margin, or ignore, drawn from the group's probabilities."""
        model = self.model
        reaction = self.group.margin_call
        draw = model.rng.random()
        ledger = model.ledger
        if draw < reaction.top_up:
            initial_requirement = model.checker.account_initial_requirement(self.account, model.marks)
            shortfall = initial_requirement - ledger.account_equity(self.account, model.marks)
            amount = min(max(shortfall, 0.0), self.reserves)
            if amount > 0.0:
                self.reserves -= amount
                ledger.deposit(self.account, amount)
        elif draw < reaction.top_up + reaction.reduce:
            cap = model.checker.max_position(self.account, self.market.column, model.marks)
            if abs(self.position) > cap:
                self._trade_toward(int(math.copysign(cap, self.position)))
