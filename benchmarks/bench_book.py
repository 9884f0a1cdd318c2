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

After the main table come the per-order cost ratio of the largest size to the smallest (1.0 means
no slowdown per order as the run gets longer, e.g. from the garbage collector) and, with
``--by-kind``, the cost of each kind of operation (each call timed with perf_counter_ns, minus the
cost of an empty timing pair): the profile that says where a mixed order's time goes.

With ``--engines``, a second table compares the engines on one batch-ready stream of the same mix
(cancels hit one of the 100 latest limit orders by id, since a batch is built before it runs): the
pure book and the compiled book (``abm.book.fast``, extra ``fast``) one call per order, and the
compiled book's ``process`` with the stream cut into batches of 100 and 1,000 orders (one call per
batch, as one step of a model would send). Every engine's fills are checked equal to the pure book's.

Usage: python benchmarks/bench_book.py [--sizes 100000 1000000] [--seed 7] [--repeats 3] [--by-kind]
       [--engines]
"""

from __future__ import annotations

import argparse
import gc
import os
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


def profile_by_kind(operations: list[tuple]) -> list[dict]:
    """Time every book call of the stream separately; return one row per kind of operation.

    Limit orders are split into those that rest without trading and those that trade ("crossing",
    whether or not a remainder rests). The timer's own cost (an empty perf_counter_ns pair) is
    subtracted. The figures are indicative: timing each call perturbs caches a little.
    """
    book = OrderBook()
    clock = time.perf_counter_ns
    kinds = ("limit, rests", "limit, crossing", "cancel", "open_orders", "cancel_all", "market")
    spent = dict.fromkeys(kinds, 0)
    counts = dict.fromkeys(kinds, 0)
    empty_total = 0
    gc.collect()
    for kind, owner, side, anchor, offset, quantity, pick, market_limit in operations:
        if kind == LIMIT:
            price = anchor - side * offset
            start = clock()
            fills = book.submit_limit(owner, side, price, quantity)[1]
            stop = clock()
            name = "limit, crossing" if fills else "limit, rests"
        elif kind == CANCEL:
            start = clock()
            open_ids = book.open_orders(owner)
            stop = clock()
            spent["open_orders"] += stop - start
            counts["open_orders"] += 1
            if not open_ids:
                continue
            order_id = open_ids[int(pick * len(open_ids))]
            start = clock()
            book.cancel(order_id)
            stop = clock()
            name = "cancel"
        elif kind == MARKET:
            limit_price = None if market_limit < 0 else market_limit
            start = clock()
            book.submit_market(owner, side, quantity, limit_price)
            stop = clock()
            name = "market"
        else:
            start = clock()
            book.cancel_all(owner)
            stop = clock()
            name = "cancel_all"
        spent[name] += stop - start
        counts[name] += 1
        start = clock()
        stop = clock()
        empty_total += stop - start
    timer_ns = empty_total / max(sum(counts.values()) - counts["open_orders"], 1)
    rows = []
    for name in kinds:
        per_call = spent[name] / counts[name] - timer_ns if counts[name] else 0.0
        rows.append(
            {
                "operation": name,
                "calls": counts[name],
                "share of orders": f"{counts[name] / len(operations):.1%}",
                "ns per call": per_call,
                "ns per order": per_call * counts[name] / len(operations),
            }
        )
    total = sum(row["ns per order"] for row in rows)
    rows.append(
        {
            "operation": "all",
            "calls": len(operations),
            "share of orders": "",
            "ns per call": total,
            "ns per order": total,
        }
    )
    return rows


def draw_batch_stream(rng: np.random.Generator, count: int) -> list[np.ndarray]:
    """The standard mix as the arrays of ``FastOrderBook.process`` (kinds in its numbering).

    Order ids are known in advance (every limit and market order draws the next id), so a cancel can
    name one of the 100 latest limit orders, resting or not, before the batch runs.
    """
    from abm.book.fast import CANCEL as F_CANCEL
    from abm.book.fast import CANCEL_ALL as F_CANCEL_ALL
    from abm.book.fast import LIMIT as F_LIMIT
    from abm.book.fast import MARKET as F_MARKET

    draw = rng.random(count)
    kinds = np.where(
        draw < 0.70, F_LIMIT, np.where(draw < 0.89, F_CANCEL, np.where(draw < 0.90, F_CANCEL_ALL, F_MARKET))
    ).astype(np.int64)
    owners = rng.integers(0, OWNER_COUNT, count)
    sides = np.where(rng.random(count) < 0.5, BUY, SELL).astype(np.int64)
    anchor = 100_000 + np.cumsum(
        np.where(rng.random(count) < 0.05, np.where(rng.random(count) < 0.5, 1, -1), 0)
    )
    limit_prices = anchor - sides * rng.integers(-2, 8, count)
    market_limits = np.where(rng.random(count) < 0.5, 0, anchor + sides * rng.integers(0, 6, count))
    prices = np.where(kinds == F_LIMIT, limit_prices, np.where(kinds == F_MARKET, market_limits, 0))
    quantities = np.where(kinds == F_MARKET, rng.integers(1, 40, count), rng.integers(1, 10, count))
    ids = np.cumsum(kinds <= F_MARKET)  # the id drawn by op i (limit and market orders)
    limit_ids = ids[kinds == F_LIMIT]
    limits_before = np.searchsorted(np.flatnonzero(kinds == F_LIMIT), np.arange(count))
    back = rng.integers(1, 101, count)
    chosen = np.clip(limits_before - back, 0, max(len(limit_ids) - 1, 0))
    targets = np.where(
        (kinds == F_CANCEL) & (limits_before > 0), limit_ids[chosen] if len(limit_ids) else 0, 0
    )
    return [a.astype(np.int64) for a in (kinds, owners, sides, prices, quantities, targets)]


def _one_by_one(book, stream: list[np.ndarray]) -> list:
    """Send the stream to a book one call per operation; return all fills in order."""
    all_fills = []
    submit_limit, submit_market, cancel, cancel_all = (
        book.submit_limit,
        book.submit_market,
        book.cancel,
        book.cancel_all,
    )
    for kind, owner, side, price, quantity, target in zip(*(a.tolist() for a in stream), strict=True):
        if kind == 0:
            all_fills += submit_limit(owner, side, price, quantity)[1]
        elif kind == 1:
            all_fills += submit_market(owner, side, quantity, price or None)
        elif kind == 2:
            cancel(target)
        else:
            cancel_all(owner)
    return all_fills


def compare_engines(size: int, seed: int, repeats: int) -> list[dict]:
    """Time the engines on one batch-ready stream (best of ``repeats``); check their fills agree."""
    from abm.book.fast import FastOrderBook

    stream = draw_batch_stream(np.random.default_rng(seed), size)
    FastOrderBook().process(*(a[:1000] for a in stream))  # compile (or load the cache) outside the timing
    rows = []
    reference = None
    cases = [("pure, one call per order", None), ("compiled, one call per order", None)]
    cases += [(f"compiled, batches of {batch:,}", batch) for batch in (100, 1_000)]
    for name, batch in cases:
        best = float("inf")
        for _ in range(repeats):
            book = OrderBook() if name.startswith("pure") else FastOrderBook()
            gc.collect()
            start = time.process_time()
            if batch is None:
                fills = _one_by_one(book, stream)
            else:
                results = [book.process(*(a[i : i + batch] for a in stream)) for i in range(0, size, batch)]
            best = min(best, time.process_time() - start)
        if batch is not None:
            fills = [fill for result in results for fill in result.fill_tuples()]
        if reference is None:
            reference = fills
        elif fills != reference:
            raise AssertionError(f"{name}: fills differ from the pure book's")
        book.check_invariants()
        rows.append({"orders": size, "engine": name, "s": best, "orders/s": size / best, "fills": len(fills)})
    return rows


def _machine() -> str:
    """One line describing the CPU (its model from /proc/cpuinfo where there is one), cores and OS."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}"


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
    parser.add_argument("--by-kind", action="store_true", help="also time each kind of operation")
    parser.add_argument("--engines", action="store_true", help="also compare the pure and compiled engines")
    args = parser.parse_args()
    print(f"Machine: {_machine()}")
    print(
        f"Python {platform.python_version()} ({platform.python_implementation()}, "
        f"{' '.join(platform.python_build())}), numpy {np.__version__}; "
        f"best of {args.repeats} runs, seed {args.seed}, CPU seconds (process_time)"
    )
    rows = []
    streams = {}
    for size in args.sizes:
        operations = streams[size] = draw_operations(np.random.default_rng(args.seed), size)
        for deep in (False, True):
            for freeze in (False, True):
                rows.append(measure(operations, deep=deep, freeze=freeze, repeats=args.repeats))
    _print_table(rows)
    if len(args.sizes) > 1:
        small, large = min(args.sizes), max(args.sizes)
        print(f"\nPer-order cost at {large:,} orders relative to {small:,} (target: at most 1.10):")
        ratios = []
        for row in rows:
            if row["orders"] != large:
                continue
            base = next(
                other
                for other in rows
                if other["orders"] == small
                and (other["book"], other["gc.freeze"]) == (row["book"], row["gc.freeze"])
            )
            ratios.append(
                {
                    "book": row["book"],
                    "gc.freeze": row["gc.freeze"],
                    "ratio (with driver)": (row["total s"] / large) / (base["total s"] / small),
                    "ratio (book only)": ((row["total s"] - row["bare s"]) / large)
                    / ((base["total s"] - base["bare s"]) / small),
                }
            )
        _print_table(ratios)
    if args.by_kind:
        size = min(args.sizes)
        print(f"\nCost by kind of operation, fresh book, {size:,} orders (perf_counter_ns per call):")
        _print_table(profile_by_kind(streams[size]))
    if args.engines:
        print("\nEngines on a batch-ready stream of the same mix (fills checked equal to the pure book's):")
        _print_table([row for size in args.sizes for row in compare_engines(size, args.seed, args.repeats)])
    print("\ntarget: 1,500,000 orders/s through the public API")


if __name__ == "__main__":
    main()
