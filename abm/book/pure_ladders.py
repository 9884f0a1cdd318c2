"""The market makers' requotes on the pure book: a ladder of limit orders in one call.

:class:`LadderQuoting` is a base class of :class:`abm.book.pure.OrderBook` and holds no state of its
own: its methods work on the book's levels and indexes (laid out in :mod:`abm.book.pure`'s docstring)
through the book's own order entry (``_place``, ``submit_limit``, ``cancel`` and ``cancel_all``),
except :meth:`~LadderQuoting.requote_ladder`'s one pass, which cancels and rests a ladder that does
not cross on the levels directly (a level it empties and quotes again is never unlisted).
:class:`abm.book.fast.FastOrderBook` does the same work in compiled calls, and the tests hold the
two to identical fills.
"""

from __future__ import annotations

from bisect import insort
from collections import deque
from math import ceil, floor

from abm.book.arguments import ladder_arguments
from abm.book.protocol import MAX_LOTS, MAX_PRICE_TICKS, Fill
from abm.book.pure_levels import _COMPACTION_SLACK, _EMPTY_LEVEL_SLACK, _drop_empty_levels, _unlist

__all__ = ["LadderQuoting"]

# The order at a ladder place that has none (amend_ladder): 0 lots, so it never matches a size.
_NO_ORDER = [0, -1, 0, 0, 0, None, None]

# Ladder shapes (each level's size and offset) kept per book for requote_ladder: a maker asks for the
# same few shapes step after step; a scale that varies makes new ones, so at most this many are kept.
_SHAPES_KEPT = 64


