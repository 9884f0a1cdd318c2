"""The compiled book (abm.book.fast) against the pure book: identical ids, fills and states.

Every comparison drives both engines with the same seeded random stream and compares every return
value and the full state, as exchange-core compares its book with a naive one. The hand-worked table
cases, the error table and the state machine run on both engines in test_book_conformance.py and
test_book_reference.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from book_cases import ALL_LEVELS, apply_operation

from abm.book import BUY, SELL, Fill, OrderBook

pytest.importorskip("numba")

from abm.book.fast import CANCEL, CANCEL_ALL, LIMIT, MARKET, MAX_PRICE_TICKS, FastOrderBook  # noqa: E402

OWNERS = 12


def _same_state(fast: FastOrderBook, pure: OrderBook, anchor: int) -> None:
    for side in (BUY, SELL):
        levels = pure.levels(side, ALL_LEVELS)
        assert fast.levels(side, ALL_LEVELS) == levels
        for price, _ in levels:
            assert fast.orders_at(side, price) == pure.orders_at(side, price)
        for within in (0, 3, 50):
            assert fast.depth(side, within) == pure.depth(side, within)
        assert fast.depth_near(side, anchor + 0.5, 4) == pure.depth_near(side, anchor + 0.5, 4)
        assert fast.market_order_cost(side, 25) == pure.market_order_cost(side, 25)
    for reference, width, levels in ((anchor + 0.5, 1.0, 50), (anchor, 2.5, 4), (anchor - 7.25, 0.75, 1_000)):
        assert fast.depth_profile(reference, width, 6, levels) == pure.depth_profile(
            reference, width, 6, levels
        )
    for owner in range(OWNERS):
        ids = pure.open_orders(owner)
        assert fast.open_orders(owner) == ids
        assert [fast.order(i) for i in ids] == [pure.order(i) for i in ids]
    assert (fast.best_bid(), fast.best_ask(), fast.mid()) == (pure.best_bid(), pure.best_ask(), pure.mid())
    assert (fast.last_price, fast.volume_traded(), len(fast)) == (
        pure.last_price,
        pure.volume_traded(),
        len(pure),
    )


def _random_operation(rng, anchor: int, pure: OrderBook, replace: bool = True):
    """One operation of the standard mix, with cancels of live, stale and unknown ids.

    ``replace``: also the replace calls (single calls only: a batch has no such operation).
    """
    owner = int(rng.integers(0, OWNERS))
    side = BUY if rng.random() < 0.5 else SELL
    draw = rng.random()
    if draw < 0.65:
        return (
            "limit",
            owner,
            side,
            max(1, anchor - side * int(rng.integers(-2, 8))),
            int(rng.integers(1, 10)),
        )
    if draw < 0.85:
        open_ids = pure.open_orders(owner)
        if open_ids and rng.random() < 0.8:
            return ("cancel", open_ids[int(rng.integers(0, len(open_ids)))])
        return ("cancel", int(rng.integers(-3, 10_000)))
    if draw < 0.88:
        return ("cancel_all", owner)
    if replace and draw < 0.92:  # replace an owner's orders; the reference matters only on an empty side
        return (
            "replace_passive",
            owner,
            side,
            int(rng.integers(-3, 6)),
            int(rng.integers(1, 10)),
            anchor + 0.3,
        )
    if replace and draw < 0.94:
        return ("replace_market", owner, side, int(rng.integers(1, 20)))
    limit_price = None if rng.random() < 0.5 else max(1, anchor + side * int(rng.integers(0, 6)))
    return ("market", owner, side, int(rng.integers(1, 40)), limit_price)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_single_calls_match_the_pure_book(seed):
    rng = np.random.default_rng(seed)
    fast, pure = FastOrderBook(), OrderBook()
    anchor, fills = 60, 0  # near 1 tick so that clamped prices and level-1 scans are exercised
    for step in range(6_000):
        if rng.random() < 0.05:
            anchor = max(3, anchor + (1 if rng.random() < 0.5 else -1))
        if rng.random() < 0.01:  # a maker's requote: cancel, then a ladder around the mid left
            args = (
                int(rng.integers(0, OWNERS)),
                float(rng.choice([0.0, 0.2])),
                anchor + rng.normal(0, 2),
                float(rng.normal(0, 2)),
                1.5,
                1.25,
                6,
                3,
                0.5,
                0.9,
                True,
                rng.random() < 0.7,
            )
            assert fast.requote_ladder(*args) == pure.requote_ladder(*args)
        elif rng.random() < 0.03:  # a maker amends its ladder (owners 0-2 keep theirs steady)
            owner = int(rng.integers(0, OWNERS))
            args = (
                owner,
                0.2 if owner == 2 else 0.0,
                anchor + 0.5,
                0.0 if rng.random() < 0.8 else float(rng.normal(0, 3)),
                1.5 if owner < 3 else 1.0 + rng.random(),
                1.25,
                6,
                3,
                0.5,
                0.9 if rng.random() < 0.9 else 0.5,
                rng.random() < 0.95,
                rng.random() < 0.8,
            )
            assert fast.amend_ladder(*args) == pure.amend_ladder(*args), step
            assert fast.open_orders(owner) == pure.open_orders(owner), step
        elif rng.random() < 0.02:  # a maker's ladder, sometimes crossing the touch
            args = (
                int(rng.integers(0, OWNERS)),
                anchor + rng.normal(0, 3),
                1.5,
                1.25,
                6,
                3,
                0.5,
                0.9,
                True,
                True,
            )
            assert fast.submit_ladder(*args) == pure.submit_ladder(*args)
        else:
            operation = _random_operation(rng, anchor, pure)
            expected = apply_operation(pure, operation)
            assert apply_operation(fast, operation) == expected, (step, operation)
            fills += len(expected[0])
        if step % 50 == 0:
            _same_state(fast, pure, anchor)
    _same_state(fast, pure, anchor)
    fast.check_invariants()
    assert fills > 500  # the stream traded


def _as_batch(operations):
    """Table operations as the arrays of FastOrderBook.process."""
    kinds, owners, sides, prices, quantities, targets = [], [], [], [], [], []
    for kind, *args in operations:
        if kind == "limit":
            row = (LIMIT, *args, 0)
        elif kind == "market":
            owner, side, quantity, limit_price = args
            row = (MARKET, owner, side, limit_price or 0, quantity, 0)
        elif kind == "cancel":
            row = (CANCEL, 0, 0, 0, 0, args[0])
        else:
            row = (CANCEL_ALL, args[0], 0, 0, 0, 0)
        for column, value in zip((kinds, owners, sides, prices, quantities, targets), row, strict=True):
            column.append(value)
    return [
        np.array(column, dtype=np.int64) for column in (kinds, owners, sides, prices, quantities, targets)
    ]


@pytest.mark.parametrize("seed", [4, 5])
def test_batches_match_the_same_calls_one_by_one(seed):
    rng = np.random.default_rng(seed)
    fast, pure = FastOrderBook(), OrderBook()
    anchor = 1_000
    for _ in range(300):
        anchor += int(rng.integers(-2, 3))
        operations = [
            _random_operation(rng, anchor, pure, replace=False) for _ in range(int(rng.integers(0, 60)))
        ]
        expected_ids, expected_quantities, expected_fills = [], [], []
        for index, operation in enumerate(operations):
            if operation[0] == "limit":
                order_id, fills = pure.submit_limit(*operation[1:])
                left = operation[4] - sum(fill.quantity for fill in fills)
                expected_ids.append(order_id)
                expected_quantities.append(left)
            elif operation[0] == "market":
                fills = apply_operation(pure, operation)[0]
                expected_ids.append(pure._last_order_id)
                expected_quantities.append(sum(fill.quantity for fill in fills))
            else:
                fills, removed = apply_operation(pure, operation)
                expected_ids.append(0)
                expected_quantities.append(removed)
            expected_fills.extend((*fill, index) for fill in fills)
        result = fast.process(*_as_batch(operations))
        assert result.order_ids.tolist() == expected_ids
        assert result.quantities.tolist() == expected_quantities
        assert [tuple(row) for row in result.fills.tolist()] == expected_fills
        assert result.fill_tuples() == [Fill(*fill[:7]) for fill in expected_fills]
    _same_state(fast, pure, anchor)
    fast.check_invariants()


def test_bad_batches_raise_before_anything_is_applied():
    book = FastOrderBook()
    book.submit_limit(1, SELL, 101, 5)
    ones = np.ones(2, dtype=np.int64)
    bad = [
        ((np.array([LIMIT, 7]), ones, ones, ones * 100, ones), "kinds must be"),
        ((np.array([LIMIT, LIMIT]), ones, np.array([1, 0]), ones * 100, ones), "side must be"),
        ((np.array([LIMIT, MARKET]), ones, ones, ones * 100, np.array([1, 0])), "quantity must be"),
        ((np.array([LIMIT, LIMIT]), ones, ones, np.array([100, 0]), ones), "price must be"),
        ((np.array([LIMIT, LIMIT]), np.array([1, -1]), ones, ones * 100, ones), "owners must be"),
        ((np.array([LIMIT]), ones, ones, ones * 100, ones), "same length"),
        ((np.array([LIMIT, LIMIT]), ones, ones, np.array([100, MAX_PRICE_TICKS + 1]), ones), "at most"),
    ]
    for arrays, message in bad:
        with pytest.raises(ValueError, match=message):
            book.process(*arrays)
    assert book.levels(SELL, ALL_LEVELS) == [(101, 5)] and len(book) == 1 and book.volume_traded() == 0
    book.check_invariants()


def test_arrays_grow_with_prices_owners_and_orders():
    book = FastOrderBook()
    book.submit_limit(5_000, BUY, 50_000, 1)  # owner and price beyond the initial capacity
    for order in range(3_000):  # more resting orders than the initial slots
        book.submit_limit(order % 7, SELL, 60_000 + order % 300, 2)
    assert len(book) == 3_001 and book.best_bid() == 50_000 and book.best_ask() == 60_000
    assert book.depth(SELL, 299) == 6_000
    fills = book.submit_market(1, BUY, 6_000)
    assert sum(fill.quantity for fill in fills) == 6_000 and len(fills) == 3_000
    assert book.best_ask() is None and len(book) == 1
    book.check_invariants()


def test_check_invariants_detects_a_broken_total():
    book = FastOrderBook()
    book.submit_limit(1, BUY, 99, 5)
    book._levels[0, 99, 0] = 4
    with pytest.raises(AssertionError, match="total is wrong"):
        book.check_invariants()


def test_replace_beyond_the_price_arrays_grows_them_like_a_limit_order():
    # The passive price is known only after the cancel: here the owner's best ask goes, the next ask
    # sits near the end of the compiled book's first price array (1,024 ticks), and 10 ticks behind it
    # is beyond: the arrays must grow and the order rest exactly where the pure book puts it.
    fast, pure = FastOrderBook(), OrderBook()
    capacity = fast._levels.shape[1]
    for book in (fast, pure):
        book.submit_limit(1, SELL, capacity - 4, 3)
        book.submit_limit(5, SELL, capacity - 24, 2)  # owner 5's ask is the best ask
        book.submit_limit(2, BUY, 900, 1)
    expected = pure.replace_with_passive(5, SELL, 10, 4, 500.0)
    assert fast.replace_with_passive(5, SELL, 10, 4, 500.0) == expected
    order_id = expected[0]
    assert fast.order(order_id) == pure.order(order_id) == (5, SELL, capacity + 6, 4)
    assert fast._levels.shape[1] > capacity + 6
    _same_state(fast, pure, 900)
    fast.check_invariants()


def test_amend_beyond_the_price_arrays_grows_them():
    # As below, with the amend: its reference (without the maker's quotes) puts the asks past the
    # first price array, which the call grows before it changes anything.
    fast, pure = FastOrderBook(), OrderBook()
    capacity = fast._levels.shape[1]
    for book in (fast, pure):
        book.submit_limit(1, BUY, capacity - 30, 1)
        book.submit_limit(2, SELL, capacity - 2, 1)
        book.submit_limit(5, SELL, capacity - 28, 1)
    args = (5, 0.0, 500.0, 0.0, 2.0, 5.0, 5, 2, 0.0, 1.0, True, True)
    assert fast.amend_ladder(*args) == pure.amend_ladder(*args)
    assert fast._levels.shape[1] > capacity
    assert fast.amend_ladder(*args) == pure.amend_ladder(*args) == (0, [])
    _same_state(fast, pure, capacity - 16)
    fast.check_invariants()


def test_requote_beyond_the_price_arrays_grows_them():
    # The ladder's reference is known only after the cancel: the maker's own quotes held the mid low,
    # and without them the mid is near the end of the first price array, so the ladder's asks pass it.
    fast, pure = FastOrderBook(), OrderBook()
    capacity = fast._levels.shape[1]
    for book in (fast, pure):
        book.submit_limit(1, BUY, capacity - 30, 1)
        book.submit_limit(2, SELL, capacity - 2, 1)
        book.submit_limit(5, SELL, capacity - 28, 1)  # the maker's ask is the best ask
    args = (5, 0.0, 500.0, 0.0, 2.0, 5.0, 5, 2, 0.0, 1.0, True, True)  # asks up to mid + 22 ticks
    assert fast.requote_ladder(*args) == pure.requote_ladder(*args)
    assert fast._levels.shape[1] > capacity
    _same_state(fast, pure, capacity - 16)
    fast.check_invariants()
