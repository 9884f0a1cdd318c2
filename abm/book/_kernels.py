"""Numba kernels of :class:`abm.book.fast.FastOrderBook`: the book as arrays, matching compiled.

The state is six arrays, passed to every kernel in this order (the class grows them before a call,
so a kernel never runs out of room):

* ``header`` int64[16]: the scalars (``H_*`` below); a price of 0 means "none" (prices are >= 1);
* ``orders`` int64[capacity, 9]: one row (slot) per resting order (``O_*``); a freed slot joins a
  free list threaded through ``O_NEXT``;
* ``levels`` int64[2, price capacity, 3]: per side (0 bids, 1 asks) and price, the level's total lots
  and the head and tail slots of its FIFO queue, a doubly linked list through ``O_NEXT``/``O_PREV``;
* ``owners`` int64[owner capacity, 2]: head and tail slots of each owner's orders in submission order
  (linked through ``O_ONEXT``/``O_OPREV``), so that ``cancel_all`` touches only that owner's orders;
* ``slot_of`` int32[id capacity]: the slot of each resting order id, -1 otherwise;
* ``fills`` int64[capacity, 8]: the fills of the current call (``F_*``), ``header[H_FILLS]`` of them.

Cancellation unlinks at once (no lazy dead entries), and the best price of a side is kept in the
header: when the best level empties the kernel scans to the next non-empty price, which the count of
non-empty levels per side guarantees exists. Order ids come from one counter shared by limit and
market orders, as in :class:`abm.book.pure.OrderBook`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# header fields
H_LAST_ID, H_LAST_PRICE, H_VOLUME, H_RESTING, H_FREE, H_USED = 0, 1, 2, 3, 4, 5
H_BEST_BID, H_BEST_ASK, H_BID_LEVELS, H_ASK_LEVELS, H_FILLS = 6, 7, 8, 9, 10
HEADER_SIZE = 16
# order fields
O_ID, O_OWNER, O_SIDE, O_PRICE, O_REMAINING, O_NEXT, O_PREV, O_ONEXT, O_OPREV = range(9)
ORDER_FIELDS = 9
# level fields
L_TOTAL, L_HEAD, L_TAIL = 0, 1, 2
# fill fields: the Fill tuple's seven fields, then the index of the operation that caused it
F_MAKER_ID, F_MAKER, F_TAKER_ID, F_TAKER, F_PRICE, F_QUANTITY, F_SIDE, F_OPERATION = range(8)
FILL_FIELDS = 8
# operation kinds of a batch
LIMIT, MARKET, CANCEL, CANCEL_ALL = 0, 1, 2, 3
# "no limit" for a market order: any ask price is <= it, any bid price >= 0
NO_LIMIT_BUY = np.iinfo(np.int64).max

_CACHE = True  # compiled code is cached next to this file (first use compiles, about 5 s)


@njit(cache=_CACHE)
def _remove(header, orders, levels, owners, slot_of, slot):
    """Take a resting order out of its level, its owner's list and the id index; free its slot."""
    side_index = 0 if orders[slot, O_SIDE] == 1 else 1
    price = orders[slot, O_PRICE]
    following = orders[slot, O_NEXT]
    previous = orders[slot, O_PREV]
    if previous >= 0:
        orders[previous, O_NEXT] = following
    else:
        levels[side_index, price, L_HEAD] = following
    if following >= 0:
        orders[following, O_PREV] = previous
    else:
        levels[side_index, price, L_TAIL] = previous
    owner = orders[slot, O_OWNER]
    following = orders[slot, O_ONEXT]
    previous = orders[slot, O_OPREV]
    if previous >= 0:
        orders[previous, O_ONEXT] = following
    else:
        owners[owner, 0] = following
    if following >= 0:
        orders[following, O_OPREV] = previous
    else:
        owners[owner, 1] = previous
    slot_of[orders[slot, O_ID]] = -1
    header[H_RESTING] -= 1
    total = levels[side_index, price, L_TOTAL] - orders[slot, O_REMAINING]
    levels[side_index, price, L_TOTAL] = total
    orders[slot, O_REMAINING] = 0
    orders[slot, O_NEXT] = header[H_FREE]
    header[H_FREE] = slot
    if total == 0:
        if side_index == 0:
            header[H_BID_LEVELS] -= 1
            if header[H_BEST_BID] == price:
                if header[H_BID_LEVELS] == 0:
                    header[H_BEST_BID] = 0
                else:
                    price -= 1
                    while levels[0, price, L_TOTAL] == 0:
                        price -= 1
                    header[H_BEST_BID] = price
        else:
            header[H_ASK_LEVELS] -= 1
            if header[H_BEST_ASK] == price:
                if header[H_ASK_LEVELS] == 0:
                    header[H_BEST_ASK] = 0
                else:
                    price += 1
                    while levels[1, price, L_TOTAL] == 0:
                        price += 1
                    header[H_BEST_ASK] = price


