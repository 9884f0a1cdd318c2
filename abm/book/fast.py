"""FastOrderBook: the order book in numpy arrays with numba-compiled matching (optional extra ``fast``).

It has the whole public API of :class:`abm.book.pure.OrderBook` (same ids, fills, depth and queries),
plus a batch call where the compiled code pays off:

* :meth:`FastOrderBook.process` applies a batch of operations given as arrays (limit, market, cancel,
  cancel-all) in one call and returns the fills as arrays.

Calls of the common API that do several things are one compiled call each here:
:meth:`~FastOrderBook.submit_ladder` (a market maker's ladder), :meth:`~FastOrderBook.requote_ladder`
(cancel, then the ladder around the reference left) and the replace calls
:meth:`~FastOrderBook.replace_with_passive` and :meth:`~FastOrderBook.replace_with_market` (cancel an
owner's orders, then one order). A single :meth:`~FastOrderBook.submit_limit` or
:meth:`~FastOrderBook.cancel` costs about what it costs in the pure engine (the call into compiled
code, about 0.5 us of argument unboxing, replaces the Python work), so the gain in a model run comes
from the ladders and the replacements (docs/performance.md). The kernels and the array layout are in
:mod:`abm.book._kernels`; the queries (prices, depth, orders) and the consistency check in
:mod:`abm.book.fast_queries`.

Prices index dense per-price arrays, so memory grows with the highest price in ticks (40 bytes a
tick over both sides): fine for the scenarios' books (about 10^4 ticks), and prices above
``MAX_PRICE_TICKS`` are refused with a message. Owners must be account ids >= 0.
"""

from __future__ import annotations

import math

import numpy as np

from abm.book import _amend_kernels as amend_kernels
from abm.book import _kernels as k
from abm.book.arguments import (
    check_price,
    check_reference,
    check_side,
    integer,
    ladder_arguments,
    market_arguments,
    replace_arguments,
    validated_limit,
    validated_limit_price,
)
from abm.book.fast_queries import FastBookQueries
from abm.book.protocol import MAX_LOTS, MAX_PRICE_TICKS, Fill

__all__ = ["FastOrderBook", "MAX_PRICE_TICKS", "LIMIT", "MARKET", "CANCEL", "CANCEL_ALL", "BatchResult"]

LIMIT, MARKET, CANCEL, CANCEL_ALL = k.LIMIT, k.MARKET, k.CANCEL, k.CANCEL_ALL

_new_tuple = tuple.__new__
_limit_one, _market_one, _replace_one = k.limit_one, k.market_one, k.replace_one
H_USED, H_LAST_ID, H_RESTING, H_FILLS = k.H_USED, k.H_LAST_ID, k.H_RESTING, k.H_FILLS


def _grown(array: np.ndarray, rows: int, fill: int) -> np.ndarray:
    """Return ``array`` with at least ``rows`` rows along axis 0 (doubling), new rows set to ``fill``."""
    old = array.shape[0]
    if rows <= old:
        return array
    new_rows = max(rows, 2 * old)
    grown = np.full((new_rows, *array.shape[1:]), fill, dtype=array.dtype)
    grown[:old] = array
    return grown


class BatchResult:
    """What :meth:`FastOrderBook.process` returns, as arrays aligned with the batch.

    Attributes:
        order_ids: Order id drawn by each limit and market order (0 for cancels).
        quantities: Lots left resting (limit), filled (market) or removed (cancels) per operation.
        fills: int64 array ``(n_fills, 8)``: maker order id, maker, taker order id, taker, price,
            quantity, taker side, and the index of the operation that caused the fill.
    """

    __slots__ = ("order_ids", "quantities", "fills")

    def __init__(self, order_ids: np.ndarray, quantities: np.ndarray, fills: np.ndarray) -> None:
        self.order_ids = order_ids
        self.quantities = quantities
        self.fills = fills

    def fill_tuples(self) -> list[Fill]:
        """Return the fills as :class:`~abm.book.pure.Fill` tuples, in execution order."""
        return [_new_tuple(Fill, row) for row in self.fills[:, :7].tolist()]


