"""What the pure book answers without changing: prices, depth, levels, orders and its own invariants.

:class:`BookQueries` is a base class of :class:`abm.book.pure.OrderBook` and holds no state of its
own: it reads the book's sides (a sorted key list and a ``price -> level`` dict each) and its id and
owner indexes, laid out in :mod:`abm.book.pure`'s docstring.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from itertools import islice
from math import ceil, floor
from typing import TYPE_CHECKING

from abm.book.arguments import (
    check_reference,
    check_side,
    integer,
    profile_arguments,
    validated_cost,
    validated_count,
    validated_within,
)

if TYPE_CHECKING:  # only for annotations: the pure book needs no numpy
    import numpy as np

__all__ = ["BookQueries"]


class BookQueries:
    """Market data and order queries of the pure ``OrderBook``, and its consistency check."""

    __slots__ = ()

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
                    if entry[6] is not levels[price]:
                        raise AssertionError(f"order {entry[0]} refers to another level than its own")
                seen += len(live_orders)
        if seen != len(self._orders) or seen != sum(len(orders) for orders in self._by_owner.values()):
            raise AssertionError("id or owner index holds orders that are not in the book")
