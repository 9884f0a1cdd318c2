"""The makers' requote on the pure book: microseconds a call, in a real run (a script, not a test).

Each round runs the spiral (the pure book, seed 1) in a fresh process with a wrapper that times every
``OrderBook.requote_ladder`` call (wall time, ``perf_counter_ns``, and the thread's CPU time,
``thread_time_ns``, which a busy host's stolen time does not inflate), and prints the median and mean
microseconds a call, the run's own seconds and a digest of its time series and trades (two checkouts
that requote alike give the same digest). With ``--other PATH`` the rounds alternate between this
checkout and the one at PATH (put first on ``PYTHONPATH``: an older commit's worktree, say), so
that a before / after ratio comes from interleaved processes on one machine.

Usage: python benchmarks/bench_requote.py [--steps 5000] [--rounds 4] [--option keep_queue_priority]
       [--other /path/to/older/checkout]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

_CHILD = r"""
import hashlib, json, statistics, sys, time
from abm.book.pure import OrderBook
from abm.model import MarketModel

steps, option = int(sys.argv[1]), sys.argv[2]
method = "amend_ladder" if option == "keep_queue_priority" else "requote_ladder"
original = getattr(OrderBook, method)
times = []

cpu = []

def timed(self, *args):
    start, start_cpu = time.perf_counter_ns(), time.thread_time_ns()
    result = original(self, *args)
    cpu.append(time.thread_time_ns() - start_cpu)
    times.append(time.perf_counter_ns() - start)
    return result

setattr(OrderBook, method, timed)
overrides = {"steps": steps, "market.book_engine": "python"}
if option == "keep_queue_priority":
    overrides["agents.0.keep_queue_priority"] = True
model = MarketModel("spiral", rng=1, **overrides)
start = time.perf_counter()
model.run()
seconds = time.perf_counter() - start
result = model.results()
digest = hashlib.sha256(
    result.timeseries.to_csv().encode() + result.trades.to_csv().encode()
).hexdigest()[:16]
print(json.dumps({"calls": len(times), "median_us": statistics.median(times) / 1e3,
                  "mean_us": statistics.mean(times) / 1e3, "cpu_median_us": statistics.median(cpu) / 1e3,
                  "run_s": seconds, "digest": digest,
                  "abm": __import__("abm").__file__}))
"""


def one_round(steps: int, option: str, path: str | None) -> dict:
    """One run in a fresh process (``path`` first on PYTHONPATH when given)."""
    environment = dict(os.environ)
    if path is not None:
        environment["PYTHONPATH"] = os.pathsep.join(filter(None, [path, environment.get("PYTHONPATH")]))
    with tempfile.TemporaryDirectory() as elsewhere:  # not the checkout: `-c` puts the cwd first
        output = subprocess.run(
            [sys.executable, "-c", _CHILD, str(steps), option],
            check=True,
            capture_output=True,
            text=True,
            env=environment,
            cwd=elsewhere,
        ).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    """Alternate the checkouts round by round and print each round and the medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--option", choices=["default", "keep_queue_priority"], default="default")
    parser.add_argument("--other", type=Path, help="another checkout to time the same way, alternately")
    options = parser.parse_args()
    checkouts = {"this checkout": None}
    if options.other is not None:
        checkouts[f"other ({options.other})"] = str(options.other.resolve())
    rounds: dict[str, list[dict]] = {name: [] for name in checkouts}
    for index in range(options.rounds):
        for name, path in checkouts.items():
            row = one_round(options.steps, options.option, path)
            rounds[name].append(row)
            print(
                f"round {index + 1} {name}: {row['calls']} calls, median {row['median_us']:.1f} us "
                f"(CPU {row['cpu_median_us']:.1f}), mean {row['mean_us']:.1f} us, run {row['run_s']:.2f} s, "
                f"digest {row['digest']} "
                f"({Path(row['abm']).parent.parent})",
                flush=True,
            )
    print(f"\nspiral, {options.steps} steps, pure book, requote {options.option}; medians over rounds:")
    for name, rows in rounds.items():
        median = statistics.median(row["median_us"] for row in rows)
        cpu = statistics.median(row["cpu_median_us"] for row in rows)
        run = statistics.median(row["run_s"] for row in rows)
        print(f"  {name}: {median:.1f} us a call ({cpu:.1f} us CPU), run {run:.2f} s")
    if len(rounds) == 2:
        mine, other = rounds.values()
        for label, field in (("wall", "median_us"), ("CPU", "cpu_median_us")):
            ratios = [b[field] / a[field] for a, b in zip(mine, other, strict=True)]
            listed = ", ".join(f"{ratio:.2f}" for ratio in ratios)
            print(f"  other / this, median {label} time a call, per round: {listed}")


if __name__ == "__main__":
    main()
