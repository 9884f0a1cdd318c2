"""Tests of abm.book: exact hand-worked cases, a hypothesis state machine, and a naive oracle."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, rule
from reference_book import ReferenceBook

from abm.book import BUY, SELL, Fill, OrderBook

ALL_LEVELS = 10**9

# --------------------------------------------------------------------------- table-driven exact cases
# Operations: ("limit", owner, side, price, qty), ("market", owner, side, qty, limit_price|None),
# ("cancel", order_id), ("cancel_all", owner). Ids are the book's counter: limit and market orders both
# take the next id, starting at 1. Fills: (maker_id, maker, taker_id, taker, price, qty, taker_side),
# worked out by hand from price-time priority. Levels: (price, total qty), best first.
CASES = [
    (
        "orders rest on both sides without crossing",
        [("limit", 1, BUY, 99, 5), ("limit", 2, SELL, 101, 3)],
        [],
        [(99, 5)],
        [(101, 3)],
    ),
    (
        "buy limit sweeps two ask levels at maker prices and rests the remainder",
        [
            ("limit", 1, SELL, 101, 2),
            ("limit", 2, SELL, 102, 3),
            ("limit", 3, SELL, 103, 4),
            ("limit", 4, BUY, 102, 6),
        ],
        [(1, 1, 4, 4, 101, 2, BUY), (2, 2, 4, 4, 102, 3, BUY)],
        [(102, 1)],
        [(103, 4)],
    ),
    (
        "sell limit sweeps bids best first at the bids' prices",
        [
            ("limit", 1, BUY, 105, 1),
            ("limit", 2, BUY, 104, 1),
            ("limit", 3, BUY, 103, 1),
            ("limit", 4, SELL, 100, 5),
        ],
        [(1, 1, 4, 4, 105, 1, SELL), (2, 2, 4, 4, 104, 1, SELL), (3, 3, 4, 4, 103, 1, SELL)],
        [],
        [(100, 2)],
    ),
    (
        "FIFO within a level across two market orders",
        [
            ("limit", 1, SELL, 100, 2),
            ("limit", 2, SELL, 100, 3),
            ("limit", 3, SELL, 100, 4),
            ("market", 9, BUY, 4, None),
            ("market", 9, BUY, 2, None),
        ],
        [
            (1, 1, 4, 9, 100, 2, BUY),
            (2, 2, 4, 9, 100, 2, BUY),
            (2, 2, 5, 9, 100, 1, BUY),
            (3, 3, 5, 9, 100, 1, BUY),
        ],
        [],
        [(100, 3)],
    ),
    (
        "limit at exactly the opposite touch matches",
        [("limit", 1, BUY, 100, 3), ("limit", 2, SELL, 100, 1)],
        [(1, 1, 2, 2, 100, 1, SELL)],
        [(100, 2)],
        [],
    ),
    (
        "cancel of a partially filled order removes only its remainder",
        [("limit", 1, BUY, 50, 10), ("market", 2, SELL, 4, None), ("cancel", 1)],
        [(1, 1, 2, 2, 50, 4, SELL)],
        [],
        [],
    ),
    (
        "market order into an empty side fills nothing but still takes an id",
        [("market", 1, BUY, 5, None), ("limit", 2, SELL, 10, 1), ("market", 3, BUY, 1, None)],
        [(2, 2, 3, 3, 10, 1, BUY)],
        [],
        [],
    ),
    (
        "market order into a thin side: the unfilled rest is dropped, never rests",
        [("limit", 1, SELL, 100, 2), ("limit", 1, SELL, 101, 1), ("market", 2, BUY, 10, None)],
        [(1, 1, 3, 2, 100, 2, BUY), (2, 1, 3, 2, 101, 1, BUY)],
        [],
        [],
    ),
    (
        "market buy with limit_price stops at the limit",
        [
            ("limit", 1, SELL, 100, 2),
            ("limit", 1, SELL, 101, 2),
            ("limit", 1, SELL, 103, 2),
            ("market", 2, BUY, 10, 101),
        ],
        [(1, 1, 4, 2, 100, 2, BUY), (2, 1, 4, 2, 101, 2, BUY)],
        [],
        [(103, 2)],
    ),
    (
        "market sell with limit_price stops at the limit",
        [("limit", 1, BUY, 50, 1), ("limit", 1, BUY, 49, 1), ("market", 2, SELL, 5, 50)],
        [(1, 1, 3, 2, 50, 1, SELL)],
        [(49, 1)],
        [],
    ),
    (
        "market order whose limit is better than the touch fills nothing",
        [("limit", 1, SELL, 100, 2), ("market", 2, BUY, 1, 99)],
        [],
        [],
        [(100, 2)],
    ),
    (
        "self-trade is reported as an ordinary fill",
        [("limit", 7, SELL, 100, 2), ("limit", 7, BUY, 100, 1)],
        [(1, 7, 2, 7, 100, 1, BUY)],
        [],
        [(100, 1)],
    ),
    (
        "cancel_all removes every order of one owner only",
        [
            ("limit", 1, BUY, 99, 1),
            ("limit", 2, BUY, 99, 2),
            ("limit", 1, BUY, 98, 3),
            ("limit", 1, SELL, 101, 4),
            ("cancel_all", 1),
        ],
        [],
        [(99, 2)],
        [],
    ),
    (
        "cancelled order inside a queue loses its place, the rest keep FIFO",
        [
            ("limit", 1, SELL, 100, 1),
            ("limit", 2, SELL, 100, 2),
            ("limit", 3, SELL, 100, 3),
            ("cancel", 2),
            ("market", 4, BUY, 3, None),
        ],
        [(1, 1, 4, 4, 100, 1, BUY), (3, 3, 4, 4, 100, 2, BUY)],
        [],
        [(100, 1)],
    ),
    (
        "cancel of a middle level leaves the outer levels",
        [("limit", 1, BUY, 100, 1), ("limit", 1, BUY, 99, 1), ("limit", 1, BUY, 98, 1), ("cancel", 2)],
        [],
        [(100, 1), (98, 1)],
        [],
    ),
    (
        "cancel of unknown, filled and already cancelled ids changes nothing",
        [
            ("limit", 1, SELL, 100, 1),
            ("market", 2, BUY, 1, None),
            ("limit", 1, BUY, 90, 4),
            ("cancel", 3),
            ("cancel", 3),
            ("cancel", 1),
            ("cancel", 999),
        ],
        [(1, 1, 2, 2, 100, 1, BUY)],
        [],
        [],
    ),
]


def _apply(book, operation):
    """Apply one table operation to a book; return (fills, cancelled quantity)."""
    kind, *args = operation
    if kind == "limit":
        return book.submit_limit(*args)[1], 0
    if kind == "market":
        owner, side, quantity, limit_price = args
        return book.submit_market(owner, side, quantity, limit_price=limit_price), 0
    if kind == "cancel":
        return [], book.cancel(*args)
    if kind == "cancel_all":
        return [], book.cancel_all(*args)
    if kind == "replace_passive":
        owner, side, offset, quantity, reference = args
        return book.replace_with_passive(owner, side, offset, quantity, reference)[1], 0
    if kind == "replace_market":
        return book.replace_with_market(*args), 0
    raise ValueError(kind)


def _fast_book():
    pytest.importorskip("numba")
    from abm.book.fast import FastOrderBook

    return FastOrderBook()


@pytest.mark.parametrize("make_book", [OrderBook, _fast_book], ids=["pure", "fast"])
@pytest.mark.parametrize(
    ("operations", "expected_fills", "expected_bids", "expected_asks"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_exact_cases(make_book, operations, expected_fills, expected_bids, expected_asks):
    book = make_book()
    fills = []
    for operation in operations:
        fills.extend(_apply(book, operation)[0])
    assert fills == [Fill(*fill) for fill in expected_fills]
    assert book.levels(BUY, ALL_LEVELS) == expected_bids
    assert book.levels(SELL, ALL_LEVELS) == expected_asks
    book.check_invariants()


@pytest.mark.parametrize(
    ("operations", "expected_fills", "expected_bids", "expected_asks"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_exact_cases_agree_with_reference(operations, expected_fills, expected_bids, expected_asks):
    # Guards the oracle itself: the naive book must reproduce the hand-worked answers too.
    reference = ReferenceBook()
    fills = []
    for operation in operations:
        fills.extend(_apply(reference, operation)[0])
    assert fills == [Fill(*fill) for fill in expected_fills]
    assert reference.levels(BUY, ALL_LEVELS) == expected_bids
    assert reference.levels(SELL, ALL_LEVELS) == expected_asks


def test_cancel_returns_the_remaining_quantity():
    book = OrderBook()
    order_id, _ = book.submit_limit(1, BUY, 50, 10)
    book.submit_market(2, SELL, 4)
    assert book.order(order_id) == (1, BUY, 50, 6)
    assert book.cancel(order_id) == 6
    assert book.cancel(order_id) == 0
    assert book.order(order_id) is None
    assert len(book) == 0


def test_cancel_all_returns_total_and_leaves_other_owners():
    book = OrderBook()
    book.submit_limit(1, BUY, 99, 1)
    other_id, _ = book.submit_limit(2, BUY, 99, 2)
    book.submit_limit(1, BUY, 98, 3)
    book.submit_limit(1, SELL, 101, 4)
    assert book.cancel_all(1) == 1 + 3 + 4
    assert book.cancel_all(1) == 0
    assert book.cancel_all(12345) == 0
    assert book.open_orders(1) == []
    assert book.open_orders(2) == [other_id]
    assert book.orders_at(BUY, 99) == [other_id]
    assert len(book) == 1


def test_fully_filled_limit_order_has_an_id_but_does_not_rest():
    book = OrderBook()
    book.submit_limit(1, SELL, 100, 5)
    order_id, fills = book.submit_limit(2, BUY, 100, 5)
    assert order_id == 2
    assert fills == [Fill(1, 1, 2, 2, 100, 5, BUY)]
    assert book.order(order_id) is None
    assert book.open_orders(2) == []
    assert len(book) == 0
    assert book.best_bid() is None and book.best_ask() is None


def test_order_ids_are_per_book():
    first, second = OrderBook(), OrderBook()
    assert first.submit_limit(1, BUY, 10, 1)[0] == 1
    assert first.submit_limit(1, BUY, 10, 1)[0] == 2
    assert second.submit_limit(1, BUY, 10, 1)[0] == 1


def test_open_orders_in_submission_order_and_order_details():
    book = OrderBook()
    ids = [book.submit_limit(3, side, price, 2)[0] for side, price in [(BUY, 90), (SELL, 120), (BUY, 95)]]
    book.submit_limit(4, BUY, 96, 1)
    assert book.open_orders(3) == ids
    assert book.open_orders(99) == []
    assert book.order(ids[1]) == (3, SELL, 120, 2)
    assert len(book) == 4


def test_last_price_volume_and_mid():
    book = OrderBook()
    assert book.last_price is None and book.mid() is None and book.volume_traded() == 0
    book.submit_limit(1, SELL, 101, 3)
    assert book.mid() is None  # one side only
    book.submit_limit(1, BUY, 98, 3)
    assert book.mid() == (98 + 101) / 2
    book.submit_market(2, BUY, 2)
    book.submit_market(2, SELL, 1)
    assert book.last_price == 98
    assert book.volume_traded() == 3


def _depth_book():
    """Bids 100x3 (orders of 1 and 2), 99x4, 97x5; asks 102x2, 103x3, 106x7."""
    book = OrderBook()
    for side, price, quantity in [
        (BUY, 100, 1),
        (BUY, 100, 2),
        (BUY, 99, 4),
        (BUY, 97, 5),
        (SELL, 102, 2),
        (SELL, 103, 3),
        (SELL, 106, 7),
    ]:
        book.submit_limit(1, side, price, quantity)
    return book


@pytest.mark.parametrize(
    ("side", "within_ticks", "expected"),
    [
        (BUY, 0, 3),
        (BUY, 1, 3 + 4),
        (BUY, 2, 3 + 4),  # 98 is empty
        (BUY, 3, 3 + 4 + 5),
        (SELL, 0, 2),
        (SELL, 1, 2 + 3),
        (SELL, 3, 2 + 3),  # 104, 105 empty
        (SELL, 4, 2 + 3 + 7),
        (SELL, 1000, 12),
    ],
)
def test_depth_exact(side, within_ticks, expected):
    assert _depth_book().depth(side, within_ticks) == expected


@pytest.mark.parametrize(
    ("side", "reference", "within_ticks", "expected"),
    [
        (BUY, 101.0, 1, 3),  # prices 100..102
        (BUY, 101.0, 2, 3 + 4),  # 99..103
        (BUY, 98.5, 1, 4),  # 97.5..99.5 -> 99 only
        (BUY, 98.0, 1, 4 + 5),  # 97..99 inclusive at both ends
        (BUY, 101.0, 0, 0),  # 101 exactly: no bid there
        (SELL, 101.0, 1, 2),  # 100..102
        (SELL, 104.5, 1, 0),  # 103.5..105.5
        (SELL, 104.5, 2, 3 + 7),  # 102.5..106.5 -> 103, 106
        (SELL, 50.0, 10, 0),
    ],
)
def test_depth_near_exact(side, reference, within_ticks, expected):
    assert _depth_book().depth_near(side, reference, within_ticks) == expected


def test_depth_on_empty_side_is_zero():
    book = OrderBook()
    assert book.depth(BUY, 5) == 0
    assert book.depth_near(SELL, 100.0, 5) == 0
    assert book.levels(SELL, 3) == []


def test_levels_best_first_and_truncated():
    book = _depth_book()
    assert book.levels(BUY, 2) == [(100, 3), (99, 4)]
    assert book.levels(SELL, 10) == [(102, 2), (103, 3), (106, 7)]
    assert book.levels(BUY, 0) == []
    assert book.mid() == 101.0


@pytest.mark.parametrize(
    ("side", "quantity", "expected"),
    [
        (BUY, 4, (4, 102 * 2 + 103 * 2)),
        (BUY, 100, (12, 102 * 2 + 103 * 3 + 106 * 7)),
        (SELL, 5, (5, 100 * 3 + 99 * 2)),
        (SELL, 12, (12, 100 * 3 + 99 * 4 + 97 * 5)),
    ],
)
def test_market_order_cost_matches_actual_fills(side, quantity, expected):
    book = _depth_book()
    before = (book.levels(BUY, ALL_LEVELS), book.levels(SELL, ALL_LEVELS), len(book))
    assert book.market_order_cost(side, quantity) == expected
    assert (book.levels(BUY, ALL_LEVELS), book.levels(SELL, ALL_LEVELS), len(book)) == before
    fills = book.submit_market(2, side, quantity)
    actual = (sum(fill.quantity for fill in fills), sum(fill.price * fill.quantity for fill in fills))
    assert actual == expected


def test_numpy_integers_are_accepted_and_stored_as_python_ints():
    book = OrderBook()
    order_id, _ = book.submit_limit(np.int64(1), np.int64(SELL), np.int64(100), np.int32(3))
    fills = book.submit_market(np.int64(2), np.int8(BUY), np.int64(1), limit_price=np.int64(100))
    assert fills == [Fill(1, 1, 2, 2, 100, 1, BUY)]
    assert all(type(value) is int for value in fills[0])
    assert all(type(value) is int for value in book.order(order_id))
    assert type(book.best_ask()) is int


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda book: book.submit_limit(1, 0, 100, 1),
            ValueError,
            r"side must be BUY \(\+1\) or SELL \(-1\)",
        ),
        (lambda book: book.submit_limit(1, 2, 100, 1), ValueError, "side must be"),
        (lambda book: book.submit_limit(1, BUY, 0, 1), ValueError, "price must be >= 1 tick"),
        (lambda book: book.submit_limit(1, SELL, -5, 1), ValueError, "price must be >= 1 tick"),
        (lambda book: book.submit_limit(1, BUY, 100, 0), ValueError, "quantity must be a positive"),
        (lambda book: book.submit_limit(1, BUY, 100, -3), ValueError, "quantity must be a positive"),
        (lambda book: book.submit_limit(1, BUY, 100.5, 1), TypeError, "price must be an integer"),
        (lambda book: book.submit_limit(1, BUY, 100, 1.0), TypeError, "quantity must be an integer"),
        (lambda book: book.submit_limit(1.0, BUY, 100, 1), TypeError, "owner must be an integer"),
        (lambda book: book.submit_limit(1, 1.0, 100, 1), TypeError, "side must be an integer"),
        (lambda book: book.submit_market(1, -2, 1), ValueError, "side must be"),
        (lambda book: book.submit_market(1, BUY, 0), ValueError, "quantity must be a positive"),
        (
            lambda book: book.submit_market(1, BUY, 1, limit_price=0),
            ValueError,
            "limit_price must be None or >= 1",
        ),
        (
            lambda book: book.submit_market(1, BUY, 1, limit_price=1.5),
            TypeError,
            "limit_price must be an integer",
        ),
        (lambda book: book.depth(0, 1), ValueError, "side must be"),
        (lambda book: book.depth(BUY, -1), ValueError, "within_ticks must be >= 0"),
        (lambda book: book.depth_near(SELL, 100.0, -1), ValueError, "within_ticks must be >= 0"),
        (lambda book: book.levels(BUY, -1), ValueError, "n must be >= 0"),
        (lambda book: book.levels(3, 1), ValueError, "side must be"),
        (lambda book: book.market_order_cost(0, 1), ValueError, "side must be"),
        (lambda book: book.market_order_cost(BUY, 0), ValueError, "quantity must be a positive"),
        (lambda book: book.orders_at(0, 100), ValueError, "side must be"),
    ],
)
def test_bad_arguments_raise(call, error, message):
    book = _depth_book()
    before = (book.levels(BUY, ALL_LEVELS), book.levels(SELL, ALL_LEVELS), len(book))
    with pytest.raises(error, match=message):
        call(book)
    # A rejected call must not have changed the book or consumed an order id.
    assert (book.levels(BUY, ALL_LEVELS), book.levels(SELL, ALL_LEVELS), len(book)) == before
    assert book.submit_limit(1, BUY, 1, 1)[0] == 8


def test_compaction_of_cancelled_entries_keeps_queue_order():
    # Many cancels behind a long-lived head order: dead entries are compacted, priority unchanged.
    book = OrderBook()
    head, _ = book.submit_limit(1, SELL, 100, 1)
    survivors = [head]
    for step in range(200):
        order_id, _ = book.submit_limit(2, SELL, 100, 1)
        if step % 10 == 0:
            survivors.append(order_id)
        else:
            book.cancel(order_id)
    assert book.orders_at(SELL, 100) == survivors
    assert book.levels(SELL, 1) == [(100, len(survivors))]
    book.check_invariants()
    fills = book.submit_market(3, BUY, len(survivors))
    assert [fill.maker_order_id for fill in fills] == survivors


def test_check_invariants_detects_a_broken_total():
    book = _depth_book()
    book._bid_levels[100][0] += 1  # corrupt on purpose
    with pytest.raises(AssertionError, match="total"):
        book.check_invariants()


# --------------------------------------------------------------------------- hypothesis state machine
OWNERS = st.integers(0, 3)
SIDES = st.sampled_from([BUY, SELL])
# A narrow price band so that orders cross often; small quantities so that orders fill partially.
PRICES = st.integers(1, 12)
QUANTITIES = st.integers(1, 8)


class BookMachine(RuleBasedStateMachine):
    """Random submit/cancel sequences; accounting kept outside the book and checked after every step."""

    order_ids = Bundle("order_ids")

    def __init__(self):
        super().__init__()
        self.book = OrderBook()
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


TestBookMachine = BookMachine.TestCase
TestBookMachine.settings = settings(
    max_examples=150, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


# --------------------------------------------------------------------------- comparison with the oracle
OWNER_COUNT = 20


def _random_stream_against_reference(seed: int, operations: int) -> int:
    """Drive both books with one random stream (70% limit near the touch, 20% cancel, 10% market).

    Compares every return value and both sides' full levels after every operation; returns the
    number of fills seen, so the caller can check the stream actually traded.
    """
    rng = np.random.default_rng(seed)
    book, reference = OrderBook(), ReferenceBook()
    anchor = 1000  # a slowly drifting centre for limit prices
    fill_count = 0
    for _ in range(operations):
        if rng.random() < 0.05:
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
        assert book.levels(BUY, ALL_LEVELS) == reference.levels(BUY, ALL_LEVELS)
        assert book.levels(SELL, ALL_LEVELS) == reference.levels(SELL, ALL_LEVELS)
        assert len(book) == len(reference)
        assert book.last_price == reference.last_price
        assert book.volume_traded() == reference.volume
    book.check_invariants()
    return fill_count


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_matches_reference_book_on_random_streams(seed):
    assert _random_stream_against_reference(seed, 20_000) > 1_000


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(10, 30))
def test_matches_reference_book_on_many_seeds(seed):
    assert _random_stream_against_reference(seed, 20_000) > 1_000


# --------------------------------------------------------------------------- level reuse, larger streams
def test_emptied_level_is_reused_with_fifo_and_exact_depth():
    book = OrderBook()
    first, _ = book.submit_limit(1, SELL, 100, 2)
    book.submit_market(2, BUY, 2)  # empties the level: unlisted, kept for reuse
    assert book.levels(SELL, ALL_LEVELS) == [] and book.orders_at(SELL, 100) == []
    book.check_invariants()
    second, _ = book.submit_limit(3, SELL, 100, 4)
    third, _ = book.submit_limit(4, SELL, 100, 1)
    assert book.levels(SELL, ALL_LEVELS) == [(100, 5)] and book.best_ask() == 100
    assert book.orders_at(SELL, 100) == [second, third]
    book.cancel(second)
    book.cancel(third)  # emptied by cancels, with dead entries in its queue
    assert book.best_ask() is None and book.orders_at(SELL, 100) == []
    book.check_invariants()
    fourth, _ = book.submit_limit(5, SELL, 100, 3)
    fills = book.submit_market(6, BUY, 5)
    assert [(fill.maker_order_id, fill.quantity) for fill in fills] == [(fourth, 3)]
    assert first < second < third < fourth
    book.check_invariants()


def test_emptied_levels_stay_bounded_when_the_price_wanders():
    book = OrderBook()
    for step in range(5_000):
        # One resting order per price, filled at once by the next step: a steady upward walk.
        book.submit_limit(1, BUY, 1_000 + step, 1)
        book.submit_market(2, SELL, 1)
        book.submit_limit(1, SELL, 10_000 + step, 1)
        book.submit_market(2, BUY, 1)
    assert len(book) == 0
    assert len(book._bid_levels) <= 2 * len(book._bid_keys) + 65
    assert len(book._ask_levels) <= 2 * len(book._ask_keys) + 65
    book.check_invariants()


def test_check_invariants_detects_a_wrong_dead_count():
    book = _depth_book()
    book._bid_levels[100][2] += 1  # corrupt on purpose
    with pytest.raises(AssertionError, match="dead count"):
        book.check_invariants()


def _long_stream_against_reference(seed: int, operations: int, drift: float) -> int:
    """A longer stream whose anchor wanders ``drift`` of the time (levels empty, refill and get dropped).

    Every return value is compared with the reference; the full levels every 64 operations and the
    internal invariants every 4,096. Returns the number of fills.
    """
    rng = np.random.default_rng(seed)
    count = operations
    draw, pick, side_draw, steps = rng.random(count), rng.random(count), rng.random(count), rng.random(count)
    owners = rng.integers(0, OWNER_COUNT, count).tolist()
    offsets = rng.integers(-2, 8, count).tolist()
    quantities = rng.integers(1, 10, count).tolist()
    market_quantities = rng.integers(1, 40, count).tolist()
    market_limits = rng.integers(0, 6, count).tolist()
    book, reference = OrderBook(), ReferenceBook()
    anchor = 10_000
    fill_count = 0
    for i in range(count):
        if steps[i] < drift:
            anchor += 3 if steps[i] < drift / 2 else -3
        owner = owners[i]
        side = BUY if side_draw[i] < 0.5 else SELL
        if draw[i] < 0.70:
            price = anchor - side * offsets[i]
            result = book.submit_limit(owner, side, price, quantities[i])
            assert result == reference.submit_limit(owner, side, price, quantities[i])
            fill_count += len(result[1])
        elif draw[i] < 0.89:
            open_ids = book.open_orders(owner)
            assert open_ids == reference.open_orders(owner)
            order_id = open_ids[int(pick[i] * len(open_ids))] if open_ids else -1
            assert book.cancel(order_id) == reference.cancel(order_id)
        elif draw[i] < 0.90:
            assert book.cancel_all(owner) == reference.cancel_all(owner)
        else:
            limit_price = None if pick[i] < 0.5 else anchor + side * market_limits[i]
            quantity = market_quantities[i]
            fills = book.submit_market(owner, side, quantity, limit_price=limit_price)
            assert fills == reference.submit_market(owner, side, quantity, limit_price=limit_price)
            fill_count += len(fills)
        if i % 64 == 0:
            assert book.levels(BUY, ALL_LEVELS) == reference.levels(BUY, ALL_LEVELS)
            assert book.levels(SELL, ALL_LEVELS) == reference.levels(SELL, ALL_LEVELS)
            assert (book.last_price, book.volume_traded()) == (reference.last_price, reference.volume)
        if i % 4_096 == 0:
            book.check_invariants()
    assert book.levels(BUY, ALL_LEVELS) == reference.levels(BUY, ALL_LEVELS)
    assert book.levels(SELL, ALL_LEVELS) == reference.levels(SELL, ALL_LEVELS)
    assert len(book) == len(reference)
    book.check_invariants()
    return fill_count


@pytest.mark.parametrize(("seed", "drift"), [(41, 0.05), (42, 0.3)])
def test_matches_reference_book_on_a_long_wandering_stream(seed, drift):
    assert _long_stream_against_reference(seed, 60_000, drift) > 10_000


@pytest.mark.slow
def test_matches_reference_book_on_a_very_long_stream():
    assert _long_stream_against_reference(43, 1_000_000, 0.1) > 200_000


# --------------------------------------------------------------------------- depth profile (both engines)
@pytest.mark.parametrize("make_book", [OrderBook, _fast_book], ids=["pure", "fast"])
@pytest.mark.parametrize(
    ("reference", "max_levels", "expected"),
    [
        # bucket = 3 + floor((price - reference) / 2): bids 99 -> 2, 97 -> 1, 90 -> -2 (outside, stop);
        # asks 101 -> 3, 104 -> 5, 120 -> 13 (outside, stop)
        (100.0, 50, [0, 3, 5, 4, 0, 1]),
        (100.0, 1, [0, 0, 5, 4, 0, 0]),  # the best level of each side only
        # reference 99: the bid at the reference goes to the bucket below it (2), 97 -> 2, 90 -> -2;
        # asks 101 -> 4, 104 -> 5, 120 -> 13
        (99.0, 50, [0, 0, 8, 0, 4, 1]),
        # reference 101: bids 99 -> 2, 97 -> 1, 90 -> -3; the ask at the reference goes above it (3),
        # 104 -> 4, 120 -> 12
        (101.0, 50, [0, 3, 5, 4, 1, 0]),
    ],
)
def test_depth_profile_by_hand(make_book, reference, max_levels, expected):
    book = make_book()
    for price, lots in ((99, 5), (97, 3), (90, 2)):
        book.submit_limit(1, BUY, price, lots)
    for price, lots in ((101, 4), (104, 1), (120, 7)):
        book.submit_limit(2, SELL, price, lots)
    assert book.depth_profile(reference, 2.0, 3, max_levels) == expected
    # Into a given row (a table's preallocated row): its old contents are replaced, not added to.
    row = np.full(6, 9, dtype=np.int64)
    assert book.depth_profile(reference, 2.0, 3, max_levels, out=row) is row
    assert row.tolist() == expected


# --------------------------------------------------------------------------- passive price, replace
def _passive_book(make_book, bids=(), asks=(), trade_at=None):
    book = make_book()
    if trade_at is not None:  # one trade leaves the last price; both orders are gone after it
        book.submit_limit(8, SELL, trade_at, 1)
        book.submit_market(9, BUY, 1)
    for price in bids:
        book.submit_limit(1, BUY, price, 2)
    for price in asks:
        book.submit_limit(2, SELL, price, 2)
    return book


@pytest.mark.parametrize("make_book", [OrderBook, _fast_book], ids=["pure", "fast"])
@pytest.mark.parametrize(
    ("bids", "asks", "trade_at", "side", "offset", "reference", "expected"),
    [
        ((99,), (101,), None, BUY, 0, 50.0, 99),  # at the touch
        ((99,), (101,), None, BUY, 3, 50.0, 96),  # 3 ticks behind
        ((99,), (101,), None, BUY, -1, 50.0, 100),  # improves by one: 100 <= ask - 1
        ((99,), (101,), None, BUY, -5, 50.0, 100),  # would cross: one tick inside the ask
        ((99,), (101,), None, SELL, 2, 50.0, 103),
        ((99,), (101,), None, SELL, -5, 50.0, 100),  # one tick inside the bid
        ((), (), None, BUY, 0, 50.4, 49),  # empty book, no trade: floor(50.4) - 1
        ((), (), None, SELL, 0, 50.4, 52),  # ceil(50.4) + 1
        ((), (), None, BUY, 60, 50.4, 1),  # never below one tick
        ((), (75,), 70, BUY, 2, 50.0, 67),  # no bids: behind the last trade, 70 - 1 - 2
        ((60,), (), 70, SELL, 0, 50.0, 71),  # no asks: 70 + 1, above the bid anyway
        ((72,), (), 70, SELL, 0, 50.0, 73),  # 71 would cross the bid at 72: one tick above it
    ],
)
def test_passive_price_by_hand(make_book, bids, asks, trade_at, side, offset, reference, expected):
    book = _passive_book(make_book, bids, asks, trade_at)
    assert book.passive_price(side, offset, reference) == expected
    # replace_with_passive rests exactly there (owner 5 has nothing to cancel)
    order_id, fills = book.replace_with_passive(5, side, offset, 4, reference)
    assert fills == []
    assert book.order(order_id) == (5, side, expected, 4)


@pytest.mark.parametrize("make_book", [OrderBook, _fast_book], ids=["pure", "fast"])
def test_replace_cancels_first_then_prices_on_the_book_it_leaves(make_book):
    book = _passive_book(make_book, bids=(97,), asks=(103,))
    own_bid, _ = book.submit_limit(5, BUY, 99, 3)  # the owner's bid is the best bid
    own_ask, _ = book.submit_limit(5, SELL, 102, 1)
    order_id, fills = book.replace_with_passive(5, BUY, 0, 2, 50.0)
    assert fills == []
    assert book.order(own_bid) is None and book.order(own_ask) is None
    assert book.order(order_id) == (5, BUY, 97, 2)  # behind the touch left after the cancel: 97
    fills = book.replace_with_market(5, SELL, 3)  # cancels its new bid, then sells into the bids
    assert [(fill.price, fill.quantity, fill.maker) for fill in fills] == [(97, 2, 1)]
    assert book.open_orders(5) == []


@pytest.mark.parametrize("make_book", [OrderBook, _fast_book], ids=["pure", "fast"])
def test_passive_price_refuses_a_bad_side_or_reference(make_book):
    book = _passive_book(make_book, bids=(99,), asks=(101,))
    kept, _ = book.submit_limit(5, BUY, 98, 1)
    with pytest.raises(ValueError, match="side must be"):
        book.passive_price(0, 1, 50.0)
    with pytest.raises(ValueError, match="reference must be a finite price"):
        book.passive_price(BUY, 1, float("nan"))
    with pytest.raises(ValueError, match="reference must be a finite price"):
        book.replace_with_passive(5, BUY, 1, 2, float("inf"))
    assert book.order(kept) == (5, BUY, 98, 1)  # the refused replace cancelled nothing


@pytest.mark.parametrize("seed", [4, 5])
def test_replace_is_cancel_all_then_the_order(seed):
    # The specification of the two replace calls, on a seeded stream: one book takes them, the other
    # the calls they stand for; every return value and the books' states agree.
    rng = np.random.default_rng(seed)
    replacing, composed = OrderBook(), OrderBook()
    for _ in range(4_000):
        owner = int(rng.integers(0, 6))
        side = BUY if rng.random() < 0.5 else SELL
        quantity = int(rng.integers(1, 8))
        draw = rng.random()
        if draw < 0.45:
            price = max(1, 50 - side * int(rng.integers(-3, 6)))
            assert replacing.submit_limit(owner, side, price, quantity) == composed.submit_limit(
                owner, side, price, quantity
            )
        elif draw < 0.8:
            offset, reference = int(rng.integers(-2, 5)), 50.0 + rng.normal(0, 3)
            composed.cancel_all(owner)
            expected = composed.submit_limit(
                owner, side, composed.passive_price(side, offset, reference), quantity
            )
            assert replacing.replace_with_passive(owner, side, offset, quantity, reference) == expected
        else:
            composed.cancel_all(owner)
            expected = composed.submit_market(owner, side, quantity)
            assert replacing.replace_with_market(owner, side, quantity) == expected
    for side in (BUY, SELL):
        assert replacing.levels(side, ALL_LEVELS) == composed.levels(side, ALL_LEVELS)
    assert replacing.volume_traded() == composed.volume_traded() > 1_000


@pytest.mark.parametrize("make_book", [OrderBook, _fast_book], ids=["pure", "fast"])
@pytest.mark.parametrize(
    ("bids", "asks", "trade_at", "anchor_weight", "expected"),
    [
        ((99,), (102,), None, 0.0, 100.5),  # the mid
        ((99,), (102,), None, 0.25, 0.75 * 100.5 + 0.25 * 80.0),  # blended with the anchor
        ((), (102,), 70, 0.0, 70.0),  # one side empty: the last trade
        ((), (), None, 0.0, 80.0),  # no book, no trade: the anchor
        ((), (), None, 0.5, 80.0),
    ],
)
def test_quote_reference_by_hand(make_book, bids, asks, trade_at, anchor_weight, expected):
    book = _passive_book(make_book, bids, asks, trade_at)
    assert book.quote_reference(anchor_weight, 80.0) == expected


LADDER = (1.5, 1.25, 4, 3, 0.5, 0.9, True, True)  # half spread, spacing, levels, size, growth, scale, sides


@pytest.mark.parametrize("make_book", [OrderBook, _fast_book], ids=["pure", "fast"])
def test_requote_cancels_then_quotes_around_the_mid_it_leaves(make_book):
    book = _passive_book(make_book, bids=(96,), asks=(106,))
    book.submit_limit(5, BUY, 99, 2)  # the maker's own quotes set the mid (100) before the requote
    book.submit_limit(5, SELL, 101, 2)
    sent, crossed = book.requote_ladder(5, 0.0, 80.0, 0.5, *LADDER)
    # after the cancel the mid is (96 + 106) / 2 = 101, shifted by 0.5: reference 100.5; level k at
    # offset 1.5 + 1.25 k and size int(3 (1 + 0.5 k) 0.9) = 2, 4, 5, 6: bids floor(99, 97.75, 96.5,
    # 95.25) = 99, 97, 96, 95; asks ceil(102, 103.25, 104.5, 105.75) = 102, 104, 105, 106
    assert (sent, crossed) == (8, [])
    assert book.levels(BUY, 10) == [(99, 2), (97, 4), (96, 5 + 2), (95, 6)]
    assert book.levels(SELL, 10) == [(102, 2), (104, 4), (105, 5), (106, 6 + 2)]


@pytest.mark.parametrize("seed", [6, 7])
def test_requote_is_cancel_all_then_the_ladder(seed):
    rng = np.random.default_rng(seed)
    requoting, composed = OrderBook(), OrderBook()
    for _ in range(3_000):
        owner = int(rng.integers(0, 5))
        side = BUY if rng.random() < 0.5 else SELL
        if rng.random() < 0.7:
            price, quantity = max(1, 50 - side * int(rng.integers(-3, 6))), int(rng.integers(1, 8))
            assert requoting.submit_limit(owner, side, price, quantity) == composed.submit_limit(
                owner, side, price, quantity
            )
            continue
        weight, anchor, shift = (
            float(rng.choice([0.0, 0.3])),
            50.0 + rng.normal(0, 4),
            float(rng.normal(0, 2)),
        )
        ladder = (1.0 + rng.random(), 1.0, 3, int(rng.integers(1, 4)), 0.5, 1.0, True, rng.random() < 0.8)
        composed.cancel_all(owner)
        expected = composed.submit_ladder(owner, composed.quote_reference(weight, anchor) - shift, *ladder)
        assert requoting.requote_ladder(owner, weight, anchor, shift, *ladder) == expected
    for side in (BUY, SELL):
        assert requoting.levels(side, ALL_LEVELS) == composed.levels(side, ALL_LEVELS)
    assert requoting.volume_traded() == composed.volume_traded() > 500
