"""Basis arbitrageurs: the perpetual against a spot hedge held outside the book (cash and carry).

An arbitrageur buys the perpetual when its mid trades ``entry_basis`` or more below the index and sells
it when it trades that far above, each time at most ``max_order`` lots, up to ``leverage`` times its
equity on the exchange; every lot it fills is hedged at once on spot at the index (a short spot
position against a long perpetual), on another venue, outside this exchange's ledger. When the basis
has closed to ``exit_basis`` it unwinds both legs, ``max_order`` lots at a time.

Only the perpetual leg is margined here: the spot leg's gains sit on the other venue and cannot be
moved within the run, so a crash that carries the perpetual further below spot calls the arbitrageur's
margin like anyone's. On a call it tops up from its ``reserves`` (off-exchange cash) what the initial
requirement asks, else cuts its position to what its equity carries at initial margin; its forced
sales are sales into the falling book. So the arbitrageurs' margin, not only the makers' depth, bounds
how far the perpetual can trade below spot. A position the exchange liquidates leaves the spot hedge
open until the arbitrageur next acts, when the hedge is brought back to match the position.

The spot leg: ``hedge`` units of the underlying (``-position x contract_size`` once matched) and
``hedge_cash``, the cash its spot trades brought; its worth at the index is :attr:`spot_value`.
"""

from __future__ import annotations

import math

from abm.agents.base import TraderAgent
from abm.book import BUY, SELL

__all__ = ["BasisArbitrageur"]


class BasisArbitrageur(TraderAgent):
    """Holds the perpetual against spot when the basis pays; margined on the perpetual alone."""

    kind = "basis_arbitrageur"

    def __init__(self, model, account: int, group, group_index: int) -> None:
        super().__init__(model, account, group, group_index)
        self.reserves = group.reserves
        self.hedge = 0.0  # spot units held on the other venue (negative: short spot)
        self.hedge_cash = 0.0  # cash those spot trades brought (positive after a spot sale)

    @property
    def spot_value(self) -> float:
        """The spot leg's worth at the index now: its cash plus its units at the index."""
        return self.hedge_cash + self.hedge * self.market.index

    def step(self) -> None:
        """Answer a margin call, else trade the basis; then match the spot hedge to the position."""
        model = self.model
        ledger = model.ledger
        market = self.market
        if ledger.margin_called[self.account]:
            ledger.clear_margin_call(self.account)
            self._answer_margin_call()
        else:
            self._trade_the_basis()
        self._match_hedge(ledger.position_of(self.account, market.column))

    def _trade_the_basis(self) -> None:
        model, group, market = self.model, self.group, self.market
        mid = market.book.mid()
        if mid is None:
            return
        basis = mid * market.tick_size / market.index - 1.0
        position = model.ledger.position_of(self.account, market.column)
        if abs(basis) >= group.entry_basis:
            side = BUY if basis < 0.0 else SELL
            equity = model.ledger.account_equity(self.account, model.marks)
            most = int(group.leverage * max(equity, 0.0) / (market.mark * market.contract_size))
            room = most - side * position
            if room <= 0:
                return
            target = position + side * min(room, group.max_order)
        elif abs(basis) <= group.exit_basis and position != 0:
            target = position - int(math.copysign(min(abs(position), group.max_order), position))
        else:
            return
        self._trade_toward(target)

    def _answer_margin_call(self) -> None:
        # Top up to the initial requirement from the reserves; what they cannot cover, cut.
        if self._top_up_to_initial(self.account) > 0.0:
            self._reduce_to_initial(self.account)

    def _match_hedge(self, position: int) -> None:
        """Trade spot at the index so that the hedge is ``-position x contract_size`` units."""
        market = self.market
        wanted = -position * market.contract_size
        trade = wanted - self.hedge
        if trade != 0.0:
            self.hedge = wanted
            self.hedge_cash -= trade * market.index
