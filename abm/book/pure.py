"""Limit order book and matching engine: price-time priority, integer ticks, integer lots.

One :class:`OrderBook` is the single venue of a simulation. Limit orders match immediately against
the opposite side as far as they cross (always at the resting maker's price) and the remainder
rests; market orders are immediate-or-cancel and never rest. Prices are integer ticks (>= 1) and
quantities integer lots (>= 1), so matching is exact and runs are reproducible byte for byte.

Self-trades are allowed: when a taker meets its own resting order the match is reported as an
ordinary :class:`Fill` with ``maker == taker``; the clearing layer nets it (no position change,
no PnL). Keeping them avoids silently reordering priority, which self-trade prevention would do.

Layout, chosen because this is the simulator's hot path in pure Python (measured figures are in
``benchmarks/bench_book.py``):

* each side is a dict ``price -> level`` plus a sorted list of *keys* (``side * price``) of its
  non-empty levels, so that the best price of either side is always the **last** key (append/pop
  at the end, ``bisect`` elsewhere; most activity is near the touch, so list shifts are short);
* a level is a small list ``[total_quantity, queue, dead_entries]`` whose queue is a ``deque`` of
  orders in arrival (FIFO) order. A level is empty exactly when its total is 0 (every live order
  has at least one lot), so no live-order count is kept. An emptied level leaves the key list but
  stays in the dict, with an empty queue, to be reused: prices near the touch empty and refill
  all the time, and a new ``deque`` costs more than the rest of a resting order. Emptied levels
  are dropped in bulk when they outnumber the listed ones (by ``_EMPTY_LEVEL_SLACK``), so memory
  stays bounded when the price wanders;
* an order is a list ``[order_id, owner, side, price, remaining, owner_orders]``, the last being
  its owner's index dict (below), so that a fill or cancel removes it from there without looking
  the owner up;
* cancellation is O(1): the order leaves the id and owner indexes at once and its ``remaining``
  becomes 0, the level's total is corrected immediately (so depth and levels are always exact),
  and the dead entry is dropped from the queue lazily: when it reaches the head during matching,
  when the level empties, or when dead entries (counted per level) outnumber live ones;
* every owner has a dict ``order_id -> order`` (insertion order = submission order), so
  ``cancel_all`` touches only that owner's orders;
* argument checks are one combined test on the common case (plain ints in range); anything else
  goes through the slow path that converts numpy integers and raises the precise error;
* fills are created with ``tuple.__new__`` (about 40% cheaper than the generated constructor).

The cyclic garbage collector does not matter here: an order refers to its owner's dict, which
refers back to it only while it rests, and resting orders are few compared with the orders that
pass through (the benchmark shows the same speed with ``gc.freeze``, with the collector disabled,
and per order at 1e5 and 1e6 orders). Nothing in this module touches the ``gc`` module.

Order ids come from a per-book counter starting at 1; market orders draw an id from the same
counter (it appears as ``taker_order_id`` in their fills).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections import deque
from itertools import islice
from math import ceil, floor
from typing import TYPE_CHECKING

from abm.book.arguments import (
    check_reference,
    check_side,
    integer,
    ladder_arguments,
    market_arguments,
    profile_arguments,
    replace_arguments,
    validated_cost,
    validated_count,
    validated_limit,
    validated_limit_price,
    validated_within,
)
from abm.book.protocol import BUY, MAX_LOTS, MAX_PRICE_TICKS, SELL, Fill

if TYPE_CHECKING:  # only for annotations: the pure book needs no numpy
    import numpy as np

__all__ = ["BUY", "SELL", "Fill", "OrderBook"]

# Positions inside an order list and a level list (lists beat __slots__ objects on attribute speed;
# the hot code uses the literal indexes, these names document them).
_ID, _OWNER, _SIDE, _PRICE, _REMAINING, _OWNER_ORDERS = 0, 1, 2, 3, 4, 5
_TOTAL, _QUEUE, _DEAD = 0, 1, 2

# A level's dead (cancelled) queue entries are compacted away once there are more than this many
# and they outnumber the live ones.
_COMPACTION_SLACK = 16

# Emptied levels are kept for reuse until they outnumber the listed ones by more than this.
_EMPTY_LEVEL_SLACK = 64

# The order at a ladder place that has none (amend_ladder): 0 lots, so it never matches a size.
_NO_ORDER = [0, -1, 0, 0, 0, None]

# A limit key no real key can be below: market orders without a limit price cross everything.
_NO_LIMIT_KEY = -(1 << 62)


# tuple.__new__ skips the generated NamedTuple constructor: about 40% cheaper per fill.
_new_tuple = tuple.__new__


def _drop_empty_levels(levels: dict[int, list]) -> None:
    """Delete the emptied levels kept for reuse (their queues are empty and their keys unlisted)."""
    for price in [price for price, level in levels.items() if not level[0]]:
        del levels[price]


class OrderBook:
    """A price-time-priority limit order book with an immediate matching engine.

    Example:
        >>> book = OrderBook()
        >>> ask_id, _ = book.submit_limit(owner=1, side=SELL, price=101, quantity=5)
        >>> book.submit_market(owner=2, side=BUY, quantity=3)
        [Fill(maker_order_id=1, maker=1, taker_order_id=2, taker=2, price=101, quantity=3, taker_side=1)]
        >>> book.order(ask_id)
        (1, -1, 101, 2)
    """

    __slots__ = (
        "_bid_keys",
        "_ask_keys",
        "_bid_levels",
        "_ask_levels",
        "_orders",
        "_by_owner",
        "_last_order_id",
        "_last_price",
        "_volume",
        "_ladders",
    )

    def __init__(self) -> None:
        # Keys are side * price, ascending, so the best price of each side is the last key.
        self._bid_keys: list[int] = []
        self._ask_keys: list[int] = []
        self._bid_levels: dict[int, list] = {}
        self._ask_levels: dict[int, list] = {}
        self._orders: dict[int, list] = {}
        self._by_owner: dict[int, dict[int, list]] = {}
        self._last_order_id = 0
        self._last_price: int | None = None
        self._volume = 0
        # Per owner, its last amend_ladder: (the ladder's arguments and reference, the order left at
        # each place or _NO_ORDER, the size each place asks for, how many orders rest at the places).
        self._ladders: dict[int, tuple] = {}

    # ------------------------------------------------------------------ order entry

    def submit_limit(self, owner: int, side: int, price: int, quantity: int) -> tuple[int, list[Fill]]:
        """Submit a limit order: match what crosses at the makers' prices, rest the remainder.

        Args:
            owner: Account id of the submitter.
            side: ``BUY`` (+1) or ``SELL`` (-1).
            price: Limit price in ticks, >= 1.
            quantity: Lots, >= 1.

        Returns:
            ``(order_id, fills)``. The id is valid even if the order filled completely (it is then
            simply not resting); ``fills`` are in execution order, best price first.

        Raises:
            ValueError: If side, price or quantity is out of range.
            TypeError: If owner, side, price or quantity is not an integer.
        """
        # One combined test for the common case; anything unusual takes the slow, exact path.
        if (
            type(price) is not int
            or type(quantity) is not int
            or type(side) is not int
            or type(owner) is not int
            or not 0 < price <= MAX_PRICE_TICKS
            or not 0 < quantity <= MAX_LOTS
            or owner < 0
            or (side != 1 and side != -1)
        ):
            owner, side, price, quantity = validated_limit(owner, side, price, quantity)
        return self._place(owner, side, price, quantity)

    def _place(self, owner: int, side: int, price: int, quantity: int) -> tuple[int, list[Fill]]:
        """:meth:`submit_limit` without its argument checks (for orders built from checked ones)."""
        order_id = self._last_order_id + 1
        self._last_order_id = order_id
        fills: list[Fill] = []
        if side == 1:
            opposite_keys = self._ask_keys
            if opposite_keys and opposite_keys[-1] >= -price:
                quantity = self._match(owner, 1, order_id, quantity, -price, fills)
                if not quantity:
                    return order_id, fills
            keys = self._bid_keys
            levels = self._bid_levels
            key = price
        else:
            opposite_keys = self._bid_keys
            if opposite_keys and opposite_keys[-1] >= price:
                quantity = self._match(owner, -1, order_id, quantity, price, fills)
                if not quantity:
                    return order_id, fills
            keys = self._ask_keys
            levels = self._ask_levels
            key = -price
        # Subscripts in try blocks: a hit (the usual case) is cheaper than a .get() call.
        try:
            owner_orders = self._by_owner[owner]
        except KeyError:
            owner_orders = self._by_owner[owner] = {}
        order = [order_id, owner, side, price, quantity, owner_orders]
        owner_orders[order_id] = order
        self._orders[order_id] = order
        try:
            level = levels[price]
        except KeyError:
            if len(levels) > 2 * len(keys) + _EMPTY_LEVEL_SLACK:
                _drop_empty_levels(levels)
            levels[price] = [quantity, deque((order,)), 0]
        else:
            level[1].append(order)
            total = level[0] + quantity
            level[0] = total
            if total != quantity:  # the level was listed already
                return order_id, fills
        if not keys or key > keys[-1]:
            keys.append(key)
        else:
            insort(keys, key)
        return order_id, fills

    def submit_market(
        self, owner: int, side: int, quantity: int, limit_price: int | None = None
    ) -> list[Fill]:
        """Submit an immediate-or-cancel order that sweeps the opposite side.

        The part that cannot fill (empty or too thin opposite side, or the limit reached) is dropped;
        the caller sees it as ``quantity - sum(f.quantity for f in fills)``. The order never rests.

        Args:
            owner: Account id of the submitter.
            side: ``BUY`` (+1) or ``SELL`` (-1).
            quantity: Lots, >= 1.
            limit_price: If given (ticks, >= 1), no fill happens at a price worse than this for the
                taker (above it for a buy, below it for a sell).

        Returns:
            The fills in execution order (possibly empty).

        Raises:
            ValueError: If side, quantity or limit_price is out of range.
            TypeError: If owner, side, quantity or limit_price is not an integer.
        """
        owner, side, quantity = market_arguments(owner, side, quantity)
        if limit_price is None:
            limit_key = _NO_LIMIT_KEY
        else:
            if type(limit_price) is not int or limit_price < 1:
                limit_price = validated_limit_price(limit_price)
            limit_key = -side * limit_price
        order_id = self._last_order_id + 1
        self._last_order_id = order_id
        fills: list[Fill] = []
        opposite_keys = self._ask_keys if side == 1 else self._bid_keys
        if opposite_keys and opposite_keys[-1] >= limit_key:
            self._match(owner, side, order_id, quantity, limit_key, fills)
        return fills

    def passive_price(self, side: int, offset: int, reference: float) -> int:
        """A limit price ``offset`` ticks behind the touch on ``side``, never crossing the other side.

        Behind means below the best bid for a buy and above the best ask for a sell; a negative
        offset improves on the touch but stays one tick inside the opposite best. With ``side``
        empty, the price is placed behind the last trade price, or before any trade behind
        ``reference`` (ticks): ``floor(reference) - 1 - offset`` for a buy, ``ceil(reference) + 1 +
        offset`` for a sell. Never below 1 tick.

        Args:
            side: ``BUY`` (+1) or ``SELL`` (-1).
            offset: Ticks behind the touch (negative: improve).
            reference: Fallback price in ticks (e.g. the index), used only as described; finite.

        Returns:
            The price in ticks.

        Raises:
            ValueError: If side is invalid or reference is not finite.
        """
        if type(side) is not int or (side != 1 and side != -1):
            side = check_side(side)
        if type(offset) is not int:
            offset = integer(offset, "offset")
        check_reference(reference)
        if side == 1:
            best = self._bid_keys[-1] if self._bid_keys else None
            if best is None:
                last = self._last_price
                best = (last if last is not None else floor(reference)) - 1
            price = best - offset
            if self._ask_keys:
                price = min(price, -self._ask_keys[-1] - 1)
        elif side == -1:
            best = -self._ask_keys[-1] if self._ask_keys else None
            if best is None:
                last = self._last_price
                best = (last if last is not None else ceil(reference)) + 1
            price = best + offset
            if self._bid_keys:
                price = max(price, self._bid_keys[-1] + 1)
        return max(1, price)

    def replace_with_passive(
        self, owner: int, side: int, offset: int, quantity: int, reference: float
    ) -> tuple[int, list[Fill]]:
        """Cancel every resting order of ``owner``, then rest a limit order at :meth:`passive_price`.

        The same as ``cancel_all(owner)`` then ``submit_limit(owner, side, passive_price(side, offset,
        reference), quantity)``, the price taken after the cancel: one call, because a trader that
        replaces its order every time it acts is the commonest request of a run.

        Returns:
            ``(order_id, fills)`` as :meth:`submit_limit` (fills only if the opposite best is at 1 tick).
        """
        # Every argument is checked before the cancel: a refused call changes nothing.
        owner, side, quantity, offset = replace_arguments(owner, side, quantity, offset, reference)
        self.cancel_all(owner)
        return self.submit_limit(owner, side, self.passive_price(side, offset, reference), quantity)

    def replace_with_market(self, owner: int, side: int, quantity: int) -> list[Fill]:
        """Cancel every resting order of ``owner``, then send a market order (as :meth:`submit_market`).

        Returns:
            The market order's fills.
        """
        owner, side, quantity = market_arguments(owner, side, quantity)  # before the cancel
        self.cancel_all(owner)
        return self.submit_market(owner, side, quantity)

    def _match(self, taker: int, side: int, taker_id: int, quantity: int, limit_key: int, fills: list) -> int:
        """Match a taker against the opposite side down to ``limit_key``; return the unfilled quantity.

        ``limit_key`` is the worst acceptable maker price in the opposite side's key space
        (``-side * price``): levels whose key is below it are not touched. The caller has checked
        that the opposite side's best key reaches ``limit_key``.
        """
        if side == 1:
            keys = self._ask_keys
            levels = self._ask_levels
            sign = -1  # maker side: price = sign * key
        else:
            keys = self._bid_keys
            levels = self._bid_levels
            sign = 1
        orders = self._orders
        append_fill = fills.append
        wanted = quantity
        price = 0
        while keys:
            key = keys[-1]
            if key < limit_key:
                break
            price = sign * key
            level = levels[price]
            queue = level[1]
            total = level[0]
            # A listed level has a positive total, so its queue holds a live entry and queue[0] exists.
            while True:
                maker = queue[0]
                available = maker[4]
                if available > quantity:  # the maker keeps a remainder: the taker is done
                    maker[4] = available - quantity
                    total -= quantity
                    append_fill(
                        _new_tuple(Fill, (maker[0], maker[1], taker_id, taker, price, quantity, side))
                    )
                    quantity = 0
                    break
                queue.popleft()
                if available:
                    maker[4] = 0  # filled: a held reference (amend_ladder's places) sees it gone
                    maker_id = maker[0]
                    del orders[maker_id]
                    del maker[5][maker_id]
                    append_fill(
                        _new_tuple(Fill, (maker_id, maker[1], taker_id, taker, price, available, side))
                    )
                    total -= available
                    quantity -= available
                    if not total or not quantity:
                        break
                else:  # a cancelled entry, dropped lazily here
                    level[2] -= 1
            if total:  # then quantity is 0
                level[0] = total
                break
            # The level is used up: unlist it and keep the empty shell for reuse.
            keys.pop()
            level[0] = 0
            level[2] = 0
            queue.clear()  # trailing cancelled entries
            if not quantity:
                break
        traded = wanted - quantity
        if traded:
            self._last_price = price
            self._volume += traded
        return quantity

    def submit_ladder(
        self,
        owner: int,
        reference: float,
        half_spread: float,
        spacing: float,
        levels: int,
        level_size: int,
        size_growth: float,
        size_scale: float,
        quote_bid: bool,
        quote_ask: bool,
    ) -> tuple[int, list[list[Fill]]]:
        """Send a ladder of limit orders for ``owner`` (a market maker's quotes), bid then ask per level.

        Level ``k`` (0 first) has size ``int(level_size * (1 + size_growth * k) * size_scale)`` (skipped
        when 0) at offset ``half_spread + k * spacing`` from ``reference`` (ticks, may be fractional):
        the bid at ``floor(reference - offset)`` (skipped below 1 tick), then the ask at
        ``max(1, ceil(reference + offset))``. It is exactly these ``submit_limit`` calls in this
        order; :class:`abm.book.fast.FastOrderBook` does the same work in
        one compiled call, and the tests hold the two to identical fills.

        Returns:
            ``(orders sent, fills)``, where ``fills`` holds one non-empty list per order that crossed,
            in order.
        """
        owner, levels, level_size = ladder_arguments(
            owner, reference, half_spread, spacing, levels, level_size
        )
        # Every price is a whole number of ticks within range (ladder_arguments bounds the top ask; a
        # bid under 1 is skipped), so only a size can fail submit_limit's checks: when the largest
        # cannot, the orders go in unchecked, else each through the checks (and their errors).
        largest = level_size * (1.0 + size_growth * max(levels - 1, 0)) * size_scale
        checked = not (0.0 <= size_growth and 0.0 <= size_scale and largest <= MAX_LOTS)
        submit = self.submit_limit if checked else self._place
        crossed: list[list[Fill]] = []
        sent = 0
        for level in range(levels):
            size = int(level_size * (1.0 + size_growth * level) * size_scale)
            if size <= 0:
                continue
            offset = half_spread + level * spacing
            if quote_bid:
                price = int(floor(reference - offset))
                if price >= 1:
                    fills = submit(owner, 1, price, size)[1]
                    sent += 1
                    if fills:
                        crossed.append(fills)
            if quote_ask:
                fills = submit(owner, -1, max(1, int(ceil(reference + offset))), size)[1]
                sent += 1
                if fills:
                    crossed.append(fills)
        return sent, crossed

    def quote_reference(self, anchor_weight: float, anchor: float) -> float:
        """A reference price for quoting, in ticks: the mid, else the last trade, else ``anchor``.

        Blended with ``anchor`` (e.g. the index in ticks) by ``anchor_weight`` when it is positive:
        ``(1 - anchor_weight) * mid + anchor_weight * anchor``.
        """
        if self._bid_keys and self._ask_keys:
            reference = (self._bid_keys[-1] - self._ask_keys[-1]) / 2
        else:
            last = self._last_price
            reference = float(last) if last is not None else anchor
        if anchor_weight > 0.0:
            reference = (1.0 - anchor_weight) * reference + anchor_weight * anchor
        return reference

    def requote_ladder(
        self,
        owner: int,
        anchor_weight: float,
        anchor: float,
        shift: float,
        half_spread: float,
        spacing: float,
        levels: int,
        level_size: int,
        size_growth: float,
        size_scale: float,
        quote_bid: bool,
        quote_ask: bool,
    ) -> tuple[int, list[list[Fill]]]:
        """Cancel ``owner``'s orders, then send a ladder around the reference of the book left behind.

        The same as ``cancel_all(owner)``, then :meth:`submit_ladder` at ``quote_reference(anchor_weight,
        anchor) - shift`` (the reference taken after the cancel: the mid without the owner's own
        quotes): a market maker's whole requote in one call.

        Returns:
            As :meth:`submit_ladder`.
        """
        # Checked before the cancel; the ladder's reach is known only after it (submit_ladder checks it).
        owner = ladder_arguments(owner, 0.0, half_spread, spacing, levels, level_size)[0]
        self.cancel_all(owner)
        reference = self.quote_reference(anchor_weight, anchor) - shift
        return self.submit_ladder(
            owner,
            reference,
            half_spread,
            spacing,
            levels,
            level_size,
            size_growth,
            size_scale,
            quote_bid,
            quote_ask,
        )

    def amend_ladder(
        self,
        owner: int,
        anchor_weight: float,
        anchor: float,
        shift: float,
        half_spread: float,
        spacing: float,
        levels: int,
        level_size: int,
        size_growth: float,
        size_scale: float,
        quote_bid: bool,
        quote_ask: bool,
    ) -> tuple[int, list[list[Fill]]]:
        """The ladder of :meth:`requote_ladder`, keeping the queue place of every level that did not move.

        The reference is the one :meth:`requote_ladder` takes (the book without ``owner``'s orders,
        then ``- shift``), and the ladder's places are the same: bid then ask per level. A place keeps
        the order this call left there last time when that order still rests in full at the place's
        price and size: it stays in its queue, with its id. Every other order of ``owner`` is
        cancelled, then the places not kept get new orders, in the ladder's order (these can cross).
        A ladder's bids are all below its asks, so a new order never meets a kept one.

        Returns:
            ``(orders sent, fills)`` as :meth:`submit_ladder`, counting only the new orders.
        """
        owner = ladder_arguments(owner, 0.0, half_spread, spacing, levels, level_size)[0]
        reference = self._reference_without(owner, anchor_weight, anchor) - shift
        levels, level_size = ladder_arguments(owner, reference, half_spread, spacing, levels, level_size)[1:]
        key = (
            reference,
            half_spread,
            spacing,
            levels,
            level_size,
            size_growth,
            size_scale,
            quote_bid,
            quote_ask,
        )
        owner_orders = self._by_owner.get(owner)
        record = self._ladders.get(owner)
        if record is not None and record[0] == key:
            # The same ladder as last time: nothing to do while every place's order rests in full
            # (a cancelled or filled order holds 0 lots) and the owner has no other order.
            places, sizes, count = record[1], record[2], record[3]
            if (len(owner_orders) if owner_orders is not None else 0) == count and all(
                order[4] == size for order, size in zip(places, sizes, strict=True) if size
            ):
                return 0, []
        largest = level_size * (1.0 + size_growth * max(levels - 1, 0)) * size_scale
        checked = not (0.0 <= size_growth and 0.0 <= size_scale and largest <= MAX_LOTS)
        submit = self.submit_limit if checked else self._place
        old = record[1] if record is not None else []
        places = [_NO_ORDER] * (2 * levels)
        if len(old) < len(places):
            old = old + places[len(old) :]
        sizes = [0] * (2 * levels)  # the size each place asks for (0: the ladder has no order there)
        wanted = []  # (place, side, price, size) of the new orders, in the ladder's order
        kept = 0
        for level in range(levels):
            size = int(level_size * (1.0 + size_growth * level) * size_scale)
            if size <= 0:
                continue
            offset = half_spread + level * spacing
            if quote_bid:
                price = int(floor(reference - offset))
                if price >= 1:
                    place = 2 * level
                    sizes[place] = size
                    order = old[place]
                    # A filled or cancelled order holds 0 lots, so a full size means it rests.
                    if order[4] == size and order[3] == price:
                        places[place] = order
                        kept += 1
                    else:
                        wanted.append((place, 1, price, size))
            if quote_ask:
                price = int(ceil(reference + offset))
                if price < 1:
                    price = 1
                place = 2 * level + 1
                sizes[place] = size
                order = old[place]
                if order[4] == size and order[3] == price:
                    places[place] = order
                    kept += 1
                else:
                    wanted.append((place, -1, price, size))
        if owner_orders is not None and len(owner_orders) > kept:
            for place, order in enumerate(old):
                if order[4] and (place >= len(places) or places[place] is not order):
                    self.cancel(order[0])
            if len(owner_orders) > kept:  # orders not from a ladder
                keep = {id(order) for order in places}
                for order in [order for order in owner_orders.values() if id(order) not in keep]:
                    self.cancel(order[0])
        crossed: list[list[Fill]] = []
        orders = self._orders
        for place, side, price, size in wanted:
            order_id, fills = submit(owner, side, price, size)
            if fills:
                crossed.append(fills)
            order = orders.get(order_id)
            if order is not None:
                places[place] = order
                kept += 1
        # Resting at the end: the kept orders and the new ones that rest (a new one that rests only
        # in part never matches its size again, so it is resent next time).
        self._ladders[owner] = (key, places, sizes, kept)
        return len(wanted), crossed

    def _reference_without(self, owner: int, anchor_weight: float, anchor: float) -> float:
        """:meth:`quote_reference` of the book without ``owner``'s orders (nothing is cancelled)."""
        bid = self._best_without(self._bid_keys, self._bid_levels, 1, owner)
        ask = self._best_without(self._ask_keys, self._ask_levels, -1, owner)
        if bid is not None and ask is not None:
            reference = (bid + ask) / 2
        else:
            last = self._last_price
            reference = float(last) if last is not None else anchor
        if anchor_weight > 0.0:
            reference = (1.0 - anchor_weight) * reference + anchor_weight * anchor
        return reference

    @staticmethod
    def _best_without(keys: list[int], levels: dict[int, list], sign: int, owner: int) -> int | None:
        """The best price of one side (keys ``sign * price``) with lots of someone other than ``owner``."""
        for key in reversed(keys):
            level = levels[sign * key]
            # Cancelled entries still queued hold 0 lots, so they add nothing.
            if level[0] > sum(order[4] for order in level[1] if order[1] == owner):
                return sign * key
        return None

    # ------------------------------------------------------------------ cancellation

    def cancel(self, order_id: int) -> int:
        """Cancel a resting order.

        Args:
            order_id: Id returned by :meth:`submit_limit`.

        Returns:
            The quantity removed from the book; 0 if the id is unknown, already filled or cancelled.
        """
        if type(order_id) is not int:
            order_id = integer(order_id, "order_id")
        order = self._orders.pop(order_id, None)
        if order is None:
            return 0
        del order[5][order_id]
        # Common case inline: the level keeps live orders and needs no compaction.
        remaining = order[4]
        level = self._bid_levels[order[3]] if order[2] == 1 else self._ask_levels[order[3]]
        if level[0] != remaining and level[2] < _COMPACTION_SLACK:
            order[4] = 0  # marks the queue entry dead for lazy removal
            level[0] -= remaining
            level[2] += 1
            return remaining
        return self._unlink(order)

    def cancel_all(self, owner: int) -> int:
        """Cancel every resting order of ``owner``.

        Args:
            owner: Account id.

        Returns:
            The total quantity removed (0 if the owner had nothing resting).
        """
        if type(owner) is not int:
            owner = integer(owner, "owner")
        owner_orders = self._by_owner.pop(owner, None)
        if not owner_orders:
            return 0
        orders = self._orders
        unlink = self._unlink
        removed = 0
        for order_id, order in owner_orders.items():
            del orders[order_id]
            removed += unlink(order)
        owner_orders.clear()  # the dead orders still queued refer to it: keep it small
        return removed

    def _unlink(self, order: list) -> int:
        """Take a resting order (already out of the id/owner indexes) off its level; return its quantity."""
        remaining = order[4]
        order[4] = 0  # marks the queue entry dead for lazy removal
        price = order[3]
        level = self._bid_levels[price] if order[2] == 1 else self._ask_levels[price]
        total = level[0] - remaining
        level[0] = total
        if total:
            dead = level[2] + 1
            if dead > _COMPACTION_SLACK and 2 * dead > len(level[1]):
                level[1] = deque([entry for entry in level[1] if entry[4]])
                dead = 0
            level[2] = dead
            return remaining
        # The level is empty: unlist it and keep the shell for reuse.
        level[1].clear()
        level[2] = 0
        if order[2] == 1:
            keys = self._bid_keys
            key = price
        else:
            keys = self._ask_keys
            key = -price
        if keys[-1] == key:
            keys.pop()
        else:
            del keys[bisect_left(keys, key)]
        return remaining

    # ------------------------------------------------------------------ market data

    def best_bid(self) -> int | None:
        """Return the highest resting bid price in ticks, or None if there are no bids."""
        keys = self._bid_keys
        return keys[-1] if keys else None

    def best_ask(self) -> int | None:
        """Return the lowest resting ask price in ticks, or None if there are no asks."""
        keys = self._ask_keys
        return -keys[-1] if keys else None

    def mid(self) -> float | None:
        """Return (best bid + best ask) / 2 in ticks, or None unless both sides have orders."""
        if self._bid_keys and self._ask_keys:
            return (self._bid_keys[-1] - self._ask_keys[-1]) / 2
        return None

    @property
    def last_price(self) -> int | None:
        """Price in ticks of the most recent fill, or None before the first trade."""
        return self._last_price

    def volume_traded(self) -> int:
        """Return the total lots filled since the book was created (each fill counted once)."""
        return self._volume

    def _side(self, side: int) -> tuple[list[int], dict[int, list]]:
        """Return the (keys, levels) of one side (``side`` already checked)."""
        if side == 1:
            return self._bid_keys, self._bid_levels
        return self._ask_keys, self._ask_levels

    def depth(self, side: int, within_ticks: int) -> int:
        """Return the resting quantity on ``side`` within ``within_ticks`` of that side's best price.

        Args:
            side: ``BUY`` for bids, ``SELL`` for asks.
            within_ticks: 0 counts the best level only; k counts prices best..best-k for bids and
                best..best+k for asks.

        Returns:
            Lots (0 if the side is empty).

        Raises:
            ValueError: If side is invalid or within_ticks is negative.
        """
        if type(within_ticks) is not int or within_ticks < 0 or (side != 1 and side != -1):
            side, within_ticks = validated_within(side, within_ticks)
        keys, levels = self._side(side)
        if not keys:
            return 0
        start = bisect_left(keys, keys[-1] - within_ticks)
        return sum(levels[side * key][0] for key in keys[start:])

    def depth_near(self, side: int, reference: float, within_ticks: int) -> int:
        """Return the resting quantity on ``side`` at prices with ``|price - reference| <= within_ticks``.

        Args:
            side: ``BUY`` for bids, ``SELL`` for asks.
            reference: Centre price in ticks (e.g. the mid or the mark; may be fractional).
            within_ticks: Half-width of the window in ticks, >= 0.

        Returns:
            Lots (0 if no resting order is in the window).

        Raises:
            ValueError: If side is invalid or within_ticks is negative.
        """
        side, within_ticks = validated_within(side, within_ticks)
        reference = check_reference(reference)
        keys, levels = self._side(side)
        low_price = ceil(reference - within_ticks)
        high_price = floor(reference + within_ticks)
        if side == 1:
            start, stop = bisect_left(keys, low_price), bisect_right(keys, high_price)
        else:
            start, stop = bisect_left(keys, -high_price), bisect_right(keys, -low_price)
        return sum(levels[side * key][0] for key in keys[start:stop])

    def levels(self, side: int, n: int) -> list[tuple[int, int]]:
        """Return the best ``n`` price levels of ``side`` as ``(price, total quantity)``, best first.

        Raises:
            ValueError: If side is invalid or n is negative.
        """
        side, n = validated_count(side, n)
        keys, levels = self._side(side)
        start = max(len(keys) - n, 0)
        return [(side * key, levels[side * key][0]) for key in reversed(keys[start:])]

    def depth_profile(
        self, reference: float, width: float, buckets: int, max_levels: int, out: np.ndarray | None = None
    ) -> list[int] | np.ndarray:
        """Resting lots in ``2 * buckets`` price buckets of ``width`` ticks around ``reference``.

        Bucket ``buckets + floor((price - reference) / width)`` gets a level's lots (a bid exactly at the
        reference goes to the bucket below it, an ask to the one above); levels outside the window
        are left out. Each side looks at its best ``max_levels`` levels at most.

        Args:
            reference: Centre of the window, in ticks.
            width: Bucket width in ticks.
            buckets: Buckets on each side of the reference.
            max_levels: Levels looked at on each side, at most.
            out: An int64 array of ``2 * buckets`` to write the totals into (its contents are
                replaced), e.g. a row of a preallocated table.

        Returns:
            ``2 * buckets`` lot totals, lowest prices first: a list, or ``out`` when given.
        """
        reference, width, buckets, max_levels = profile_arguments(reference, width, buckets, max_levels)
        row = [0] * (2 * buckets)  # a list: item updates on a numpy row cost ~10x more
        last = 2 * buckets
        # Levels best first (the keys from the end, lazily: no list of levels is built), so each side
        # stops at the first level beyond the window; islice keeps to the best max_levels.
        bid_levels = self._bid_levels
        for price in islice(reversed(self._bid_keys), max_levels):
            if price == reference:
                bucket = buckets - 1
            else:
                bucket = floor((price - reference) / width) + buckets
                if bucket < 0:
                    break
            if bucket < last:
                row[bucket] += bid_levels[price][0]
        ask_levels = self._ask_levels
        for key in islice(reversed(self._ask_keys), max_levels):
            price = -key
            if price == reference:
                bucket = buckets
            else:
                bucket = floor((price - reference) / width) + buckets
                if bucket >= last:
                    break
            if bucket >= 0:
                row[bucket] += ask_levels[price][0]
        if out is not None:
            out[:] = row
            return out
        return row

    def market_order_cost(self, side: int, quantity: int) -> tuple[int, int]:
        """Price a hypothetical market order without changing the book.

        Args:
            side: Side of the hypothetical taker (``BUY`` walks the asks, ``SELL`` the bids).
            quantity: Lots wanted, >= 1.

        Returns:
            ``(fillable quantity, sum of price * quantity in ticks)`` over the levels it would sweep.

        Raises:
            ValueError: If side is invalid or quantity is not positive.
        """
        side, quantity = validated_cost(side, quantity)
        keys, levels = self._side(-side)
        maker_side = -side
        filled = 0
        cost = 0
        for key in reversed(keys):
            price = maker_side * key
            lots = min(levels[price][0], quantity - filled)
            filled += lots
            cost += lots * price
            if filled == quantity:
                break
        return filled, cost

    # ------------------------------------------------------------------ order queries

    def open_orders(self, owner: int) -> list[int]:
        """Return the ids of ``owner``'s resting orders in submission order."""
        return list(self._by_owner.get(integer(owner, "owner"), ()))

    def order(self, order_id: int) -> tuple[int, int, int, int] | None:
        """Return ``(owner, side, price, remaining)`` of a resting order, or None if it is not resting."""
        order = self._orders.get(integer(order_id, "order_id"))
        if order is None:
            return None
        return order[1], order[2], order[3], order[4]

    def orders_at(self, side: int, price: int) -> list[int]:
        """Return the ids of the resting orders at one price level in queue (time-priority) order.

        Raises:
            ValueError: If side is invalid.
        """
        side = check_side(side)
        _, levels = self._side(side)
        level = levels.get(integer(price, "price"))
        if level is None:
            return []
        return [entry[0] for entry in level[1] if entry[4]]

    def __len__(self) -> int:
        """Return the number of resting orders."""
        return len(self._orders)

    def check_invariants(self) -> None:
        """Verify the book's internal consistency (for tests and debug runs; O(book size)).

        Checks: not crossed; keys sorted and matching the non-empty levels; each level's total equal
        to its live orders and its dead count to its cancelled queue entries (an emptied level kept
        for reuse has neither); every live order positive, on the right side and price, indexed by id
        and owner; time priority (ascending ids) within each level.

        Raises:
            AssertionError: On the first violation found, with a description.
        """
        if self._bid_keys and self._ask_keys and self._bid_keys[-1] >= -self._ask_keys[-1]:
            raise AssertionError(f"crossed book: bid {self._bid_keys[-1]} >= ask {-self._ask_keys[-1]}")
        seen = 0
        for side, keys, levels in (
            (1, self._bid_keys, self._bid_levels),
            (-1, self._ask_keys, self._ask_levels),
        ):
            if keys != sorted(set(keys)):
                raise AssertionError(f"side {side}: keys not strictly ascending")
            if sorted(side * price for price, level in levels.items() if level[0]) != keys:
                raise AssertionError(f"side {side}: keys do not match the non-empty levels")
            for price, (total, queue, dead) in levels.items():
                live_orders = [entry for entry in queue if entry[4]]
                if price < 1 or dead != len(queue) - len(live_orders):
                    raise AssertionError(f"side {side} price {price}: dead count {dead} is wrong")
                if total != sum(entry[4] for entry in live_orders) or (total == 0) != (not live_orders):
                    raise AssertionError(f"side {side} price {price}: total {total} is wrong")
                if not total and queue:
                    raise AssertionError(f"side {side} price {price}: an empty level has queue entries")
                ids = [entry[0] for entry in live_orders]
                if ids != sorted(ids):
                    raise AssertionError(f"side {side} price {price}: time priority broken {ids}")
                for entry in live_orders:
                    if entry[4] < 0 or entry[2] != side or entry[3] != price:
                        raise AssertionError(f"order {entry[0]} is inconsistent: {entry[:5]}")
                    if self._orders.get(entry[0]) is not entry:
                        raise AssertionError(f"order {entry[0]} missing from the id index")
                    owner_orders = self._by_owner.get(entry[1], {})
                    if owner_orders.get(entry[0]) is not entry or entry[5] is not owner_orders:
                        raise AssertionError(f"order {entry[0]} missing from the owner index")
                seen += len(live_orders)
        if seen != len(self._orders) or seen != sum(len(orders) for orders in self._by_owner.values()):
            raise AssertionError("id or owner index holds orders that are not in the book")
