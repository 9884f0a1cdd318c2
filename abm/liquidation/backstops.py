"""The waterfall beyond the book: take-over, auction, auto-deleveraging, socialised losses, unwinding.

The engine's take-over at the bankruptcy price (or a backstop vault's at the mark), the auction to
the market makers, auto-deleveraging, the losses socialised when the fund cannot pay, and the
unwinding of the engine's (or the vault's) inventory into the books.

:class:`Backstops` is a base class of :class:`abm.liquidation.liquidator.Liquidator` and holds no
state of its own: it reads the liquidator's ledger, books, settings, vault, clearing house, generator
and step totals. The order in which the waterfall calls these is the liquidator's (its docstring).
"""

from __future__ import annotations

import math

import numpy as np

from abm.book import BUY, SELL
from abm.journal import KIND_CODE
from abm.ledger import ENGINE, KIND_CODES
from abm.margin.check import MarginCheck

__all__ = ["Backstops"]


class Backstops:
    """What takes a defaulter's position when the book does not, and who pays what is left."""

    __slots__ = ()

    def _take_over(self, account: int, instrument: int, quantity: int, marks, at_mark: bool = False) -> float:
        """The engine takes ``quantity`` lots over at the account's bankruptcy price; returns its loss.

        The loss is what the lots are worth less than that price at the mark (0 when they are worth
        more): negative equity the fund takes on, counted as bad debt. ``at_mark``: at the mark instead
        (the backstop vault takes them), so the loss is the account's deficit, if any, covered afterwards.
        """
        ledger = self.ledger
        mark = float(marks[instrument])
        price = mark if at_mark else ledger.bankruptcy_price(account, instrument, marks)
        taker = self.vault if at_mark else ENGINE
        long = ledger.position_of(account, instrument) > 0
        ledger.pnl_kind = KIND_CODE["takeover"]
        if long:
            ledger.trade(taker, account, instrument, quantity, price)
        else:
            ledger.trade(account, taker, instrument, quantity, price)
        ledger.pnl_kind = KIND_CODE["trade_pnl"]
        loss = quantity * ((price - mark) if long else (mark - price)) * self._contracts[instrument]
        loss = max(loss, 0.0)
        if loss > 0.0:
            ledger.record_bad_debt(loss)
        return loss

    def _auction(self, account: int, instrument: int, quantity: int, marks) -> int:
        """Sell ``quantity`` lots of a defaulter's position to the market makers at a discount to the mark.

        The lots go to the makers pro rata to their default-fund contributions (equally without a fund),
        by largest remainder, ties to the lower id; returns the lots placed (0 without makers).
        """
        ledger = self.ledger
        bidders = np.flatnonzero(ledger.kind == KIND_CODES["market_maker"])
        if len(bidders) == 0:
            return 0
        weights = self.clearing.weights(bidders) if self.clearing is not None else np.ones(len(bidders))
        if weights.sum() <= 0.0:
            weights = np.ones(len(bidders))
        share = quantity * weights / weights.sum()
        lots = np.floor(share).astype(np.int64)
        order = np.lexsort((bidders, -(share - lots)))  # largest remainder first, then the lower id
        lots[order[: quantity - int(lots.sum())]] += 1
        long = ledger.position_of(account, instrument) > 0
        discount = self.settings.auction_discount
        price = float(marks[instrument]) * ((1.0 - discount) if long else (1.0 + discount))
        ledger.pnl_kind = KIND_CODE["auction"]
        for bidder, amount in zip(bidders.tolist(), lots.tolist(), strict=True):
            if amount:
                if long:
                    ledger.trade(bidder, account, instrument, amount, price)
                else:
                    ledger.trade(account, bidder, instrument, amount, price)
        ledger.pnl_kind = KIND_CODE["trade_pnl"]
        return quantity

    def _auto_deleverage(
        self, account: int, instrument: int, quantity: int, marks, check: MarginCheck
    ) -> int:
        """Close up to ``quantity`` lots against ranked profitable opposite positions.

        The ranking is the one BitMEX publishes, at the mark: PnL% (unrealised PnL over the position's
        cost) x effective leverage (notional over the account's equity), highest first, ties by
        account id; positions not in profit at the mark are not deleveraged. They are closed at the
        bankrupt account's bankruptcy price (``adl_price: bankruptcy``) or at the mark.
        """
        ledger = self.ledger
        contract = self._contracts[instrument]
        sign = 1 if ledger.position_of(account, instrument) > 0 else -1
        mark = float(marks[instrument])
        position = ledger.position[:, instrument]
        entry = ledger.entry_price[:, instrument]
        upnl = position * (mark - entry) * contract
        candidates = np.flatnonzero((np.sign(position) == -sign) & (upnl > 0))
        candidates = candidates[candidates != ENGINE]
        if len(candidates) == 0:
            return 0
        cost = np.abs(position[candidates]) * entry[candidates] * contract
        if ledger.n_instruments == 1:
            equity = ledger.collateral[candidates] + upnl[candidates]
        else:  # a cross account's equity is over all its positions
            pnl = (np.asarray(marks, dtype=np.float64) - ledger.entry_price[candidates]) * ledger.position[
                candidates
            ]
            equity = ledger.collateral[candidates] + pnl @ ledger.contract_sizes
        rule = self.settings.adl_rank
        if rule == "random_start":
            # dYdX: no ranking; the offsetting accounts in id order, from a random one on.
            start = int(self.rng.integers(len(candidates)))
            order = np.roll(candidates, -start)
        else:
            if rule == "pnl_leverage":
                notional = np.abs(position[candidates]) * mark * contract
                rank = (upnl[candidates] / np.maximum(cost, 1e-12)) * (notional / np.maximum(equity, 1e-12))
            else:  # pnl_wallet: Binance's ADL light, profit over wallet balance times margin ratio
                ratio = check.maintenance_requirement[candidates] / np.maximum(equity, 1e-12)
                rank = upnl[candidates] / np.maximum(ledger.collateral[candidates], 1.0) * ratio
            order = candidates[np.lexsort((candidates, -rank))]
        taken = 0
        for other in order.tolist():
            if taken >= quantity:
                break
            lots = min(quantity - taken, abs(ledger.position_of(other, instrument)))
            if self.settings.adl_price == "mark":
                price = mark
            else:
                price = ledger.bankruptcy_price(account, instrument, marks)
            ledger.pnl_kind = KIND_CODE["adl"]
            if sign > 0:
                ledger.trade(other, account, instrument, lots, price)
            else:
                ledger.trade(account, other, instrument, lots, price)
            ledger.pnl_kind = KIND_CODE["trade_pnl"]
            taken += lots
        return taken

    def _socialise(self, shortfall: float, marks: np.ndarray) -> None:
        """Spread what the fund cannot pay over accounts in profit, pro rata to profit.

        ``socialise: traders`` leaves market makers out, ``none`` charges nobody.
        """
        ledger = self.ledger
        if self.settings.socialise == "none":
            return
        if ledger.n_instruments == 1:
            upnl = ledger.unrealised(marks)[:, 0]
        else:
            upnl = ledger.equity(marks) - ledger.collateral
        equity = ledger.collateral + upnl
        profit = np.where((upnl > 0) & (equity > 0), np.minimum(upnl, equity), 0.0)
        profit[ENGINE] = 0.0
        if self.settings.socialise == "traders":
            profit[ledger.kind == KIND_CODES["market_maker"]] = 0.0
        total = float(profit.sum())
        if total <= 0.0:
            return  # nobody to charge: the fund stays negative (recorded as bad debt)
        charged = min(shortfall, total)
        charge = profit * (charged / total)
        ledger.charge_pro_rata(charge, ENGINE, charged)
        self.totals.socialised += charged

    def _unwind_engine(self, round_index: int) -> None:
        """Sell the engine's (and a vault's) inventory back into each book, once a step."""
        self._unwind(ENGINE, round_index)
        if self.vault != ENGINE:
            self._unwind(self.vault, round_index)

    def _unwind(self, holder: int, round_index: int) -> None:
        """Sell ``holder``'s inventory back into each book (subject to the speed limit and the band)."""
        ledger = self.ledger
        for instrument, book in enumerate(self.books):
            inventory = ledger.position_of(holder, instrument)
            if inventory == 0:
                continue
            settings = self.settings
            side = SELL if inventory > 0 else BUY
            quantity = abs(inventory)
            if settings.unwind_fraction < 1.0:
                quantity = max(1, math.ceil(settings.unwind_fraction * quantity))
            if settings.max_lots_per_round:
                quantity = min(quantity, settings.max_lots_per_round)
            # The backstop does not dump: it sells only what the book holds within a band of the touch.
            best = book.best_bid() if side == SELL else book.best_ask()
            if best is None:
                continue
            band = max(1, int(best * settings.unwind_band))
            limit = best - band if side == SELL else best + band
            if settings.unwind_depth_share < 1.0:
                resting = book.depth(-side, band)  # the side it sells into, within the band
                quantity = min(quantity, int(settings.unwind_depth_share * resting))
                if quantity <= 0:
                    continue
            fills = book.submit_market(holder, side, quantity, limit_price=max(1, limit))
            ledger.settle(fills, instrument, round_index, is_liquidation=True)