@njit(cache=_CACHE)
def _rest(header, orders, levels, owners, slot_of, order_id, owner, side, price, quantity):
    """Queue a limit order's remainder at the tail of its level and of its owner's list."""
    slot = header[H_FREE]
    if slot >= 0:
        header[H_FREE] = orders[slot, O_NEXT]
    else:
        slot = header[H_USED]
        header[H_USED] = slot + 1
    side_index = 0 if side == 1 else 1
    orders[slot, O_ID] = order_id
    orders[slot, O_OWNER] = owner
    orders[slot, O_SIDE] = side
    orders[slot, O_PRICE] = price
    orders[slot, O_REMAINING] = quantity
    tail = levels[side_index, price, L_TAIL]
    orders[slot, O_PREV] = tail
    orders[slot, O_NEXT] = -1
    if tail >= 0:
        orders[tail, O_NEXT] = slot
    else:
        levels[side_index, price, L_HEAD] = slot
    levels[side_index, price, L_TAIL] = slot
    tail = owners[owner, 1]
    orders[slot, O_OPREV] = tail
    orders[slot, O_ONEXT] = -1
    if tail >= 0:
        orders[tail, O_ONEXT] = slot
    else:
        owners[owner, 0] = slot
    owners[owner, 1] = slot
    slot_of[order_id] = slot
    header[H_RESTING] += 1
    if levels[side_index, price, L_TOTAL] == 0:
        if side_index == 0:
            header[H_BID_LEVELS] += 1
            if price > header[H_BEST_BID]:
                header[H_BEST_BID] = price
        else:
            header[H_ASK_LEVELS] += 1
            if header[H_BEST_ASK] == 0 or price < header[H_BEST_ASK]:
                header[H_BEST_ASK] = price
    levels[side_index, price, L_TOTAL] += quantity


@njit(cache=_CACHE)
def _match(header, orders, levels, owners, slot_of, fills, taker, side, taker_id, quantity, limit, operation):
    """Match a taker against the opposite side up to ``limit`` (inclusive); return the unfilled lots."""
    wanted = quantity
    traded_price = 0
    count = header[H_FILLS]
    maker_index = 1 if side == 1 else 0
    while quantity > 0:
        if side == 1:
            price = header[H_BEST_ASK]
            if price == 0 or price > limit:
                break
        else:
            price = header[H_BEST_BID]
            if price == 0 or price < limit:
                break
        slot = levels[maker_index, price, L_HEAD]
        available = orders[slot, O_REMAINING]
        traded = available if available <= quantity else quantity
        fills[count, F_MAKER_ID] = orders[slot, O_ID]
        fills[count, F_MAKER] = orders[slot, O_OWNER]
        fills[count, F_TAKER_ID] = taker_id
        fills[count, F_TAKER] = taker
        fills[count, F_PRICE] = price
        fills[count, F_QUANTITY] = traded
        fills[count, F_SIDE] = side
        fills[count, F_OPERATION] = operation
        count += 1
        quantity -= traded
        traded_price = price
        if traded == available:
            _remove(header, orders, levels, owners, slot_of, slot)
        else:
            orders[slot, O_REMAINING] = available - traded
            levels[maker_index, price, L_TOTAL] -= traded
    header[H_FILLS] = count
    if quantity != wanted:
        header[H_LAST_PRICE] = traded_price
        header[H_VOLUME] += wanted - quantity
    return quantity


