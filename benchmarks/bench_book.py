"""Throughput of abm.book.OrderBook on the standard order mix (a script, not a test).

Standard mix, drawn up front with numpy so that drawing costs nothing inside the timed loop:
70% limit orders near the touch (offsets -2..7 ticks behind a slowly drifting anchor, so some are
marketable), 20% cancels (19% one random resting order of a random owner, found via open_orders;
1% cancel_all of an owner), 10% market orders of 1..39 lots (half with a limit price). 20 owners.

Each case runs the same pre-drawn stream twice in one process: once through the book's public API,
once through a bare loop that does the same unpacking and branching but calls no-op stand-ins.
"book only" is the difference, i.e. what the matching engine itself costs per order. Times are CPU
seconds of this process (time.process_time), so other load on the machine distorts them less.
The "deep" case first rests 20,000 orders 1,000-5,000 ticks from the start price, so that the
sorted price lists and dicts are large. The anchor's drift (about 220 ticks over 1e6 orders) does
not reach them; only a market order that empties the near part of a side sweeps into them, so the
fill counts differ slightly from the fresh case.

Usage: python benchmarks/bench_book.py [--sizes 100000 1000000] [--seed 7] [--repeats 3]
"""

from __future__ import annotations

import argparse
import gc
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from abm.book import BUY, SELL, OrderBook  # noqa: E402

OWNER_COUNT = 20
LIMIT, CANCEL, CANCEL_ALL, MARKET = 0, 1, 2, 3


def draw_operations(rng: np.random.Generator, count: int) -> list[tuple]:
    """Draw the standard mix; returns one tuple (kind, owner, side, anchor, offset, quantity, pick, limit)."""
    draw = rng.random(count)
    kind = np.where(
        draw < 0.70, LIMIT, np.where(draw < 0.89, CANCEL, np.where(draw < 0.90, CANCEL_ALL, MARKET))
    )
    owner = rng.integers(0, OWNER_COUNT, count)
    side = np.where(rng.random(count) < 0.5, BUY, SELL)
    steps = np.where(rng.random(count) < 0.05, np.where(rng.random(count) < 0.5, 1, -1), 0)
    anchor = 100_000 + np.cumsum(steps)
    offset = rng.integers(-2, 8, count)
    limit_quantity = rng.integers(1, 10, count)
    market_quantity = rng.integers(1, 40, count)
    quantity = np.where(kind == MARKET, market_quantity, limit_quantity)
    pick = rng.random(count)  # which open order a cancel hits
    # Market limit price: -1 for none, else anchor + side * 0..5 ticks.
    market_limit = np.where(rng.random(count) < 0.5, -1, anchor + side * rng.integers(0, 6, count))
    # Plain Python ints: numpy scalars would slow the book and are not what the simulator passes.
    return list(
        zip(
            kind.tolist(),
            owner.tolist(),
            side.tolist(),
            anchor.tolist(),
            offset.tolist(),
            quantity.tolist(),
            pick.tolist(),
            market_limit.tolist(),
            strict=True,
        )
    )


def drive(operations: list[tuple], submit_limit, submit_market, cancel, cancel_all, open_orders) -> int:
    """Feed the operations to the given callables; return the number of fills (0 for no-op stand-ins)."""
    fill_count = 0
    for kind, owner, side, anchor, offset, quantity, pick, market_limit in operations:
        if kind == LIMIT:
            fill_count += len(submit_limit(owner, side, anchor - side * offset, quantity)[1])
        elif kind == CANCEL:
            open_ids = open_orders(owner)
            if open_ids:
                cancel(open_ids[int(pick * len(open_ids))])
        elif kind == MARKET:
            fills = submit_market(owner, side, quantity, None if market_limit < 0 else market_limit)
            fill_count += len(fills)
        else:
            cancel_all(owner)
    return fill_count


_NO_FILLS: tuple = (0, ())


def _noop_submit_limit(owner, side, price, quantity):
    return _NO_FILLS


def _noop_submit_market(owner, side, quantity, limit_price=None):
    return ()


def _noop_cancel(order_id):
    return 0


def _noop_open_orders(owner):
    return ()


def _deep_book() -> OrderBook:
    """A book with 20,000 resting orders 1,000-5,000 ticks from the start price on both sides."""
    book = OrderBook()
    rng = np.random.default_rng(12345)
    for side in (BUY, SELL):
        distances = rng.integers(1_000, 5_000, 10_000).tolist()
        quantities = rng.integers(1, 10, 10_000).tolist()
        for distance, quantity in zip(distances, quantities, strict=True):
            book.submit_limit(OWNER_COUNT + 1, side, 100_000 - side * distance, quantity)
    return book


def measure(operations: list[tuple], deep: bool, freeze: bool, repeats: int) -> dict:
    """Time the book and the bare loop on one stream (best of ``repeats``); return one table row."""
    book_seconds = bare_seconds = float("inf")
    for _ in range(repeats):
        book = _deep_book() if deep else OrderBook()
        resting_before = len(book)
        gc.collect()
        if freeze:
            gc.freeze()  # set-up objects (the stream, a deep book) leave the collector's generations
        start = time.process_time()
        fills = drive(
            operations, book.submit_limit, book.submit_market, book.cancel, book.cancel_all, book.open_orders
        )
        book_seconds = min(book_seconds, time.process_time() - start)
        start = time.process_time()
        drive(
            operations, _noop_submit_limit, _noop_submit_market, _noop_cancel, _noop_cancel, _noop_open_orders
        )
        bare_seconds = min(bare_seconds, time.process_time() - start)
        if freeze:
            gc.unfreeze()
        book.check_invariants()
    count = len(operations)
    return {
        "orders": count,
        "book": "deep" if deep else "fresh",
        "gc.freeze": "yes" if freeze else "no",
        "total s": book_seconds,
        "bare s": bare_seconds,
        "orders/s (with driver)": count / book_seconds,
        "orders/s (book only)": count / max(book_seconds - bare_seconds, 1e-9),
        "fills": fills,
        "resting at end": len(book) - resting_before,
    }


def _format(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.0f}" if value >= 100 else f"{value:.3f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _print_table(rows: list[dict]) -> None:
    headers = list(rows[0])
    cells = [[_format(value) for value in row.values()] for row in rows]
    widths = [max(len(header), *(len(row[i]) for row in cells)) for i, header in enumerate(headers)]
    print("  ".join(header.rjust(width) for header, width in zip(headers, widths, strict=True)))
    for row in cells:
        print("  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeats", type=int, default=3, help="best of this many timed runs per row")
    args = parser.parse_args()
    print(
        f"Python {platform.python_version()} ({platform.python_implementation()}), numpy {np.__version__}, "
        f"best of {args.repeats}, seed {args.seed}"
    )
    rows = []
    for size in args.sizes:
        operations = draw_operations(np.random.default_rng(args.seed), size)
        for deep in (False, True):
            for freeze in (False, True):
                rows.append(measure(operations, deep=deep, freeze=freeze, repeats=args.repeats))
    _print_table(rows)
    print("target (aspirational): 1,500,000 orders/s")


if __name__ == "__main__":
    main()
