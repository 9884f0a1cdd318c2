"""Seeded stress test of the order book, the ledger and the liquidator together.

Random operations (limit and market orders, cancels, mark moves, liquidation passes with the engine
backstop and auto-deleveraging, funding, deposits and withdrawals) run against one ledger whose book
mirrors every call into the naive :class:`reference_book.ReferenceBook`: each call must give the
same fills, and the best levels must agree after every operation. After every operation all invariants
are checked (:class:`abm.invariants.InvariantChecker`: zero sum with the engine's inventory, money
conservation, finite values, the book's structure).

The fast suite runs 1e4 operations per configuration; the 1e5 version is marked slow.
"""

from __future__ import annotations

import numpy as np
import pytest
from reference_book import ReferenceBook

from abm.book import BUY, SELL, OrderBook
from abm.config import LiquidationConfig
from abm.invariants import InvariantChecker
from abm.ledger import ENGINE, Instrument, Ledger
from abm.liquidation import Liquidator
from abm.margin import build_margin_policy
from abm.margin.check import MarginChecker
from abm.margin.settings import FixedMargin

TICK = 0.5
CONTRACT_SIZE = 0.1
MAX_RESTING = 150  # keeps the naive reference book (a sort per call) fast


class MirroredBook(OrderBook):
    """The real book, with every order-changing call repeated on the reference book and compared."""

    def __init__(self) -> None:
        super().__init__()
        self.reference = ReferenceBook()

    def submit_limit(self, owner, side, price, quantity):
        order_id, fills = super().submit_limit(owner, side, price, quantity)
        assert (order_id, fills) == self.reference.submit_limit(owner, side, price, quantity)
        return order_id, fills

    def submit_market(self, owner, side, quantity, limit_price=None):
        fills = super().submit_market(owner, side, quantity, limit_price)
        assert fills == self.reference.submit_market(owner, side, quantity, limit_price)
        return fills

    def cancel(self, order_id):
        removed = super().cancel(order_id)
        assert removed == self.reference.cancel(order_id)
        return removed

    def cancel_all(self, owner):
        removed = super().cancel_all(owner)
        assert removed == self.reference.cancel_all(owner)
        return removed

    def assert_same_as_reference(self) -> None:
        assert len(self) == len(self.reference)
        for side in (BUY, SELL):
            assert self.levels(side, 3) == self.reference.levels(side, 3)
        assert self.last_price == self.reference.last_price
        assert self.volume_traded() == self.reference.volume


CONFIGS = {
    # Empty fund, no fee, liquidation orders stop at the bankruptcy price: the rest goes to ADL.
    "adl": {"insurance_fund": 0.0, "fee": 0.0, "adl": True, "price_limit": "bankruptcy"},
    # A fund and fees: the engine backstops and unwinds its inventory; partial liquidation.
    "fund_partial": {"insurance_fund": 50.0, "fee": 0.005, "mode": "partial", "target_ratio": 1.5},
    # No ADL and a speed limit: the engine takes everything the book cannot.
    "no_adl_speed_limit": {"insurance_fund": 0.0, "adl": False, "max_lots_per_round": 5, "max_rounds": 3},
}


def run_stress(operations: int, seed: int, liquidation: dict) -> dict:
    """Run ``operations`` random operations; return counters of what was exercised."""
    rng = np.random.default_rng(seed)
    book = MirroredBook()
    settings = LiquidationConfig(**liquidation)
    ledger = Ledger([Instrument("X", TICK, CONTRACT_SIZE)], insurance_fund=settings.insurance_fund)
    policy = build_margin_policy(FixedMargin(rule="fixed", initial=0.10, maintenance=0.05))
    liquidator = Liquidator(ledger, [book], MarginChecker(ledger, [policy], [0.2]), settings)
    makers = ledger.add_accounts(4, 1e5, "market_maker").tolist()
    traders = ledger.add_accounts(30, rng.uniform(20.0, 300.0, 30), "leveraged_trader").tolist()
    owners = makers + traders
    checker = InvariantChecker(ledger, [book])
    centre = 200  # ticks
    step = 0
    order_ids: list[int] = []
    counts = dict.fromkeys(("limit", "market", "cancel", "mark", "liquidation_pass", "funding", "deposit"), 0)

    def marks() -> np.ndarray:
        mid = book.mid()
        return np.array([mid * TICK if mid is not None else centre * TICK])

    for _ in range(operations):
        draw = rng.random()
        if draw < 0.38:
            owner = owners[rng.integers(len(owners))]
            side = BUY if rng.random() < 0.5 else SELL
            # Makers quote around the centre, traders lean across it (and so take liquidity).
            offset = int(rng.integers(1, 8)) if owner in makers else int(rng.integers(-4, 5))
            price = max(1, centre - side * offset)
            order_id, fills = book.submit_limit(owner, side, price, int(rng.integers(1, 25)))
            ledger.settle(fills, 0, 0, False)
            order_ids.append(order_id)
            counts["limit"] += 1
        elif draw < 0.50:
            owner = traders[rng.integers(len(traders))]
            side = BUY if rng.random() < 0.5 else SELL
            ledger.settle(book.submit_market(owner, side, int(rng.integers(1, 40))), 0, 0, False)
            counts["market"] += 1
        elif draw < 0.62:
            if order_ids:
                book.cancel(order_ids.pop(int(rng.integers(len(order_ids)))))
            counts["cancel"] += 1
        elif draw < 0.66 or len(book) > MAX_RESTING:
            book.cancel_all(owners[rng.integers(len(owners))])
            counts["cancel"] += 1
        elif draw < 0.78:
            centre = max(5, centre + int(rng.integers(-6, 7)))
            counts["mark"] += 1
        elif draw < 0.92:
            ledger.begin_step(step)
            liquidator.begin_step()
            liquidator.run(step, marks)
            step += 1
            counts["liquidation_pass"] += 1
        elif draw < 0.96:
            ledger.pay_funding(0, float(rng.uniform(-1e-3, 1e-3)), float(marks()[0]))
            counts["funding"] += 1
        else:
            account = traders[rng.integers(len(traders))]
            amount = float(rng.uniform(0.0, 50.0))
            if rng.random() < 0.5:
                ledger.deposit(account, amount)
            else:
                ledger.withdraw(account, min(amount, max(ledger.collateral_of(account), 0.0)))
            counts["deposit"] += 1
        checker.check(step, marks())
        book.assert_same_as_reference()
    counts["liquidations"] = len(liquidator.liquidations)
    counts["adl_lots"] = sum(record["adl_quantity"] for record in liquidator.liquidations)
    counts["engine_trades"] = sum(1 for taker in ledger.trades.taker if taker == ENGINE)
    counts["bad_debt"] = ledger.total_bad_debt
    counts["checks"] = checker.checks
    counts["positions_net"] = int(ledger.position.sum())
    return counts


def _assert_exercised(name: str, counts: dict, operations: int) -> None:
    assert counts["checks"] == operations and counts["positions_net"] == 0
    assert counts["liquidations"] > 20
    if name == "adl":
        assert counts["adl_lots"] > 0
    if name == "fund_partial":
        assert counts["engine_trades"] > 0  # the engine unwound inventory into the book


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_ten_thousand_random_operations(name):
    counts = run_stress(10_000, seed=20240601, liquidation=CONFIGS[name])
    _assert_exercised(name, counts, 10_000)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_hundred_thousand_random_operations(name):
    counts = run_stress(100_000, seed=7, liquidation=CONFIGS[name])
    _assert_exercised(name, counts, 100_000)
