"""A deliberately naive limit order book, used only as an oracle in tests.

Resting orders are one plain list; every query sorts or scans it from scratch. Nothing is cached,
so there is no index that could drift out of step: slow, and obviously correct. It follows the same
conventions as :class:`abm.book.OrderBook` (one id counter shared by limit and market orders,
fills at the maker's price, self-trades reported) but does no argument validation.
"""

from __future__ import annotations

import math

from abm.book import Fill

__all__ = ["ReferenceBook"]


class ReferenceBook:
    """Price-time-priority book over a flat list of ``[order_id, owner, side, price, remaining]``."""

    def __init__(self) -> None:
        self.resting: list[list[int]] = []
        self.last_order_id = 0
        self.last_price: int | None = None
        self.volume = 0
        self.ladders: dict[int, list[int]] = {}  # owner -> order id left at each ladder place (0: none)

    def _priority_queue(self, maker_side: int) -> list[list[int]]:
        """Resting orders of one side, best price first, then oldest first."""
        same_side = [order for order in self.resting if order[2] == maker_side]
        # Best bid is the highest price, best ask the lowest: sort on -side*price, then id.
        return sorted(same_side, key=lambda order: (-maker_side * order[3], order[0]))

    def _take(self, owner: int, side: int, quantity: int, limit_price: int | None, order_id: int) -> tuple:
        fills = []
        for maker in self._priority_queue(-side):
            if quantity == 0:
                break
            price = maker[3]
            if limit_price is not None and (price > limit_price if side == 1 else price < limit_price):
                break
            lots = min(quantity, maker[4])
            fills.append(Fill(maker[0], maker[1], order_id, owner, price, lots, side))
            maker[4] -= lots
            quantity -= lots
            self.last_price = price
            self.volume += lots
        self.resting = [order for order in self.resting if order[4] > 0]
        return quantity, fills

    def submit_limit(self, owner: int, side: int, price: int, quantity: int) -> tuple[int, list[Fill]]:
        self.last_order_id += 1
        order_id = self.last_order_id
        remaining, fills = self._take(owner, side, quantity, price, order_id)
        if remaining:
            self.resting.append([order_id, owner, side, price, remaining])
        return order_id, fills

    def submit_market(
        self, owner: int, side: int, quantity: int, limit_price: int | None = None
    ) -> list[Fill]:
        self.last_order_id += 1
        _, fills = self._take(owner, side, quantity, limit_price, self.last_order_id)
        return fills

    def cancel(self, order_id: int) -> int:
        for order in self.resting:
            if order[0] == order_id:
                self.resting.remove(order)
                return order[4]
        return 0

    def cancel_all(self, owner: int) -> int:
        removed = sum(order[4] for order in self.resting if order[1] == owner)
        self.resting = [order for order in self.resting if order[1] != owner]
        return removed

    def quote_reference_without(self, owner: int, anchor_weight: float, anchor: float) -> float:
        """The mid of the other owners' orders, else the last trade, else the anchor; then blended."""
        bids = [order[3] for order in self.resting if order[2] == 1 and order[1] != owner]
        asks = [order[3] for order in self.resting if order[2] == -1 and order[1] != owner]
        if bids and asks:
            reference = (max(bids) + min(asks)) / 2
        else:
            reference = float(self.last_price) if self.last_price is not None else anchor
        if anchor_weight > 0.0:
            reference = (1.0 - anchor_weight) * reference + anchor_weight * anchor
        return reference

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
        """Keep each ladder place's order if it rests in full at the place's new price and size."""
        reference = self.quote_reference_without(owner, anchor_weight, anchor) - shift
        ladder = []  # (place, side, price, size) in the ladder's order: bid then ask per level
        for level in range(levels):
            size = int(level_size * (1.0 + size_growth * level) * size_scale)
            offset = half_spread + level * spacing
            if size > 0 and quote_bid and math.floor(reference - offset) >= 1:
                ladder.append((2 * level, 1, int(math.floor(reference - offset)), size))
            if size > 0 and quote_ask:
                ladder.append((2 * level + 1, -1, max(1, int(math.ceil(reference + offset))), size))
        old = self.ladders.get(owner, [])
        by_id = {order[0]: order for order in self.resting}
        places = [0] * (2 * levels)
        wanted = []
        for place, side, price, size in ladder:
            order = by_id.get(old[place]) if place < len(old) else None
            if order is not None and order[2] == side and order[3] == price and order[4] == size:
                places[place] = order[0]
            else:
                wanted.append((place, side, price, size))
        self.resting = [order for order in self.resting if order[1] != owner or order[0] in places]
        crossed = []
        for place, side, price, size in wanted:
            order_id, fills = self.submit_limit(owner, side, price, size)
            if fills:
                crossed.append(fills)
            places[place] = order_id if any(order[0] == order_id for order in self.resting) else 0
        self.ladders[owner] = places
        return len(wanted), crossed

    def levels(self, side: int, n: int) -> list[tuple[int, int]]:
        totals: dict[int, int] = {}
        for order in self._priority_queue(side):
            totals[order[3]] = totals.get(order[3], 0) + order[4]
        return list(totals.items())[:n]

    def open_orders(self, owner: int) -> list[int]:
        return sorted(order[0] for order in self.resting if order[1] == owner)

    def __len__(self) -> int:
        return len(self.resting)
