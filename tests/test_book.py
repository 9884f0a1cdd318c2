"""The pure engine's internals (level reuse, lazy deletion, compaction) and the reference book itself.

The behaviour every engine shares (hand-worked cases, errors, ladders, the state machine, the comparison
with the reference book) is in test_book_conformance.py, test_book_ladders.py and test_book_reference.py.
"""

from __future__ import annotations

import pytest
from book_cases import ALL_LEVELS, CASES, apply_operation, depth_book
from reference_book import ReferenceBook

from abm.book import BUY, SELL, Fill, OrderBook


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
        fills.extend(apply_operation(reference, operation)[0])
    assert fills == [Fill(*fill) for fill in expected_fills]
    assert reference.levels(BUY, ALL_LEVELS) == expected_bids
    assert reference.levels(SELL, ALL_LEVELS) == expected_asks


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
    book = depth_book(OrderBook())
    book._bid_levels[100][0] += 1  # corrupt on purpose
    with pytest.raises(AssertionError, match="total"):
        book.check_invariants()


def test_check_invariants_detects_a_wrong_dead_count():
    book = depth_book(OrderBook())
    book._bid_levels[100][2] += 1  # corrupt on purpose
    with pytest.raises(AssertionError, match="dead count"):
        book.check_invariants()


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
