"""Shared book test material: the hand-worked table cases and the helpers that apply them.

Operations: ("limit", owner, side, price, qty), ("market", owner, side, qty, limit_price|None),
("cancel", order_id), ("cancel_all", owner), ("replace_passive", owner, side, offset, qty, reference),
("replace_market", owner, side, qty). Ids are the book's counter: limit and market orders both take
the next id, starting at 1. Fills: (maker_id, maker, taker_id, taker, price, qty, taker_side), worked
out by hand from price-time priority. Levels: (price, total qty), best first.
"""

from __future__ import annotations

import pytest

from abm.book import BOOK_ENGINES, BUY, SELL

ALL_LEVELS = 10**9

# Every registered book engine as a pytest parameter, skipped where its dependency is missing.
ENGINES = [
    pytest.param(
        name,
        marks=pytest.mark.skipif(not spec.available(), reason=f"{name} needs {spec.requires}"),
        id=name,
    )
    for name, spec in BOOK_ENGINES.items()
]


def state(book):
    """Everything a refused call must leave as it was."""
    return book.levels(BUY, ALL_LEVELS), book.levels(SELL, ALL_LEVELS), len(book), book.volume_traded()


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


def apply_operation(book, operation):
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


def depth_book(book):
    """Fill ``book`` with bids 100x3 (orders of 1 and 2), 99x4, 97x5; asks 102x2, 103x3, 106x7."""
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


def passive_book(book, bids=(), asks=(), trade_at=None):
    """Fill ``book`` with 2-lot bids and asks, after one trade at ``trade_at`` if given."""
    if trade_at is not None:  # one trade leaves the last price; both orders are gone after it
        book.submit_limit(8, SELL, trade_at, 1)
        book.submit_market(9, BUY, 1)
    for price in bids:
        book.submit_limit(1, BUY, price, 2)
    for price in asks:
        book.submit_limit(2, SELL, price, 2)
    return book
