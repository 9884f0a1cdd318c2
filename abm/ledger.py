"""The ledger: every account's money and positions, in accounts x instruments numpy arrays.

One row per account, one column per instrument: ``position`` (signed integer lots) and ``entry_price``
(average entry, price units) are ``(accounts, instruments)``; ``collateral`` (cash, realised PnL
included) is one balance per account. Account 0 is the liquidation engine: its collateral *is* the
insurance fund and its positions are the inventory it took over from liquidations the book could not
absorb.

Nothing outside this module writes the arrays: the attributes are read-only views, and every change
is a named operation (:meth:`Ledger.trade`, :meth:`Ledger.settle`, :meth:`Ledger.deposit`,
:meth:`Ledger.pay_fee`, ...). Every operation books the same amount on both sides, so money only enters
or leaves through deposits, withdrawals and revaluations, which are counted (the conservation
invariant of :mod:`abm.invariants`). The reads (an account's position, equity at marks, bankruptcy
prices) are in :mod:`abm.ledger_views`, a base class of :class:`Ledger`.

Money convention, per account ``a``::

    equity[a] = collateral[a] + sum_i position[a, i] * (mark[i] - entry_price[a, i]) * contract_size[i]

A trade settles both sides at one price, so ``sum(collateral) + sum(unrealised PnL)`` changes only by
deposits, withdrawals and revaluations, and ``sum(position[:, i]) == 0`` for every instrument.

Example:
    >>> ledger = Ledger([Instrument("X", tick_size=1.0, contract_size=1.0)])
    >>> a, b = ledger.add_accounts(2, 1000.0, "noise").tolist()
    >>> ledger.trade(a, b, 0, 10, 100.0)          # a buys 10 lots of X from b at 100
    >>> ledger.trade(b, a, 0, 4, 110.0)           # a sells 4 back at 110: realises 4 x 10
    >>> ledger.position_of(a, 0), ledger.collateral[a].item(), ledger.equity([105.0]).tolist()[1:]
    (6, 1040.0, [1070.0, 930.0])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from abm.book.protocol import BUY
from abm.config.agents import AGENT_KINDS
from abm.journal import KIND_CODE, MoneyJournal
from abm.ledger_views import LedgerViews

__all__ = [
    "ACCOUNT_KINDS",
    "ENGINE",
    "KIND_CODES",
    "KIND_NAMES",
    "MARGIN_MODES",
    "SYSTEM_KINDS",
    "Instrument",
    "Ledger",
    "TradeLog",
]

ENGINE = 0
# Accounts that belong to no agent group: the engine (the insurance fund), the fully funded
# counterparty of initial positions, and the outside party of exogenous order programs.
SYSTEM_KINDS = (
    "liquidation_engine",
    "counterparty",
    "exogenous",
    "default_fund",
    "ccp_capital",
    "backstop_vault",
)
ACCOUNT_KINDS: tuple[str, ...] = (SYSTEM_KINDS[0], *AGENT_KINDS, *SYSTEM_KINDS[1:])
KIND_CODES: dict[str, int] = {name: code for code, name in enumerate(ACCOUNT_KINDS)}
KIND_NAMES: tuple[str, ...] = ACCOUNT_KINDS
# How an account is margined (its code is the index). An isolated position is an account of its own
# holding that position alone, so the check treats it like a cross account; portfolio accounts meet
# the portfolio rule's requirement instead of the sum of their positions'.
MARGIN_MODES = ("cross", "isolated", "portfolio")

# Arrays with one row per account, grown together (name, dtype, columns: 1 or one per instrument).
_ACCOUNT_ARRAYS = (
    ("collateral", np.float64, False),
    ("position", np.int64, True),
    ("entry_price", np.float64, True),
    ("deposits", np.float64, False),
    ("initial_collateral", np.float64, False),
    ("kind", np.int8, False),
    ("liquidated", np.int32, False),
    ("checked", np.bool_, False),
    ("margin_called", np.bool_, False),
    ("margin_mode", np.int8, False),
    ("reduce_only", np.bool_, False),
)


@dataclass(frozen=True)
class Instrument:
    """What the ledger needs of a traded instrument.

    Attributes:
        name: The instrument's name (the ``instrument`` column of the tables).
        tick_size: Price of one tick (book prices are integer ticks).
        contract_size: Units of underlying per lot.
    """

    name: str
    tick_size: float
    contract_size: float


class TradeLog:
    """Every fill, columnar: lists appended per fill, turned into a table at the end of the run."""

    __slots__ = (
        "step",
        "round",
        "instrument",
        "price",
        "quantity",
        "taker",
        "maker",
        "side",
        "is_liquidation",
    )

    def __init__(self) -> None:
        self.step: list[int] = []
        self.round: list[int] = []
        self.instrument: list[int] = []
        self.price: list[float] = []
        self.quantity: list[int] = []
        self.taker: list[int] = []
        self.maker: list[int] = []
        self.side: list[int] = []
        self.is_liquidation: list[bool] = []

    def __len__(self) -> int:
        return len(self.step)


class Ledger(LedgerViews):
    """Accounts x instruments: settlement of fills, money movements, and the views every reader uses.

    Args:
        instruments: The traded instruments, in column order.
        insurance_fund: The insurance fund: the collateral of account 0, the liquidation engine, which
            the ledger opens first.
        capacity: Initial number of account rows (grows as accounts are added).
    """

    def __init__(
        self, instruments: Sequence[Instrument], insurance_fund: float = 0.0, capacity: int = 64
    ) -> None:
        self.instruments = tuple(instruments)
        if not self.instruments:
            raise ValueError("a ledger needs at least one instrument")
        self.n_instruments = len(self.instruments)
        # Python floats for the per-fill arithmetic, an array for the vectorised passes.
        self._contract = [float(item.contract_size) for item in self.instruments]
        self._tick = [float(item.tick_size) for item in self.instruments]
        self.contract_sizes = np.array(self._contract)
        self.contract_sizes.flags.writeable = False
        self.n_accounts = 0
        for name, dtype, per_instrument in _ACCOUNT_ARRAYS:
            shape = (capacity, self.n_instruments) if per_instrument else (capacity,)
            setattr(self, f"_{name}", np.zeros(shape, dtype=dtype))
        # Lots held long per instrument (= lots held short): kept as positions change, so that the
        # time series does not sum over every account every step. Checked by abm.invariants.
        self._open_interest = [0] * self.n_instruments
        self.trades = TradeLog()
        self.journal = MoneyJournal()
        # What the realised PnL of the next bookings is (a journal kind code) and the liquidation round
        # they belong to: set by settle() and, for takeovers and ADL, by the liquidator.
        self.pnl_kind = KIND_CODE["trade_pnl"]
        self.round = -1
        self.step = -1  # the current step, for the trade log (-1: before the first step)
        self._step_volume = [0] * self.n_instruments
        self.total_deposits = 0.0  # net of withdrawals
        # Outside changes in the value of collateral (haircuts; negative for a loss), counted in the
        # conservation invariant like a withdrawal, but apart from deposits: nobody took the money out.
        self.total_revaluation = 0.0
        self.total_funding = 0.0  # gross funding paid by the paying side
        self.total_fees = 0.0  # liquidation fees moved into the fund
        # Negative equity the fund took on, valued at the mark when it took it: deficits of closed
        # accounts it covered, and positions it took over above their worth (record_bad_debt).
        self.total_bad_debt = 0.0
        self.total_socialised = 0.0  # losses charged to accounts in profit
        self.bookings = 0  # float bookings so far: sets the rounding tolerance (abm.invariants)
        # Money moved or re-priced by those bookings, in absolute value (each trade's |lots| x (price +
        # |entry|) x contract size, each transfer's amount): rounding errors scale with it, not only with
        # the balances left at the end of a step (abm.invariants).
        self.flow_volume = 0.0
        self.initial_money = 0.0
        self._any_reduce_only = False  # whether some account is flagged reduce-only
        # One more with every operation that changes a position, an entry price, collateral, the
        # accounts, or the margin-check and margin-mode flags: while it and the marks stay the same, a
        # margin check made earlier is still the answer (MarginChecker reuses it).
        self.state_version = 0
        self._refresh_views()
        self.add_accounts(1, float(insurance_fund), SYSTEM_KINDS[0])

    # ------------------------------------------------------------------ read-only views

    def _refresh_views(self) -> None:
        # Views of the first n rows that nobody can write through; rebuilt when accounts are added.
        n = self.n_accounts
        for name, _, _ in _ACCOUNT_ARRAYS:
            view = getattr(self, f"_{name}")[:n]
            view.flags.writeable = False
            setattr(self, name, view)

    # ------------------------------------------------------------------ accounts

    def add_accounts(self, count: int, collateral: float | np.ndarray, kind: str) -> np.ndarray:
        """Open ``count`` accounts of an account kind with the given collateral; returns their ids."""
        self.state_version += 1
        start, stop = self.n_accounts, self.n_accounts + count
        if stop > len(self._collateral):
            self._grow(max(stop, 2 * len(self._collateral)))
        self._collateral[start:stop] = collateral
        self._initial_collateral[start:stop] = collateral
        self._kind[start:stop] = KIND_CODES[kind]
        # Every account but the engine is margin-checked unless told otherwise (set_checked).
        self._checked[start:stop] = kind != SYSTEM_KINDS[0]
        self.n_accounts = stop
        self.initial_money += float(np.sum(self._collateral[start:stop]))
        self._refresh_views()
        ids = np.arange(start, stop)
        self.journal.add_many(self.step, -1, ids, -1, -1, "opening", self._collateral[start:stop])
        return ids

    def _grow(self, capacity: int) -> None:
        for name, _, _ in _ACCOUNT_ARRAYS:
            old = getattr(self, f"_{name}")
            new = np.zeros((capacity, *old.shape[1:]), dtype=old.dtype)
            new[: len(old)] = old
            setattr(self, f"_{name}", new)

    def open_system_account(self, kind: str, collateral: float, *, checked: bool = False) -> int:
        """Open one account of a system kind (outside the margin check by default); returns its id."""
        account = int(self.add_accounts(1, collateral, kind)[0])
        self.set_checked(account, checked)
        return account

    def set_checked(self, accounts, checked: bool) -> None:
        """Include accounts in (or exclude them from) the margin check."""
        self.state_version += 1
        self._checked[accounts] = checked

    def set_margin_mode(self, accounts, mode: str) -> None:
        """Set how accounts are margined: one of :data:`MARGIN_MODES`."""
        self.state_version += 1
        self._margin_mode[accounts] = MARGIN_MODES.index(mode)

    # ------------------------------------------------------------------ margin-call flags

    def set_margin_calls(self, called: np.ndarray) -> None:
        """Flag the accounts inside the margin-call buffer (a mask over all accounts)."""
        self._margin_called[: self.n_accounts] = called

    def set_reduce_only(self, flagged: np.ndarray | None) -> None:
        """Flag the accounts that may only cut their positions (a mask over all accounts; None: none)."""
        if flagged is None:
            if self._any_reduce_only:  # the common case writes nothing
                self._reduce_only[: self.n_accounts] = False
                self._any_reduce_only = False
        else:
            self._reduce_only[: self.n_accounts] = flagged
            self._any_reduce_only = bool(flagged.any())

    def clear_margin_call(self, account: int) -> None:
        """The account has answered (or is told to ignore) its margin call."""
        self._margin_called[account] = False

    def count_liquidation(self, account: int) -> None:
        """Count one more liquidation of an account."""
        self._liquidated[account] += 1

    # ------------------------------------------------------------------ outside money

    def begin_step(self, step: int) -> None:
        """Start a step: fills are logged under it and the step's traded volume starts at 0."""
        self.step = step
        self._step_volume = [0] * self.n_instruments

    def deposit(self, account: int, amount: float) -> None:
        """Move ``amount`` of outside money into an account (a margin top-up)."""
        self.state_version += 1
        self._collateral[account] += amount
        self._deposits[account] += amount
        self.total_deposits += amount
        self.flow_volume += abs(amount)
        self.journal.add(self.step, self.round, account, -1, -1, "deposit", amount)

    def withdraw(self, account: int, amount: float) -> None:
        """Move ``amount`` out of an account to the outside (a negative deposit in ``deposits``)."""
        self.state_version += 1
        self._collateral[account] -= amount
        self._deposits[account] -= amount
        self.total_deposits -= amount
        self.flow_volume += abs(amount)
        self.journal.add(self.step, self.round, account, -1, -1, "withdrawal", -amount)

    def revalue_collateral(self, accounts: np.ndarray, fraction: float) -> float:
        """Cut the positive collateral of ``accounts`` by ``fraction`` (a haircut); returns the value lost.

        The loss is recorded in ``total_revaluation``, which the conservation invariant includes.
        """
        self.state_version += 1
        accounts = np.asarray(accounts, dtype=np.int64)
        loss = np.maximum(self._collateral[accounts], 0.0) * fraction
        self._collateral[accounts] -= loss
        self.journal.add_many(self.step, self.round, accounts, -1, -1, "revaluation", -loss)
        lost = float(loss.sum())
        self.total_revaluation -= lost
        self.flow_volume += lost
        return lost

    def revalue(self, accounts: np.ndarray, amounts: np.ndarray) -> float:
        """Change the collateral of ``accounts`` by ``amounts`` from outside (collateral re-priced).

        Recorded as ``revaluation`` in the journal and in ``total_revaluation``, which the conservation
        invariant includes; returns the net change.
        """
        self.state_version += 1
        accounts = np.asarray(accounts, dtype=np.int64)
        amounts = np.asarray(amounts, dtype=np.float64)
        self._collateral[accounts] += amounts
        self.journal.add_many(self.step, self.round, accounts, -1, -1, "revaluation", amounts)
        net = float(amounts.sum())
        self.total_revaluation += net
        self.flow_volume += float(np.abs(amounts).sum())
        return net

    def pay_funding(self, instrument: int, rate: float, mark: float) -> float:
        """Funding: every position pays ``rate x position x mark`` (longs pay shorts when rate > 0).

        Zero-sum because positions net to zero; returns the gross amount paid by the paying side.
        """
        self.state_version += 1
        n = self.n_accounts
        payment = self._position[:n, instrument] * (rate * mark * self._contract[instrument])
        self._collateral[:n] -= payment
        payers = np.flatnonzero(payment)
        self.journal.add_many(self.step, self.round, payers, -1, instrument, "funding", -payment[payers])
        paid = float(payment[payment > 0].sum())
        self.total_funding += paid
        self.flow_volume += float(np.abs(payment).sum())
        return paid

    # ------------------------------------------------------------------ transfers between accounts

    def pay_fee(self, payer: int, receiver: int, amount: float) -> None:
        """A liquidation fee from the liquidated account to the fund."""
        self.transfer(payer, receiver, amount, "fee")
        self.total_fees += amount

    def transfer(self, payer: int, receiver: int, amount: float, kind: str) -> None:
        """Move ``amount`` from one account to another, journalled as ``kind`` on both sides."""
        self.state_version += 1
        self._collateral[payer] -= amount
        self._collateral[receiver] += amount
        self.flow_volume += 2.0 * abs(amount)
        self.journal.add(self.step, self.round, payer, receiver, -1, kind, -amount)
        self.journal.add(self.step, self.round, receiver, payer, -1, kind, amount)

    def absorb_dust(self, account: int, receiver: int) -> None:
        """Move an account's rounding dust (a few ulps left by a transfer) to ``receiver``, leaving 0."""
        self.state_version += 1
        dust = self._collateral.item(account)
        self.flow_volume += 2.0 * abs(dust)
        self._collateral[receiver] += dust
        self._collateral[account] = 0.0
        self.journal.add(self.step, self.round, account, receiver, -1, "dust", -dust)
        self.journal.add(self.step, self.round, receiver, account, -1, "dust", dust)

    def cover_deficit(self, account: int, payer: int) -> float:
        """``payer`` (the fund) covers a closed account's negative collateral; returns it (bad debt)."""
        self.state_version += 1
        deficit = -float(self._collateral[account])
        self._collateral[account] = 0.0
        self._collateral[payer] -= deficit
        self.total_bad_debt += deficit
        self.flow_volume += 2.0 * abs(deficit)
        self.journal.add(self.step, self.round, account, payer, -1, "fund_payout", deficit)
        self.journal.add(self.step, self.round, payer, account, -1, "fund_payout", -deficit)
        return deficit

    def record_bad_debt(self, amount: float) -> None:
        """Count negative equity absorbed without a fund payout as bad debt.

        A position taken over by the fund worth less than its price (no money moves: the loss is in the
        fund's inventory, marked), or a deficit covered by a clearing house's default fund, capital or
        assessments (journalled as their own kinds).
        """
        self.total_bad_debt += amount

    def collect(self, accounts: np.ndarray, amounts: np.ndarray, receiver: int, kind: str) -> float:
        """Move ``amounts[i]`` from ``accounts[i]`` to ``receiver`` (assessments); returns the total."""
        self.state_version += 1
        accounts = np.asarray(accounts, dtype=np.int64)
        amounts = np.asarray(amounts, dtype=np.float64)
        self._collateral[accounts] -= amounts
        total = float(amounts.sum())
        self._collateral[receiver] += total
        self.flow_volume += 2.0 * float(np.abs(amounts).sum())
        self.journal.add_many(self.step, self.round, accounts, receiver, -1, kind, -amounts)
        self.journal.add(self.step, self.round, receiver, -1, -1, kind, total)
        return total

    def charge_pro_rata(self, charges: np.ndarray, receiver: int, total: float) -> None:
        """Charge every account ``charges[a]`` (one per account) and credit ``total`` to ``receiver``.

        ``total`` is the sum the charges were scaled to (a socialised loss); the receiver's own charge
        must be 0.
        """
        self.state_version += 1
        self._collateral[: self.n_accounts] -= charges
        self._collateral[receiver] += total
        charged = np.flatnonzero(charges)
        self.journal.add_many(
            self.step, self.round, charged, receiver, -1, "socialised_loss", -charges[charged]
        )
        self.journal.add(self.step, self.round, receiver, -1, -1, "socialised_loss", total)
        self.total_socialised += total
        self.flow_volume += float(np.abs(charges).sum()) + abs(total)

    # ------------------------------------------------------------------ positions

    def _apply(
        self, account: int, instrument: int, signed_quantity: int, price: float, counterparty: int
    ) -> None:
        """Move one account's position in one instrument by ``signed_quantity`` lots at ``price``."""
        self.state_version += 1
        # .item() reads give Python numbers: the same IEEE arithmetic as on numpy scalars, at a
        # fraction of the cost (this runs twice per fill).
        position = self._position
        entry = self._entry_price
        old = position.item(account, instrument)
        new = old + signed_quantity
        contract = self._contract[instrument]
        self.flow_volume += (
            abs(signed_quantity) * (abs(price) + abs(entry.item(account, instrument))) * contract
        )
        if old == 0 or (old > 0) == (signed_quantity > 0):
            # Increase: volume-weighted entry.
            entry[account, instrument] = (
                entry.item(account, instrument) * abs(old) + price * abs(signed_quantity)
            ) / abs(new)
        else:
            closed = min(abs(signed_quantity), abs(old))
            sign = 1 if old > 0 else -1
            realised = closed * (price - entry.item(account, instrument)) * sign * contract
            self._collateral[account] += realised
            self.journal.add_code(
                self.step, self.round, account, counterparty, instrument, self.pnl_kind, realised
            )
            if new == 0:
                entry[account, instrument] = 0.0
            elif (new > 0) != (old > 0):
                entry[account, instrument] = price  # flipped: the remainder opened at this price
        position[account, instrument] = new
        self._open_interest[instrument] += (new if new > 0 else 0) - (old if old > 0 else 0)
        self.bookings += 1

    def trade(self, buyer: int, seller: int, instrument: int, quantity: int, price: float) -> None:
        """Book a trade of ``quantity`` lots at ``price`` (price units) between two accounts."""
        self._apply(buyer, instrument, quantity, price, seller)
        self._apply(seller, instrument, -quantity, price, buyer)

    def open_position(
        self, account: int, instrument: int, quantity: int, price: float, counterparty: int
    ) -> None:
        """Book an initial position against a counterparty account at ``price`` (set-up only)."""
        if quantity > 0:
            self.trade(account, counterparty, instrument, quantity, price)
        elif quantity < 0:
            self.trade(counterparty, account, instrument, -quantity, price)

    def open_positions(
        self, accounts: np.ndarray, instrument: int, quantities: np.ndarray, price: float, counterparty: int
    ) -> None:
        """Book many initial positions at one price against one counterparty in one vectorised pass.

        The accounts must be flat in ``instrument``; the counterparty takes the opposite of their sum.
        (:meth:`open_position` books one at a time, with the counterparty's entry averaged trade by
        trade; this books the counterparty's net position at ``price`` at once.)
        """
        self.state_version += 1
        accounts = np.asarray(accounts, dtype=np.int64)
        quantities = np.asarray(quantities, dtype=np.int64)
        if (self._position[accounts, instrument] != 0).any():
            raise ValueError("open_positions needs accounts that are flat in the instrument")
        net = int(quantities.sum())
        self._position[accounts, instrument] = quantities
        self._entry_price[accounts, instrument] = np.where(quantities != 0, price, 0.0)
        self._open_interest[instrument] += int(quantities[quantities > 0].sum())
        self.bookings += len(accounts)
        self.flow_volume += float(np.abs(quantities).sum()) * abs(price) * float(self._contract[instrument])
        self._apply(counterparty, instrument, -net, price, -1)

    def settle(self, fills, instrument: int, round_index: int, is_liquidation: bool) -> tuple[int, float]:
        """Settle book fills on both sides and log them; returns (lots, sum of price x lots).

        Args:
            fills: The book's fills (prices in ticks).
            instrument: The instrument whose book they came from.
            round_index: Liquidation round (-1 for agent orders).
            is_liquidation: Whether the taker was a liquidation (or the engine unwinding).
        """
        tick = self._tick[instrument]
        log = self.trades
        step = self.step
        context = self.round, self.pnl_kind
        self.round = round_index
        self.pnl_kind = KIND_CODE["liquidation_pnl" if is_liquidation else "trade_pnl"]
        lots = 0
        value = 0.0
        for fill in fills:
            price = fill.price * tick
            quantity = fill.quantity
            if fill.taker_side == BUY:
                self.trade(fill.taker, fill.maker, instrument, quantity, price)
            else:
                self.trade(fill.maker, fill.taker, instrument, quantity, price)
            log.step.append(step)
            log.round.append(round_index)
            log.instrument.append(instrument)
            log.price.append(price)
            log.quantity.append(quantity)
            log.taker.append(fill.taker)
            log.maker.append(fill.maker)
            log.side.append(fill.taker_side)
            log.is_liquidation.append(is_liquidation)
            lots += quantity
            value += price * quantity
        self._step_volume[instrument] += lots
        self.round, self.pnl_kind = context
        return lots, value