class LadderQuoting:
    """A market maker's ladder sent, requoted or amended in one call (part of the pure ``OrderBook``)."""

    __slots__ = ()

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
        bid = self._bid_keys[-1] if self._bid_keys else None
        ask = -self._ask_keys[-1] if self._ask_keys else None
        return self._reference_between(bid, ask, anchor_weight, anchor)

    def _reference_between(
        self, bid: int | None, ask: int | None, anchor_weight: float, anchor: float
    ) -> float:
        """The quoting reference for a best ``bid`` and ``ask`` (ticks, None for an empty side)."""
        if bid is not None and ask is not None:
            reference = (bid + ask) / 2
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
        quotes): a market maker's whole requote in one call. When no order of the new ladder would
        cross, the call does both in one pass (the same orders, ids and queues; about twice as
        fast as the two calls in the spiral, ``benchmarks/bench_requote.py``).

        Returns:
            As :meth:`submit_ladder`.
        """
        # Checked before the cancel; the ladder's reach is known only after it (submit_ladder checks it).
        owner = ladder_arguments(owner, 0.0, half_spread, spacing, levels, level_size)[0]
        # In one pass (the usual case, the same book as the two calls): the owner's orders leave their
        # queues, but a level they empty stays listed until the new ladder is in, so a level the
        # ladder quotes again is not unlisted and listed again; a ladder that would cross the book
        # (or itself) instead goes through submit_ladder, which matches it.
        emptied = self._cancel_keeping_listed(owner)
        best_bid, best_ask = self._best_prices()  # of the book the cancel leaves
        reference = self._reference_between(best_bid, best_ask, anchor_weight, anchor) - shift
        shape = self._resting_shape(
            reference,
            half_spread,
            spacing,
            levels,
            level_size,
            size_growth,
            size_scale,
            quote_bid,
            quote_ask,
            best_bid,
            best_ask,
        )
        if shape is None:
            for key in emptied:
                _unlist(self._bid_keys if key > 0 else self._ask_keys, key)
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
        return self._rest_ladder(owner, reference, shape, quote_bid, quote_ask, emptied), []

    def _cancel_keeping_listed(self, owner: int) -> dict[int, None]:
        """``cancel_all(owner)``, except that the keys of the levels it empties stay listed; returns them.

        Each order leaves the id and owner indexes and becomes a dead queue entry, as in ``_unlink``.
        """
        owner_orders = self._by_owner.pop(owner, None)
        emptied: dict[int, None] = {}  # keys (side * price), in the order the cancel empties them
        if not owner_orders:
            return emptied
        orders = self._orders
        for order_id, order in owner_orders.items():
            del orders[order_id]
            remaining = order[4]
            order[4] = 0  # marks the queue entry dead for lazy removal
            level = order[6]
            total = level[0] - remaining
            level[0] = total
            if total:
                dead = level[2] + 1
                if dead > _COMPACTION_SLACK and 2 * dead > len(level[1]):
                    level[1] = deque([entry for entry in level[1] if entry[4]])
                    dead = 0
                level[2] = dead
            else:  # empty: an empty shell, its key still listed
                level[1].clear()
                level[2] = 0
                emptied[order[3] if order[2] == 1 else -order[3]] = None
        owner_orders.clear()  # the dead orders still queued refer to it: keep it small
        return emptied

    def _rest_ladder(
        self,
        owner: int,
        reference: float,
        shape: list[tuple[int, float]],
        quote_bid: bool,
        quote_ask: bool,
        emptied: dict[int, None],
    ) -> int:
        """Rest the ladder's orders (none crosses), then unlist the emptied levels it did not refill.

        The orders, their ids and their queues are those of :meth:`submit_ladder`'s ``_place`` calls.
        Returns the number of orders sent.
        """
        bid_levels = self._bid_levels
        ask_levels = self._ask_levels
        listed = []  # keys of levels that were empty (not listed) and now hold an order
        mine: dict[int, list] = {}
        first_id = order_id = self._last_order_id
        for size, offset in shape:
            if quote_bid:
                price = floor(reference - offset)
                if price >= 1:
                    order_id += 1
                    # Subscripts in try blocks: a hit (the usual case) is cheaper than a .get() call.
                    try:
                        level = bid_levels[price]
                    except KeyError:
                        level = bid_levels[price] = [size, deque(), 0]
                        order = mine[order_id] = [order_id, owner, 1, price, size, mine, level]
                        level[1].append(order)
                        listed.append(price)
                    else:
                        order = mine[order_id] = [order_id, owner, 1, price, size, mine, level]
                        level[1].append(order)
                        total = level[0]
                        level[0] = total + size
                        if not total:
                            if price in emptied:
                                del emptied[price]  # emptied by the cancel, still listed: it stays
                            else:
                                listed.append(price)
            if quote_ask:
                price = ceil(reference + offset)
                if price < 1:
                    price = 1
                order_id += 1
                try:
                    level = ask_levels[price]
                except KeyError:
                    level = ask_levels[price] = [size, deque(), 0]
                    order = mine[order_id] = [order_id, owner, -1, price, size, mine, level]
                    level[1].append(order)
                    listed.append(-price)
                else:
                    order = mine[order_id] = [order_id, owner, -1, price, size, mine, level]
                    level[1].append(order)
                    total = level[0]
                    level[0] = total + size
                    if not total:
                        if -price in emptied:
                            del emptied[-price]
                        else:
                            listed.append(-price)
        self._last_order_id = order_id
        if mine:
            self._by_owner[owner] = mine
            self._orders.update(mine)  # in id order, as the orders were sent
        bid_keys = self._bid_keys
        ask_keys = self._ask_keys
        for key in emptied:
            _unlist(bid_keys if key > 0 else ask_keys, key)
        for key in listed:
            keys = bid_keys if key > 0 else ask_keys
            if not keys or key > keys[-1]:
                keys.append(key)
            else:
                insort(keys, key)
        if listed:  # new levels were made: drop the emptied shells when they outnumber the listed ones
            for levels_of, keys in ((bid_levels, bid_keys), (ask_levels, ask_keys)):
                if len(levels_of) > 2 * len(keys) + _EMPTY_LEVEL_SLACK:
                    _drop_empty_levels(levels_of)
        return order_id - first_id

    def _best_prices(self) -> tuple[int | None, int | None]:
        """The best bid and ask (ticks, None for an empty side), past the listed levels holding 0 lots."""
        bid = ask = None
        levels = self._bid_levels
        for key in reversed(self._bid_keys):
            if levels[key][0]:
                bid = key
                break
        levels = self._ask_levels
        for key in reversed(self._ask_keys):
            if levels[-key][0]:
                ask = -key
                break
        return bid, ask

    def _resting_shape(
        self,
        reference: float,
        half_spread: float,
        spacing: float,
        levels: int,
        level_size: int,
        size_growth: float,
        size_scale: float,
        quote_bid: bool,
        quote_ask: bool,
        book_bid: int | None,
        book_ask: int | None,
    ) -> list[tuple[int, float]] | None:
        """The ladder's ``(size, offset)`` per level quoted, when every order of it would rest; else None.

        None also where :meth:`submit_ladder` would check an argument (and raise): it then runs.
        Sizes grow and offsets widen outwards (``size_growth``, ``spacing`` >= 0), so the nearest
        level quoted holds the ladder's best bid and ask: every order rests when they are below the
        book's best ask (``book_ask``) and above its best bid (``book_bid``) and do not meet each other.
        """
        largest = level_size * (1.0 + size_growth * max(levels - 1, 0)) * size_scale
        if not (
            -MAX_PRICE_TICKS < reference
            and reference + half_spread + levels * spacing < MAX_PRICE_TICKS
            and 0.0 <= size_growth
            and 0.0 <= size_scale
            and largest <= MAX_LOTS
        ):
            return None
        key = (levels, level_size, size_growth, size_scale, half_spread, spacing)
        shape = self._ladder_shapes.get(key)
        if shape is None:
            if len(self._ladder_shapes) >= _SHAPES_KEPT:  # scales that vary: keep the memory bounded
                self._ladder_shapes.clear()
            shape = self._ladder_shapes[key] = [
                (size, half_spread + level * spacing)
                for level in range(levels)
                if (size := int(level_size * (1.0 + size_growth * level) * size_scale)) > 0
            ]
        if not shape:
            return shape
        offset = shape[0][1]
        best_bid = floor(reference - offset) if quote_bid else 0
        best_ask = max(1, ceil(reference + offset)) if quote_ask else MAX_PRICE_TICKS + 1
        if best_bid >= best_ask:
            return None
        if book_ask is not None and best_bid >= book_ask:
            return None
        if book_bid is not None and best_ask <= book_bid:
            return None
        return shape

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
        return self._reference_between(bid, ask, anchor_weight, anchor)

    @staticmethod
    def _best_without(keys: list[int], levels: dict[int, list], sign: int, owner: int) -> int | None:
        """The best price of one side (keys ``sign * price``) with lots of someone other than ``owner``."""
        for key in reversed(keys):
            level = levels[sign * key]
            # Cancelled entries still queued hold 0 lots, so they add nothing.
            if level[0] > sum(order[4] for order in level[1] if order[1] == owner):
                return sign * key
        return None
