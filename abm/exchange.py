"""The exchange without its traders: the ledger, one book per instrument, the risk engine and the liquidator.

:class:`Exchange` wires the four parts the same way wherever they are needed: in the model, in the
analytic validation case (:mod:`abm.validation`) and in the hand-worked tests of the waterfall.

Example:
    >>> from abm.book import BUY, SELL
    >>> exchange = Exchange.single(maintenance=0.05, initial=0.10)   # tick 1, contract 1, fixed margin
    >>> maker, long = exchange.ledger.add_accounts(2, 1e6, "market_maker").tolist()
    >>> trader = int(exchange.ledger.add_accounts(1, 40.0, "leveraged_trader")[0])
    >>> exchange.ledger.open_position(trader, 0, 10, 100.0, long)      # 10 lots long at 100
    >>> _ = exchange.book.submit_limit(maker, BUY, 99, 10)
    >>> _ = exchange.book.submit_limit(maker, SELL, 101, 10)
    >>> check = exchange.liquidator.run(0, exchange.marks_from_books())  # equity 40 < 0.05 x 1000
    >>> [(r["account_id"], r["average_price"]) for r in exchange.liquidator.liquidations]
    [(3, 99.0)]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from abm.book import Book, make_book
from abm.config import LiquidationConfig
from abm.ledger import Instrument, Ledger
from abm.liquidation import Liquidator
from abm.margin import build_margin_policy
from abm.margin.check import MarginChecker
from abm.margin.portfolio import PortfolioMarginRule
from abm.margin.settings import FixedMargin

__all__ = ["Exchange"]


@dataclass
class Exchange:
    """The ledger, the books, the margin checker and the liquidator of one exchange.

    Attributes:
        ledger: Money and positions.
        books: One order book per instrument.
        checker: The margin policies applied to the ledger.
        liquidator: The cascade rounds and the waterfall.
    """

    ledger: Ledger
    books: list[Book]
    checker: MarginChecker
    liquidator: Liquidator

    @classmethod
    def build(
        cls,
        instruments: Sequence[Instrument],
        margins: Sequence[object],
        liquidation: LiquidationConfig,
        engines: Sequence[str] | None = None,
        portfolio_rule: PortfolioMarginRule | None = None,
        rng: np.random.Generator | None = None,
    ) -> Exchange:
        """Wire an exchange for these instruments, each with its margin settings and book engine.

        Args:
            instruments: The instruments, in ledger column order.
            margins: One validated ``margin:`` section per instrument (its rule and call buffer).
            liquidation: The liquidation settings (the insurance fund opens account 0).
            engines: One book engine name per instrument (default: the pure book).
            portfolio_rule: The rule of portfolio-margined accounts (None: there are none).
            rng: The run's generator, for liquidation designs that draw (dYdX's random start).
        """
        engines = list(engines) if engines is not None else ["python"] * len(instruments)
        ledger = Ledger(instruments, insurance_fund=liquidation.insurance_fund)
        books = [make_book(engine) for engine in engines]
        checker = MarginChecker(
            ledger,
            [build_margin_policy(margin) for margin in margins],
            [margin.call_buffer for margin in margins],
            portfolio_rule,
        )
        return cls(ledger, books, checker, Liquidator(ledger, books, checker, liquidation, rng))

    @classmethod
    def single(
        cls,
        *,
        tick_size: float = 1.0,
        contract_size: float = 1.0,
        initial: float = 0.10,
        maintenance: float = 0.05,
        call_buffer: float = 0.2,
        engine: str = "python",
        **liquidation,
    ) -> Exchange:
        """One instrument (``"X"``) under a fixed margin rule: the set-up of the hand-worked cases.

        Args:
            tick_size: Price of a tick.
            contract_size: Units per lot.
            initial: Initial margin rate.
            maintenance: Maintenance margin rate.
            call_buffer: Margin-call buffer.
            engine: Book engine.
            **liquidation: Fields of :class:`~abm.config.LiquidationConfig` (``insurance_fund``,
                ``fee``, ...).
        """
        margin = FixedMargin(rule="fixed", initial=initial, maintenance=maintenance, call_buffer=call_buffer)
        instrument = Instrument("X", tick_size=tick_size, contract_size=contract_size)
        return cls.build([instrument], [margin], LiquidationConfig(**liquidation), [engine])

    @property
    def book(self) -> Book:
        """The first (or only) book."""
        return self.books[0]

    def marks_from_books(self, fallback: float = 100.0) -> Callable[[], np.ndarray]:
        """A marks function for :meth:`Liquidator.run`: each mid, else the last trade, else ``fallback``."""
        ticks = [instrument.tick_size for instrument in self.ledger.instruments]

        def marks() -> np.ndarray:
            values = []
            for book, tick in zip(self.books, ticks, strict=True):
                mid = book.mid()
                if mid is not None:
                    values.append(mid * tick)
                elif book.last_price is not None:
                    values.append(book.last_price * tick)
                else:
                    values.append(fallback)
            return np.array(values)

        return marks