@njit(cache=_CACHE)
def _limit(header, orders, levels, owners, slot_of, fills, owner, side, price, quantity, operation):
    """Submit one limit order; return ``(order id, lots left resting)``."""
    order_id = header[H_LAST_ID] + 1
    header[H_LAST_ID] = order_id
    if side == 1:
        best = header[H_BEST_ASK]
        if best != 0 and best <= price:
            quantity = _match(
                header, orders, levels, owners, slot_of, fills, owner, 1, order_id, quantity, price, operation
            )
    else:
        best = header[H_BEST_BID]
        if best != 0 and best >= price:
            quantity = _match(
                header,
                orders,
                levels,
                owners,
                slot_of,
                fills,
                owner,
                -1,
                order_id,
                quantity,
                price,
                operation,
            )
    if quantity > 0:
        _rest(header, orders, levels, owners, slot_of, order_id, owner, side, price, quantity)
    return order_id, quantity


@njit(cache=_CACHE)
def _market(header, orders, levels, owners, slot_of, fills, owner, side, quantity, limit, operation):
    """One market order (``limit`` 0: none); return ``(order id, lots unfilled)``."""
    order_id = header[H_LAST_ID] + 1
    header[H_LAST_ID] = order_id
    if limit == 0 and side == 1:
        limit = NO_LIMIT_BUY
    left = _match(
        header, orders, levels, owners, slot_of, fills, owner, side, order_id, quantity, limit, operation
    )
    return order_id, left


@njit(cache=_CACHE)
def _cancel_all(header, orders, levels, owners, slot_of, owner):
    """Cancel every resting order of ``owner``; return the lots removed."""
    removed = 0
    slot = owners[owner, 0]
    while slot >= 0:
        following = orders[slot, O_ONEXT]
        removed += orders[slot, O_REMAINING]
        _remove(header, orders, levels, owners, slot_of, slot)
        slot = following
    return removed


@njit(cache=_CACHE)
def process(
    header,
    orders,
    levels,
    owners,
    slot_of,
    fills,
    kinds,
    owner_of,
    sides,
    prices,
    quantities,
    targets,
    out_ids,
    out_quantities,
):
    """Apply a batch of operations in order; fills go to ``fills`` (``F_OPERATION`` = batch index).

    Per operation ``i``: ``out_ids[i]`` is the order id drawn (limit and market orders, else 0) and
    ``out_quantities[i]`` the lots left resting (limit), filled (market) or removed (cancels).
    ``prices`` is the limit price of a limit order and the limit of a market order (0: none);
    ``targets`` the order id a ``CANCEL`` removes.
    """
    header[H_FILLS] = 0
    for i in range(kinds.shape[0]):
        kind = kinds[i]
        if kind == LIMIT:
            order_id, left = _limit(
                header,
                orders,
                levels,
                owners,
                slot_of,
                fills,
                owner_of[i],
                sides[i],
                prices[i],
                quantities[i],
                i,
            )
            out_ids[i] = order_id
            out_quantities[i] = left
        elif kind == MARKET:
            order_id, left = _market(
                header,
                orders,
                levels,
                owners,
                slot_of,
                fills,
                owner_of[i],
                sides[i],
                quantities[i],
                prices[i],
                i,
            )
            out_ids[i] = order_id
            out_quantities[i] = quantities[i] - left
        elif kind == CANCEL:
            out_ids[i] = 0
            target = targets[i]
            removed = 0
            if 0 < target < slot_of.shape[0]:
                slot = slot_of[target]
                if slot >= 0:
                    removed = orders[slot, O_REMAINING]
                    _remove(header, orders, levels, owners, slot_of, slot)
            out_quantities[i] = removed
        else:
            out_ids[i] = 0
            owner = owner_of[i]
            out_quantities[i] = (
                _cancel_all(header, orders, levels, owners, slot_of, owner) if owner < owners.shape[0] else 0
            )


@njit(cache=_CACHE)
def _ladder(
    header,
    orders,
    levels,
    owners,
    slot_of,
    fills,
    owner,
    reference,
    half_spread,
    spacing,
    n_levels,
    level_size,
    size_growth,
    size_scale,
    quote_bid,
    quote_ask,
):
    """The ladder's orders (see :func:`ladder`); return how many were sent."""
    sent = 0
    for level in range(n_levels):
        size = int(level_size * (1.0 + size_growth * level) * size_scale)
        if size <= 0:
            continue
        offset = half_spread + level * spacing
        if quote_bid:
            price = int(math.floor(reference - offset))
            if price >= 1:
                _limit(header, orders, levels, owners, slot_of, fills, owner, 1, price, size, sent)
                sent += 1
        if quote_ask:
            price = max(1, int(math.ceil(reference + offset)))
            _limit(header, orders, levels, owners, slot_of, fills, owner, -1, price, size, sent)
            sent += 1
    return sent


