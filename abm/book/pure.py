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
  are dropped in bulk when they outnumber the listed ones (by ``_EMPTY_LEVEL_SLACK``, in
  :mod:`abm.book.pure_levels` with the other housekeeping shared with the ladders), so memory
  stays bounded when the price wanders;
* an order is a list ``[order_id, owner, side, price, remaining, owner_orders, level]``:
  ``owner_orders`` is its owner's index dict (below) and ``level`` the level it rests in, so that a
  fill or cancel reaches both without looking them up (a level holding a live order is never
  dropped, so the reference stays good while the order rests);
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

This module holds the book's state, order entry, matching and cancellation. Its two base classes,
which hold no state, hold the rest: :class:`abm.book.pure_ladders.LadderQuoting` the market makers'
ladders (``submit_ladder``, ``requote_ladder``, ``amend_ladder``) and
:class:`abm.book.pure_queries.BookQueries` what the book answers without changing (prices, depth,
levels, orders, ``check_invariants``).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque
from math import ceil, floor

from abm.book.arguments import (
    check_reference,
    check_side,
    integer,
    market_arguments,
    replace_arguments,
    validated_limit,
    validated_limit_price,
)
from abm.book.protocol import BUY, MAX_LOTS, MAX_PRICE_TICKS, SELL, Fill
from abm.book.pure_ladders import LadderQuoting
from abm.book.pure_levels import _COMPACTION_SLACK, _EMPTY_LEVEL_SLACK, _drop_empty_levels
from abm.book.pure_queries import BookQueries

__all__ = ["BUY", "SELL", "Fill", "OrderBook"]

# Positions inside an order list and a level list (lists beat __slots__ objects on attribute speed;
# the hot code uses the literal indexes, these names document them).
_ID, _OWNER, _SIDE, _PRICE, _REMAINING, _OWNER_ORDERS, _LEVEL = 0, 1, 2, 3, 4, 5, 6
_TOTAL, _QUEUE, _DEAD = 0, 1, 2

# A limit key no real key can be below: market orders without a limit price cross everything.
_NO_LIMIT_KEY = -(1 << 62)


# tuple.__new__ skips the generated NamedTuple constructor: about 40% cheaper per fill.
_new_tuple = tuple.__new__


class OrderBook(LadderQuoting, BookQueries):
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
        "_ladder_shapes",
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
        self._ladder_shapes: dict[tuple, list[tuple[int, float]]] = {}  # requote_ladder's, by arguments

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
        try:
            level = levels[price]
        except KeyError:
            if len(levels) > 2 * len(keys) + _EMPTY_LEVEL_SLACK:
                _drop_empty_levels(levels)
            order = [order_id, owner, side, price, quantity, owner_orders, None]
            order[6] = levels[price] = [quantity, deque((order,)), 0]
        else:
            order = [order_id, owner, side, price, quantity, owner_orders, level]
            level[1].append(order)
            total = level[0] + quantity
            level[0] = total
            if total != quantity:  # the level was listed already
                owner_orders[order_id] = order
                self._orders[order_id] = order
                return order_id, fills
        owner_orders[order_id] = order
        self._orders[order_id] = order
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
        level = order[6]
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
        level = order[6]
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
        if keys[-1] == key:  # inline (not pure_levels._unlist): a call costs more than this
            keys.pop()
        else:
            del keys[bisect_left(keys, key)]
        return remaining
