"""The order-book interface every engine implements, stated once.

Conventions shared by every engine:

* prices are integer ticks in ``1..MAX_PRICE_TICKS``; quantities integer lots in ``1..MAX_LOTS``;
  owners are account ids ``>= 0``; sides are ``BUY`` (+1) and ``SELL`` (-1);
* price-time priority: the best price first, then the oldest order; a fill is always at the resting
  (maker) order's price;
* one id counter per book, from 1, shared by limit and market orders;
* self-trades are reported as ordinary fills (``maker == taker``); the ledger nets them;
* a refused call raises before it changes anything (no order id is used, the book is as it was):
  ``TypeError`` for a value that is not an integer where one is needed, ``ValueError`` for one out of
  range; the messages name the argument (the same text in every engine);
* queries never change the book.

``tests/test_book_conformance.py``, ``test_book_ladders.py`` and ``test_book_reference.py`` run one
suite (hand-worked cases, the error table, ladders and profiles, a hypothesis state machine and a naive
reference book) over every engine in :data:`abm.book.BOOK_ENGINES`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np

__all__ = ["BUY", "MAX_LOTS", "MAX_PRICE_TICKS", "SELL", "Book", "Fill"]

BUY: int = 1
SELL: int = -1

# The highest price in ticks either engine takes (the compiled book keeps a dense array per price:
# 2^23 ticks is 335 MB at most). A scenario's prices are checked against it before a run.
MAX_PRICE_TICKS: int = 1 << 23
# The largest quantity of one order: sums of many such orders stay far inside int64.
MAX_LOTS: int = 10**12


class Fill(NamedTuple):
    """One match between a resting (maker) order and an incoming (taker) order.

    Attributes:
        maker_order_id: Id of the resting order that was hit.
        maker: Owner of the resting order.
        taker_order_id: Id of the incoming limit or market order.
        taker: Owner of the incoming order (may equal ``maker``: self-trades are reported).
        price: Execution price in ticks, always the maker's limit price.
        quantity: Lots exchanged (> 0).
        taker_side: ``BUY`` (+1) if the taker bought, ``SELL`` (-1) if it sold.
    """

    maker_order_id: int
    maker: int
    taker_order_id: int
    taker: int
    price: int
    quantity: int
    taker_side: int


@runtime_checkable
class Book(Protocol):
    """A price-time-priority limit order book with an immediate matching engine."""

    # ------------------------------------------------------------------ order entry

    def submit_limit(self, owner: int, side: int, price: int, quantity: int) -> tuple[int, list[Fill]]:
        """Match what crosses at the makers' prices, rest the remainder; return ``(order id, fills)``."""
        ...

    def submit_market(
        self, owner: int, side: int, quantity: int, limit_price: int | None = None
    ) -> list[Fill]:
        """Immediate-or-cancel: sweep the other side (not beyond ``limit_price``); the rest is dropped."""
        ...

    def passive_price(self, side: int, offset: int, reference: float) -> int:
        """A limit price ``offset`` ticks behind the touch on ``side`` that never crosses.

        With ``side`` empty: behind the last trade, or behind ``reference`` (ticks) before any trade.
        """
        ...

    def replace_with_passive(
        self, owner: int, side: int, offset: int, quantity: int, reference: float
    ) -> tuple[int, list[Fill]]:
        """``cancel_all(owner)``, then a limit order at :meth:`passive_price` (taken after the cancel)."""
        ...

    def replace_with_market(self, owner: int, side: int, quantity: int) -> list[Fill]:
        """``cancel_all(owner)``, then :meth:`submit_market`."""
        ...

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
        """A market maker's ladder of limit orders; return ``(orders sent, fills of each that crossed)``."""
        ...

    def quote_reference(self, anchor_weight: float, anchor: float) -> float:
        """Mid (else last trade, else ``anchor``) in ticks, blended with ``anchor`` by ``anchor_weight``."""
        ...

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
        """``cancel_all(owner)``, then :meth:`submit_ladder` around ``quote_reference(...) - shift``."""
        ...

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
        """:meth:`requote_ladder`'s ladder, keeping the places that did not move.

        Every place's order (a level and a side) that rests in full at the place's new price and size
        stays in its queue; the owner's other orders are cancelled, the places not kept get new
        orders. Returns ``(new orders sent, fills of each that crossed)``.
        """
        ...

    def cancel(self, order_id: int) -> int:
        """Cancel a resting order; return the lots removed (0 if it is not resting)."""
        ...

    def cancel_all(self, owner: int) -> int:
        """Cancel every resting order of ``owner``; return the lots removed."""
        ...

    # ------------------------------------------------------------------ market data

    def best_bid(self) -> int | None:
        """The highest resting bid in ticks, or None."""
        ...

    def best_ask(self) -> int | None:
        """The lowest resting ask in ticks, or None."""
        ...

    def mid(self) -> float | None:
        """``(best bid + best ask) / 2`` in ticks, or None unless both sides rest."""
        ...

    @property
    def last_price(self) -> int | None:
        """Price in ticks of the latest fill, or None before the first."""
        ...

    def volume_traded(self) -> int:
        """Lots filled since the book was made (each fill once)."""
        ...

    def depth(self, side: int, within_ticks: int) -> int:
        """Resting lots on ``side`` within ``within_ticks`` of that side's best price."""
        ...

    def depth_near(self, side: int, reference: float, within_ticks: int) -> int:
        """Resting lots on ``side`` at prices within ``within_ticks`` of ``reference``."""
        ...

    def levels(self, side: int, n: int) -> list[tuple[int, int]]:
        """The best ``n`` levels of ``side`` as ``(price, lots)``, best first."""
        ...

    def depth_profile(
        self, reference: float, width: float, buckets: int, max_levels: int, out: np.ndarray | None = None
    ) -> list[int] | np.ndarray:
        """Resting lots in ``2 * buckets`` buckets of ``width`` ticks around ``reference``."""
        ...

    def market_order_cost(self, side: int, quantity: int) -> tuple[int, int]:
        """``(fillable lots, sum of price x lots)`` of a hypothetical market order; the book is unchanged."""
        ...

    # ------------------------------------------------------------------ order queries

    def open_orders(self, owner: int) -> list[int]:
        """Ids of ``owner``'s resting orders, in submission order."""
        ...

    def order(self, order_id: int) -> tuple[int, int, int, int] | None:
        """``(owner, side, price, remaining)`` of a resting order, or None."""
        ...

    def orders_at(self, side: int, price: int) -> list[int]:
        """Ids of the orders resting at one price, in time priority."""
        ...

    def __len__(self) -> int:
        """Number of resting orders."""
        ...

    def check_invariants(self) -> None:
        """Raise ``AssertionError`` on the first internal inconsistency (O(book size))."""
        ...