@njit(cache=_CACHE)
def ladder(
    header,
    orders,
    levels,
    owners,
    slot_of,
    fills,
    owner,
    reference,
    half_spread,
    spacing,
    n_levels,
    level_size,
    size_growth,
    size_scale,
    quote_bid,
    quote_ask,
):
    """A market maker's ladder (see :meth:`abm.book.pure.OrderBook.submit_ladder`); return orders sent.

    The fills' ``F_OPERATION`` is the index of the order among those sent.
    """
    header[H_FILLS] = 0
    return _ladder(
        header, orders, levels, owners, slot_of, fills,
        owner, reference, half_spread, spacing, n_levels,
        level_size, size_growth, size_scale, quote_bid, quote_ask,
    )  # fmt: skip


@njit(cache=_CACHE)
def quote_reference(header, anchor_weight, anchor):
    """The quoting reference in ticks (see ``OrderBook.quote_reference``)."""
    bid = header[H_BEST_BID]
    ask = header[H_BEST_ASK]
    if bid != 0 and ask != 0:
        reference = (bid + ask) / 2
    else:
        last = header[H_LAST_PRICE]
        reference = float(last) if last != 0 else anchor
    if anchor_weight > 0.0:
        reference = (1.0 - anchor_weight) * reference + anchor_weight * anchor
    return reference


@njit(cache=_CACHE)
def requote(
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
):
    """Cancel an owner's orders, then its ladder around the reference left (``OrderBook.requote_ladder``).

    Returns ``(orders sent, reference)``; ``-1`` orders sent means the ladder's top ask is beyond the
    price arrays and nothing was sent after the cancel (the caller grows them and sends the ladder).
    """
    header[H_FILLS] = 0
    _cancel_all(header, orders, levels, owners, slot_of, owner)
    reference = quote_reference(header, anchor_weight, anchor) - shift
    top = int(math.ceil(reference + half_spread + max(n_levels - 1, 0) * spacing)) + 1
    if top >= levels.shape[1]:
        return -1, reference
    sent = _ladder(
        header, orders, levels, owners, slot_of, fills,
        owner, reference, half_spread, spacing, n_levels,
        level_size, size_growth, size_scale, quote_bid, quote_ask,
    )  # fmt: skip
    return sent, reference


@njit(cache=_CACHE)
def side_levels(levels, header, side, n, out):
    """Write the best ``n`` levels of a side as rows ``(price, total)`` into ``out``; return how many."""
    if side == 1:
        price = header[H_BEST_BID]
        count = header[H_BID_LEVELS]
    else:
        price = header[H_BEST_ASK]
        count = header[H_ASK_LEVELS]
    side_index = 0 if side == 1 else 1
    written = 0
    if price == 0:
        return 0
    limit = min(n, count)
    while written < limit:
        total = levels[side_index, price, L_TOTAL]
        if total > 0:
            out[written, 0] = price
            out[written, 1] = total
            written += 1
        price = price - 1 if side == 1 else price + 1
    return written


@njit(cache=_CACHE)
def depth_profile(levels, header, reference, width, buckets, max_levels, out):
    """Bucket the levels around ``reference`` into ``out`` (see ``OrderBook.depth_profile``)."""
    last = 2 * buckets
    for side_index in range(2):
        price = header[H_BEST_BID] if side_index == 0 else header[H_BEST_ASK]
        remaining = header[H_BID_LEVELS] if side_index == 0 else header[H_ASK_LEVELS]
        remaining = min(remaining, max_levels)
        while remaining > 0:
            lots = levels[side_index, price, L_TOTAL]
            if lots > 0:
                remaining -= 1
                if price == reference:
                    bucket = buckets - 1 if side_index == 0 else buckets
                else:
                    bucket = int(math.floor((price - reference) / width)) + buckets
                    if (side_index == 0 and bucket < 0) or (side_index == 1 and bucket >= last):
                        break
                if 0 <= bucket < last:
                    out[bucket] += lots
            price = price - 1 if side_index == 0 else price + 1