class FastOrderBook(FastBookQueries):
    """A price-time-priority book with the API of :class:`~abm.book.pure.OrderBook`, matched by numba.

    Example:
        >>> book = FastOrderBook()
        >>> ask_id, _ = book.submit_limit(owner=1, side=-1, price=101, quantity=5)
        >>> book.submit_market(owner=2, side=1, quantity=3)
        [Fill(maker_order_id=1, maker=1, taker_order_id=2, taker=2, price=101, quantity=3, taker_side=1)]
        >>> book.order(ask_id)
        (1, -1, 101, 2)
    """

    def __init__(self) -> None:
        self._header = np.zeros(k.HEADER_SIZE, dtype=np.int64)
        self._header[k.H_FREE] = -1
        self._orders = np.zeros((1024, k.ORDER_FIELDS), dtype=np.int64)
        self._levels = np.full((2, 1024, 3), -1, dtype=np.int64)
        self._levels[:, :, k.L_TOTAL] = 0
        self._owners = np.full((64, 2), -1, dtype=np.int64)
        self._slot_of = np.full(4096, -1, dtype=np.int32)
        self._fills = np.zeros((256, k.FILL_FIELDS), dtype=np.int64)
        self._scratch = np.zeros((64, 2), dtype=np.int64)
        # amend_ladder: per owner, the order id at each place of its last amended ladder (0: none),
        # and scratch for the ladder's prices and sizes and the slots it keeps.
        self._ladder_ids: dict[int, np.ndarray] = {}
        self._plan = np.zeros((64, 2), dtype=np.int64)
        self._kept_slots = np.zeros(64, dtype=np.int64)
        self._h = self._header.tolist()  # a Python copy of the header, refreshed after every change
        self._note_room()

    # ------------------------------------------------------------------ capacity

    def _reserve(self, orders: int, max_price: int, max_owner: int) -> None:
        """Grow the arrays so that ``orders`` new orders up to these price and owner fit in one call."""
        h = self._h
        if (
            max_price < self._price_room
            and max_owner < self._owner_room
            and h[H_USED] + orders <= self._order_room
            and h[H_LAST_ID] + orders + 1 <= self._id_room
            and h[H_RESTING] + 2 * orders <= self._fill_room
        ):
            return  # the common case, tested on Python ints: every array has room already
        if max_price >= self._levels.shape[1]:
            # Prices were checked against MAX_PRICE_TICKS by the callers (the books' shared limit).
            rows = max(max_price + 1, 2 * self._levels.shape[1])
            levels = np.full((2, rows, 3), -1, dtype=np.int64)
            levels[:, :, k.L_TOTAL] = 0
            levels[:, : self._levels.shape[1]] = self._levels
            self._levels = levels
        if max_owner >= self._owners.shape[0]:
            self._owners = _grown(self._owners, max_owner + 1, -1)
        self._orders = _grown(self._orders, h[k.H_USED] + orders, 0)
        self._slot_of = _grown(self._slot_of, h[k.H_LAST_ID] + orders + 1, -1)
        self._fills = _grown(self._fills, h[k.H_RESTING] + 2 * orders, 0)
        self._note_room()

    def _note_room(self) -> None:
        # Capacities as Python ints, so that a single order checks them without touching numpy.
        self._price_room = self._levels.shape[1]
        self._owner_room = self._owners.shape[0]
        self._order_room = self._orders.shape[0]
        self._id_room = self._slot_of.shape[0]
        self._fill_room = self._fills.shape[0]

    def _fill_list(self) -> list[Fill]:
        return [_new_tuple(Fill, row) for row in self._fills[: self._h[k.H_FILLS], :7].tolist()]

    # ------------------------------------------------------------------ batches

    def process(
        self,
        kinds: np.ndarray,
        owners: np.ndarray,
        sides: np.ndarray,
        prices: np.ndarray,
        quantities: np.ndarray,
        targets: np.ndarray | None = None,
    ) -> BatchResult:
        """Apply a batch of operations in order, in one compiled call.

        Args:
            kinds: ``LIMIT`` (0), ``MARKET`` (1), ``CANCEL`` (2) or ``CANCEL_ALL`` (3) per operation.
            owners: Owner (account id >= 0) of each operation (the owner whose orders ``CANCEL_ALL``
                removes; ignored by ``CANCEL``).
            sides: +1 buy, -1 sell (limit and market orders).
            prices: Limit price in ticks (limit orders, >= 1), or the worst price a market order may
                fill at (0: no limit).
            quantities: Lots (>= 1 for limit and market orders).
            targets: Order id each ``CANCEL`` removes (may be None if the batch has no cancel).

        Returns:
            A :class:`BatchResult`. The outcome is exactly that of the same calls made one by one.

        Raises:
            ValueError: If the arrays differ in length or an order has an invalid side, price or
                quantity (checked for the whole batch before anything is applied).
        """
        kinds = np.ascontiguousarray(kinds, dtype=np.int64)
        n = kinds.shape[0]
        arrays = [np.ascontiguousarray(a, dtype=np.int64) for a in (owners, sides, prices, quantities)]
        targets = np.zeros(n, dtype=np.int64) if targets is None else np.ascontiguousarray(targets, np.int64)
        if any(a.shape != (n,) for a in (*arrays, targets)):
            raise ValueError("kinds, owners, sides, prices, quantities and targets must have the same length")
        owners, sides, prices, quantities = arrays
        orders = kinds <= MARKET
        if n:
            if ((kinds < 0) | (kinds > CANCEL_ALL)).any():
                raise ValueError("kinds must be LIMIT (0), MARKET (1), CANCEL (2) or CANCEL_ALL (3)")
            if (owners[kinds != CANCEL] < 0).any():
                raise ValueError("owners must be account ids >= 0")
            if (orders & (sides != 1) & (sides != -1)).any():
                raise ValueError("side must be BUY (+1) or SELL (-1) for every limit and market order")
            if (orders & (quantities < 1)).any():
                raise ValueError(
                    "quantity must be a positive number of lots for every limit and market order"
                )
            if ((kinds == LIMIT) & (prices < 1)).any() or ((kinds == MARKET) & (prices < 0)).any():
                raise ValueError(
                    "price must be >= 1 tick (limit orders) or >= 0 (market orders, 0: no limit)"
                )
            if ((kinds == LIMIT) & (prices > MAX_PRICE_TICKS)).any():
                raise ValueError(f"price must be at most {MAX_PRICE_TICKS} ticks for every limit order")
            if (orders & (quantities > MAX_LOTS)).any():
                raise ValueError(f"quantity must be at most {MAX_LOTS} lots for every limit and market order")
        limit_prices = prices[kinds == LIMIT]
        self._reserve(n, int(limit_prices.max()) if len(limit_prices) else 0, int(owners.max()) if n else 0)
        out_ids = np.zeros(n, dtype=np.int64)
        out_quantities = np.zeros(n, dtype=np.int64)
        k.process(
            self._header,
            self._orders,
            self._levels,
            self._owners,
            self._slot_of,
            self._fills,
            kinds,
            owners,
            sides,
            prices,
            quantities,
            targets,
            out_ids,
            out_quantities,
        )
        self._h = h = self._header.tolist()
        return BatchResult(out_ids, out_quantities, self._fills[: h[k.H_FILLS]].copy())

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
        """Send a market maker's ladder in one compiled call (see :meth:`OrderBook.submit_ladder`).

        Returns:
            ``(orders sent, fills)``, ``fills`` holding one list per order that crossed, in order.
        """
        owner, levels, level_size = ladder_arguments(
            owner, reference, half_spread, spacing, levels, level_size
        )
        top = math.ceil(reference + half_spread + max(levels - 1, 0) * spacing) + 1
        self._reserve(2 * levels, min(max(top, 1), MAX_PRICE_TICKS), owner)
        sent = k.ladder(
            self._header,
            self._orders,
            self._levels,
            self._owners,
            self._slot_of,
            self._fills,
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
        return sent, self._ladder_fills()

    def _ladder_fills(self) -> list[list[Fill]]:
        """The last ladder's fills, one list per order that crossed."""
        self._h = h = self._header.tolist()
        if not h[k.H_FILLS]:
            return []
        crossed: list[list[Fill]] = []
        last = -1
        for row in self._fills[: h[k.H_FILLS]].tolist():
            if row[k.F_OPERATION] != last:
                crossed.append([])
                last = row[k.F_OPERATION]
            crossed[-1].append(_new_tuple(Fill, row[:7]))
        return crossed

    def quote_reference(self, anchor_weight: float, anchor: float) -> float:
        """A reference price for quoting (see :meth:`OrderBook.quote_reference`)."""
        return float(k.quote_reference(self._header, float(anchor_weight), float(anchor)))

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
        """Cancel, then a ladder around the reference left, in one call (see ``OrderBook.requote_ladder``)."""
        owner = ladder_arguments(owner, 0.0, half_spread, spacing, levels, level_size)[0]
        self._reserve(2 * levels, 1, owner)  # order and id room; the kernel checks the prices
        sent, reference = k.requote(
            self._header, self._orders, self._levels, self._owners, self._slot_of, self._fills,
            owner, float(anchor_weight), float(anchor), float(shift), half_spread, spacing, levels,
            level_size, size_growth, size_scale, quote_bid, quote_ask,
        )  # fmt: skip
        if sent < 0:
            # The ladder reaches beyond the price arrays (known only after the cancel): grow, then send.
            self._h = self._header.tolist()
            return self.submit_ladder(
                owner, reference, half_spread, spacing, levels, level_size, size_growth, size_scale,
                quote_bid, quote_ask,
            )  # fmt: skip
        return sent, self._ladder_fills()

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
        """The requote's ladder keeping every unmoved place, in one call (see ``OrderBook.amend_ladder``)."""
        owner, levels, level_size = ladder_arguments(owner, 0.0, half_spread, spacing, levels, level_size)
        places = 2 * levels
        old = self._ladder_ids.get(owner)
        ids = old if old is not None and len(old) == places else np.zeros(places, dtype=np.int64)
        if old is None:
            old = ids
        if self._plan.shape[0] < places:
            self._plan = np.zeros((places, 2), dtype=np.int64)
            self._kept_slots = np.zeros(places, dtype=np.int64)
        self._reserve(places, 1, owner)  # order and id room; the kernel checks the prices
        while True:
            sent, reference = amend_kernels.amend(
                self._header, self._orders, self._levels, self._owners, self._slot_of, self._fills,
                owner, float(anchor_weight), float(anchor), float(shift), half_spread, spacing, levels,
                level_size, size_growth, size_scale, quote_bid, quote_ask, old, ids, self._plan,
                self._kept_slots,
            )  # fmt: skip
            if sent == amend_kernels.BEYOND_RANGE:  # raises the ladder's own error
                ladder_arguments(owner, reference, half_spread, spacing, levels, level_size)
            if sent != amend_kernels.BEYOND_ARRAYS:
                break
            # The ladder reaches beyond the price arrays (nothing changed yet): grow them, then again.
            top = math.ceil(reference + half_spread + max(levels - 1, 0) * spacing) + 1
            self._reserve(places, min(max(top, 1), MAX_PRICE_TICKS), owner)
        self._ladder_ids[owner] = ids
        return sent, self._ladder_fills()

    # ------------------------------------------------------------------ single orders

    def submit_limit(self, owner: int, side: int, price: int, quantity: int) -> tuple[int, list[Fill]]:
        """Submit a limit order (see :meth:`abm.book.pure.OrderBook.submit_limit`)."""
        # One combined test for the common case, as in the pure book; the slow path raises precisely.
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
        self._reserve(1, price, owner)
        order_id, _ = _limit_one(
            self._header, self._orders, self._levels, self._owners, self._slot_of, self._fills,
            owner, side, price, quantity,
        )  # fmt: skip
        self._h = h = self._header.tolist()
        return order_id, (self._fill_list() if h[H_FILLS] else [])

    def submit_market(
        self, owner: int, side: int, quantity: int, limit_price: int | None = None
    ) -> list[Fill]:
        """Submit an immediate-or-cancel order (see :meth:`abm.book.pure.OrderBook.submit_market`)."""
        owner, side, quantity = market_arguments(owner, side, quantity)
        if limit_price is None:
            limit = 0  # no limit
        else:
            # A limit beyond every price the books take is no limit on them (and fits the kernel's int64).
            limit = min(validated_limit_price(limit_price), MAX_PRICE_TICKS + 1)
        self._reserve(1, 0, owner)
        _market_one(
            self._header, self._orders, self._levels, self._owners, self._slot_of, self._fills,
            owner, side, quantity, limit,
        )  # fmt: skip
        self._h = h = self._header.tolist()
        return self._fill_list() if h[H_FILLS] else []

    def passive_price(self, side: int, offset: int, reference: float) -> int:
        """A limit price ``offset`` ticks behind the touch (see :meth:`OrderBook.passive_price`)."""
        side = check_side(side)
        offset = integer(offset, "offset")
        check_reference(reference)
        return int(k.passive_price(self._header, side, offset, float(reference)))

    def _replace(self, owner: int, side: int, quantity: int, offset: int, reference: float, market: bool):
        if market:
            owner, side, quantity = market_arguments(owner, side, quantity)
        else:
            owner, side, quantity, offset = replace_arguments(owner, side, quantity, offset, reference)
        self._reserve(1, 0, owner)  # room for one more order; the kernel checks the price
        order_id, _, price = _replace_one(
            self._header, self._orders, self._levels, self._owners, self._slot_of, self._fills,
            owner, side, quantity, offset, float(reference), market,
        )  # fmt: skip
        if order_id == 0:
            # The passive price (known only after the cancel) is beyond the price arrays: grow them
            # (or refuse it, as submit_limit does), then send the order; the same id and fills.
            self._h = self._header.tolist()
            check_price(price)
            self._reserve(1, price, owner)
            order_id, _ = _limit_one(
                self._header, self._orders, self._levels, self._owners, self._slot_of, self._fills,
                owner, side, price, quantity,
            )  # fmt: skip
        self._h = h = self._header.tolist()
        return order_id, (self._fill_list() if h[H_FILLS] else [])

    def replace_with_passive(
        self, owner: int, side: int, offset: int, quantity: int, reference: float
    ) -> tuple[int, list[Fill]]:
        """Cancel an owner's orders, then a passive limit order (see ``OrderBook.replace_with_passive``)."""
        return self._replace(owner, side, quantity, offset, reference, False)

    def replace_with_market(self, owner: int, side: int, quantity: int) -> list[Fill]:
        """Cancel an owner's orders, then a market order (see :meth:`OrderBook.replace_with_market`)."""
        return self._replace(owner, side, quantity, 0, 0.0, True)[1]

    def cancel(self, order_id: int) -> int:
        """Cancel a resting order; return the lots removed (0 if it is not resting)."""
        if type(order_id) is not int:
            order_id = integer(order_id, "order_id")
        if not 0 < order_id < self._slot_of.shape[0] or self._slot_of[order_id] < 0:
            return 0
        removed = k.cancel_one(
            self._header, self._orders, self._levels, self._owners, self._slot_of, order_id
        )
        self._h = self._header.tolist()
        return removed

    def cancel_all(self, owner: int) -> int:
        """Cancel every resting order of ``owner``; return the lots removed."""
        if type(owner) is not int:
            owner = integer(owner, "owner")
        if not 0 <= owner < self._owners.shape[0] or self._owners[owner, 0] < 0:
            return 0
        removed = k.cancel_all_one(
            self._header, self._orders, self._levels, self._owners, self._slot_of, owner
        )
        self._h = self._header.tolist()
        return removed
