"""The limit order book: one protocol, a pure-Python engine and a compiled engine with the same behaviour.

* :class:`~abm.book.protocol.Book` states the interface once: what every engine does, returns and
  refuses (``tests/test_book_conformance.py`` and its two companions, ``test_book_ladders.py`` and
  ``test_book_reference.py``, run one suite over every engine in :data:`BOOK_ENGINES`).
* :class:`OrderBook` (:mod:`abm.book.pure`) is the reference engine: plain Python, no compiled
  dependency, the default.
* :class:`FastOrderBook` (:mod:`abm.book.fast`) keeps the book in numpy arrays and matches in
  numba-compiled kernels. It needs the optional extra ``fast`` (``pip install -e ".[fast]"``). Its gain
  is in batches: :meth:`~FastOrderBook.process` takes a whole step's orders as arrays,
  :meth:`~FastOrderBook.requote_ladder` a market maker's cancel and whole ladder,
  :meth:`~FastOrderBook.amend_ladder` a ladder that keeps its unmoved levels, and the replace calls a
  trader's cancel-and-reorder, one call each; single orders cost about what they cost in the pure
  engine.

Both give identical order ids, fills and book states for the same orders, so a scenario's tables do
not depend on the engine. :func:`make_book` picks one by name (the scenario field
``market.book_engine``).
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass

from abm.book.protocol import BUY, MAX_LOTS, MAX_PRICE_TICKS, SELL, Book, Fill
from abm.book.pure import OrderBook
from abm.registry import Registry

__all__ = [
    "BOOK_ENGINES",
    "BUY",
    "MAX_LOTS",
    "MAX_PRICE_TICKS",
    "SELL",
    "Book",
    "BookEngine",
    "FastOrderBook",
    "Fill",
    "OrderBook",
    "engine_problem",
    "fast_engine_available",
    "make_book",
]


@dataclass(frozen=True)
class BookEngine:
    """A registered book engine.

    Attributes:
        name: The name a scenario gives in ``market.book_engine``.
        path: ``module:Class`` of the engine (imported when a book is made).
        requires: A module the engine needs that may be missing (None: always available).
        install: How to get ``requires``.
    """

    name: str
    path: str
    requires: str | None = None
    install: str = ""

    def available(self) -> bool:
        """Whether the engine can run here (its optional dependency is importable)."""
        return self.requires is None or importlib.util.find_spec(self.requires) is not None

    def load(self) -> type:
        """Import and return the engine's class."""
        module, _, name = self.path.partition(":")
        return getattr(importlib.import_module(module), name)


BOOK_ENGINES: Registry[BookEngine] = Registry("book engine")
BOOK_ENGINES.add("python", BookEngine("python", "abm.book.pure:OrderBook"))
BOOK_ENGINES.add(
    "fast",
    BookEngine("fast", "abm.book.fast:FastOrderBook", requires="numba", install="pip install -e '.[fast]'"),
)


def engine_problem(engine: str) -> str | None:
    """Why ``engine`` cannot run here (a message that says how to fix it), or None when it can."""
    spec = BOOK_ENGINES[engine]
    if spec.available():
        return None
    return f"{engine!r} needs {spec.requires}: {spec.install}, or use book_engine: python"


def fast_engine_available() -> bool:
    """Return True if numba can be imported, i.e. the ``fast`` engine can run here."""
    return BOOK_ENGINES["fast"].available()


def make_book(engine: str = "python") -> Book:
    """Return an empty book of the named engine.

    Args:
        engine: A name in :data:`BOOK_ENGINES` (``"python"`` or ``"fast"``).

    Raises:
        UnknownName: If the engine name is unknown (a ``KeyError``).
        ImportError: If the engine's optional dependency is missing (with the command to fix it).
    """
    problem = engine_problem(engine)
    if problem is not None:
        raise ImportError(f"market.book_engine {problem}")
    return BOOK_ENGINES[engine].load()()


def __getattr__(name: str):
    # FastOrderBook is imported lazily: importing numba costs about a second and is optional.
    if name == "FastOrderBook":
        from abm.book.fast import FastOrderBook

        return FastOrderBook
    raise AttributeError(f"module 'abm.book' has no attribute {name!r}")
