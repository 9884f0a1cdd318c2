"""The Book protocol over every engine: the naive reference book on random streams, and a state machine."""

from __future__ import annotations

import numpy as np
import pytest
from book_cases import ALL_LEVELS
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, multiple, rule
from reference_book import ReferenceBook

from abm.book import BOOK_ENGINES, BUY, SELL, make_book

OWNER_COUNT = 20


def stream_against_reference(book, seed: int, operations: int, drift: float = 0.05) -> int:
    """Drive ``book`` and the reference with one random stream (70% limit, 20% cancel, 10% market).

    The centre wanders ``drift`` of the time (levels empty, refill and are dropped). Every return
    value is compared, the full levels every 64 operations and the internal invariants every 4,096.
    Returns the number of fills, so the caller can check the stream actually traded.
    """
    rng = np.random.default_rng(seed)
    reference = ReferenceBook()
    anchor = 1000
    fill_count = 0
    for i in range(operations):
        if rng.random() < drift:
            anchor += 1 if rng.random() < 0.5 else -1
        owner = int(rng.integers(0, OWNER_COUNT))
        side = BUY if rng.random() < 0.5 else SELL
        draw = rng.random()
        if draw < 0.70:
            # Offsets -2..7 ticks behind the anchor: mostly passive, sometimes marketable.
            price = anchor - side * int(rng.integers(-2, 8))
            quantity = int(rng.integers(1, 10))
            result = book.submit_limit(owner, side, price, quantity)
            assert result == reference.submit_limit(owner, side, price, quantity)
            fill_count += len(result[1])
        elif draw < 0.89:
            open_ids = book.open_orders(owner)
            assert open_ids == reference.open_orders(owner)
            order_id = open_ids[int(rng.integers(0, len(open_ids)))] if open_ids else -1
            assert book.cancel(order_id) == reference.cancel(order_id)
        elif draw < 0.90:
            assert book.cancel_all(owner) == reference.cancel_all(owner)
        else:
            quantity = int(rng.integers(1, 40))
            limit_price = None if rng.random() < 0.5 else anchor + side * int(rng.integers(0, 6))
            fills = book.submit_market(owner, side, quantity, limit_price=limit_price)
            assert fills == reference.submit_market(owner, side, quantity, limit_price=limit_price)
            fill_count += len(fills)
        if i % 64 == 0:
            assert book.levels(BUY, ALL_LEVELS) == reference.levels(BUY, ALL_LEVELS)
            assert book.levels(SELL, ALL_LEVELS) == reference.levels(SELL, ALL_LEVELS)
            assert len(book) == len(reference)
            assert (book.last_price, book.volume_traded()) == (reference.last_price, reference.volume)
        if i % 4_096 == 0:
            book.check_invariants()
    assert book.levels(BUY, ALL_LEVELS) == reference.levels(BUY, ALL_LEVELS)
    assert book.levels(SELL, ALL_LEVELS) == reference.levels(SELL, ALL_LEVELS)
    assert len(book) == len(reference)
    book.check_invariants()
    return fill_count


@pytest.mark.parametrize(
    ("seed", "operations", "drift"), [(1, 20_000, 0.05), (2, 20_000, 0.05), (42, 40_000, 0.3)]
)
def test_matches_the_reference_book_on_random_streams(new_book, seed, operations, drift):
    assert stream_against_reference(new_book(), seed, operations, drift) > operations // 20


