"""Numba kernel of :meth:`abm.book.fast.FastOrderBook.amend_ladder`: a ladder that keeps unmoved places.

The book's arrays and their layout are those of :mod:`abm.book._kernels`; the kernel adds two per
call: the order id at each place of the owner's last amended ladder (``ids``, 0 where none), which
it rewrites with the new ladder's, and a scratch array of the slots it keeps. See
:meth:`abm.book.pure.OrderBook.amend_ladder` for what the call does; the tests hold the two books
and a naive one (tests/reference_book.py) to the same results.
"""

from __future__ import annotations

import math

from numba import njit

from abm.book._kernels import (
    _CACHE,
    H_ASK_LEVELS,
    H_BEST_ASK,
    H_BEST_BID,
    H_BID_LEVELS,
    H_FILLS,
    H_LAST_PRICE,
    L_HEAD,
    L_TOTAL,
    O_NEXT,
    O_ONEXT,
    O_OWNER,
    O_PRICE,
    O_REMAINING,
    _limit,
    _remove,
)
from abm.book.protocol import MAX_PRICE_TICKS

# What amend returns instead of the orders sent when it changed nothing.
BEYOND_ARRAYS = -1  # the ladder's top ask is beyond the price arrays: grow them and call again
BEYOND_RANGE = -2  # the ladder reaches MAX_PRICE_TICKS: the caller raises the ladder's error


@njit(cache=_CACHE)
def _best_without(header, orders, levels, side_index, owner):
    """The best price of one side holding lots of someone other than ``owner`` (0: none)."""
    if side_index == 0:
        count, price, step = header[H_BID_LEVELS], header[H_BEST_BID], -1
    else:
        count, price, step = header[H_ASK_LEVELS], header[H_BEST_ASK], 1
    while count > 0:
        total = levels[side_index, price, L_TOTAL]
        if total > 0:
            own = 0
            slot = levels[side_index, price, L_HEAD]
            while slot >= 0:
                if orders[slot, O_OWNER] == owner:
                    own += orders[slot, O_REMAINING]
                slot = orders[slot, O_NEXT]
            if total > own:
                return price
            count -= 1
        price += step
    return 0


@njit(cache=_CACHE)
def reference_without(header, orders, levels, owner, anchor_weight, anchor):
    """``quote_reference`` of the book without ``owner``'s orders (nothing is cancelled)."""
    bid = _best_without(header, orders, levels, 0, owner)
    ask = _best_without(header, orders, levels, 1, owner)
    if bid != 0 and ask != 0:
        reference = (bid + ask) / 2
    else:
        last = header[H_LAST_PRICE]
        reference = float(last) if last != 0 else anchor
    if anchor_weight > 0.0:
        reference = (1.0 - anchor_weight) * reference + anchor_weight * anchor
    return reference


@njit(cache=_CACHE)
def amend(
    header,
    orders,
    levels,
    owners,
    slot_of,
    fills,
    owner,
    anchor_weight,
    anchor,
    shift,
    half_spread,
    spacing,
    n_levels,
    level_size,
    size_growth,
    size_scale,
    quote_bid,
    quote_ask,
    old_ids,
    ids,
    plan,
    kept_slots,
):
    """Amend ``owner``'s ladder; return ``(orders sent, reference)``.

    ``old_ids`` are the order ids the last amend left at each place (may be ``ids`` itself); ``ids``
    (``2 * n_levels``) receives this ladder's, 0 where a place has no resting order. ``plan``
    (``2 * n_levels`` x 2, scratch) holds each place's price and size, ``kept_slots`` (``2 *
    n_levels``, scratch) the slots kept. Instead of the orders sent, :data:`BEYOND_ARRAYS` or
    :data:`BEYOND_RANGE` say that nothing was changed and why.
    """
    reference = reference_without(header, orders, levels, owner, anchor_weight, anchor) - shift
    if not reference + half_spread + n_levels * spacing < MAX_PRICE_TICKS:
        return BEYOND_RANGE, reference
    top = int(math.ceil(reference + half_spread + max(n_levels - 1, 0) * spacing)) + 1
    if top >= levels.shape[1]:
        return BEYOND_ARRAYS, reference
    header[H_FILLS] = 0
    n_old = old_ids.shape[0]
    kept = 0
    # The plan, place by place (bid then ask per level): -1 to send, 0 none, else the id kept.
    for place in range(2 * n_levels):
        old = old_ids[place] if place < n_old else 0
        ids[place] = 0
        level = place // 2
        size = int(level_size * (1.0 + size_growth * level) * size_scale)
        if size <= 0:
            continue
        offset = half_spread + level * spacing
        if place % 2 == 0:
            if not quote_bid:
                continue
            price = int(math.floor(reference - offset))
            if price < 1:
                continue
        else:
            if not quote_ask:
                continue
            price = max(1, int(math.ceil(reference + offset)))
        plan[place, 0] = price
        plan[place, 1] = size
        ids[place] = -1
        if old > 0:
            slot = slot_of[old]
            # Ids are never reused, so a resting id is the order left here, with its side.
            if slot >= 0 and orders[slot, O_REMAINING] == size and orders[slot, O_PRICE] == price:
                ids[place] = old
                kept_slots[kept] = slot
                kept += 1
    # Every other order of the owner's goes (a ladder has at most a few dozen places).
    slot = owners[owner, 0]
    while slot >= 0:
        following = orders[slot, O_ONEXT]
        keep = False
        for j in range(kept):
            if kept_slots[j] == slot:
                keep = True
                break
        if not keep:
            _remove(header, orders, levels, owners, slot_of, slot)
        slot = following
    sent = 0
    for place in range(2 * n_levels):
        if ids[place] == -1:
            side = 1 if place % 2 == 0 else -1
            order_id, left = _limit(
                header,
                orders,
                levels,
                owners,
                slot_of,
                fills,
                owner,
                side,
                plan[place, 0],
                plan[place, 1],
                sent,
            )
            sent += 1
            ids[place] = order_id if left > 0 else 0
    return sent, reference
