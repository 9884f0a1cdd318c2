"""Instructions a step (or an order), counted by callgrind: before / after figures a busy host cannot move.

This VM's speed drifts by tens of percent from one minute to the next, so a small saving is lost in
timed rounds. ``valgrind --tool=callgrind`` counts the instructions a process executes instead,
which is the same for the same code, input and interpreter whatever else runs (string hashing is
fixed with ``PYTHONHASHSEED=0``, since dict and set layouts move the count by a few percent
otherwise), and the cyclic collector is off once the model is built (or the orders drawn): what its
passes cost depends on the heap's history, not on the code counted, and a full pass over the
imported libraries' objects is tens of millions of instructions that fall into one run's window and
not the other's by chance. (Counted with the collector on, PyMarketSim's stress row came out 5%
apart for two checkouts that differ only in the order book, and the idle step, which never touches
the book, 9% apart with ``gc.freeze``; with the collector off, 0.3%.) So the counts are the code's
own work; the collector's share of a real run is not in them. Each workload runs at
two sizes in fresh processes, and the difference divided by the difference in size is the cost of
one more step (or order): imports, set-up and the first calls cancel out. With ``--other PATH`` the
same is counted for another checkout (put first on ``PYTHONPATH``: a worktree of an older commit,
say) and the ratio printed.

Workloads (the pure book, seed 1):
- ``calm``: the shipped calm scenario (the spiral's market without its shock: five makers requoting
  their ladders every step, 200 holders, noise traders);
- ``idle``: 1,000 noise traders that never arrive (a step in which nobody acts);
- ``stress``: PyMarketSim's stress row, 500 noise traders arriving with probability 0.005 a step;
- ``book``: the standard order mix of ``bench_book.py``, per order.

It is slow (callgrind runs a program about 50 times slower): the defaults take 2-6 minutes a
workload and checkout. Instruction counts are not seconds (a cache miss costs more than an add),
so they say which of two versions does less work, not how long either takes. And they are not
exact for code that did not change: the idle step, which the order book's changes of 2026-12-08 do
not touch, came out 1.3%, 8.6% and 6.2% apart for those two checkouts in three countings (the
collector on, frozen after set-up, off; the interpreter's heap is laid out differently when other
modules differ). Read a difference of a few percent as
none; this is for changes of 10% or more, which the host's drift hides in timed rounds.

Usage: python benchmarks/bench_instructions.py [--workload calm idle stress book] [--other PATH]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

_MODEL = r"""
import gc
import sys
from abm.model import MarketModel
workload, size = sys.argv[1], int(sys.argv[2])
if workload == "calm":
    scenario = "calm"
    overrides = {"steps": size, "market.book_engine": "python"}
else:
    agents = {"idle": (1000, 0.0), "stress": (500, 0.005)}[workload]
    scenario = {"name": workload, "steps": size, "seed": 1, "market": {"book_engine": "python"},
                "agents": [{"kind": "noise", "count": agents[0], "arrival_rate": agents[1]}]}
    overrides = {}
model = MarketModel(scenario, rng=1, **overrides)
gc.collect()
gc.disable()  # the collector's passes are left out of the count (see the module docstring)
model.run()
"""

_BOOK = r"""
import gc
import sys
import numpy as np
sys.path.insert(0, sys.argv[3])
import bench_book  # puts its own checkout first on sys.path: take it off, so PYTHONPATH decides
sys.path = [entry for entry in sys.path if entry != str(__import__("pathlib").Path(sys.argv[3]).parent)]
for name in [name for name in sys.modules if name == "abm" or name.startswith("abm.")]:
    del sys.modules[name]
from abm.book import OrderBook
book = OrderBook()
operations = bench_book.draw_operations(np.random.default_rng(7), int(sys.argv[2]))
gc.collect()
gc.disable()
bench_book.drive(operations, book.submit_limit, book.submit_market, book.cancel, book.cancel_all,
                 book.open_orders)
"""

# (short size, long size, unit) per workload.
SIZES = {
    "calm": (100, 400, "step"),
    "idle": (200, 2200, "step"),
    "stress": (200, 1200, "step"),
    "book": (2000, 42000, "order"),
}


def count(workload: int | str, size: int, path: str | None) -> int:
    """Instructions of one process running ``workload`` at ``size`` (``path`` first on PYTHONPATH)."""
    environment = dict(os.environ, PYTHONHASHSEED="0")
    environment.pop("PYTHONPATH", None)
    if path is not None:
        environment["PYTHONPATH"] = path
    code = _BOOK if workload == "book" else _MODEL
    with tempfile.TemporaryDirectory() as scratch:  # not a checkout: `-c` puts the cwd first
        out = Path(scratch) / "callgrind.out"
        command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, "-c", code]
        command += [str(workload), str(size), str(Path(__file__).resolve().parent)]
        finished = subprocess.run(command, capture_output=True, text=True, env=environment, cwd=scratch)
    if finished.returncode != 0:
        raise SystemExit(f"{workload} at {size} failed:\n{finished.stderr[-2000:]}")
    match = re.search(r"Collected : (\d+)", finished.stderr)
    if match is None:
        raise SystemExit(f"callgrind printed no count for {workload} at {size}")
    return int(match.group(1))


def main() -> None:
    """Count each workload at its two sizes for each checkout; print instructions a unit and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", nargs="+", choices=sorted(SIZES), default=["calm", "idle", "stress"])
    parser.add_argument("--other", type=Path, help="another checkout to count the same way")
    options = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not on PATH (Debian: apt-get install valgrind)")
    checkouts = {"this checkout": None}
    if options.other is not None:
        checkouts[f"other ({options.other})"] = str(options.other.resolve())
    print(f"instructions per unit (callgrind, PYTHONHASHSEED=0, {sys.executable})")
    for workload in options.workload:
        short, long, unit = SIZES[workload]
        per_unit = {}
        for name, path in checkouts.items():
            extra = count(workload, long, path) - count(workload, short, path)
            per_unit[name] = extra / (long - short)
            print(
                f"  {workload:<7} {name}: {per_unit[name]:,.0f} a {unit} ({long} - {short} {unit}s)",
                flush=True,
            )
        if len(per_unit) == 2:
            mine, other = per_unit.values()
            print(f"  {workload:<7} other / this: {other / mine:.3f}")


if __name__ == "__main__":
    main()
