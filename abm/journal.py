"""The money journal: one row per movement of money into, out of or between accounts.

Every change of an account's collateral is written here as it is booked, with its kind, so that an
account's collateral at any moment is the sum of its rows up to then (its opening balance included),
the insurance fund's too, and every money figure of a run (fees, payouts, socialised losses) can be
derived from the table and audited account by account. The ledger (:mod:`abm.ledger`) writes it; the
run's ``ledger`` table (:data:`abm.tables.LEDGER`) is its frame.

Kinds (``JOURNAL_KINDS``, one code each):

- ``opening``: an account's collateral when it was opened;
- ``trade_pnl``: PnL realised by a fill of an ordinary order (the counterparty is the other side);
- ``liquidation_pnl``: PnL realised by a liquidation order's fill, or the engine's unwinding;
- ``takeover``: PnL realised when the engine takes a position over at the bankruptcy price;
- ``adl``: PnL realised by an auto-deleveraging close, on both sides;
- ``fee``: a liquidation fee (negative for the account, positive for the fund);
- ``leftover``: what a fully liquidated account had left, to the fund (``liquidation.leftover: fund``);
- ``fund_payout``: the fund covering a closed account's deficit;
- ``socialised_loss``: a charge on an account in profit, and its credit to the fund;
- ``dust``: rounding dust of a transfer at the bankruptcy price, to the fund;
- ``deposit``, ``withdrawal``: outside money in or out (counterparty -1);
- ``revaluation``: a collateral haircut (outside, counterparty -1);
- ``funding``: a funding payment (counterparty -1: funding nets to zero over all accounts);
- ``auction``: PnL realised when a defaulter's position is auctioned to members (``design: ccp``);
- ``default_fund``, ``ccp_capital``, ``assessment``: a defaulter's deficit covered by the default
  fund (its own contribution first), the clearing house's capital, or assessments on survivors.

Example:
    >>> journal = MoneyJournal()
    >>> journal.add(0, -1, 1, -1, -1, "opening", 100.0)
    >>> journal.add_many(3, 0, np.array([1, 2]), 0, 0, "socialised_loss", np.array([-2.5, -1.0]))
    >>> table = journal.frame(["PERP"])
    >>> table["kind"].tolist(), table["amount"].tolist()
    (['opening', 'socialised_loss', 'socialised_loss'], [100.0, -2.5, -1.0])
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["JOURNAL_KINDS", "KIND_CODE", "MoneyJournal", "money_figures"]

JOURNAL_KINDS: tuple[str, ...] = (
    "opening",
    "trade_pnl",
    "liquidation_pnl",
    "takeover",
    "adl",
    "fee",
    "leftover",
    "fund_payout",
    "socialised_loss",
    "dust",
    "deposit",
    "withdrawal",
    "revaluation",
    "funding",
    "auction",
    "default_fund",
    "ccp_capital",
    "assessment",
)
KIND_CODE: dict[str, int] = {name: code for code, name in enumerate(JOURNAL_KINDS)}
_FIELDS = ("step", "round", "account_id", "counterparty_id", "instrument", "kind", "amount")
_DTYPES = (np.int64, np.int64, np.int64, np.int64, np.int64, np.int64, np.float64)


class MoneyJournal:
    """Rows appended as money moves: scalars one at a time, vectorised movements as arrays."""

    def __init__(self) -> None:
        self._rows: list[tuple] = []  # single movements since the last vectorised one
        self._chunks: list[tuple[np.ndarray, ...]] = []  # earlier rows, in order

    def __len__(self) -> int:
        return len(self._rows) + sum(len(chunk[0]) for chunk in self._chunks)

    def add(
        self, step: int, round_index: int, account: int, counterparty: int, instrument: int, kind: str, amount
    ) -> None:
        """One movement of ``amount`` into ``account`` (negative: out of it)."""
        self._rows.append((step, round_index, account, counterparty, instrument, KIND_CODE[kind], amount))

    def add_code(
        self, step: int, round_index: int, account: int, counterparty: int, instrument: int, code: int, amount
    ) -> None:
        """:meth:`add` with the kind as its code (the ledger's hot path)."""
        self._rows.append((step, round_index, account, counterparty, instrument, code, amount))

    def add_many(
        self,
        step: int,
        round_index: int,
        accounts: np.ndarray,
        counterparty: int | np.ndarray,
        instrument: int,
        kind: str,
        amounts: np.ndarray,
    ) -> None:
        """Movements of ``amounts[i]`` into ``accounts[i]``, all of one kind, in one go."""
        self._flush()
        count = len(accounts)
        if count == 0:
            return
        full = lambda value: np.broadcast_to(np.asarray(value, dtype=np.int64), (count,))  # noqa: E731
        self._chunks.append(
            (
                full(step).copy(),
                full(round_index).copy(),
                np.asarray(accounts, dtype=np.int64).copy(),
                full(counterparty).copy(),
                full(instrument).copy(),
                full(KIND_CODE[kind]).copy(),
                np.asarray(amounts, dtype=np.float64).copy(),
            )
        )

    def _flush(self) -> None:
        if self._rows:
            columns = list(zip(*self._rows, strict=True))
            self._chunks.append(
                tuple(np.array(values, dtype=dtype) for values, dtype in zip(columns, _DTYPES, strict=True))
            )
            self._rows = []

    def columns(self) -> dict[str, np.ndarray]:
        """Every row so far, as one array per field, in the order booked."""
        self._flush()
        if not self._chunks:
            return {name: np.zeros(0, dtype=dtype) for name, dtype in zip(_FIELDS, _DTYPES, strict=True)}
        if len(self._chunks) > 1:
            self._chunks = [tuple(np.concatenate(parts) for parts in zip(*self._chunks, strict=True))]
        return dict(zip(_FIELDS, self._chunks[0], strict=True))

    def frame(self, instrument_names: Sequence[str]) -> pd.DataFrame:
        """The journal as the run's ``ledger`` table: kinds and instruments by name ('' for none)."""
        data = self.columns()
        names = np.array([*instrument_names, ""], dtype=object)  # -1 (no instrument) reads as ''
        kinds = np.array(JOURNAL_KINDS, dtype=object)
        return pd.DataFrame(
            {
                "step": data["step"],
                "round": data["round"],
                "account_id": data["account_id"],
                "counterparty_id": data["counterparty_id"],
                "instrument": names[data["instrument"]],
                "kind": kinds[data["kind"]],
                "amount": data["amount"],
            }
        )


def money_figures(journal: pd.DataFrame, fund: int = 0) -> dict[str, float]:
    """The run's money figures, derived from its journal (the ``ledger`` table).

    Args:
        journal: The journal frame.
        fund: The insurance fund's account id.

    Returns:
        ``liquidation_fees`` (fees into the fund), ``fund_payouts`` (deficits the fund covered),
        ``socialised_loss`` (charged to accounts in profit), ``leftover_to_fund``, ``net_deposits``
        (deposits less withdrawals), ``revaluation`` (haircuts, negative), and under a clearing
        house's waterfall ``default_fund_used``, ``ccp_capital_used`` and ``assessments``.
    """
    kind, amount, account = journal["kind"], journal["amount"], journal["account_id"]

    def total(mask) -> float:
        return float(amount[mask].sum()) + 0.0  # + 0.0: no "-0" when nothing moved

    to_fund = account == fund
    return {
        "liquidation_fees": total((kind == "fee") & to_fund),
        "fund_payouts": 0.0 - total((kind == "fund_payout") & to_fund),
        "socialised_loss": 0.0 - total((kind == "socialised_loss") & ~to_fund),
        "leftover_to_fund": total((kind == "leftover") & to_fund),
        "net_deposits": total(kind.isin(["deposit", "withdrawal"])),
        "revaluation": total(kind == "revaluation"),
        "default_fund_used": total((kind == "default_fund") & (amount > 0)),
        "ccp_capital_used": total((kind == "ccp_capital") & (amount > 0)),
        "assessments": total((kind == "assessment") & (amount > 0)),
    }
