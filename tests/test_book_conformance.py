"""The Book protocol's conformance suite, run over every engine in abm.book.BOOK_ENGINES.

Every engine must give the hand-worked answers (tests/book_cases.py), refuse the same bad calls with the
same words and without changing anything, pass the hypothesis state machine, and give the same
return values as the naive reference book (tests/reference_book.py) on long random streams, as
exchange-core runs one abstract test over its naive and fast books. Engine-specific internals are in
test_book.py (pure) and test_fast_book.py (compiled, and the compiled book against the pure one).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from book_cases import ALL_LEVELS, CASES, ENGINES, apply_operation, depth_book, passive_book
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, multiple, rule
from reference_book import ReferenceBook

from abm.book import BOOK_ENGINES, BUY, MAX_LOTS, MAX_PRICE_TICKS, SELL, Book, Fill, make_book


@pytest.fixture(params=ENGINES)
def new_book(request):
    """A factory of empty books of one engine."""
    return lambda: make_book(request.param)


def state(book):
    """Everything a refused call must leave as it was."""
    return book.levels(BUY, ALL_LEVELS), book.levels(SELL, ALL_LEVELS), len(book), book.volume_traded()


def test_engine_satisfies_the_protocol(new_book):
    assert isinstance(new_book(), Book)


# --------------------------------------------------------------------------- hand-worked cases


@pytest.mark.parametrize(
    ("operations", "expected_fills", "expected_bids", "expected_asks"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_exact_cases(new_book, operations, expected_fills, expected_bids, expected_asks):
    book = new_book()
    fills = []
    for operation in operations:
        fills.extend(apply_operation(book, operation)[0])
    assert fills == [Fill(*fill) for fill in expected_fills]
    assert book.levels(BUY, ALL_LEVELS) == expected_bids
    assert book.levels(SELL, ALL_LEVELS) == expected_asks
    book.check_invariants()


def test_cancel_returns_the_remaining_quantity(new_book):
    book = new_book()
    order_id, _ = book.submit_limit(1, BUY, 50, 10)
    book.submit_market(2, SELL, 4)
    assert book.order(order_id) == (1, BUY, 50, 6)
    assert book.cancel(order_id) == 6
    assert book.cancel(order_id) == 0
    assert book.order(order_id) is None
    assert len(book) == 0


def test_cancel_all_returns_total_and_leaves_other_owners(new_book):
    book = new_book()
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


def test_fully_filled_limit_order_has_an_id_but_does_not_rest(new_book):
    book = new_book()
    book.submit_limit(1, SELL, 100, 5)
    order_id, fills = book.submit_limit(2, BUY, 100, 5)
    assert order_id == 2
    assert fills == [Fill(1, 1, 2, 2, 100, 5, BUY)]
    assert book.order(order_id) is None
    assert book.open_orders(2) == []
    assert len(book) == 0
    assert book.best_bid() is None and book.best_ask() is None


def test_order_ids_are_per_book(new_book):
    first, second = new_book(), new_book()
    assert first.submit_limit(1, BUY, 10, 1)[0] == 1
    assert first.submit_limit(1, BUY, 10, 1)[0] == 2
    assert second.submit_limit(1, BUY, 10, 1)[0] == 1


def test_open_orders_in_submission_order_and_order_details(new_book):
    book = new_book()
    ids = [book.submit_limit(3, side, price, 2)[0] for side, price in [(BUY, 90), (SELL, 120), (BUY, 95)]]
    book.submit_limit(4, BUY, 96, 1)
    assert book.open_orders(3) == ids
    assert book.open_orders(99) == []
    assert book.order(ids[1]) == (3, SELL, 120, 2)
    assert book.order(10**6) is None and book.order(-1) is None
    assert len(book) == 4


def test_last_price_volume_and_mid(new_book):
    book = new_book()
    assert book.last_price is None and book.mid() is None and book.volume_traded() == 0
    book.submit_limit(1, SELL, 101, 3)
    assert book.mid() is None  # one side only
    book.submit_limit(1, BUY, 98, 3)
    assert book.mid() == (98 + 101) / 2
    book.submit_market(2, BUY, 2)
    book.submit_market(2, SELL, 1)
    assert book.last_price == 98
    assert book.volume_traded() == 3


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
def test_depth_exact(new_book, side, within_ticks, expected):
    assert depth_book(new_book()).depth(side, within_ticks) == expected


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
        (SELL, 1e12, 10, 0),  # far beyond every price
    ],
)
def test_depth_near_exact(new_book, side, reference, within_ticks, expected):
    assert depth_book(new_book()).depth_near(side, reference, within_ticks) == expected


def test_depth_on_empty_side_is_zero(new_book):
    book = new_book()
    assert book.depth(BUY, 5) == 0
    assert book.depth_near(SELL, 100.0, 5) == 0
    assert book.levels(SELL, 3) == []


def test_levels_best_first_and_truncated(new_book):
    book = depth_book(new_book())
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
def test_market_order_cost_matches_actual_fills(new_book, side, quantity, expected):
    book = depth_book(new_book())
    before = state(book)
    assert book.market_order_cost(side, quantity) == expected
    assert state(book) == before
    fills = book.submit_market(2, side, quantity)
    actual = (sum(fill.quantity for fill in fills), sum(fill.price * fill.quantity for fill in fills))
    assert actual == expected


def test_numpy_integers_are_accepted_and_stored_as_python_ints(new_book):
    book = new_book()
    order_id, _ = book.submit_limit(np.int64(1), np.int64(SELL), np.int64(100), np.int32(3))
    fills = book.submit_market(np.int64(2), np.int8(BUY), np.int64(1), limit_price=np.int64(100))
    assert fills == [Fill(1, 1, 2, 2, 100, 1, BUY)]
    assert all(type(value) is int for value in fills[0])
    assert all(type(value) is int for value in book.order(order_id))
    assert type(book.best_ask()) is int
    assert book.cancel(np.int64(order_id)) == 2


def test_prices_up_to_the_limit_are_taken(new_book):
    book = new_book()
    order_id, _ = book.submit_limit(1, SELL, MAX_PRICE_TICKS, MAX_LOTS)
    assert book.order(order_id) == (1, SELL, MAX_PRICE_TICKS, MAX_LOTS)
    assert book.submit_market(2, BUY, 3, limit_price=10 * MAX_PRICE_TICKS)[0].price == MAX_PRICE_TICKS
    book.check_invariants()


# --------------------------------------------------------------------------- the error table
LADDER_ARGS = (1.5, 1.0, 3, 2, 0.0, 1.0, True, True)  # half spread, spacing, levels, size, growth, ...
ERROR_TABLE = [
    ("limit side 0", lambda b: b.submit_limit(1, 0, 100, 1), ValueError, r"side must be BUY \(\+1\) or SELL"),
    ("limit side 2", lambda b: b.submit_limit(1, 2, 100, 1), ValueError, "side must be"),
    ("limit price 0", lambda b: b.submit_limit(1, BUY, 0, 1), ValueError, "price must be >= 1 tick"),
    ("limit price < 0", lambda b: b.submit_limit(1, SELL, -5, 1), ValueError, "price must be >= 1 tick"),
    (
        "limit price above the books' limit",
        lambda b: b.submit_limit(1, SELL, MAX_PRICE_TICKS + 1, 1),
        ValueError,
        f"price must be at most {MAX_PRICE_TICKS} ticks",
    ),
    ("limit quantity 0", lambda b: b.submit_limit(1, BUY, 100, 0), ValueError, "quantity must be a positive"),
    (
        "limit quantity < 0",
        lambda b: b.submit_limit(1, BUY, 100, -3),
        ValueError,
        "quantity must be a positive",
    ),
    (
        "limit quantity too large",
        lambda b: b.submit_limit(1, BUY, 100, MAX_LOTS + 1),
        ValueError,
        f"quantity must be at most {MAX_LOTS} lots",
    ),
    (
        "limit negative owner",
        lambda b: b.submit_limit(-1, BUY, 100, 1),
        ValueError,
        "owner must be an account id",
    ),
    ("limit float price", lambda b: b.submit_limit(1, BUY, 100.5, 1), TypeError, "price must be an integer"),
    (
        "limit float quantity",
        lambda b: b.submit_limit(1, BUY, 100, 1.0),
        TypeError,
        "quantity must be an integer",
    ),
    ("limit float owner", lambda b: b.submit_limit(1.0, BUY, 100, 1), TypeError, "owner must be an integer"),
    ("limit bool owner", lambda b: b.submit_limit(True, BUY, 100, 1), TypeError, "owner must be an integer"),
    ("limit float side", lambda b: b.submit_limit(1, 1.0, 100, 1), TypeError, "side must be an integer"),
    ("market side", lambda b: b.submit_market(1, -2, 1), ValueError, "side must be"),
    ("market quantity 0", lambda b: b.submit_market(1, BUY, 0), ValueError, "quantity must be a positive"),
    (
        "market quantity too large",
        lambda b: b.submit_market(1, BUY, MAX_LOTS + 1),
        ValueError,
        "quantity must be at most",
    ),
    (
        "market negative owner",
        lambda b: b.submit_market(-2, BUY, 1),
        ValueError,
        "owner must be an account id",
    ),
    (
        "market limit 0",
        lambda b: b.submit_market(1, BUY, 1, limit_price=0),
        ValueError,
        "limit_price must be None or >= 1",
    ),
    (
        "market float limit",
        lambda b: b.submit_market(1, BUY, 1, limit_price=1.5),
        TypeError,
        "limit_price must be an integer",
    ),
    ("cancel float id", lambda b: b.cancel(1.0), TypeError, "order_id must be an integer"),
    ("cancel text id", lambda b: b.cancel("1"), TypeError, "order_id must be an integer"),
    ("cancel_all float owner", lambda b: b.cancel_all(1.5), TypeError, "owner must be an integer"),
    ("depth side", lambda b: b.depth(0, 1), ValueError, "side must be"),
    ("depth negative window", lambda b: b.depth(BUY, -1), ValueError, "within_ticks must be >= 0"),
    ("depth float window", lambda b: b.depth(BUY, 1.5), TypeError, "within_ticks must be an integer"),
    ("depth_near window", lambda b: b.depth_near(SELL, 100.0, -1), ValueError, "within_ticks must be >= 0"),
    ("depth_near nan", lambda b: b.depth_near(SELL, math.nan, 1), ValueError, "reference must be a finite"),
    ("levels negative", lambda b: b.levels(BUY, -1), ValueError, "n must be >= 0"),
    ("levels float", lambda b: b.levels(BUY, 1.5), TypeError, "n must be an integer"),
    ("levels side", lambda b: b.levels(3, 1), ValueError, "side must be"),
    ("cost side", lambda b: b.market_order_cost(0, 1), ValueError, "side must be"),
    ("cost quantity", lambda b: b.market_order_cost(BUY, 0), ValueError, "quantity must be a positive"),
    (
        "cost float quantity",
        lambda b: b.market_order_cost(BUY, 1.5),
        TypeError,
        "quantity must be an integer",
    ),
    ("orders_at side", lambda b: b.orders_at(0, 100), ValueError, "side must be"),
    ("orders_at float price", lambda b: b.orders_at(BUY, 100.5), TypeError, "price must be an integer"),
    ("open_orders float owner", lambda b: b.open_orders(1.5), TypeError, "owner must be an integer"),
    ("order float id", lambda b: b.order(1.5), TypeError, "order_id must be an integer"),
    ("passive side first", lambda b: b.passive_price(0, 1, math.nan), ValueError, "side must be"),
    (
        "passive float offset",
        lambda b: b.passive_price(BUY, 1.5, 50.0),
        TypeError,
        "offset must be an integer",
    ),
    ("passive nan", lambda b: b.passive_price(BUY, 1, math.nan), ValueError, "reference must be a finite"),
    (
        "replace passive side",
        lambda b: b.replace_with_passive(1, 0, 1, 2, 50.0),
        ValueError,
        "side must be",
    ),
    (
        "replace passive inf",
        lambda b: b.replace_with_passive(1, BUY, 1, 2, math.inf),
        ValueError,
        "reference must be a finite",
    ),
    (
        "replace passive quantity",
        lambda b: b.replace_with_passive(1, BUY, 1, 0, 50.0),
        ValueError,
        "quantity must be a positive",
    ),
    ("replace market owner", lambda b: b.replace_with_market(-1, BUY, 1), ValueError, "owner must be"),
    ("replace market side", lambda b: b.replace_with_market(1, 5, 1), ValueError, "side must be"),
    ("ladder owner", lambda b: b.submit_ladder(-1, 100.0, *LADDER_ARGS), ValueError, "owner must be"),
    (
        "ladder beyond the limit",
        lambda b: b.submit_ladder(1, float(MAX_PRICE_TICKS), *LADDER_ARGS),
        ValueError,
        "the ladder reaches",
    ),
    (
        "ladder nan reference",
        lambda b: b.submit_ladder(1, math.nan, *LADDER_ARGS),
        ValueError,
        "the ladder reaches",
    ),
    (
        "ladder size 0",
        lambda b: b.submit_ladder(1, 100.0, 1.5, 1.0, 3, 0, 0.0, 1.0, True, True),
        ValueError,
        "level_size must be",
    ),
    (
        "ladder negative spacing",
        lambda b: b.submit_ladder(1, 100.0, 1.5, -1.0, 3, 2, 0.0, 1.0, True, True),
        ValueError,
        "spacing must be",
    ),
    (
        "requote owner",
        lambda b: b.requote_ladder(-1, 0.0, 100.0, 0.0, *LADDER_ARGS),
        ValueError,
        "owner must be",
    ),
    ("amend owner", lambda b: b.amend_ladder(-1, 0.0, 100.0, 0.0, *LADDER_ARGS), ValueError, "owner must be"),
    (
        "amend beyond the limit",
        lambda b: b.amend_ladder(1, 0.0, float(MAX_PRICE_TICKS), 0.0, *LADDER_ARGS),
        ValueError,
        "the ladder reaches",
    ),
    (
        "amend nan anchor",
        lambda b: b.amend_ladder(1, 0.0, math.nan, 0.0, *LADDER_ARGS),
        ValueError,
        "the ladder reaches",
    ),
    ("profile width", lambda b: b.depth_profile(100.0, 0.0, 3, 5), ValueError, "width must be > 0"),
    ("profile reference", lambda b: b.depth_profile(math.nan, 1.0, 3, 5), ValueError, "reference must be"),
    ("profile buckets", lambda b: b.depth_profile(100.0, 1.0, 0, 5), ValueError, "buckets must be >= 1"),
]


@pytest.mark.parametrize(
    ("call", "error", "message"), [case[1:] for case in ERROR_TABLE], ids=[case[0] for case in ERROR_TABLE]
)
def test_bad_arguments_raise_the_same_error_and_change_nothing(new_book, call, error, message):
    book = depth_book(new_book())
    resting = book.submit_limit(1, SELL, 110, 1)[0]
    before = state(book)
    with pytest.raises(error, match=message):
        call(book)
    # A refused call changed nothing: no order gone, no id consumed.
    assert state(book) == before
    assert book.order(resting) == (1, SELL, 110, 1)
    assert book.submit_limit(1, BUY, 1, 1)[0] == resting + 1
    book.check_invariants()


# --------------------------------------------------------------------------- ladders, replaces, profiles


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
def test_depth_profile_by_hand(new_book, reference, max_levels, expected):
    book = new_book()
    for price, lots in ((99, 5), (97, 3), (90, 2)):
        book.submit_limit(1, BUY, price, lots)
    for price, lots in ((101, 4), (104, 1), (120, 7)):
        book.submit_limit(2, SELL, price, lots)
    assert book.depth_profile(reference, 2.0, 3, max_levels) == expected
    # Into a given row (a table's preallocated row): its old contents are replaced, not added to.
    row = np.full(6, 9, dtype=np.int64)
    assert book.depth_profile(reference, 2.0, 3, max_levels, out=row) is row
    assert row.tolist() == expected


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
def test_passive_price_by_hand(new_book, bids, asks, trade_at, side, offset, reference, expected):
    book = passive_book(new_book(), bids, asks, trade_at)
    assert book.passive_price(side, offset, reference) == expected
    # replace_with_passive rests exactly there (owner 5 has nothing to cancel)
    order_id, fills = book.replace_with_passive(5, side, offset, 4, reference)
    assert fills == []
    assert book.order(order_id) == (5, side, expected, 4)


def test_replace_cancels_first_then_prices_on_the_book_it_leaves(new_book):
    book = passive_book(new_book(), bids=(97,), asks=(103,))
    own_bid, _ = book.submit_limit(5, BUY, 99, 3)  # the owner's bid is the best bid
    own_ask, _ = book.submit_limit(5, SELL, 102, 1)
    order_id, fills = book.replace_with_passive(5, BUY, 0, 2, 50.0)
    assert fills == []
    assert book.order(own_bid) is None and book.order(own_ask) is None
    assert book.order(order_id) == (5, BUY, 97, 2)  # behind the touch left after the cancel: 97
    fills = book.replace_with_market(5, SELL, 3)  # cancels its new bid, then sells into the bids
    assert [(fill.price, fill.quantity, fill.maker) for fill in fills] == [(97, 2, 1)]
    assert book.open_orders(5) == []


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
def test_quote_reference_by_hand(new_book, bids, asks, trade_at, anchor_weight, expected):
    book = passive_book(new_book(), bids, asks, trade_at)
    assert book.quote_reference(anchor_weight, 80.0) == expected


LADDER = (1.5, 1.25, 4, 3, 0.5, 0.9, True, True)  # half spread, spacing, levels, size, growth, scale, sides


def test_requote_cancels_then_quotes_around_the_mid_it_leaves(new_book):
    book = passive_book(new_book(), bids=(96,), asks=(106,))
    book.submit_limit(5, BUY, 99, 2)  # the maker's own quotes set the mid (100) before the requote
    book.submit_limit(5, SELL, 101, 2)
    sent, crossed = book.requote_ladder(5, 0.0, 80.0, 0.5, *LADDER)
    # after the cancel the mid is (96 + 106) / 2 = 101, shifted by 0.5: reference 100.5; level k at
    # offset 1.5 + 1.25 k and size int(3 (1 + 0.5 k) 0.9) = 2, 4, 5, 6: bids floor(99, 97.75, 96.5,
    # 95.25) = 99, 97, 96, 95; asks ceil(102, 103.25, 104.5, 105.75) = 102, 104, 105, 106
    assert (sent, crossed) == (8, [])
    assert book.levels(BUY, 10) == [(99, 2), (97, 4), (96, 5 + 2), (95, 6)]
    assert book.levels(SELL, 10) == [(102, 2), (104, 4), (105, 5), (106, 6 + 2)]


AMEND = (1.5, 1.0, 2, 3, 0.0, 1.0, True, True)  # half spread, spacing, 2 levels of 3 lots, both sides


def test_amend_keeps_the_queue_place_that_requote_gives_up(new_book):
    # Trader 9 quotes 99 / 101 (ids 1, 2): reference 100. The maker's ladder: level k at offset
    # 1.5 + k, so bids floor(98.5, 97.5) = 98, 97 and asks ceil(101.5, 102.5) = 102, 103 (ids 3-6).
    # Trader 7 then joins the maker's bid at 98 (id 7); the reference without the maker is still 100.
    for amend in (True, False):
        book = new_book()
        book.submit_limit(9, BUY, 99, 5)
        book.submit_limit(9, SELL, 101, 5)
        assert book.amend_ladder(1, 0.0, 80.0, 0.0, *AMEND) == (4, [])
        assert book.open_orders(1) == [3, 4, 5, 6]
        book.submit_limit(7, BUY, 98, 2)
        if amend:  # nothing moved: the four orders stay, ids and places
            assert book.amend_ladder(1, 0.0, 80.0, 0.0, *AMEND) == (0, [])
            assert book.open_orders(1) == [3, 4, 5, 6]
        else:  # cancelled and sent again: ids 8-11, the bid at 98 now behind trader 7's
            assert book.requote_ladder(1, 0.0, 80.0, 0.0, *AMEND) == (4, [])
            assert book.open_orders(1) == [8, 9, 10, 11]
        # A market sell of 8 (id 8, or 12 after the requote's ids): 5 at 99 from trader 9, then 3 at
        # 98, the first in the queue first: the maker's 3 (amend), or trader 7's 2 and 1 of the
        # maker's (requote).
        fills = book.submit_market(8, SELL, 8)
        at_98 = [(fill.maker, fill.quantity) for fill in fills if fill.price == 98]
        assert fills[0] == Fill(1, 9, 8 if amend else 12, 8, 99, 5, SELL)
        assert at_98 == ([(1, 3)] if amend else [(7, 2), (1, 1)])


def test_amend_sends_again_the_places_filled_moved_or_cut(new_book):
    # Trader 9 quotes 96 / 104 (ids 1, 2): reference 100, the maker's ladder as above (ids 3-6:
    # bid 98, ask 102, bid 97, ask 103, 3 lots each).
    book = new_book()
    book.submit_limit(9, BUY, 96, 5)
    book.submit_limit(9, SELL, 104, 5)
    assert book.amend_ladder(1, 0.0, 80.0, 0.0, *AMEND) == (4, [])
    # A market sell of 4 (id 7) takes the bid at 98 in full and 1 of the bid at 97 (2 left).
    assert [fill.quantity for fill in book.submit_market(8, SELL, 4)] == [3, 1]
    # Same reference (trader 9's quotes remain): the bid at 98 is gone, so a new one (id 8); the bid
    # at 97 no longer holds its 3 lots, so it is cancelled and sent again (id 9); the asks stay.
    assert book.amend_ladder(1, 0.0, 80.0, 0.0, *AMEND) == (2, [])
    assert book.open_orders(1) == [4, 6, 8, 9]
    assert book.levels(BUY, 10) == [(98, 3), (97, 3), (96, 5)]
    # Shifted by 1 tick (reference 99): bids floor(97.5, 96.5) = 97, 96; asks ceil(100.5, 101.5) =
    # 101, 102. Every place moved, so all four go (ids 10-13), though 102 was already quoted: a
    # level is a place in the ladder, and the first ask's place held 102, the second's 103.
    assert book.amend_ladder(1, 0.0, 80.0, 1.0, *AMEND) == (4, [])
    assert book.open_orders(1) == [10, 11, 12, 13]
    assert book.levels(BUY, 10) == [(97, 3), (96, 3 + 5)]
    assert book.levels(SELL, 10) == [(101, 3), (102, 3), (104, 5)]
    # Other orders of the maker's are cancelled by an amend; the ladder's places are kept.
    book.submit_limit(1, BUY, 50, 1)
    assert book.amend_ladder(1, 0.0, 80.0, 1.0, *AMEND) == (0, [])
    assert book.open_orders(1) == [10, 11, 12, 13]


def test_amend_sends_again_a_place_filled_as_it_was_sent(new_book):
    # Trader 9 quotes 96 / 104 (ids 1, 2); shifted by -6 the reference is 106: bids floor(104.5,
    # 103.5) = 104, 103 and asks ceil(107.5, 108.5) = 108, 109. The bid at 104 (id 3) crosses trader
    # 9's ask and fills 3 of its 5 lots at once.
    book = new_book()
    book.submit_limit(9, BUY, 96, 5)
    book.submit_limit(9, SELL, 104, 5)
    assert book.amend_ladder(1, 0.0, 80.0, -6.0, *AMEND) == (4, [[Fill(2, 9, 3, 1, 104, 3, BUY)]])
    assert book.open_orders(1) == [4, 5, 6]
    # The same ladder (trader 9's 2 lots still ask 104): the empty place gets a new bid (id 7), which
    # takes the 2 lots and rests with 1; the three others stay.
    assert book.amend_ladder(1, 0.0, 80.0, -6.0, *AMEND) == (1, [[Fill(2, 9, 7, 1, 104, 2, BUY)]])
    assert book.open_orders(1) == [4, 5, 6, 7]
    assert book.levels(BUY, 10) == [(104, 1), (103, 3), (96, 5)]


@pytest.mark.parametrize("seed", [4, 5])
def test_replace_is_cancel_all_then_the_order(new_book, seed):
    # The specification of the two replace calls, on a seeded stream: one book takes them, the other
    # the calls they stand for; every return value and the books' states agree.
    rng = np.random.default_rng(seed)
    replacing, composed = new_book(), new_book()
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


@pytest.mark.parametrize("seed", [6, 7])
def test_requote_is_cancel_all_then_the_ladder(new_book, seed):
    rng = np.random.default_rng(seed)
    requoting, composed = new_book(), new_book()
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


def _queues(book) -> list:
    """Every level's price, total and queue of ids, both sides: the state the next order meets."""
    return [
        (side, price, lots, book.orders_at(side, price))
        for side in (BUY, SELL)
        for price, lots in book.levels(side, ALL_LEVELS)
    ]


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_requote_leaves_the_queues_of_cancel_all_then_the_ladder(new_book, seed):
    # The pure book requotes in one pass when the ladder rests in full (its levels emptied by the
    # cancel stay listed until the ladder is in) and through submit_ladder when it would cross: both
    # must leave every queue, id and order as the two calls do. Ladders here: near the 1-tick floor
    # (bids skipped), with no half spread (a ladder that meets itself), first levels sized 0, one side
    # only, and references that cross the other owners' quotes.
    rng = np.random.default_rng(seed)
    requoting, composed = new_book(), new_book()
    centre = 30
    for step in range(2_500):
        if rng.random() < 0.05:
            centre = max(2, centre + int(rng.integers(-3, 4)))
        owner = int(rng.integers(0, 6))
        side = BUY if rng.random() < 0.5 else SELL
        draw = rng.random()
        if draw < 0.45:
            price, quantity = max(1, centre - side * int(rng.integers(-2, 6))), int(rng.integers(1, 6))
            assert requoting.submit_limit(owner, side, price, quantity) == composed.submit_limit(
                owner, side, price, quantity
            )
            continue
        if draw < 0.55:
            quantity = int(rng.integers(1, 12))
            assert requoting.submit_market(owner, side, quantity) == composed.submit_market(
                owner, side, quantity
            )
            continue
        weight = float(rng.choice([0.0, 0.0, 0.5]))
        anchor = centre + float(rng.normal(0, 3))
        shift = float(rng.choice([0.0, rng.normal(0, 2), rng.normal(0, 8)]))
        ladder = (
            float(rng.choice([0.0, 0.5, 1.5])),  # half spread
            float(rng.choice([0.0, 1.0, 2.5])),  # spacing
            int(rng.integers(1, 6)),  # levels
            int(rng.integers(1, 5)),  # level size
            float(rng.choice([0.0, 0.5])),  # size growth
            float(rng.choice([1.0, 0.9, 0.3])),  # size scale (0.3 sizes the first levels 0)
            rng.random() < 0.9,
            rng.random() < 0.9,
        )
        composed.cancel_all(owner)
        expected = composed.submit_ladder(owner, composed.quote_reference(weight, anchor) - shift, *ladder)
        assert requoting.requote_ladder(owner, weight, anchor, shift, *ladder) == expected
        assert _queues(requoting) == _queues(composed), f"step {step}"
        for each in range(6):
            assert requoting.open_orders(each) == composed.open_orders(each)
        if step % 64 == 0:
            requoting.check_invariants()
    requoting.check_invariants()
    assert requoting.volume_traded() == composed.volume_traded() > 500


# --------------------------------------------------------------------------- against the reference book
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
