"""Cost of the account-level work per step over 1e3 .. 1e6 accounts (a script, not a test).

For each size N: N leveraged longs (leverage spread evenly over 5x-25x, entry 100, collateral 100)
against one short counterparty, fixed margin 4% / 2%, a book with a deep bid ladder (a market maker
with 2,000 lots on each of 3,000 ticks below 100). The mark is then set 3% below the entry, which
puts the longs above about 19.7x under maintenance (about 26% of them).

Timed, each the median of ``--repeats`` fresh set-ups (CPU seconds of this process):

* ``margin check``: one vectorised pass (equity, requirements, breaches sorted worst first, calls);
  ns per account;
* ``check + liquidation round``: ``Liquidator.run`` with liquidation capped at one
  round, i.e. the check, every breached account sent to the book as a market order through the
  waterfall, and the re-check; us per liquidated account beside it (the part that is per account
  in Python, by design: each liquidation is an order into the book).

Usage: python benchmarks/bench_accounts.py [--sizes 1000 10000 100000 1000000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from abm.book import BUY  # noqa: E402
from abm.exchange import Exchange  # noqa: E402

TICK = 0.01
CONTRACT = 0.1
ENTRY = 100.0


def build(count: int) -> tuple[Exchange, float]:
    """An exchange with ``count`` leveraged longs, a short counterparty and a deep bid ladder."""
    exchange = Exchange.single(
        tick_size=TICK,
        contract_size=CONTRACT,
        initial=0.04,
        maintenance=0.02,
        call_buffer=0.25,
        max_rounds=1,
        insurance_fund=1e12,
    )
    ledger = exchange.ledger
    maker = int(ledger.add_accounts(1, 1e12, "market_maker")[0])
    counterparty = int(ledger.add_accounts(1, 1e12, "counterparty")[0])
    traders = ledger.add_accounts(count, 100.0, "leveraged_trader")
    leverage = np.linspace(5.0, 25.0, count)
    lots = np.maximum(1, (leverage * 100.0 / (ENTRY * CONTRACT)).astype(np.int64))
    # One vectorised booking (open_position per account would time Python, not the check).
    ledger.open_positions(traders, 0, lots, ENTRY, counterparty)
    top = int(round(ENTRY / TICK)) - 1
    for price in range(top, top - 3_000, -1):
        exchange.book.submit_limit(maker, BUY, price, 2_000)
    return exchange, ENTRY * 0.97


def measure(count: int, repeats: int) -> dict:
    """Median CPU seconds of a margin check and of one liquidation round over ``count`` accounts."""
    check_times, round_times, liquidated = [], [], 0
    for _ in range(repeats):
        exchange, mark = build(count)
        marks = np.array([mark])
        started = time.process_time()
        check = exchange.checker.check(marks)
        check_times.append(time.process_time() - started)
        breached = len(check.breached)
        started = time.process_time()
        exchange.liquidator.run(0, lambda marks=marks: marks)
        round_times.append(time.process_time() - started)
        liquidated = exchange.liquidator.totals.liquidations
        assert liquidated == breached, (liquidated, breached)
    check_seconds = float(np.median(check_times))
    round_seconds = float(np.median(round_times))
    return {
        "accounts": count,
        "breached": liquidated,
        "check_ms": 1e3 * check_seconds,
        "check_ns_per_account": 1e9 * check_seconds / count,
        "round_ms": 1e3 * round_seconds,
        "us_per_liquidation": 1e6 * (round_seconds - check_seconds) / max(liquidated, 1),
    }


def main(argv: list[str] | None = None) -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    print(f"machine: {platform.machine()} {platform.processor() or ''}, Python {platform.python_version()}")
    header = f"{'accounts':>10} {'breached':>9} {'check ms':>9} {'ns/acct':>8} {'round ms':>9} {'us/liq':>7}"
    print(header)
    for count in args.sizes:
        row = measure(count, args.repeats)
        print(
            f"{row['accounts']:>10,} {row['breached']:>9,} {row['check_ms']:>9.2f} "
            f"{row['check_ns_per_account']:>8.1f} {row['round_ms']:>9.1f} {row['us_per_liquidation']:>7.1f}"
        )


if __name__ == "__main__":
    main()
