"""What the ledger answers without changing: positions, open interest, equity at marks, bankruptcy prices.

:class:`LedgerViews` is a base class of :class:`abm.ledger.Ledger` and holds no state of its own: it
reads the ledger's arrays (``_position``, ``_entry_price``, ``_collateral``: accounts x instruments,
laid out in :mod:`abm.ledger`'s docstring) and its per-instrument counters.
"""

from __future__ import annotations

import numpy as np

__all__ = ["LedgerViews"]


class LedgerViews:
    """Positions and money of the ledger's accounts, read one at a time or vectorised over all."""

    __slots__ = ()

    # ------------------------------------------------------------------ one account, one instrument

    @property
    def open_interest(self) -> tuple[int, ...]:
        """Lots held long in each instrument."""
        return tuple(self._open_interest)

    def open_interest_of(self, instrument: int) -> int:
        """Lots held long in one instrument."""
        return self._open_interest[instrument]

    def step_volume(self, instrument: int) -> int:
        """Lots traded in one instrument since :meth:`begin_step`."""
        return self._step_volume[instrument]

    def position_of(self, account: int, instrument: int = 0) -> int:
        """One account's position in one instrument (lots)."""
        return self._position.item(account, instrument)

    def entry_of(self, account: int, instrument: int = 0) -> float:
        """One account's average entry price in one instrument."""
        return self._entry_price.item(account, instrument)

    def collateral_of(self, account: int) -> float:
        """One account's collateral."""
        return self._collateral.item(account)

    # ------------------------------------------------------------------ marking

    def unrealised(self, marks) -> np.ndarray:
        """Unrealised PnL of every position at ``marks`` (one per instrument): ``(accounts, instruments)``."""
        n = self.n_accounts
        return (
            self._position[:n]
            * (np.asarray(marks, dtype=np.float64) - self._entry_price[:n])
            * self.contract_sizes
        )

    def equity(self, marks) -> np.ndarray:
        """Equity of every account at ``marks`` (one per instrument), vectorised."""
        n = self.n_accounts
        if self.n_instruments == 1:
            mark = marks[0]
            return (
                self._collateral[:n]
                + self._position[:n, 0] * (mark - self._entry_price[:n, 0]) * self._contract[0]
            )
        # A product with the contract sizes: numpy's reduction along a short row is several times slower.
        pnl = np.asarray(marks, dtype=np.float64) - self._entry_price[:n]
        pnl *= self._position[:n]
        return self._collateral[:n] + pnl @ self.contract_sizes

    def held_instruments(self, account: int) -> list[int]:
        """The instruments in which an account holds a position, in column order."""
        row = self._position[account]
        return [column for column in range(self.n_instruments) if row.item(column)]

    def account_equity(self, account: int, marks) -> float:
        """Equity of one account at ``marks``."""
        equity = self._collateral.item(account)
        position = self._position
        entry = self._entry_price
        for instrument in range(self.n_instruments):
            lots = position.item(account, instrument)
            if lots:
                equity += (
                    lots * (marks[instrument] - entry.item(account, instrument)) * self._contract[instrument]
                )
        return float(equity)

    def money_total(self, marks) -> float:
        """Sum of all account equity (collateral + unrealised PnL) at ``marks``."""
        return float(np.sum(self.equity(marks)))

    def bankruptcy_price(self, account: int, instrument: int, marks) -> float:
        """Price of ``instrument`` at which the account's equity is zero, its other positions at ``marks``."""
        position = self._position.item(account, instrument)
        cushion = self._collateral.item(account)
        for other in range(self.n_instruments):
            lots = self._position.item(account, other)
            if other != instrument and lots:
                cushion += (
                    lots * (marks[other] - self._entry_price.item(account, other)) * self._contract[other]
                )
        return float(
            self._entry_price.item(account, instrument) - cushion / (position * self._contract[instrument])
        )
