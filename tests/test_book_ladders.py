"""The Book protocol over every engine: ladders, requotes, amends, replaces, passive prices, profiles."""

from __future__ import annotations

import numpy as np
import pytest
from book_cases import ALL_LEVELS, passive_book

from abm.book import BUY, SELL, Fill


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