@njit(cache=_CACHE)
def depth_between(levels, side_index, low, high):
    """Total lots on one side at prices ``low..high`` (clipped to the price capacity)."""
    high = min(high, levels.shape[1] - 1)
    total = 0
    for price in range(max(low, 1), high + 1):
        total += levels[side_index, price, L_TOTAL]
    return total


@njit(cache=_CACHE)
def linked_ids(orders, slot, link, out):
    """Write the ids along a linked list of orders from ``slot`` into ``out``; return how many.

    ``link`` is ``O_NEXT`` to walk a level's queue (time priority), ``O_ONEXT`` an owner's orders
    (submission order).
    """
    count = 0
    while slot >= 0:
        out[count] = orders[slot, O_ID]
        count += 1
        slot = orders[slot, link]
    return count


# ---------------------------------------------------------------------- single operations


@njit(cache=_CACHE)
def limit_one(header, orders, levels, owners, slot_of, fills, owner, side, price, quantity):
    """One limit order; return ``(order id, lots left resting)``; its fills are the call's fills."""
    header[H_FILLS] = 0
    return _limit(header, orders, levels, owners, slot_of, fills, owner, side, price, quantity, 0)


@njit(cache=_CACHE)
def market_one(header, orders, levels, owners, slot_of, fills, owner, side, quantity, limit):
    """One market order (``limit`` 0: none); return the unfilled lots."""
    header[H_FILLS] = 0
    return _market(header, orders, levels, owners, slot_of, fills, owner, side, quantity, limit, 0)[1]


@njit(cache=_CACHE)
def cancel_one(header, orders, levels, owners, slot_of, order_id):
    """Cancel one resting order (the caller checked it rests); return its lots."""
    header[H_FILLS] = 0
    slot = slot_of[order_id]
    removed = orders[slot, O_REMAINING]
    _remove(header, orders, levels, owners, slot_of, slot)
    return removed


@njit(cache=_CACHE)
def cancel_all_one(header, orders, levels, owners, slot_of, owner):
    """Cancel every resting order of one owner; return the lots removed."""
    header[H_FILLS] = 0
    return _cancel_all(header, orders, levels, owners, slot_of, owner)


@njit(cache=_CACHE)
def passive_price(header, side, offset, reference):
    """A limit price ``offset`` ticks behind the touch (see ``OrderBook.passive_price``)."""
    if side == 1:
        best = header[H_BEST_BID]
        if best == 0:
            last = header[H_LAST_PRICE]
            best = (last if last != 0 else int(math.floor(reference))) - 1
        price = best - offset
        ask = header[H_BEST_ASK]
        if ask != 0 and price > ask - 1:
            price = ask - 1
    else:
        best = header[H_BEST_ASK]
        if best == 0:
            last = header[H_LAST_PRICE]
            best = (last if last != 0 else int(math.ceil(reference))) + 1
        price = best + offset
        bid = header[H_BEST_BID]
        if bid != 0 and price < bid + 1:
            price = bid + 1
    return max(1, price)


@njit(cache=_CACHE)
def replace_one(
    header, orders, levels, owners, slot_of, fills, owner, side, quantity, offset, reference, market
):
    """Cancel an owner's orders, then one market order or one passive limit order.

    ``market``: a market order (``offset`` and ``reference`` unused); else a limit order at
    :func:`passive_price` of the book after the cancel. Returns ``(order id, lots left, price)``; an
    order id of 0 means the passive price is beyond the price arrays, and the order was not sent (the
    caller grows them and sends it).
    """
    header[H_FILLS] = 0
    _cancel_all(header, orders, levels, owners, slot_of, owner)
    if market:
        order_id, left = _market(header, orders, levels, owners, slot_of, fills, owner, side, quantity, 0, 0)
        return order_id, left, 0
    price = passive_price(header, side, offset, reference)
    if price >= levels.shape[1]:
        return 0, quantity, price
    order_id, left = _limit(header, orders, levels, owners, slot_of, fills, owner, side, price, quantity, 0)
    return order_id, left, price
