"""Run-time invariants of the ledger and the book, and the money breakdown behind them.

Money is kept in float64 (see ``docs/accounting.md`` for why not integer units). Every transfer in
:mod:`abm.ledger` books the same amount on both sides (a trade at one price on buyer and seller; a fee,
bad debt or socialised loss out of one account into the fund or back), so money can only leave or enter
the system through deposits, withdrawals and revaluations (haircuts), which are counted. The identity
checked after every step is therefore::

    sum over all accounts of (collateral + unrealised PnL)       # traders, makers, ..., and the
                                                                  # insurance fund (engine collateral)
        == initial money + net deposits (deposits - withdrawals) + revaluation

Fees, bad debt and socialised losses are flows *inside* that total (account -> fund, fund -> account,
profitable accounts -> fund); :class:`MoneyBreakdown` reports them beside the balance so a breach can be
read off.

Tolerance, and why: the only permitted difference is float64 rounding. Each booking rounds at most half
an ulp of the balance it writes (unit roundoff ``u = 2**-53``), and no balance or notional is larger than
the gross scale ``G = sum |collateral| + sum over positions |position| x (mark + |entry|) x contract
size + |initial money| + |deposits| + |revaluation|``, except the notional of what was traded within a
step and closed again (an averaged entry price is rounded, and the error comes back as realised PnL
when the position closes, whatever is left at the end of the step). So the ledger also counts the
money its bookings moved or re-priced, ``F`` (:attr:`abm.ledger.Ledger.flow_volume`: per trade
``|lots| x (price + |entry|) x contract size``, per transfer its amount). After ``B`` bookings the
error is at most about ``4 u B G + 4 u F``; sums here are taken with :func:`math.fsum`, so summing adds
nothing. The check allows ``G x max(1e-12, 4 u B) + 4 u F``: far below a cent for any run of
realistic size, and measured differences are about ``1e-16 G``.

Invariant names (``InvariantError.invariant``): ``zero_sum`` (in every instrument, positions, the
engine's inventory included, net to 0), ``conservation`` (the identity above), ``finite`` (no NaN/inf in
the ledger), ``flat_entry`` (a flat account has entry price 0), ``open_interest`` (the ledger's running
count of long lots equals the long positions, per instrument), ``book_crossed`` and ``book_structure`` (see
:meth:`abm.book.Book.check_invariants`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from abm.book import Book
from abm.errors import InvariantError
from abm.ledger import ENGINE, KIND_CODES, KIND_NAMES, Ledger

__all__ = [
    "CONSERVATION_FLOOR",
    "UNIT_ROUNDOFF",
    "InvariantChecker",
    "MoneyBreakdown",
    "check_book",
    "check_ledger",
    "money_breakdown",
]

UNIT_ROUNDOFF = 2.0**-53
# Smallest relative tolerance: about 9,000 worst-case roundings of the gross scale.
CONSERVATION_FLOOR = 1e-12
_MAX_LISTED = 10  # accounts named in a message


@dataclass(frozen=True)
class MoneyBreakdown:
    """Where the money in the ledger is, and what it must add up to.

    Attributes:
        collateral_by_kind: Collateral (cash incl. realised PnL) per agent kind, the engine left out.
        insurance_fund: The engine's collateral.
        unrealised_pnl: Sum of ``position x (mark - entry) x contract_size`` over all accounts.
        held: Everything the accounts hold: collateral of all kinds + fund + unrealised PnL.
        initial_money: Collateral the accounts opened with (the fund's included).
        net_deposits: Deposits minus withdrawals (outside money in).
        revaluation: Outside changes in the value of collateral (haircuts, negative).
        expected: ``initial_money + net_deposits + revaluation``.
        fees_collected: Liquidation fees moved into the fund so far (a flow inside ``held``).
        bad_debt: Bad debt paid by the fund so far (a flow inside ``held``).
        socialised_loss: Losses charged to profitable accounts so far (a flow inside ``held``).
        gross_scale: The scale ``G`` of the rounding bound (module docstring).
        bookings: Float bookings made so far (``B`` in the bound).
        flow_volume: Money moved or re-priced by those bookings (``F`` in the bound).
        tolerance: The allowed ``|held - expected|``.
    """

    collateral_by_kind: dict[str, float]
    insurance_fund: float
    unrealised_pnl: float
    held: float
    initial_money: float
    net_deposits: float
    revaluation: float
    expected: float
    fees_collected: float
    bad_debt: float
    socialised_loss: float
    gross_scale: float
    bookings: int
    flow_volume: float = 0.0
    tolerance: float = field(default=0.0)

    @property
    def difference(self) -> float:
        """``held - expected``: zero up to rounding in a sound ledger."""
        return self.held - self.expected

    @property
    def balanced(self) -> bool:
        """Whether the difference is within the tolerance."""
        return abs(self.difference) <= self.tolerance

    def as_dict(self) -> dict[str, object]:
        """Plain dict of every field plus ``difference`` and ``balanced`` (for JSON and messages)."""
        data = asdict(self)
        data["difference"] = self.difference
        data["balanced"] = self.balanced
        return data


def _fsum(values: np.ndarray) -> float:
    return math.fsum(values.tolist())


def money_breakdown(ledger: Ledger, marks, gross_floor: float = 0.0) -> MoneyBreakdown:
    """Break the ledger's money down by holder and compare it with what came in.

    Args:
        ledger: The ledger.
        marks: Mark prices (one per instrument) used for unrealised PnL.
        gross_floor: A lower bound on the gross scale (the largest seen earlier in the run), so that the
            tolerance does not shrink when balances do.

    Returns:
        The breakdown, with its tolerance set.
    """
    n = ledger.n_accounts
    marks = np.asarray(marks, dtype=np.float64)
    collateral = ledger.collateral
    position = ledger.position
    entry = ledger.entry_price
    size = ledger.contract_sizes
    unrealised = ledger.unrealised(marks)
    by_kind: dict[str, float] = {}
    kinds = ledger.kind
    for code in np.unique(kinds).tolist():
        if code == KIND_CODES["liquidation_engine"]:
            continue
        mask = kinds == code
        mask[ENGINE] = False
        by_kind[KIND_NAMES[int(code)]] = _fsum(collateral[mask])
    fund = float(collateral[ENGINE])
    held = math.fsum([_fsum(collateral), _fsum(unrealised.ravel())])
    initial = float(ledger.initial_money)
    deposits = float(ledger.total_deposits)
    revaluation = float(ledger.total_revaluation)
    expected = math.fsum([initial, deposits, revaluation])
    gross = math.fsum(
        [
            _fsum(np.abs(collateral)),
            _fsum((np.abs(position) * (np.abs(marks) + np.abs(entry)) * size).ravel()),
            abs(initial),
            _fsum(np.abs(ledger.deposits)),
            abs(revaluation),
        ]
    )
    gross = max(gross, gross_floor)
    bookings = int(ledger.bookings) + n
    flows = float(ledger.flow_volume)
    tolerance = gross * max(CONSERVATION_FLOOR, 4.0 * UNIT_ROUNDOFF * bookings) + 4.0 * UNIT_ROUNDOFF * flows
    return MoneyBreakdown(
        collateral_by_kind=by_kind,
        insurance_fund=fund,
        unrealised_pnl=_fsum(unrealised.ravel()),
        held=held,
        initial_money=initial,
        net_deposits=deposits,
        revaluation=revaluation,
        expected=expected,
        fees_collected=float(ledger.total_fees),
        bad_debt=float(ledger.total_bad_debt),
        socialised_loss=float(ledger.total_socialised),
        gross_scale=gross,
        bookings=bookings,
        flow_volume=flows,
        tolerance=tolerance,
    )


def _listed(accounts: Sequence[int]) -> str:
    accounts = list(accounts)
    more = f" and {len(accounts) - _MAX_LISTED} more" if len(accounts) > _MAX_LISTED else ""
    return f"{accounts[:_MAX_LISTED]}{more}"


def check_ledger(
    ledger: Ledger,
    step: int,
    marks,
    *,
    suspects: Callable[[], list[int]] | None = None,
    gross_floor: float = 0.0,
) -> MoneyBreakdown:
    """Check the ledger invariants; raise :class:`InvariantError` on the first breach.

    Args:
        ledger: The ledger.
        step: Step number for the message.
        marks: Current mark prices, one per instrument.
        suspects: Called on a breach for the accounts changed since the last passing check, largest
            change first, to name in the message (without it: the accounts holding positions for
            ``zero_sum``, the largest by equity for ``conservation``).
        gross_floor: See :func:`money_breakdown`.

    Returns:
        The money breakdown (balanced).

    Raises:
        InvariantError: With ``step``, ``invariant`` and ``accounts`` set.
    """
    collateral = ledger.collateral
    position = ledger.position
    entry = ledger.entry_price
    names = [instrument.name for instrument in ledger.instruments]
    bad = np.flatnonzero(~np.isfinite(collateral) | ~np.isfinite(entry).all(axis=1)).tolist()
    if bad:
        raise InvariantError(
            f"step {step}: non-finite collateral or entry price (invariant finite; accounts {_listed(bad)})",
            step=step,
            invariant="finite",
            accounts=bad,
        )
    for column, name in enumerate(names):
        held = position[:, column]
        net = int(held.sum())
        if net != 0:
            accounts = suspects() if suspects else np.flatnonzero(held).tolist()
            raise InvariantError(
                f"step {step}: positions in {name} sum to {net}, not 0, the engine's inventory "
                f"{int(held[ENGINE])} included (invariant zero_sum; accounts {_listed(accounts)})",
                step=step,
                invariant="zero_sum",
                accounts=accounts,
            )
        held_long = int(held[held > 0].sum())
        if ledger.open_interest_of(column) != held_long:
            longs = np.flatnonzero(held > 0).tolist()
            counted = ledger.open_interest_of(column)
            raise InvariantError(
                f"step {step}: the ledger's open interest in {name} is {counted} lots but the long "
                f"positions sum to {held_long} (invariant open_interest; accounts {_listed(longs)})",
                step=step,
                invariant="open_interest",
                accounts=longs,
            )
    stale = np.flatnonzero(((position == 0) & (entry != 0.0)).any(axis=1)).tolist()
    if stale:
        raise InvariantError(
            f"step {step}: flat positions keep an entry price "
            f"(invariant flat_entry; accounts {_listed(stale)})",
            step=step,
            invariant="flat_entry",
            accounts=stale,
        )
    breakdown = money_breakdown(ledger, marks, gross_floor)
    if not breakdown.balanced:
        if suspects:
            accounts, label = suspects(), "changed since the last check"
        else:
            equity = ledger.equity(np.asarray(marks, dtype=np.float64))
            accounts, label = np.argsort(-np.abs(equity), kind="stable").tolist(), "largest by equity"
        raise InvariantError(
            f"step {step}: money not conserved (invariant conservation): accounts hold {breakdown.held:.10g} "
            f"(fund {breakdown.insurance_fund:.10g}, unrealised PnL {breakdown.unrealised_pnl:.10g}), "
            f"expected {breakdown.expected:.10g} = initial {breakdown.initial_money:.10g} + net deposits "
            f"{breakdown.net_deposits:.10g} + revaluation {breakdown.revaluation:.10g}; difference "
            f"{breakdown.difference:.3g} > tolerance {breakdown.tolerance:.3g} "
            f"(accounts {label}: {_listed(accounts)})",
            step=step,
            invariant="conservation",
            accounts=accounts,
        )
    return breakdown


def check_book(book: Book, step: int) -> None:
    """Check the book: not crossed, and its internal structure (levels, priority, indexes).

    Args:
        book: The order book.
        step: Step number for the message.

    Raises:
        InvariantError: ``book_crossed`` (accounts: the owners at the best bid and ask) or
            ``book_structure``.
    """
    bid, ask = book.best_bid(), book.best_ask()
    if bid is not None and ask is not None and bid >= ask:
        owners = sorted(
            {book.order(i)[0] for i in book.orders_at(1, bid)}
            | {book.order(i)[0] for i in book.orders_at(-1, ask)}
        )
        raise InvariantError(
            f"step {step}: book crossed, best bid {bid} >= best ask {ask} ticks "
            f"(invariant book_crossed; accounts {_listed(owners)})",
            step=step,
            invariant="book_crossed",
            accounts=owners,
        )
    try:
        book.check_invariants()
    except AssertionError as exc:
        raise InvariantError(
            f"step {step}: order book inconsistent: {exc} (invariant book_structure)",
            step=step,
            invariant="book_structure",
        ) from None


class InvariantChecker:
    """Checks ledger and book after every step and names the accounts changed in a breaching step.

    It keeps a copy of the ledger from the last passing check, so that a breach names the accounts whose
    collateral, position or entry price changed since (largest collateral change first), and the largest
    gross scale seen, so the tolerance never shrinks.

    Args:
        ledger: The ledger.
        books: The order books, one per instrument (empty: ledger only).
        book_structure: Also run the full O(book size) structural check of each book.
    """

    def __init__(self, ledger: Ledger, books: Sequence[Book] = (), *, book_structure: bool = True) -> None:
        self.ledger = ledger
        self.books = list(books)
        self.book_structure = book_structure
        self.checks = 0
        self.gross_scale = 0.0
        self._snapshot()

    def _snapshot(self) -> None:
        self._collateral = self.ledger.collateral.copy()
        self._position = self.ledger.position.copy()
        self._entry = self.ledger.entry_price.copy()

    def changed_accounts(self) -> list[int]:
        """Accounts whose ledger entries changed since the last passing check, largest change first."""
        ledger = self.ledger
        n = ledger.n_accounts
        old = len(self._collateral)
        delta = np.zeros(n)
        changed = np.zeros(n, dtype=bool)
        changed[old:] = True  # opened since
        delta[old:] = np.abs(ledger.collateral[old:n])
        delta[:old] = np.abs(ledger.collateral[:old] - self._collateral)
        changed[:old] = (
            (delta[:old] != 0.0)
            | (ledger.position[:old] != self._position).any(axis=1)
            | (ledger.entry_price[:old] != self._entry).any(axis=1)
        )
        accounts = np.flatnonzero(changed)
        return accounts[np.argsort(-delta[accounts], kind="stable")].tolist()

    def check(self, step: int, marks) -> MoneyBreakdown:
        """Check every invariant after a step; raise :class:`InvariantError` on the first breach.

        Args:
            step: The step just finished.
            marks: The mark prices at its end, one per instrument.

        Returns:
            The (balanced) money breakdown.
        """
        breakdown = check_ledger(
            self.ledger, step, marks, suspects=self.changed_accounts, gross_floor=self.gross_scale
        )
        for book in self.books:
            if self.book_structure:
                check_book(book, step)
            else:
                bid, ask = book.best_bid(), book.best_ask()
                if bid is not None and ask is not None and bid >= ask:
                    check_book(book, step)
        self.gross_scale = max(self.gross_scale, breakdown.gross_scale)
        self.checks += 1
        self._snapshot()
        return breakdown
