"""Run recorder: the per-step time series, collected as rows and turned into columns at the end.

Kept apart from the model logic: the model calls :meth:`RunRecorder.record_step` once at the end of
every step (step 8 of the step order) with the objects the figures come from, passed explicitly: the
markets, the ledger, the step's final margin check, the liquidator's totals and the margin policies.
The recorder keeps one row per step and instrument (the time series is in long form; account-wide
figures such as the insurance fund are the same on every instrument row of a step) and turns the rows
into a table at the end. Each instrument's margin policy's own figures (its ``state()``) become extra
columns prefixed ``margin_``.

For the figures of the stress the recorder also keeps the order book's depth profile per step
(:meth:`RunRecorder.record_depth`: resting lots in ``DEPTH_BUCKETS`` buckets each side of the mid,
each ``DEPTH_BUCKET_WIDTH`` of the mid wide, in a preallocated array) and snapshots of every account's
position, equity and leverage at chosen moments (:meth:`RunRecorder.snapshot_accounts`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from operator import itemgetter

import numpy as np
import pandas as pd

from abm.book import BUY
from abm.config.market import DEFAULT_INSTRUMENT
from abm.ledger import KIND_CODES, MARGIN_MODES
from abm.results import TIMESERIES_COLUMNS
from abm.tables import ACCOUNT_SNAPSHOTS, TIMESERIES

__all__ = ["DEPTH_BUCKETS", "DEPTH_BUCKET_WIDTH", "RunRecorder", "depth_bucket_columns"]

_DTYPES = {name: dtype for name, dtype in TIMESERIES.pandas_dtypes().items()}

# What np.sum and ndarray.sum call for a 1-d array (same pairwise sum, same bits), without their
# argument handling: the time series takes three such sums every step.
_total = np.add.reduce
_TRADER = KIND_CODES["leveraged_trader"]
_PORTFOLIO = MARGIN_MODES.index("portfolio")

DEPTH_BUCKETS = 25  # buckets each side of the mid
DEPTH_BUCKET_WIDTH = 0.002  # bucket width as a share of the mid: 25 buckets span +-5%


class RunRecorder:
    """Per-step rows, kept as the plain dicts the model hands over and turned into columns at the end.

    Appending a dict costs about a tenth of writing its 27 values one by one into numpy columns,
    and recording is paid every step, so the columns are built once, by :meth:`to_frame`.

    Args:
        steps: Horizon of the run.
        instruments: The instruments' names (one row per step and instrument).
    """

    def __init__(self, steps: int, instruments: Sequence[str] = (DEFAULT_INSTRUMENT,)) -> None:
        self.instruments = tuple(instruments)
        self.capacity = steps * len(self.instruments)
        self.rows = 0
        self._values: list[dict[str, float]] = []
        self._policy_states: list[dict[str, float]] = []
        # Column c holds the lots priced between (c - K) and (c - K + 1) bucket widths from the mid.
        self.depth_profile = np.zeros((self.capacity, 2 * DEPTH_BUCKETS), dtype=np.int64)
        self.snapshots: dict[str, pd.DataFrame] = {}
        self._trader_mask: np.ndarray | None = None  # leveraged-trader accounts (accounts only get added)
        # The last check recorded and what was summed from it: a check given again by the margin
        # checker (nothing it read has moved) gives the same sums, without a pass over the accounts.
        self._summed: tuple[object, tuple] | None = None

    def record_step(
        self, step: int, markets, ledger, check, totals, policies, portfolio_rule=None, extra_state=None
    ) -> list[dict[str, float]]:
        """Record one step's rows, one per instrument, from the objects the figures come from.

        Args:
            step: The step just finished.
            markets: The :class:`~abm.market.Market` of each instrument (book, mark, index, volatility).
            ledger: The :class:`~abm.ledger.Ledger` (volume, open interest, fund, bad debt).
            check: The step's final :class:`~abm.margin.check.MarginCheck` (nothing trades between it
                and the recording, so it is current).
            totals: The liquidator's :class:`~abm.liquidation.StepTotals` of the step.
            policies: Each instrument's :class:`~abm.margin.policy.MarginPolicy`.
            portfolio_rule: The portfolio rule when some account is portfolio-margined: its state over
                those accounts (:meth:`~abm.margin.portfolio.PortfolioMarginRule.state`) joins every
                instrument's row as ``margin_<name>`` columns.
            extra_state: Further account-wide figures for every row's ``margin_<name>`` columns (the
                collateral assets' prices and haircuts).

        Returns:
            The rows recorded.
        """
        if self._summed is not None and self._summed[0] is check:
            mean_leverage, margin_calls, margin_call_amount, margin_held, gross_notional = self._summed[1]
        else:
            sums = self._sums(check, ledger, len(markets))
            self._summed = (check, sums)
            mean_leverage, margin_calls, margin_call_amount, margin_held, gross_notional = sums
        account_wide = {
            # The fund's worth: its cash and the inventory the engine took over, marked (an inventory
            # bought above the mark is a loss the fund already carries).
            "insurance_fund": ledger.account_equity(0, [market.mark for market in markets]),
            "insurance_fund_cash": ledger.collateral_of(0),
            "bad_debt": ledger.total_bad_debt,
            "socialised_loss": ledger.total_socialised,
            "margin_calls": margin_calls,
            "margin_call_amount": margin_call_amount,
            "mean_leverage": mean_leverage,
            "cascade_rounds": totals.rounds,
        }
        portfolio_state: dict[str, float] = {}
        per_instrument: dict[str, list[float]] = {}
        if portfolio_rule is not None:
            accounts = np.flatnonzero(ledger.margin_mode == _PORTFOLIO)
            held_portfolio = accounts[check.exposed[accounts]]
            portfolio_state = {
                # What the rule asks of the portfolio accounts, and what their positions would need
                # alone under each instrument's rule: the offset granted is one minus their ratio.
                "portfolio_maintenance": float(check.maintenance_requirement[held_portfolio].sum()),
                "portfolio_standalone_maintenance": float(check.position_rows(held_portfolio)[1].sum()),
                "portfolio_gross_notional": float(check.notional[held_portfolio].sum()),
                **portfolio_rule.state(ledger.position[accounts], check.marks),
            }
            if check.reduce_only is not None:  # a rule with a reduce-only rung (unified_account)
                portfolio_state["portfolio_reduce_only_accounts"] = float(np.count_nonzero(check.reduce_only))
            per_instrument = {
                name: np.asarray(values, dtype=float).tolist()
                for name, values in portfolio_rule.instrument_state().items()
            }
        if extra_state:
            portfolio_state = {**portfolio_state, **extra_state}
        rows = []
        for market, policy in zip(markets, policies, strict=True):
            column = market.column
            totals_of = (margin_held[column], gross_notional[column])
            rows.append(
                self._instrument_row(
                    step,
                    market,
                    ledger,
                    totals_of,
                    totals,
                    policy,
                    account_wide,
                    {**portfolio_state, **{name: v[column] for name, v in per_instrument.items()}},
                )
            )
        return rows

    def _sums(self, check, ledger, instruments: int) -> tuple:
        """Mean leverage, margin calls and their cash, margin held and gross notional per instrument.

        The figures a row sums over the accounts from a check.
        """
        n = ledger.n_accounts
        if self._trader_mask is None or len(self._trader_mask) != n:
            self._trader_mask = ledger.kind == _TRADER
        # The checked accounts with a position (exposed), so that the sums below run over them alone;
        # a boolean index is cheaper than ids when most accounts hold (54 against 90 us at 1e5).
        exposed = check.exposed
        held_equity = check.equity[exposed]
        held_notional = check.notional[exposed]
        # Mean leverage of the traders with a position and positive equity (NaN if there are none).
        solvent = held_equity > 0
        solvent &= self._trader_mask[exposed]
        count = int(np.count_nonzero(solvent))
        if count and count == len(solvent):  # every holder: the same elements without another index
            mean_leverage = float(_total(held_notional / held_equity)) / count
        elif count:
            mean_leverage = float(_total(held_notional[solvent] / held_equity[solvent])) / count
        else:
            mean_leverage = float("nan")
        margin_calls = int(np.count_nonzero(check.called))
        # The cash the margin calls demand (account-wide).
        margin_call_amount = 0.0
        if margin_calls:
            call_shortfall = check.initial_requirement[check.called] - check.equity[check.called]
            margin_call_amount = float(np.maximum(call_shortfall, 0.0).sum())
        # Margin each instrument's rule asks of the positions in it, and their gross notional.
        if instruments == 1:
            margin_held = [float(_total(check.position_initial[:, 0][exposed]))]
            # One instrument: the position notionals are the accounts' (the same array, a column view).
            same = check.position_notional.base is check.notional
            gross_notional = [
                float(_total(held_notional if same else check.position_notional[:, 0][exposed]))
            ]
        else:  # every instrument at once: one product with the exposed mask each
            initial_totals, notional_totals = check.exposed_totals()
            margin_held, gross_notional = initial_totals.tolist(), notional_totals.tolist()
        return mean_leverage, margin_calls, margin_call_amount, margin_held, gross_notional

    def _instrument_row(
        self, step, market, ledger, margin_totals, totals, policy, account_wide, portfolio_state
    ) -> dict:
        book = market.book
        tick = market.tick_size
        mark = market.mark
        column = market.column
        bid, ask = book.best_bid(), book.best_ask()
        mid = book.mid()
        last = book.last_price
        band = max(1, int(round(0.01 * mark / tick)))
        margin_held, gross_notional = margin_totals
        funding = market.funding
        state = {**policy.state(), **portfolio_state} if portfolio_state else policy.state()
        row = {
            "step": step,
            "instrument": market.name,
            "price": last * tick if last is not None else mark,
            "mid": mid * tick if mid is not None else np.nan,
            "mark": mark,
            "index": market.index,
            "index_sources": market.index_sources,
            "best_bid": bid * tick if bid is not None else np.nan,
            "best_ask": ask * tick if ask is not None else np.nan,
            "spread": (ask - bid) * tick if bid is not None and ask is not None else np.nan,
            "depth_bid": book.depth(BUY, band),
            "depth_ask": book.depth(-BUY, band),
            "volume": ledger.step_volume(column),
            "liquidations": totals.liquidations[column],
            "liquidated_notional": totals.liquidated_notional[column],
            "adl_volume": totals.adl_volume[column],
            "open_interest": ledger.open_interest_of(column),
            "engine_position": ledger.position_of(0, column),
            "insurance_fund": account_wide["insurance_fund"],
            "insurance_fund_cash": account_wide["insurance_fund_cash"],
            "bad_debt": account_wide["bad_debt"],
            "socialised_loss": account_wide["socialised_loss"],
            "margin_calls": account_wide["margin_calls"],
            "margin_call_amount": account_wide["margin_call_amount"],
            "margin_held": margin_held,
            "gross_notional": gross_notional,
            "imr": state["imr"],  # the rates held now, as policy.imr and policy.mmr give them
            "mmr": state["mmr"],
            "realised_vol": market.realised_vol,
            "mean_leverage": account_wide["mean_leverage"],
            "cascade_rounds": account_wide["cascade_rounds"],
            "premium_index": funding.premium if funding is not None else 0.0,
            "funding_rate": funding.rate if funding is not None else 0.0,
            "funding_paid": market.funding_paid,
        }
        self.record(row, state)
        # For the stress figures: the book around the mid.
        self.record_depth(book, mid if mid is not None else mark / tick)
        return row

    def record(self, values: dict[str, float], policy_state: dict[str, float]) -> None:
        """Keep one step's values (keys from TIMESERIES_COLUMNS) and the policy's state."""
        if self.rows >= self.capacity:
            raise IndexError(f"recorder is full ({self.capacity} steps); the model ran past its horizon")
        self._values.append(values)
        self._policy_states.append(policy_state)
        self.rows += 1

    def column(self, name: str) -> np.ndarray:
        """One base column (a name from TIMESERIES_COLUMNS) over the rows recorded so far."""
        dtype = _DTYPES[name]
        if dtype == "object":
            return np.array([row[name] for row in self._values], dtype=object)
        return np.fromiter((row[name] for row in self._values), dtype=dtype, count=self.rows)

    def base_columns(self) -> dict[str, np.ndarray]:
        """Every base column (TIMESERIES_COLUMNS, in order) over the rows recorded so far."""
        columns = _transpose(self._values, TIMESERIES_COLUMNS)
        return {
            name: np.array(values, dtype=_DTYPES[name])
            for name, values in zip(TIMESERIES_COLUMNS, columns, strict=True)
        }

    def policy_columns(self) -> dict[str, np.ndarray]:
        """The policy's figures by name (in order of first appearance), NaN where a step lacked one."""
        names: dict[str, None] = {}
        for state in self._policy_states:
            for name in state:
                names.setdefault(name)
        if all(state.keys() == names.keys() for state in self._policy_states):
            # Every step gave the same figures (the usual case): no NaN to fill, one transposition.
            columns = _transpose(self._policy_states, tuple(names))
            return {
                name: np.array(values, dtype=np.float64) for name, values in zip(names, columns, strict=True)
            }
        nan = float("nan")
        return {
            name: np.fromiter(
                (state.get(name, nan) for state in self._policy_states), dtype=np.float64, count=self.rows
            )
            for name in names
        }

    def record_depth(self, book, reference_ticks: float) -> None:
        """Write the depth profile of the step last recorded (call right after :meth:`record`).

        Args:
            book: The order book (see ``OrderBook.depth_profile``).
            reference_ticks: The mid in ticks (the mark where one side is empty).
        """
        if self.rows == 0 or not math.isfinite(reference_ticks):  # math: a tenth of the ufunc call
            return
        width = max(1.0, round(DEPTH_BUCKET_WIDTH * reference_ticks))
        span = int(DEPTH_BUCKETS * width) + 2  # levels are whole ticks: no more than this fit the window
        # The book buckets its own levels (one compiled call in the fast book).
        book.depth_profile(reference_ticks, width, DEPTH_BUCKETS, span, out=self.depth_profile[self.rows - 1])

    def snapshot_accounts(
        self,
        label: str,
        step: int,
        kinds,
        positions: np.ndarray,
        equity: np.ndarray,
        notional: np.ndarray,
        sensitivity=None,
    ) -> None:
        """Keep every account's positions, equity and leverage under ``label`` (replacing an older one).

        One row per account and instrument (account-major). Leverage is the position's notional over
        the account's equity; 0 for a flat position and NaN for a position without positive equity.

        Args:
            label: The snapshot's name (``before_stress``, ``end``).
            step: The step it is taken at.
            kinds: Each account's kind.
            positions: ``(accounts, instruments)`` signed lots.
            equity: Each account's equity.
            notional: ``(accounts, instruments)`` notional of each position.
            sensitivity: An :class:`~abm.margin.sensitivity.AccountSensitivity` of some of the accounts
                (their requirements, utilisation, buffer and distances to liquidation; NaN for the
                others and without one).
        """
        positions = np.asarray(positions, dtype=np.int64).reshape(len(equity), -1)
        notional = np.asarray(notional, dtype=np.float64).reshape(positions.shape)
        accounts, instruments = positions.shape
        equity = np.repeat(np.asarray(equity, dtype=np.float64), instruments)
        position = positions.ravel().copy()
        notional = notional.ravel().copy()
        with np.errstate(divide="ignore", invalid="ignore"):
            leverage = np.where(position == 0, 0.0, np.where(equity > 0, notional / equity, np.nan))
        figures = _sensitivity_columns(sensitivity, accounts, instruments)
        self.snapshots[label] = pd.DataFrame(
            {
                "snapshot": label,
                "step": np.full(len(position), step, dtype=np.int64),
                "account_id": np.repeat(np.arange(accounts, dtype=np.int64), instruments),
                "instrument": np.tile(np.array(self.instruments, dtype=object), accounts),
                "kind": np.repeat(np.asarray(list(kinds), dtype=object), instruments),
                "position": position,
                "equity": equity,
                "notional": notional,
                "leverage": leverage,
                **figures,
            }
        )

    def snapshots_frame(self) -> pd.DataFrame:
        """All account snapshots in one table (in the order they were taken)."""
        if not self.snapshots:
            return ACCOUNT_SNAPSHOTS.empty()
        return pd.concat(self.snapshots.values(), ignore_index=True)

    def depth_frame(self) -> pd.DataFrame:
        """The depth profile: ``step``, ``instrument``, then one column per bucket (depth_bucket_columns)."""
        n = self.rows
        frame = pd.DataFrame(self.depth_profile[:n].copy(), columns=depth_bucket_columns())
        frame.insert(0, "instrument", self.column("instrument"))
        frame.insert(0, "step", self.column("step"))
        return frame

    def latest(self, name: str, instrument: str | None = None) -> float:
        """The last recorded value of a base column (of one instrument; NaN before the first record)."""
        if self.rows == 0:
            return float("nan")
        if instrument is None:
            return float(self._values[-1][name])
        index = self.instruments.index(instrument)
        # The rows of a step come in instrument order: the instrument's is that far from the step's last.
        return float(self._values[self.rows - len(self.instruments) + index][name])

    def to_frame(self) -> pd.DataFrame:
        """The recorded rows as a DataFrame (base columns, then ``margin_*`` columns)."""
        data = self.base_columns()
        for name, column in self.policy_columns().items():
            key = f"margin_{name}"
            if key not in data and name not in ("imr", "mmr"):
                data[key] = column
        return pd.DataFrame(data)


