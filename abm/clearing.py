"""Accounts ledger, margin checks and the liquidation waterfall.

Accounts live in numpy arrays indexed by account id: ``collateral`` (cash, realised PnL included),
``position`` (signed integer lots), ``entry_price`` (average entry, price units). Account 0 is the
liquidation engine; its collateral *is* the insurance fund and its position is the inventory it
took over from liquidations the book could not absorb.

Money convention: ``equity = collateral + position * (mark - entry_price) * contract_size``. Every
trade is settled on both sides at the same price, so ``sum(collateral) + sum(unrealised PnL)``
changes only by deposits and withdrawals (the conservation invariant), and ``sum(position) == 0``.
Funding payments move collateral between longs and shorts (zero-sum); a collateral haircut is an
outside change in value, tracked in ``total_revaluation``, which the invariant adds like a deposit.

Waterfall for an account below maintenance (DESIGN.md step 7):

1. a market order for the position (or the part that restores ``target_ratio`` in partial mode)
   goes into the book, optionally limited at the bankruptcy price;
2. what the book cannot take (an empty or too thin side, or the bankruptcy-price limit) goes to the
   engine at the bankruptcy price while the insurance fund is positive, otherwise to
   auto-deleveraging: profitable opposite positions ranked by PnL% x leverage are closed against
   it at the bankruptcy price (and anything still left to the engine);
3. a liquidation fee (share of the filled notional) moves from the account to the fund;
4. a fully closed account left below zero is bad debt, paid by the fund; what the fund cannot pay is
   socialised over accounts in profit, pro rata to their profit.

Cascade attribution: an account that first breaches in round ``r > 0`` of a step has as parents the
liquidations of round ``r - 1`` of the same step whose orders moved the price against it (sell orders
for a long, buys for a short) and filled something. Round-0 breaches are roots.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from abm.book import BUY, SELL, OrderBook
from abm.config import LiquidationConfig

__all__ = ["ENGINE", "Clearing", "InvariantError", "KIND_CODES", "MarginCheck"]

ENGINE = 0
ENGINE_UNWIND_BAND = 0.01  # the engine unwinds at most 1% through the touch per step
KIND_CODES = {
    "liquidation_engine": 0,
    "leveraged_trader": 1,
    "market_maker": 2,
    "noise": 3,
    "fundamentalist": 4,
    "counterparty": 5,
    "exogenous": 6,
    "value_fund": 7,
    "ar1_noise": 8,
}


class InvariantError(RuntimeError):
    """An accounting or market invariant was breached; the message names step, invariant and accounts.

    Args:
        message: The full description.
        step: The step at whose end the breach was found.
        invariant: Its short name (see :mod:`abm.invariants`), e.g. ``"conservation"``.
        accounts: Ids of the accounts involved.
    """

    def __init__(
        self, message: str, *, step: int | None = None, invariant: str | None = None, accounts=()
    ) -> None:
        super().__init__(message)
        self.step = step
        self.invariant = invariant
        self.accounts = tuple(int(account) for account in accounts)

    def __reduce__(self):
        # Keep the attributes across processes (sweeps run in workers).
        return _rebuild_invariant_error, (str(self), self.step, self.invariant, self.accounts)


def _rebuild_invariant_error(message, step, invariant, accounts) -> InvariantError:
    return InvariantError(message, step=step, invariant=invariant, accounts=accounts)


@dataclass(slots=True)
class MarginCheck:
    """Result of one vectorised margin pass."""

    equity: np.ndarray
    notional: np.ndarray
    initial_requirement: np.ndarray
    maintenance_requirement: np.ndarray
    breached: np.ndarray  # account ids below maintenance, worst first
    called: np.ndarray  # boolean mask: inside the margin-call buffer but not breached
    exposed: np.ndarray  # boolean mask: margin-checked accounts that hold a position


class Clearing:
    """The exchange's ledger: settlement of fills, marking, margin checks, liquidation.

    Args:
        book: The shared order book liquidation orders go into.
        policy: Margin policy with ``requirements(notional) -> (initial, maintenance)``.
        liquidation: The scenario's liquidation settings.
        contract_size: Units of underlying per lot.
        tick_size: Price of one tick.
        call_buffer: Margin call when equity < maintenance x (1 + call_buffer).
        capacity: Initial array capacity (grows as accounts are added).
    """

    def __init__(
        self,
        book: OrderBook,
        policy,
        liquidation: LiquidationConfig,
        contract_size: float,
        tick_size: float,
        call_buffer: float,
        capacity: int = 64,
    ) -> None:
        self.book = book
        self.policy = policy
        self.liquidation = liquidation
        self.contract_size = float(contract_size)
        self.tick_size = float(tick_size)
        self.call_buffer = float(call_buffer)
        self.n_accounts = 0
        self.collateral = np.zeros(capacity)
        self.position = np.zeros(capacity, dtype=np.int64)
        self.entry_price = np.zeros(capacity)
        self.deposits = np.zeros(capacity)
        self.initial_collateral = np.zeros(capacity)
        self.kind = np.zeros(capacity, dtype=np.int8)
        self.liquidated = np.zeros(capacity, dtype=np.int32)
        self.checked = np.zeros(capacity, dtype=bool)  # margin-checked accounts (not the engine)
        self.margin_called = np.zeros(capacity, dtype=bool)
        # Lots held long over all accounts (= lots held short): kept as positions change, so that the
        # time series does not sum over every account every step. Checked by abm.invariants.
        self.open_interest = 0
        # Trade log, columnar (appended per fill; converted to a table at the end).
        self.trade_step: list[int] = []
        self.trade_round: list[int] = []
        self.trade_price: list[float] = []
        self.trade_quantity: list[int] = []
        self.trade_taker: list[int] = []
        self.trade_maker: list[int] = []
        self.trade_side: list[int] = []
        self.trade_is_liquidation: list[bool] = []
        self.liquidations: list[dict] = []
        # Per-step counters read by the recorder.
        self.step_volume = 0
        self.step_liquidations = 0
        self.step_liquidated_notional = 0.0
        self.step_adl_volume = 0
        self.step_bad_debt = 0.0
        self.step_socialised = 0.0
        self.step_rounds = 0
        self.total_bad_debt = 0.0
        self.total_socialised = 0.0
        self.total_deposits = 0.0  # net of withdrawals
        # Outside changes in the value of collateral (haircuts; negative for a loss), counted in the
        # conservation invariant like a withdrawal, but apart from deposits: nobody took the money out.
        self.total_revaluation = 0.0
        self.total_funding = 0.0  # gross funding paid by the paying side (scenario shocks)
        self.total_fees = 0.0  # liquidation fees moved into the fund
        self.bookings = 0  # float bookings so far: sets the rounding tolerance (abm.invariants)
        self.initial_money = 0.0
        self._mark_fn: Callable[[], float] = lambda: float("nan")
        self.add_accounts(1, float(liquidation.insurance_fund), "liquidation_engine")
        self.checked[ENGINE] = False

    # ------------------------------------------------------------------ accounts

    def add_accounts(self, count: int, collateral: float | np.ndarray, kind: str) -> np.ndarray:
        """Open ``count`` accounts with the given collateral; returns their ids."""
        start, stop = self.n_accounts, self.n_accounts + count
        if stop > len(self.collateral):
            self._grow(max(stop, 2 * len(self.collateral)))
        self.collateral[start:stop] = collateral
        self.initial_collateral[start:stop] = collateral
        self.kind[start:stop] = KIND_CODES[kind]
        self.checked[start:stop] = True
        self.n_accounts = stop
        self.initial_money += float(np.sum(self.collateral[start:stop]))
        return np.arange(start, stop)

    def _grow(self, capacity: int) -> None:
        for name in (
            "collateral",
            "position",
            "entry_price",
            "deposits",
            "initial_collateral",
            "kind",
            "liquidated",
            "checked",
            "margin_called",
        ):
            old = getattr(self, name)
            new = np.zeros(capacity, dtype=old.dtype)
            new[: len(old)] = old
            setattr(self, name, new)

    def deposit(self, account: int, amount: float) -> None:
        """Move ``amount`` of outside money into an account (a margin top-up)."""
        self.collateral[account] += amount
        self.deposits[account] += amount
        self.total_deposits += amount

    def withdraw(self, account: int, amount: float) -> None:
        """Move ``amount`` out of an account to the outside (a negative deposit in ``deposits``)."""
        self.collateral[account] -= amount
        self.deposits[account] -= amount
        self.total_deposits -= amount

    def revalue_collateral(self, accounts: np.ndarray, fraction: float) -> float:
        """Cut the positive collateral of ``accounts`` by ``fraction`` (a haircut); returns the value lost.

        The loss is recorded in ``total_revaluation``, which the conservation invariant includes.
        """
        accounts = np.asarray(accounts, dtype=np.int64)
        loss = np.maximum(self.collateral[accounts], 0.0) * fraction
        self.collateral[accounts] -= loss
        lost = float(loss.sum())
        self.total_revaluation -= lost
        return lost

    def pay_funding(self, rate: float, mark: float) -> float:
        """Funding: every position pays ``rate x position x mark`` (longs pay shorts when rate > 0).

        Zero-sum because positions net to zero; returns the gross amount paid by the paying side.
        """
        n = self.n_accounts
        payment = self.position[:n] * (rate * mark * self.contract_size)
        self.collateral[:n] -= payment
        paid = float(payment[payment > 0].sum())
        self.total_funding += paid
        return paid

    def open_position(self, account: int, quantity: int, price: float, counterparty: int) -> None:
        """Book an initial position against a counterparty account at ``price`` (set-up only)."""
        if quantity > 0:
            self._trade(account, counterparty, quantity, price)
        elif quantity < 0:
            self._trade(counterparty, account, -quantity, price)

    # ------------------------------------------------------------------ settlement

    def _apply(self, account: int, signed_quantity: int, price: float) -> None:
        """Move one account's position by ``signed_quantity`` lots at ``price``."""
        # .item() reads give Python numbers: the same IEEE arithmetic as on numpy scalars, at a
        # fraction of the cost (this runs twice per fill).
        position = self.position
        entry = self.entry_price
        old = position.item(account)
        new = old + signed_quantity
        if old == 0 or (old > 0) == (signed_quantity > 0):
            # Increase: volume-weighted entry.
            entry[account] = (entry.item(account) * abs(old) + price * abs(signed_quantity)) / abs(new)
        else:
            closed = min(abs(signed_quantity), abs(old))
            sign = 1 if old > 0 else -1
            self.collateral[account] += closed * (price - entry.item(account)) * sign * self.contract_size
            if new == 0:
                entry[account] = 0.0
            elif (new > 0) != (old > 0):
                entry[account] = price  # flipped: the remainder opened at this price
        position[account] = new
        self.open_interest += (new if new > 0 else 0) - (old if old > 0 else 0)
        self.bookings += 1

    def _trade(self, buyer: int, seller: int, quantity: int, price: float) -> None:
        self._apply(buyer, quantity, price)
        self._apply(seller, -quantity, price)

    def settle(self, fills, step: int, round_index: int, is_liquidation: bool) -> tuple[int, float]:
        """Settle book fills on both sides and log them; returns (lots, sum of price x lots)."""
        tick = self.tick_size
        lots = 0
        value = 0.0
        for fill in fills:
            price = fill.price * tick
            quantity = fill.quantity
            if fill.taker_side == BUY:
                self._trade(fill.taker, fill.maker, quantity, price)
            else:
                self._trade(fill.maker, fill.taker, quantity, price)
            self.trade_step.append(step)
            self.trade_round.append(round_index)
            self.trade_price.append(price)
            self.trade_quantity.append(quantity)
            self.trade_taker.append(fill.taker)
            self.trade_maker.append(fill.maker)
            self.trade_side.append(fill.taker_side)
            self.trade_is_liquidation.append(is_liquidation)
            lots += quantity
            value += price * quantity
        self.step_volume += lots
        return lots, value

    # ------------------------------------------------------------------ marking

    def equity(self, mark: float) -> np.ndarray:
        """Equity of every account at ``mark`` (vectorised)."""
        n = self.n_accounts
        return self.collateral[:n] + self.position[:n] * (mark - self.entry_price[:n]) * self.contract_size

    def account_equity(self, account: int, mark: float) -> float:
        """Equity of one account at ``mark``."""
        return float(
            self.collateral[account]
            + self.position[account] * (mark - self.entry_price[account]) * self.contract_size
        )

    def margin_check(self, mark: float) -> MarginCheck:
        """One vectorised pass: equity, requirements, breaches (worst first) and calls."""
        n = self.n_accounts
        position = self.position[:n]
        notional = np.abs(position) * (mark * self.contract_size)
        equity = self.collateral[:n] + position * (mark - self.entry_price[:n]) * self.contract_size
        initial_req, maintenance_req = self.policy.requirements(notional)
        # In-place masks: each full-length temporary costs as much as the arithmetic at 1e5 accounts.
        exposed = position != 0
        exposed &= self.checked[:n]
        breached_mask = equity < maintenance_req
        breached_mask &= exposed
        breached = np.flatnonzero(breached_mask)
        if self.call_buffer > 0.0:
            called = equity < maintenance_req * (1.0 + self.call_buffer)
            called &= exposed
            called[breached] = False
        else:
            called = np.zeros(n, dtype=bool)  # no buffer: nobody is between the two thresholds
        if len(breached) > 1:
            ratio = equity[breached] / np.maximum(maintenance_req[breached], 1e-300)
            breached = breached[np.lexsort((breached, ratio))]
        return MarginCheck(equity, notional, initial_req, maintenance_req, breached, called, exposed)

    def max_position(self, account: int, mark: float) -> int:
        """Largest absolute position (lots) the account's equity supports at the opening initial rate."""
        equity = self.account_equity(account, mark)
        if equity <= 0.0:
            return 0
        notional = np.array([abs(self.position[account]) * mark * self.contract_size])
        rate = float(self.policy.opening_initial_rate(notional)[0])
        return int(equity / (rate * mark * self.contract_size))

    # ------------------------------------------------------------------ liquidation

    def bankruptcy_price(self, account: int) -> float:
        """Price at which the account's equity is exactly zero (entry - collateral / position)."""
        position = int(self.position[account])
        return float(self.entry_price[account] - self.collateral[account] / (position * self.contract_size))

    def run_liquidations(
        self,
        step: int,
        mark_fn: Callable[[], float],
        enabled: bool = True,
    ) -> MarginCheck:
        """Margin check and liquidation rounds until nothing new breaches (or the round cap).

        Args:
            step: Current step (for records).
            mark_fn: Recomputes the mark price from the book / index after each round.
            enabled: False switches forced liquidation off (the counterfactual run).

        Returns:
            The final margin check of the step (margin calls are flagged from it).
        """
        config = self.liquidation
        self._mark_fn = mark_fn
        if not enabled:
            check = self.margin_check(mark_fn())
            self._flag_calls(check)
            return check
        first_round: dict[int, tuple[int, list[int]]] = {}
        previous_round_ids: list[tuple[int, int]] = []  # (liquidation id, order side)
        round_index = 0
        # The engine unwinds first, so the step's first check already sees the book it leaves.
        self._unwind_engine(step, 0)
        mark = mark_fn()
        check = self.margin_check(mark)
        while round_index < config.max_rounds:
            if len(check.breached) == 0:
                break
            lots_budget = config.max_lots_per_round or np.iinfo(np.int64).max
            this_round: list[tuple[int, int]] = []
            # Parents by the side of the child's position, built once a round (not once per account:
            # that was quadratic when a round liquidates thousands). Children share the list; nobody
            # mutates it.
            parents_of = {
                sign: [lid for lid, side in previous_round_ids if side == -sign] if round_index > 0 else []
                for sign in (1, -1)
            }
            for account in check.breached.tolist():
                if account not in first_round:
                    sign = 1 if self.position[account] > 0 else -1
                    first_round[account] = (round_index, parents_of[sign])
                if lots_budget <= 0:
                    break
                if self.position[account] == 0:
                    continue
                record = self._liquidate(
                    account, step, round_index, mark, check, first_round[account][1], lots_budget
                )
                lots_budget -= record["quantity"]
                if record["filled_quantity"] > 0:
                    this_round.append((record["liquidation_id"], record["side"]))
            self.step_rounds = round_index + 1
            previous_round_ids = this_round
            round_index += 1
            mark = mark_fn()
            check = self.margin_check(mark)
        if self.collateral[ENGINE] < 0.0:
            # The fund lost more than it held (bad debt, or unwinding inventory below its takeover price).
            self._socialise(-float(self.collateral[ENGINE]), mark_fn())
        self._flag_calls(check)
        return check

    def _flag_calls(self, check: MarginCheck) -> None:
        n = self.n_accounts
        self.margin_called[:n] = check.called

    def _liquidate(
        self,
        account: int,
        step: int,
        round_index: int,
        mark: float,
        check: MarginCheck,
        parents: list[int],
        lots_budget: int,
    ) -> dict:
        config = self.liquidation
        self.book.cancel_all(account)  # the exchange pulls the account's resting orders first
        position = int(self.position[account])
        side = SELL if position > 0 else BUY
        equity_before = float(check.equity[account])
        quantity = abs(position)
        if config.mode == "partial" and equity_before > 0.0:
            rate = check.maintenance_requirement[account] / max(check.notional[account], 1e-300)
            keep = int(equity_before / (config.target_ratio * rate * mark * self.contract_size))
            quantity = max(1, abs(position) - max(keep, 0))
        quantity = int(min(quantity, lots_budget))
        full = quantity == abs(position)
        mid_before = self.book.mid()
        filled = 0
        value = 0.0
        adl_quantity = 0
        limit = self._bankruptcy_tick(account, side) if config.price_limit == "bankruptcy" else None
        fills = self.book.submit_market(account, side, quantity, limit_price=limit)
        if fills:
            filled, value = self.settle(fills, step, round_index, is_liquidation=True)
        remaining = quantity - filled
        if remaining > 0:
            # The book could not take it all: the engine backstops while the fund lasts, else ADL.
            if self.collateral[ENGINE] > 0.0 or not config.adl:
                self._transfer_at_bankruptcy(account, ENGINE, remaining)
            else:
                adl_quantity = self._auto_deleverage(account, remaining)
                if adl_quantity < remaining:
                    self._transfer_at_bankruptcy(account, ENGINE, remaining - adl_quantity)
        fee = 0.0
        if filled > 0 and config.fee > 0.0:
            fee = min(config.fee * value * self.contract_size, max(float(self.collateral[account]), 0.0))
            self.collateral[account] -= fee
            self.collateral[ENGINE] += fee
            self.total_fees += fee
        bad_debt = 0.0
        if self.position[account] == 0 and abs(self.collateral[account]) < 1e-9:
            # Rounding dust of a transfer at the bankruptcy price: the fund absorbs it, money is conserved.
            self.collateral[ENGINE] += self.collateral[account]
            self.collateral[account] = 0.0
        if self.position[account] == 0 and self.collateral[account] < 0.0:
            bad_debt = -float(self.collateral[account])
            self.collateral[account] = 0.0
            self.collateral[ENGINE] -= bad_debt
            self.total_bad_debt += bad_debt
            self.step_bad_debt += bad_debt
            if self.collateral[ENGINE] < 0.0:
                self._socialise(-float(self.collateral[ENGINE]), self._mark_fn())
        mid_after = self.book.mid()
        impact = (
            (mid_after - mid_before) * self.tick_size
            if mid_before is not None and mid_after is not None
            else float("nan")
        )
        self.liquidated[account] += 1
        notional = quantity * mark * self.contract_size
        self.step_liquidations += 1
        self.step_liquidated_notional += notional
        self.step_adl_volume += adl_quantity
        record = {
            "liquidation_id": len(self.liquidations),
            "step": step,
            "round": round_index,
            "account_id": account,
            "kind": int(self.kind[account]),
            "side": side,
            "quantity": quantity,
            "filled_quantity": filled,
            "average_price": value / filled if filled else float("nan"),
            "mark_before": mark,
            "notional": notional,
            "equity_before": equity_before,
            "equity_after": self.account_equity(account, mark),
            "bad_debt": bad_debt,
            "adl_quantity": adl_quantity,
            "price_impact": impact,
            "parents": list(parents),
            "full": full,
        }
        self.liquidations.append(record)
        return record

    def _bankruptcy_tick(self, account: int, side: int) -> int:
        price = self.bankruptcy_price(account)
        if side == SELL:
            return max(1, int(np.ceil(price / self.tick_size - 1e-9)))
        return max(1, int(np.floor(price / self.tick_size + 1e-9)))

    def _transfer_at_bankruptcy(self, account: int, receiver: int, quantity: int) -> None:
        price = self.bankruptcy_price(account)
        if self.position[account] > 0:
            self._trade(receiver, account, quantity, price)
        else:
            self._trade(account, receiver, quantity, price)

    def _auto_deleverage(self, account: int, quantity: int) -> int:
        """Close up to ``quantity`` lots against ranked profitable opposite positions."""
        n = self.n_accounts
        sign = 1 if self.position[account] > 0 else -1
        mark_proxy = self.bankruptcy_price(account)
        position = self.position[:n]
        upnl = position * (mark_proxy - self.entry_price[:n]) * self.contract_size
        candidates = np.flatnonzero((np.sign(position) == -sign) & (upnl > 0))
        candidates = candidates[candidates != ENGINE]
        if len(candidates) == 0:
            return 0
        cost = np.abs(position[candidates]) * self.entry_price[candidates] * self.contract_size
        equity = self.collateral[candidates] + upnl[candidates]
        notional = np.abs(position[candidates]) * mark_proxy * self.contract_size
        leverage = notional / np.maximum(equity, 1e-12)
        rank = (upnl[candidates] / np.maximum(cost, 1e-12)) * leverage
        order = candidates[np.lexsort((candidates, -rank))]
        taken = 0
        for other in order.tolist():
            if taken >= quantity:
                break
            lots = min(quantity - taken, abs(int(self.position[other])))
            price = self.bankruptcy_price(account)
            if sign > 0:
                self._trade(other, account, lots, price)
            else:
                self._trade(account, other, lots, price)
            taken += lots
        return taken

    def _socialise(self, shortfall: float, mark: float) -> None:
        """Spread what the fund cannot pay over accounts in profit, pro rata to profit."""
        n = self.n_accounts
        upnl = self.position[:n] * (mark - self.entry_price[:n]) * self.contract_size
        equity = self.collateral[:n] + upnl
        profit = np.where((upnl > 0) & (equity > 0), np.minimum(upnl, equity), 0.0)
        profit[ENGINE] = 0.0
        total = float(profit.sum())
        if total <= 0.0:
            return  # nobody to charge: the fund stays negative (recorded as bad debt)
        charged = min(shortfall, total)
        charge = profit * (charged / total)
        self.collateral[:n] -= charge
        self.collateral[ENGINE] += charged
        self.total_socialised += charged
        self.step_socialised += charged

    def _unwind_engine(self, step: int, round_index: int) -> None:
        """Sell the engine's inventory back into the book, once a step (subject to the speed limit)."""
        inventory = int(self.position[ENGINE])
        if inventory == 0:
            return
        side = SELL if inventory > 0 else BUY
        quantity = abs(inventory)
        if self.liquidation.max_lots_per_round:
            quantity = min(quantity, self.liquidation.max_lots_per_round)
        # The backstop does not dump: it sells only what the book holds within a band of the touch.
        best = self.book.best_bid() if side == SELL else self.book.best_ask()
        if best is None:
            return
        band = max(1, int(best * ENGINE_UNWIND_BAND))
        limit = best - band if side == SELL else best + band
        fills = self.book.submit_market(ENGINE, side, quantity, limit_price=max(1, limit))
        self.settle(fills, step, round_index, is_liquidation=True)

    # ------------------------------------------------------------------ invariants

    def money_total(self, mark: float) -> float:
        """Sum of all account equity (collateral + unrealised PnL) at ``mark``."""
        return float(np.sum(self.equity(mark)))

    def check_invariants(self, step: int, mark: float) -> None:
        """Raise InvariantError on a non-finite ledger, positions not netting to zero or money not conserved.

        The checks and their tolerance are those of :func:`abm.invariants.check_clearing`.
        """
        from abm.invariants import check_clearing  # abm.invariants imports this module

        check_clearing(self, step, mark)

    def reset_step_counters(self) -> None:
        """Zero the per-step counters the recorder reads."""
        self.step_volume = 0
        self.step_liquidations = 0
        self.step_liquidated_notional = 0.0
        self.step_adl_volume = 0
        self.step_bad_debt = 0.0
        self.step_socialised = 0.0
        self.step_rounds = 0