@pytest.mark.parametrize("seed", [8, 9])
def test_amend_ladder_matches_the_reference_book(new_book, seed):
    # Three makers amend their ladders among other traders' limit, market and cancel orders; every
    # return value, each maker's open order ids (a kept order keeps its id) and the levels agree with
    # the naive book's amend. The counts at the end show the stream kept orders and crossed.
    rng = np.random.default_rng(seed)
    book, reference = new_book(), ReferenceBook()
    anchor, kept, sent_total, crossed_total = 60, 0, 0, 0
    half_spreads = {maker: 1.0 + rng.random() for maker in (0, 1, 2)}
    weights = {0: 0.0, 1: 0.0, 2: 0.3}
    for i in range(6_000):
        if rng.random() < 0.03:
            anchor = max(8, anchor + (1 if rng.random() < 0.5 else -1))
        owner = int(rng.integers(0, 8))
        side = BUY if rng.random() < 0.5 else SELL
        draw = rng.random()
        if owner < 3 and draw < 0.5:  # a maker amends (sometimes widened, thinner or one-sided)
            args = (
                owner,
                weights[owner],
                anchor + 0.25,
                0.0 if rng.random() < 0.9 else float(rng.choice([0.5, -4.0, 4.0])),  # +-4 ticks cross
                half_spreads[owner] * (1.0 if rng.random() < 0.8 else 1.5),
                float(rng.choice([1.0, 2.0])),
                int(rng.choice([3, 4])),
                int(rng.integers(2, 4)) if rng.random() < 0.2 else 3,
                0.5,
                1.0 if rng.random() < 0.9 else 0.6,
                rng.random() < 0.9,
                rng.random() < 0.9,
            )
            before = reference.ladders.get(owner, [])
            result = book.amend_ladder(*args)
            assert result == reference.amend_ladder(*args), i
            after = reference.ladders[owner]
            kept += sum(1 for old, new in zip(before, after, strict=False) if new == old > 0)
            sent_total += result[0]
            crossed_total += len(result[1])
            assert book.open_orders(owner) == reference.open_orders(owner), i
        elif draw < 0.75:  # mostly behind the makers' touch
            price = max(1, anchor - side * int(rng.integers(-1, 12)))
            quantity = int(rng.integers(1, 10))
            assert book.submit_limit(owner, side, price, quantity) == reference.submit_limit(
                owner, side, price, quantity
            )
        elif draw < 0.85:
            open_ids = book.open_orders(owner)
            order_id = open_ids[int(rng.integers(0, len(open_ids)))] if open_ids else -1
            assert book.cancel(order_id) == reference.cancel(order_id)
        elif draw < 0.87:
            assert book.cancel_all(owner) == reference.cancel_all(owner)
        else:
            quantity = int(rng.integers(1, 30))
            assert book.submit_market(owner, side, quantity) == reference.submit_market(owner, side, quantity)
        if i % 64 == 0:
            assert book.levels(BUY, ALL_LEVELS) == reference.levels(BUY, ALL_LEVELS)
            assert book.levels(SELL, ALL_LEVELS) == reference.levels(SELL, ALL_LEVELS)
    assert book.levels(BUY, ALL_LEVELS) == reference.levels(BUY, ALL_LEVELS)
    assert book.levels(SELL, ALL_LEVELS) == reference.levels(SELL, ALL_LEVELS)
    book.check_invariants()
    assert kept > 500 and sent_total > 1_000 and crossed_total > 20, (kept, sent_total, crossed_total)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(10, 20))
def test_matches_the_reference_book_on_many_seeds(new_book, seed):
    assert stream_against_reference(new_book(), seed, 20_000) > 1_000


@pytest.mark.slow
def test_matches_the_reference_book_on_a_very_long_stream(new_book):
    assert stream_against_reference(new_book(), 43, 1_000_000, 0.1) > 200_000


# --------------------------------------------------------------------------- hypothesis state machine
OWNERS = st.integers(0, 3)
SIDES = st.sampled_from([BUY, SELL])
# A narrow price band so that orders cross often; small quantities so that orders fill partially.
PRICES = st.integers(1, 12)
QUANTITIES = st.integers(1, 8)


