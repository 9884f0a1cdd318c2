"""The liquidator: margin check, liquidation rounds within a step, and the waterfall.

Waterfall for an account below maintenance (account-wide: an account with positions in several
instruments has each closed in turn, in ``liquidation.order``; an isolated position is an account of
its own):

1. its resting orders are cancelled, and a market order for the position (or the part that restores
   ``target_ratio`` in partial mode) goes into the book, optionally limited at the bankruptcy price;
2. what the book cannot take (an empty or too thin side, or the bankruptcy-price limit) goes to the
   engine at the bankruptcy price while the insurance fund is positive, otherwise to
   auto-deleveraging: profitable opposite positions ranked by PnL% x leverage are closed against
   it at the bankruptcy price (and anything still left to the engine);
3. a liquidation fee (share of the filled notional) moves from the account to the fund;
4. a fully closed account left below zero is bad debt, paid by the fund; what the fund cannot pay is
   socialised over accounts in profit, pro rata to their profit.

Cascade attribution: an account that first breaches in round ``r > 0`` of a step has as parents the
liquidations of round ``r - 1`` of the same step whose orders moved the price against it in an
instrument it holds (sell orders where it is long, buys where it is short) and filled something. A
parent in another instrument than the child's position is a cross-instrument edge: contagion.
Round-0 breaches are roots. When more than ``liquidation.max_parents`` qualify, the largest by filled
notional are kept (ties: the lower id), listed by id: a round of thousands of liquidations would
otherwise give each child thousands of edges, and the DAG would grow with the square of the rounds.
Every child keeps a parent, so roots, depth and the branching ratio do not depend on the cap.

Steps 2 and 4 (take-over, auction, auto-deleveraging, socialised losses) and the unwinding of the
engine's inventory are in :mod:`abm.liquidation.backstops`, a base class of :class:`Liquidator`.

Marks are never kept here: :meth:`Liquidator.run` is given a function that computes the marks from
the books, calls it after every round, and passes the marks to each step of the waterfall.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from abm.book import BUY, SELL, Book
from abm.config import LiquidationConfig
from abm.ledger import ENGINE, Ledger
from abm.liquidation.backstops import Backstops
from abm.liquidation.clearing import ClearingHouse
from abm.margin.check import MarginCheck, MarginChecker

__all__ = ["ENGINE_UNWIND_BAND", "Liquidator", "StepTotals"]

# The engine unwinds at most this far through the touch per step (liquidation.unwind_band by default).
ENGINE_UNWIND_BAND = LiquidationConfig.model_fields["unwind_band"].default

MarksFunction = Callable[[], np.ndarray]


class StepTotals:
    """What the liquidator did in the current step (reset by :meth:`Liquidator.begin_step`).

    Attributes:
        liquidations: Liquidations per instrument.
        liquidated_notional: Notional liquidated per instrument.
        adl_volume: Lots auto-deleveraged per instrument.
        bad_debt: Bad debt covered by the fund in the step.
        socialised: Losses socialised in the step.
        rounds: Liquidation rounds run.
    """

    __slots__ = ("adl_volume", "bad_debt", "liquidated_notional", "liquidations", "rounds", "socialised")

    def __init__(self, instruments: int = 1) -> None:
        self.liquidations = [0] * instruments
        self.liquidated_notional = [0.0] * instruments
        self.adl_volume = [0] * instruments
        self.bad_debt = 0.0
        self.socialised = 0.0
        self.rounds = 0


class Liquidator(Backstops):
    """Runs the liquidation rounds of a step and the waterfall of each breached account.

    Args:
        ledger: The ledger (money and positions).
        books: One order book per instrument (liquidation orders go into them).
        checker: The margin checker.
        settings: The scenario's liquidation settings.
        rng: The run's generator (drawn from only by designs that draw: ``adl_rank: random_start``).
    """

    def __init__(
        self,
        ledger: Ledger,
        books: Sequence[Book],
        checker: MarginChecker,
        settings: LiquidationConfig,
        rng: np.random.Generator | None = None,
    ) -> None:
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self.ledger = ledger
        self.books = list(books)
        self.checker = checker
        self.settings = settings
        self._ticks = [instrument.tick_size for instrument in ledger.instruments]
        self._contracts = [instrument.contract_size for instrument in ledger.instruments]
        self.liquidations: list[dict] = []
        self._cooling: dict[int, int] = {}  # account -> the step it may be liquidated again (chunks)
        self.clearing: ClearingHouse | None = None  # design ccp: the default fund and the house's capital
        self.vault = ENGINE  # the backstop vault's account (its own with vault_capital)
        self._instruments = ledger.n_instruments
        self.totals = StepTotals(self._instruments)

    def open_system_accounts(self, open_account=None) -> None:
        """Open the accounts the design needs (once): the default fund and capital, the backstop vault.

        Args:
            open_account: ``open_account(kind, collateral)`` opening an unchecked system account and
                returning its id (the population's, so that it knows every account); the ledger's by
                default.
        """
        settings = self.settings
        open_account = open_account or self.ledger.open_system_account
        if self.clearing is None and (settings.default_fund_share > 0.0 or settings.ccp_capital > 0.0):
            self.clearing = ClearingHouse.open(self.ledger, settings, open_account)
        if self.vault == ENGINE and settings.backstop_ratio is not None and settings.vault_capital > 0.0:
            self.vault = open_account("backstop_vault", settings.vault_capital)

    def begin_step(self) -> None:
        """Zero the step's totals."""
        self.totals = StepTotals(self._instruments)

    # ------------------------------------------------------------------ rounds

    def run(self, step: int, marks_fn: MarksFunction, enabled: bool = True) -> MarginCheck:
        """Margin check and liquidation rounds until nothing new breaches (or the round cap).

        Args:
            step: Current step (for records).
            marks_fn: Computes the marks (one per instrument) from the books and indexes; called
                after every round.
            enabled: False switches forced liquidation off (the counterfactual run).

        Returns:
            The final margin check of the step (margin calls are flagged from it).
        """
        ledger = self.ledger
        settings = self.settings
        if not enabled:
            check = self.checker.check(marks_fn())
            ledger.set_margin_calls(check.called)
            ledger.set_reduce_only(check.reduce_only)
            return check
        self.open_system_accounts()
        first_round: dict[int, tuple[int, list[int]]] = {}
        # (liquidation id, order side, instrument, filled notional) of the round before
        previous_round_ids: list[tuple[int, int, int, float]] = []
        round_index = 0
        # The engine unwinds first, so the step's first check already sees the book it leaves.
        if step % settings.unwind_interval == 0:
            self._unwind_engine(0)
        marks = marks_fn()
        check = self.checker.check(marks)
        while round_index < settings.max_rounds:
            breached = check.breached
            if self._cooling:
                breached = np.array(
                    [a for a in breached.tolist() if self._cooling.get(a, -1) <= step], dtype=np.int64
                )
            if len(breached) == 0:
                break
            lots_budget = settings.max_lots_per_round or np.iinfo(np.int64).max
            this_round: list[tuple[int, int, int, float]] = []
            # Parents by instrument and side of the child's position, built once a round (not once per
            # account: that was quadratic when a round liquidates thousands). Children share the lists;
            # nobody mutates them.
            parents_of = self._parent_candidates(previous_round_ids) if round_index > 0 else {}
            shared: dict[tuple[tuple[int, int], ...], list[int]] = {}
            for account in breached.tolist():
                held = ledger.held_instruments(account)
                if account not in first_round:
                    first_round[account] = (round_index, self._parents(account, held, parents_of, shared))
                if lots_budget <= 0:
                    break
                for instrument, quantity in self._plan(account, held, marks, check):
                    if lots_budget <= 0:
                        break
                    record = self._liquidate(
                        account,
                        instrument,
                        quantity,
                        step,
                        round_index,
                        marks,
                        check,
                        first_round[account][1],
                        lots_budget,
                        marks_fn,
                    )
                    lots_budget -= record["quantity"]
                    if record["filled_quantity"] > 0:
                        filled = (
                            record["filled_quantity"] * record["average_price"] * self._contracts[instrument]
                        )
                        this_round.append((record["liquidation_id"], record["side"], instrument, filled))
            self.totals.rounds = round_index + 1
            previous_round_ids = this_round
            round_index += 1
            marks = marks_fn()
            check = self.checker.check(marks)
        if ledger.collateral_of(ENGINE) < 0.0:
            # The fund lost more than it held (bad debt, or unwinding inventory below its takeover price).
            self._socialise(-ledger.collateral_of(ENGINE), marks_fn())
        ledger.set_margin_calls(check.called)
        ledger.set_reduce_only(check.reduce_only)
        return check

    def _parent_candidates(
        self, previous: list[tuple[int, int, int, float]]
    ) -> dict[tuple[int, int], tuple[list[int], list[tuple[float, int]]]]:
        """Per (instrument, order side): the parents a child gets (by id) and the ranked candidates.

        The list is every qualifying liquidation when there are at most ``max_parents``, else the
        ``max_parents`` largest by filled notional; the ranked pairs ``(-notional, id)`` serve children
        holding several instruments, whose parents are chosen over all of theirs.
        """
        cap = self.settings.max_parents
        grouped: dict[tuple[int, int], list[tuple[float, int]]] = {}
        for lid, side, column, filled in previous:
            grouped.setdefault((column, side), []).append((-filled, lid))
        candidates = {}
        for key, ranked in grouped.items():
            if len(ranked) > cap:
                ranked = sorted(ranked)[:cap]
                candidates[key] = (sorted(lid for _, lid in ranked), ranked)
            else:
                candidates[key] = ([lid for _, lid in ranked], ranked)  # appended in id order
        return candidates

    def _parents(
        self,
        account: int,
        held: list[int],
        parents_of: dict[tuple[int, int], tuple[list[int], list[tuple[float, int]]]],
        shared: dict[tuple[tuple[int, int], ...], list[int]],
    ) -> list[int]:
        """The previous round's liquidations that went against one of the account's positions (capped)."""
        ledger = self.ledger
        # A sell (-1) goes against a long, a buy (+1) against a short.
        keys = tuple(
            (instrument, -1 if ledger.position_of(account, instrument) > 0 else 1) for instrument in held
        )
        keys = tuple(key for key in keys if key in parents_of)
        if not keys:
            return []
        if len(keys) == 1:
            return parents_of[keys[0]][0]
        found = shared.get(keys)
        if found is None:
            ranked = [pair for key in keys for pair in parents_of[key][1]]
            if len(ranked) > self.settings.max_parents:
                ranked = sorted(ranked)[: self.settings.max_parents]
            found = shared[keys] = sorted(lid for _, lid in ranked)
        return found

    def _plan(self, account: int, held: list[int], marks, check: MarginCheck) -> list[tuple[int, int | None]]:
        """The positions to close and how much of each: ``(instrument, lots or None for the usual amount)``.

        One position: its usual amount (all, or in partial mode what restores the target ratio). Several
        (a cross or portfolio account): full mode closes every position, in ``liquidation.order``;
        partial mode cuts them in that order (pro rata: each by the same share) until the requirement,
        taken as linear in each position's size, is ``equity / target_ratio``.
        """
        if len(held) <= 1:
            return [(instrument, None) for instrument in held]
        ledger = self.ledger
        settings = self.settings
        contract = self._contracts
        lots = {column: ledger.position_of(account, column) for column in held}
        maintenance = {column: float(check.position_maintenance[account, column]) for column in held}
        if settings.order == "largest_maintenance":
            order = sorted(held, key=lambda column: (-maintenance[column], column))
        elif settings.order == "largest_loss":
            entry = {column: ledger.entry_of(account, column) for column in held}
            loss = {
                column: lots[column] * (marks[column] - entry[column]) * contract[column] for column in held
            }
            order = sorted(held, key=lambda column: (loss[column], column))
        else:
            order = list(held)
        equity = float(check.equity[account])
        total = float(check.maintenance_requirement[account])
        if settings.mode != "partial" or equity <= 0.0 or total <= 0.0:
            return [(column, abs(lots[column])) for column in order]
        # The account's requirement scaled onto its positions (a portfolio rule's is below their sum).
        scale = total / max(sum(maintenance.values()), 1e-300)
        if settings.order == "pro_rata":
            keep = equity / (settings.target_ratio * total)
            return [(column, max(1, abs(lots[column]) - int(abs(lots[column]) * keep))) for column in order]
        excess = total - equity / settings.target_ratio
        plan = []
        for column in order:
            if excess <= 0.0:
                break
            per_lot = scale * maintenance[column] / abs(lots[column])
            cut = min(abs(lots[column]), max(1, math.ceil(excess / max(per_lot, 1e-300))))
            plan.append((column, cut))
            excess -= cut * per_lot
        return plan

    # ------------------------------------------------------------------ the waterfall

    def _liquidate(
        self,
        account: int,
        instrument: int,
        planned: int | None,
        step: int,
        round_index: int,
        marks: np.ndarray,
        check: MarginCheck,
        parents: list[int],
        lots_budget: int,
        marks_fn: MarksFunction,
    ) -> dict:
        ledger = self.ledger
        settings = self.settings
        book = self.books[instrument]
        contract = self._contracts[instrument]
        mark = float(marks[instrument])
        book.cancel_all(account)  # the exchange pulls the account's resting orders first
        ledger.round = round_index  # the journal's round of every movement below
        position = ledger.position_of(account, instrument)
        side = SELL if position > 0 else BUY
        equity_before = float(check.equity[account])
        quantity = abs(position)
        # Hyperliquid's backstop: far enough below maintenance, the vault (the fund's account) takes the
        # positions over at the mark, with what is left of the collateral; no order into the book.
        maintenance_before = float(check.maintenance_requirement[account])
        backstop = settings.backstop_ratio is not None and (
            0.0 <= equity_before < settings.backstop_ratio * maintenance_before
        )
        if backstop:
            planned = None
        if planned is not None:
            quantity = min(planned, quantity)
        elif backstop:
            pass
        elif (
            settings.chunk_above_notional is not None
            and abs(position) * mark * contract > settings.chunk_above_notional
        ):
            # A large position goes in chunks, with a pause between them (Hyperliquid).
            quantity = max(1, math.ceil(settings.chunk_share * abs(position)))
            if settings.cooldown_steps:
                self._cooling[account] = step + settings.cooldown_steps
        elif settings.mode == "partial" and equity_before > 0.0:
            rate = check.maintenance_requirement[account] / max(check.notional[account], 1e-300)
            keep = int(equity_before / (settings.target_ratio * rate * mark * contract))
            quantity = max(1, abs(position) - max(keep, 0))
        quantity = int(min(quantity, lots_budget))
        full = quantity == abs(position)
        mid_before = book.mid()
        filled = 0
        value = 0.0
        adl_quantity = 0
        limit = (
            self._bankruptcy_tick(account, instrument, side, marks)
            if settings.price_limit == "bankruptcy"
            else None
        )
        to_book = settings.book_orders and not backstop
        fills = book.submit_market(account, side, quantity, limit_price=limit) if to_book else []
        if fills:
            filled, value = ledger.settle(fills, instrument, round_index, is_liquidation=True)
        remaining = quantity - filled
        takeover_loss = 0.0
        if remaining > 0:
            # The book could not take it all: the engine backstops while the fund lasts, else ADL.
            if settings.adl_when == "negative_equity":
                go_adl = settings.adl and ledger.account_equity(account, marks) < 0.0
            else:
                go_adl = settings.adl and ledger.collateral_of(ENGINE) <= 0.0
            if settings.takeover == "auction" and not go_adl:
                remaining -= self._auction(account, instrument, remaining, marks)
            if remaining <= 0:
                pass
            elif backstop:
                takeover_loss = self._take_over(account, instrument, remaining, marks, at_mark=True)
            elif not go_adl:
                takeover_loss = self._take_over(account, instrument, remaining, marks)
            else:
                adl_quantity = self._auto_deleverage(account, instrument, remaining, marks, check)
                if adl_quantity < remaining:
                    takeover_loss = self._take_over(account, instrument, remaining - adl_quantity, marks)
        fee = 0.0
        if filled > 0 and settings.fee > 0.0:
            fee = min(settings.fee * value * contract, max(ledger.collateral_of(account), 0.0))
            ledger.pay_fee(account, ENGINE, fee)
        bad_debt = takeover_loss
        flat = not ledger.held_instruments(account)
        if flat and abs(ledger.collateral_of(account)) < 1e-9:
            # Rounding dust of a transfer at the bankruptcy price: the fund absorbs it, money is conserved.
            ledger.absorb_dust(account, ENGINE)
        if flat and (settings.leftover == "fund" or backstop) and ledger.collateral_of(account) > 0.0:
            # Binance and BitMEX keep what a liquidated account has left (with the fee) in the fund; a
            # backstop vault keeps what the account it took over had left.
            keeper = self.vault if backstop else ENGINE
            ledger.transfer(account, keeper, ledger.collateral_of(account), "leftover")
        if flat and self.clearing is not None and ledger.collateral_of(account) < 0.0:
            covered = self.clearing.cover(account)  # the default waterfall before the insurance fund
            ledger.record_bad_debt(covered)
            bad_debt += covered
        if flat and ledger.collateral_of(account) < 0.0:
            bad_debt += ledger.cover_deficit(account, ENGINE)
            if ledger.collateral_of(ENGINE) < 0.0:
                self._socialise(-ledger.collateral_of(ENGINE), marks_fn())
        self.totals.bad_debt += bad_debt
        mid_after = book.mid()
        impact = (
            (mid_after - mid_before) * self._ticks[instrument]
            if mid_before is not None and mid_after is not None
            else float("nan")
        )
        ledger.round = -1
        ledger.count_liquidation(account)
        notional = quantity * mark * contract
        totals = self.totals
        totals.liquidations[instrument] += 1
        totals.liquidated_notional[instrument] += notional
        totals.adl_volume[instrument] += adl_quantity
        record = {
            "liquidation_id": len(self.liquidations),
            "step": step,
            "round": round_index,
            "account_id": account,
            "kind": int(ledger.kind[account]),
            "instrument": instrument,
            "side": side,
            "quantity": quantity,
            "filled_quantity": filled,
            "average_price": value / filled if filled else float("nan"),
            "mark_before": mark,
            "notional": notional,
            "equity_before": equity_before,
            "equity_after": ledger.account_equity(account, marks),
            "bad_debt": bad_debt,
            "adl_quantity": adl_quantity,
            "price_impact": impact,
            "parents": list(parents),
            "full": full,
        }
        self.liquidations.append(record)
        return record

    def _bankruptcy_tick(self, account: int, instrument: int, side: int, marks) -> int:
        price = self.ledger.bankruptcy_price(account, instrument, marks)
        tick = self._ticks[instrument]
        if side == SELL:
            return max(1, int(np.ceil(price / tick - 1e-9)))
        return max(1, int(np.floor(price / tick + 1e-9)))
