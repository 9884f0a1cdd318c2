"""Leveraged position takers: the accounts whose liquidation makes the spiral."""

from __future__ import annotations

from dataclasses import dataclass

from abm.agents.base import TraderAgent
from abm.book import BUY, SELL
from abm.config import LeveragedTraderGroup

__all__ = ["LeveragedTrader", "Position"]


@dataclass(frozen=True)
class Position:
    """One position of a leveraged trader's portfolio.

    Attributes:
        market: Where it is held.
        account: The account that holds it (its own slice for an isolated trader).
        share: Its share of the trader's leverage (its weight over the total; 1 for an isolated slice,
            whose collateral is already its share).
        side: +1 long, -1 short.
    """

    market: object
    account: int
    share: float
    side: int


class LeveragedTrader(TraderAgent):
    """A leveraged position taker.

    Holds ``side x leverage x equity x share / price`` lots in each instrument of its portfolio (one
    instrument by default). Strategies: ``hold`` (keep the positions, re-enter flat ones with
    ``reentry_rate``), ``momentum`` (follow the sign of each market's return over ``lookback``),
    ``value`` (trade toward the fundamental), ``random`` (a fresh random side). After a margin call on
    an account it tops up from reserves, cuts the account's positions back to initial margin, or ignores
    the call, with the group's probabilities.

    Margin modes: ``cross`` and ``portfolio`` traders hold every position in one account;
    ``isolated`` traders own one account per position, each with its share of the collateral, each
    checked and liquidated alone.
    """

    kind = "leveraged_trader"

    def __init__(
        self,
        model,
        account: int,
        group: LeveragedTraderGroup,
        group_index: int,
        side: int,
        leverage: float,
        accounts: list[int] | None = None,
        holdings: list | None = None,
    ):
        super().__init__(model, account, group, group_index)
        self.side = side
        self.leverage = leverage
        self.reserves = group.reserves
        self.accounts = list(accounts) if accounts is not None else [account]
        if holdings is None:  # the group's holdings (the model reads them once per group)
            holdings = group.holdings(model.markets[0].name)
        total = sum(holding.weight for holding in holdings)
        isolated = group.margin_mode == "isolated"
        self.positions = [
            Position(
                market=model.market_named(holding.instrument),
                account=self.accounts[j] if isolated else account,
                share=1.0 if isolated else holding.weight / total,
                side=side if holding.side is None else (1 if holding.side == "long" else -1),
            )
            for j, holding in enumerate(holdings)
        ]
        self.market = self.positions[0].market

    def target_lots(self, side: int, position: Position | None = None) -> int:
        """Lots at the target leverage on ``side`` for one position (the first by default)."""
        model = self.model
        position = self.positions[0] if position is None else position
        equity = model.ledger.account_equity(position.account, model.marks)
        if equity <= 0.0:
            return 0
        market = position.market
        return side * int(self.leverage * equity * position.share / (market.mark * market.contract_size))

    def step(self) -> None:
        """Act: answer pending margin calls first, else follow the strategy in each position."""
        ledger = self.model.ledger
        called = [account for account in self.accounts if ledger.margin_called[account]]
        if called:
            for account in called:
                ledger.clear_margin_call(account)
                self.answer_margin_call(account)
            return
        group = self.group
        rng = self.model.rng
        strategy = group.strategy
        for position in self.positions:
            market, account = position.market, position.account
            held = ledger.position_of(account, market.column)
            if strategy == "hold":
                if held == 0 and group.reentry_rate > 0.0 and rng.random() < group.reentry_rate:
                    self._trade_toward(
                        self.target_lots(position.side, position), venue=market, account=account
                    )
                continue
            if strategy == "random":
                side = BUY if rng.random() < 0.5 else SELL
            else:
                if strategy == "momentum":
                    signal = market.momentum(group.lookback, self.model.steps - 1)
                else:
                    signal = market.mispricing()
                if abs(signal) < group.threshold:
                    continue
                side = BUY if signal > 0 else SELL
            self._trade_toward(self.target_lots(side, position), venue=market, account=account)

    def come_back(self, account: int, market_order: bool = False) -> None:
        """Re-open a returning account's positions at the trader's leverage (at the touch, or at market)."""
        for position in self.positions:
            if position.account == account:
                target = self.target_lots(position.side, position)
                self._trade_toward(target, market=market_order, venue=position.market, account=account)

    def answer_margin_call(self, account: int | None = None) -> None:
        """Top up, reduce to initial margin, or ignore, drawn from the group's probabilities."""
        model = self.model
        account = self.account if account is None else account
        reaction = self.group.margin_call
        draw = model.rng.random()
        if draw < reaction.top_up:
            self._top_up_to_initial(account)
        elif draw < reaction.top_up + reaction.reduce:
            self._reduce_to_initial(account)