def _transpose(rows: Sequence[dict], names: Sequence[str]) -> list[Sequence]:
    """The values of ``names`` in every row, one sequence a name (rows must hold every name)."""
    if not rows or len(names) < 2:  # itemgetter of one name gives the value, not a 1-tuple
        return [[row[name] for row in rows] for name in names]
    # One transposition of all the rows (itemgetter and zip run in C) rather than one Python pass a
    # column: a third to a half of the time at 10,000 rows; the same arrays, value for value.
    return list(zip(*map(itemgetter(*names), rows), strict=True))


def depth_bucket_columns() -> list[str]:
    """Names of the depth profile's bucket columns, lowest price first.

    With ``K = DEPTH_BUCKETS``: ``"d-K"`` holds the lots priced ``K`` to ``K - 1`` bucket widths below
    the mid, ..., ``"d-1"`` the bids nearest the mid, ``"d+1"`` the asks nearest it, ``"d+K"`` the
    farthest asks.
    """
    below = [f"d-{k}" for k in range(DEPTH_BUCKETS, 0, -1)]
    above = [f"d+{k}" for k in range(1, DEPTH_BUCKETS + 1)]
    return below + above


def _sensitivity_columns(sensitivity, accounts: int, instruments: int) -> dict[str, np.ndarray]:
    # The snapshot's risk columns, one row per account and instrument (account-wide figures repeated).
    account_wide = {
        name: np.full(accounts, np.nan)
        for name in ("initial", "maintenance", "utilisation", "buffer", "joint_distance_to_liquidation")
    }
    distance = np.full((accounts, instruments), np.nan)
    if sensitivity is not None:
        ids = sensitivity.accounts
        account_wide["initial"][ids] = sensitivity.initial
        account_wide["maintenance"][ids] = sensitivity.maintenance
        account_wide["utilisation"][ids] = sensitivity.utilisation
        account_wide["buffer"][ids] = sensitivity.buffer
        account_wide["joint_distance_to_liquidation"][ids] = sensitivity.joint_distance
        distance[ids] = sensitivity.distance
    columns = {name: np.repeat(account_wide[name], instruments) for name in ("initial", "maintenance")}
    columns["utilisation"] = np.repeat(account_wide["utilisation"], instruments)
    columns["buffer"] = np.repeat(account_wide["buffer"], instruments)
    columns["distance_to_liquidation"] = distance.ravel()
    columns["joint_distance_to_liquidation"] = np.repeat(
        account_wide["joint_distance_to_liquidation"], instruments
    )
    return columns
