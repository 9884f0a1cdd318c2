"""The Book protocol's conformance suite, run over every engine in abm.book.BOOK_ENGINES.

Every engine must give the hand-worked answers (tests/book_cases.py) and refuse the same bad calls
with the same words and without changing anything (this module); give the hand-worked ladders,
replaces and depth profiles (test_book_ladders.py); and pass the hypothesis state machine and give the
same return values as the naive reference book (tests/reference_book.py) on long random streams
(test_book_reference.py), as exchange-core runs one abstract test over its naive and fast books.
Engine-specific internals are in test_book.py (pure) and test_fast_book.py (compiled, and the compiled
book against the pure one).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from book_cases import ALL_LEVELS, CASES, apply_operation, depth_book, state

from abm.book import BUY, MAX_LOTS, MAX_PRICE_TICKS, SELL, Book, Fill


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