class BookMachine(RuleBasedStateMachine):
    """Random submit/cancel sequences; accounting kept outside the book and checked after every step."""

    engine = "python"
    order_ids = Bundle("order_ids")

    def __init__(self):
        super().__init__()
        self.book = make_book(self.engine)
        self.submitted = 0
        self.filled = 0
        self.cancelled = 0
        self.dropped = 0
        self.limit_prices: dict[int, int] = {}
        self.last_order_id = 0  # the book's id counter, as the model expects it

    def _check_fills(self, fills, owner, side, taker_id, limit_price):
        for fill in fills:
            assert fill.quantity > 0
            assert (fill.taker, fill.taker_side, fill.taker_order_id) == (owner, side, taker_id)
            # Always at the resting maker's own limit price, never through the taker's limit.
            assert fill.price == self.limit_prices[fill.maker_order_id]
            if limit_price is not None:
                assert fill.price <= limit_price if side == BUY else fill.price >= limit_price
        prices = [fill.price for fill in fills]
        assert prices == sorted(prices, reverse=side == SELL), "taker must get the best prices first"
        self.filled += sum(fill.quantity for fill in fills)

    @rule(target=order_ids, owner=OWNERS, side=SIDES, price=PRICES, quantity=QUANTITIES)
    def submit_limit(self, owner, side, price, quantity):
        self.last_order_id += 1
        order_id, fills = self.book.submit_limit(owner, side, price, quantity)
        assert order_id == self.last_order_id
        self.limit_prices[order_id] = price
        self.submitted += quantity
        self._check_fills(fills, owner, side, order_id, price)
        unfilled = quantity - sum(fill.quantity for fill in fills)
        resting = self.book.order(order_id)
        assert resting == ((owner, side, price, unfilled) if unfilled else None)
        return order_id

    @rule(owner=OWNERS, side=SIDES, quantity=QUANTITIES, limit_price=st.none() | PRICES)
    def submit_market(self, owner, side, quantity, limit_price):
        before = len(self.book)
        fills = self.book.submit_market(owner, side, quantity, limit_price=limit_price)
        self.last_order_id += 1  # market orders take an id too
        self.submitted += quantity
        self._check_fills(fills, owner, side, self.last_order_id, limit_price)
        self.dropped += quantity - sum(fill.quantity for fill in fills)
        assert len(self.book) <= before, "a market order never rests"

    @rule(order_id=consumes(order_ids))
    def cancel(self, order_id):
        resting = self.book.order(order_id)
        removed = self.book.cancel(order_id)
        assert removed == (resting[3] if resting else 0)
        assert self.book.order(order_id) is None
        self.cancelled += removed

    @rule(
        target=order_ids,
        owner=OWNERS,
        shift=st.sampled_from([0.0, 0.0, 0.5, -3.0, 3.0]),
        half_spread=st.sampled_from([1.0, 1.5]),
        quote_ask=st.booleans(),
    )
    def amend_ladder(self, owner, shift, half_spread, quote_ask):
        # Two levels of 2 lots a side; anchored at 6 when a side is empty and nothing traded yet.
        before = {order_id: self.book.order(order_id)[3] for order_id in self.book.open_orders(owner)}
        sent, crossed = self.book.amend_ladder(
            owner, 0.0, 6.0, shift, half_spread, 1.0, 2, 2, 0.0, 1.0, True, quote_ask
        )
        new_ids = list(range(self.last_order_id + 1, self.last_order_id + 1 + sent))
        self.last_order_id += sent
        self.submitted += 2 * sent
        for fills in crossed:
            assert {(fill.taker, fill.taker_order_id in new_ids) for fill in fills} == {(owner, True)}
            for fill in fills:
                assert fill.price == self.limit_prices[fill.maker_order_id]
            self.filled += sum(fill.quantity for fill in fills)
        after = set(self.book.open_orders(owner))
        for order_id, remaining in before.items():
            if order_id in after:  # kept: untouched, since a ladder's new orders never meet its own
                assert self.book.order(order_id)[3] == remaining
            else:
                self.cancelled += remaining
        resting = [order_id for order_id in new_ids if order_id in after]
        for order_id in resting:
            self.limit_prices[order_id] = self.book.order(order_id)[2]
        return multiple(*resting)

    @rule(order_id=st.integers(-3, 0) | st.integers(10**6, 10**6 + 3))
    def cancel_unknown(self, order_id):
        assert self.book.cancel(order_id) == 0

    @rule(owner=OWNERS)
    def cancel_all(self, owner):
        expected = sum(self.book.order(order_id)[3] for order_id in self.book.open_orders(owner))
        removed = self.book.cancel_all(owner)
        assert removed == expected
        assert self.book.open_orders(owner) == []
        self.cancelled += removed

    @invariant()
    def book_is_consistent(self):
        book = self.book
        bids, asks = book.levels(BUY, ALL_LEVELS), book.levels(SELL, ALL_LEVELS)
        if bids and asks:
            assert bids[0][0] < asks[0][0], "crossed book"
            assert book.best_bid() == bids[0][0] and book.best_ask() == asks[0][0]
        assert [price for price, _ in bids] == sorted({price for price, _ in bids}, reverse=True)
        assert [price for price, _ in asks] == sorted({price for price, _ in asks})
        # Rebuild the levels from the individual orders, per owner, and check FIFO at each price.
        rebuilt: dict[tuple[int, int], list[int]] = {}
        for owner in range(4):
            open_ids = book.open_orders(owner)
            assert open_ids == sorted(open_ids)
            for order_id in open_ids:
                order_owner, side, price, remaining = book.order(order_id)
                assert order_owner == owner and remaining > 0
                rebuilt.setdefault((side, price), []).append(order_id)
        for side, levels in ((BUY, bids), (SELL, asks)):
            for price, total in levels:
                queue = book.orders_at(side, price)
                assert queue == sorted(queue), "time priority broken"
                assert sorted(queue) == sorted(rebuilt.pop((side, price)))
                assert total == sum(book.order(order_id)[3] for order_id in queue) > 0
        assert not rebuilt, "orders outside any level"
        resting = sum(total for _, total in bids + asks)
        assert self.submitted == 2 * self.filled + resting + self.cancelled + self.dropped
        assert book.volume_traded() == self.filled
        assert len(book) == sum(len(book.open_orders(owner)) for owner in range(4))
        book.check_invariants()


MACHINE_SETTINGS = settings(
    max_examples=120, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def _machine_test_case(engine: str):
    machine = type(f"BookMachine_{engine}", (BookMachine,), {"engine": engine})
    case = machine.TestCase
    case.settings = MACHINE_SETTINGS
    spec = BOOK_ENGINES[engine]
    return pytest.mark.skipif(not spec.available(), reason=f"{engine} needs {spec.requires}")(case)


TestBookMachinePython = _machine_test_case("python")
TestBookMachineFast = _machine_test_case("fast")
