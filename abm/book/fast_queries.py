"""What the compiled book answers without changing: prices, depth, levels, orders and its own invariants.

:class:`FastBookQueries` is a base class of :class:`abm.book.fast.FastOrderBook` and holds no state of
its own: it reads the book's arrays and its Python copy of the header, laid out in
:mod:`abm.book._kernels`.
"""

from __future__ import annotations

import math

import numpy as np

from abm.book import _kernels as k
from abm.book.arguments import (
    check_reference,
    check_side,
    integer,
    profile_arguments,
    validated_cost,
    validated_count,
    validated_within,
)
from abm.book.protocol import MAX_PRICE_TICKS

__all__ = ["FastBookQueries"]


class FastBookQueries:
    """Market data and order queries of ``FastOrderBook``, and its consistency check."""

    __slots__ = ()

    # ------------------------------------------------------------------ market data

    def best_bid(self) -> int | None:
        """Return the highest resting bid price in ticks, or None if there are no bids."""
        return self._h[k.H_BEST_BID] or None

    def best_ask(self) -> int | None:
        """Return the lowest resting ask price in ticks, or None if there are no asks."""
        return self._h[k.H_BEST_ASK] or None

    def mid(self) -> float | None:
        """Return (best bid + best ask) / 2 in ticks, or None unless both sides have orders."""
        h = self._h
        bid, ask = h[k.H_BEST_BID], h[k.H_BEST_ASK]
        if bid and ask:
            return (bid + ask) / 2
        return None

    @property
    def last_price(self) -> int | None:
        """Price in ticks of the most recent fill, or None before the first trade."""
        return self._h[k.H_LAST_PRICE] or None

    def volume_traded(self) -> int:
        """Return the total lots filled since the book was created (each fill counted once)."""
        return self._h[k.H_VOLUME]

    def depth(self, side: int, within_ticks: int) -> int:
        """Return the resting lots on ``side`` within ``within_ticks`` of that side's best price."""
        if type(within_ticks) is not int or within_ticks < 0 or (side != 1 and side != -1):
            side, within_ticks = validated_within(side, within_ticks)
        side_index = 0 if side == 1 else 1
        best = self._h[k.H_BEST_BID + side_index]
        if not best:
            return 0
        low, high = (best - within_ticks, best) if side == 1 else (best, best + within_ticks)
        return int(k.depth_between(self._levels, side_index, low, high))

    def depth_near(self, side: int, reference: float, within_ticks: int) -> int:
        """Return the resting lots on ``side`` at prices with ``|price - reference| <= within_ticks``."""
        side, within_ticks = validated_within(side, within_ticks)
        reference = check_reference(reference)
        side_index = 0 if side == 1 else 1
        low = max(math.ceil(reference - within_ticks), -1)
        high = min(math.floor(reference + within_ticks), MAX_PRICE_TICKS + 1)
        return int(k.depth_between(self._levels, side_index, low, high))

    def levels(self, side: int, n: int) -> list[tuple[int, int]]:
        """Return the best ``n`` levels of ``side`` as ``(price, total quantity)``, best first."""
        side, n = validated_count(side, n)
        n = min(n, self._h[k.H_BID_LEVELS if side == 1 else k.H_ASK_LEVELS])
        if n > self._scratch.shape[0]:
            self._scratch = np.zeros((n, 2), dtype=np.int64)
        written = k.side_levels(self._levels, self._header, side, n, self._scratch)
        return [(price, total) for price, total in self._scratch[:written].tolist()]

    def depth_profile(
        self, reference: float, width: float, buckets: int, max_levels: int, out: np.ndarray | None = None
    ) -> list[int] | np.ndarray:
        """Resting lots in price buckets around ``reference`` (see ``OrderBook.depth_profile``)."""
        reference, width, buckets, max_levels = profile_arguments(reference, width, buckets, max_levels)
        if out is None:
            row = np.zeros(2 * buckets, dtype=np.int64)
        else:
            row = out
            row[:] = 0
        k.depth_profile(self._levels, self._header, float(reference), float(width), buckets, max_levels, row)
        return row.tolist() if out is None else out

    def market_order_cost(self, side: int, quantity: int) -> tuple[int, int]:
        """Price a hypothetical market order without changing the book: ``(fillable lots, cost in ticks)``."""
        side, quantity = validated_cost(side, quantity)
        maker_side = -side
        filled = cost = 0
        count = self._h[k.H_BID_LEVELS if maker_side == 1 else k.H_ASK_LEVELS]
        for price, lots in self.levels(maker_side, count):
            lots = min(lots, quantity - filled)
            filled += lots
            cost += lots * price
            if filled == quantity:
                break
        return filled, cost

    # ------------------------------------------------------------------ order queries

    def open_orders(self, owner: int) -> list[int]:
        """Return the ids of ``owner``'s resting orders in submission order."""
        owner = integer(owner, "owner")
        if not 0 <= owner < self._owners.shape[0]:
            return []
        out = np.zeros(self._h[k.H_RESTING], dtype=np.int64)
        return out[: k.linked_ids(self._orders, int(self._owners[owner, 0]), k.O_ONEXT, out)].tolist()

    def order(self, order_id: int) -> tuple[int, int, int, int] | None:
        """Return ``(owner, side, price, remaining)`` of a resting order, or None if it is not resting."""
        order_id = integer(order_id, "order_id")
        if not 0 < order_id < self._slot_of.shape[0]:
            return None
        slot = int(self._slot_of[order_id])
        if slot < 0:
            return None
        row = self._orders[slot].tolist()
        return row[k.O_OWNER], row[k.O_SIDE], row[k.O_PRICE], row[k.O_REMAINING]

    def orders_at(self, side: int, price: int) -> list[int]:
        """Return the ids of the resting orders at one price level in queue (time-priority) order."""
        side = check_side(side)
        price = integer(price, "price")
        side_index = 0 if side == 1 else 1
        if not 0 < price < self._levels.shape[1]:
            return []
        out = np.zeros(self._h[k.H_RESTING], dtype=np.int64)
        head = int(self._levels[side_index, price, k.L_HEAD])
        return out[: k.linked_ids(self._orders, head, k.O_NEXT, out)].tolist()

    def __len__(self) -> int:
        """Return the number of resting orders."""
        return self._h[k.H_RESTING]

    def check_invariants(self) -> None:
        """Verify the arrays' consistency (for tests and debug runs; O(book size)).

        Checks: not crossed; best prices and level counts equal to the non-empty levels; each level's
        total equal to its queue's remaining lots, its links consistent and its ids ascending (time
        priority); every resting order indexed by id and listed once by its owner.

        Raises:
            AssertionError: On the first violation found, with a description.
        """
        h = self._header.tolist()
        if h != self._h:
            raise AssertionError("the Python copy of the header is stale")
        totals = self._levels[:, :, k.L_TOTAL]
        for side_index, side, best_field, count_field in (
            (0, 1, k.H_BEST_BID, k.H_BID_LEVELS),
            (1, -1, k.H_BEST_ASK, k.H_ASK_LEVELS),
        ):
            listed = np.flatnonzero(totals[side_index] > 0)
            if len(listed) != h[count_field]:
                raise AssertionError(f"side {side}: {h[count_field]} levels counted, {len(listed)} non-empty")
            best = (listed.max() if side == 1 else listed.min()) if len(listed) else 0
            if best != h[best_field]:
                raise AssertionError(f"side {side}: best price {h[best_field]}, levels say {best}")
            if (totals[side_index] < 0).any():
                raise AssertionError(f"side {side}: a negative level total")
            for price in listed.tolist():
                ids = self.orders_at(side, price)
                rows = [self._orders[self._slot_of[i]] for i in ids]
                if sum(int(r[k.O_REMAINING]) for r in rows) != totals[side_index, price]:
                    raise AssertionError(f"side {side} price {price}: total is wrong")
                if ids != sorted(ids) or any(r[k.O_PRICE] != price or r[k.O_SIDE] != side for r in rows):
                    raise AssertionError(f"side {side} price {price}: queue broken {ids}")
                if any(r[k.O_REMAINING] <= 0 for r in rows):
                    raise AssertionError(f"side {side} price {price}: an empty order is queued")
        if h[k.H_BEST_BID] and h[k.H_BEST_ASK] and h[k.H_BEST_BID] >= h[k.H_BEST_ASK]:
            raise AssertionError(f"crossed book: bid {h[k.H_BEST_BID]} >= ask {h[k.H_BEST_ASK]}")
        resting = int((self._slot_of >= 0).sum())
        by_owner = sum(len(self.open_orders(owner)) for owner in range(self._owners.shape[0]))
        if resting != h[k.H_RESTING] or by_owner != resting:
            raise AssertionError(
                f"{h[k.H_RESTING]} resting orders counted, {resting} indexed by id, {by_owner} by owner"
            )
