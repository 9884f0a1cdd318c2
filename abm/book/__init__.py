"""The limit order book: one pure-Python engine and one compiled engine with the same behaviour.

* :class:`OrderBook` (:mod:`abm.book.pure`) is the reference engine: plain Python, no compiled
  dependency, the default.
* :class:`FastOrderBook` (:mod:`abm.book.fast`) keeps the book in numpy arrays and matches in
  numba-compiled kernels. It needs the optional extra ``fast`` (``pip install -e ".[fast]"``). Its gain
  is in batches: :meth:`~FastOrderBook.process` takes a whole step's orders as arrays,
  :meth:`~FastOrderBook.requote_ladder` a market maker's cancel and whole ladder, and the replace
  calls a trader's cancel-and-reorder, one call each; single orders cost about what they cost in the
  pure engine.

Both give identical order ids, fills and book states for the same orders (``tests/test_fast_book.py``
drives them with the same random streams), so a scenario's tables do not depend on the engine.
:func:`make_book` picks one by name (the scenario field ``market.book_engine``).
"""

from __future__ import annotations

from abm.book.pure import BUY, SELL, Fill, OrderBook

__all__ = ["BUY", "SELL", "Fill", "OrderBook", "FastOrderBook", "fast_engine_available", "make_book"]


def fast_engine_available() -> bool:
    """Return True if numba can be imported, i.e. the ``fast`` engine can run here."""
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def make_book(engine: str = "python"):
    """Return an empty book of the named engine.

    Args:
        engine: ``"python"`` for :class:`OrderBook`, ``"fast"`` for :class:`FastOrderBook`.

    Raises:
        ValueError: If the engine name is unknown.
        ImportError: If ``"fast"`` is asked for and numba is not installed (with the command to fix it).
    """
    if engine == "python":
        return OrderBook()
    if engine == "fast":
        if not fast_engine_available():
            raise ImportError(
                "market.book_engine 'fast' needs numba: install the extra with "
                "pip install -e '.[fast]' (or pip install numba), or use book_engine: python"
            )
        from abm.book.fast import FastOrderBook

        return FastOrderBook()
    raise ValueError(f"unknown book engine {engine!r}: use 'python' or 'fast'")


def __getattr__(name: str):
    # FastOrderBook is imported lazily: importing numba costs about a second and is optional.
    if name == "FastOrderBook":
        from abm.book.fast import FastOrderBook

        return FastOrderBook
    raise AttributeError(f"module 'abm.book' has no attribute {name!r}")
