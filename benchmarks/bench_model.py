"""Whole-model speed: agent actions per second, scaling with traders and steps, memory, data collection.

Every case is the ``spiral`` scenario with dotted overrides, run in a fresh subprocess (so that peak
memory, the child's ``ru_maxrss``, belongs to that case alone):

* ``steps`` (default 10,000; the shocks stay at steps 300-304) and ``agents.1.count`` = the number of
  leveraged traders, with ``agents.1.arrival_rate`` = 100 / traders so that every case has the same
  expected number of trader arrivals per step (0.1 per trader at 1,000 traders);
* ``strategy``: ``hold`` is the spiral as written (holders act only on a margin call or to re-enter,
  so they cost nothing while passive); ``random`` makes every arriving trader send an order
  (``agents.1.strategy=random``), the case with the most trader orders.

Reported per case: set-up, run and results (tables, networks, summary) wall seconds; peak RSS;
``actions/s``: agent requests that reached the book (orders and cancel requests, counted by the model
in ``agent_requests``) per second of run time; the share of run time spent recording (the model's
``_record`` and Mesa's DataCollector, timed by wrapping them); and the growth exponents of run time
with steps (1,000 traders; 1/4, 1/2 and all of the steps) and with traders (at the full steps),
the slope of log time on log size (1 = linear).

The multi-instrument case (``--instruments K``, default 10; 0 skips it) is the spiral market copied K
times (instruments ``I0`` .. ``I{K-1}``, index correlation 0.5 between every pair), with the largest
number of traders of ``--traders`` (capped at 10,000) each holding a cross-margined long in every
instrument (equal weights), the same arrival rule, makers, noise traders and fundamentalists acting in
every book (with K times their collateral, as one account backs K books); the spiral's index jump in
every instrument and its sell program in ``I0``.

The passive cost of an account is measured apart, before the shock: the time per step of the first
299 steps at 1,000 and at 100,000 traders, the difference divided by 99,000 accounts.

Usage::

    python benchmarks/bench_model.py                       # full table (about 3 minutes)
    python benchmarks/bench_model.py --steps 2000 --traders 1000 10000
    python benchmarks/bench_model.py --engine fast          # the compiled book (extra "fast")
    python benchmarks/bench_model.py --repeats 3            # each case 3 times: the median and the range
    python benchmarks/bench_model.py --only-instruments     # the multi-instrument case alone
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing


ENGINE = ["python"]  # the book engine of every case (--engine), passed on to the child processes


def _multi_instrument_scenario(instruments: int, traders: int, steps: int) -> dict:
    """The spiral's market K times over, one crowd long all of them in cross-margined accounts."""
    from abm.config import read_yaml_mapping, resolve_scenario

    spiral = read_yaml_mapping(resolve_scenario("spiral"))
    names = [f"I{k}" for k in range(instruments)]
    market = {**spiral.pop("market"), "book_engine": ENGINE[0]}
    settings = {"fundamental": spiral.pop("fundamental"), "margin": spiral.pop("margin")}
    spiral["instruments"] = [{"name": name, **market, **settings} for name in names]
    correlation = np.full((instruments, instruments), 0.5)
    np.fill_diagonal(correlation, 1.0)
    spiral["correlation"] = correlation.tolist()
    crowd = spiral["agents"][1]
    crowd.update(
        count=traders,
        arrival_rate=min(1.0, 100.0 / traders),
        portfolio=[{"instrument": name} for name in names],
        margin_mode="cross",
    )
    crowd.pop("side", None)
    # Makers, noise traders and fundamentalists act in every book from one account: the collateral
    # that backs one book in the spiral backs each of the K here (else the noise traders, at their
    # position limit in ten books, are 2x leveraged and the crash's aftermath liquidates them by the
    # hundred thousand).
    from abm.config import AGENT_KINDS

    for group in spiral["agents"]:
        if group is not crowd:
            default = AGENT_KINDS[group["kind"]].settings.model_fields["collateral"].default
            group["collateral"] = group.get("collateral", default) * instruments
    spiral["steps"] = steps
    # A market-wide fall: the spiral's index jump in every instrument, its sell program in the first.
    jump, program = spiral["shocks"]
    spiral["shocks"] = [{**jump, "instrument": name} for name in names] + [
        {**program, "instrument": names[0]}
    ]
    return spiral


def _model(traders: int, steps: int, strategy: str, seed: int = 7, instruments: int = 1):
    from abm.model import MarketModel

    if instruments > 1:
        return MarketModel(_multi_instrument_scenario(instruments, traders, steps), rng=seed)
    return MarketModel(
        "spiral",
        rng=seed,
        **{
            "steps": steps,
            "agents.1.count": traders,
            "agents.1.arrival_rate": min(1.0, 100.0 / traders),
            "agents.1.strategy": strategy,
            "market.book_engine": ENGINE[0],
        },
    )


def one_case(traders: int, steps: int, strategy: str, instruments: int = 1) -> dict:
    """Run one case in this process and return its figures."""
    import abm.model  # noqa: F401  (import time is not set-up time)

    if ENGINE[0] == "fast":
        _model(10, 400, "hold").run()  # load the compiled kernels (or compile them once) before timing

    started = time.perf_counter()
    model = _model(traders, steps, strategy, instruments=instruments)
    built = time.perf_counter()
    recording = [0.0]

    def timed(function):
        def wrapper(*args, **kwargs):
            begin = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                recording[0] += time.perf_counter() - begin

        return wrapper

    model._record = timed(model._record)
    model.datacollector.collect = timed(model.datacollector.collect)
    requests_before = model.agent_requests  # the makers' opening quotes are set-up
    model.run()
    ran = time.perf_counter()
    result = model.results()
    finished = time.perf_counter()
    run_seconds = ran - built
    requests = model.agent_requests - requests_before
    return {
        "instruments": instruments,
        "traders": traders,
        "steps": steps,
        "strategy": strategy,
        "setup_s": built - started,
        "run_s": run_seconds,
        "results_s": finished - ran,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "requests": requests,
        "actions_per_s": requests / run_seconds,
        "recording_share": recording[0] / run_seconds,
        "liquidations": int(result.summary["liquidations"]),
    }


def passive_cost(traders: int) -> float:
    """Seconds per step of the first 299 (pre-shock) steps."""
    if ENGINE[0] == "fast":
        _model(10, 400, "hold").run()  # load the compiled kernels before timing
    model = _model(traders, 600, "hold")
    started = time.perf_counter()
    for _ in range(299):
        model.step()
    return (time.perf_counter() - started) / 299


def _child(*args: str) -> dict:
    output = subprocess.run(
        [sys.executable, __file__, "--engine", ENGINE[0], *args],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def _median_case(repeats: int, *args: str) -> dict:
    """The run (of ``repeats`` fresh processes) with the median run time, with the range of run times."""
    rows = sorted((_child("--one", *args) for _ in range(repeats)), key=lambda row: row["run_s"])
    row = dict(rows[len(rows) // 2])
    row["run_s_min"], row["run_s_max"] = rows[0]["run_s"], rows[-1]["run_s"]
    return row


def _slope(sizes: list[int], seconds: list[float]) -> float:
    return float(np.polyfit(np.log(sizes), np.log(seconds), 1)[0])


def main(argv: list[str] | None = None) -> None:
    """Print the tables."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--traders", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument(
        "--one", nargs=4, metavar=("TRADERS", "STEPS", "STRATEGY", "INSTRUMENTS"), help=argparse.SUPPRESS
    )
    parser.add_argument(
        "--instruments", type=int, default=10, help="instruments of the multi-instrument case (0: skip it)"
    )
    parser.add_argument("--only-instruments", action="store_true", help="run the multi-instrument case alone")
    parser.add_argument("--passive", type=int, metavar="TRADERS", help=argparse.SUPPRESS)
    parser.add_argument(
        "--engine", choices=["python", "fast"], default="python", help="order book engine (fast: numba)"
    )
    parser.add_argument(
        "--repeats", type=int, default=1, help="fresh processes per case; the median run is reported"
    )
    args = parser.parse_args(argv)
    ENGINE[0] = args.engine
    if args.steps < 1_300:
        parser.error("--steps must be at least 1300 (a quarter of it must still reach the shock at step 300)")
    if args.one:
        print(json.dumps(one_case(int(args.one[0]), int(args.one[1]), args.one[2], int(args.one[3]))))
        return
    if args.passive:
        print(json.dumps({"seconds_per_step": passive_cost(args.passive)}))
        return

    print(
        f"machine: {platform.machine()}, Python {platform.python_version()}, {sys.platform}; "
        f"book engine: {args.engine}"
    )
    smallest = min(args.traders)
    cases = []
    if not args.only_instruments:
        cases = [(smallest, args.steps // 4, "hold", 1), (smallest, args.steps // 2, "hold", 1)]
        cases += [(traders, args.steps, "hold", 1) for traders in args.traders]
        cases.append((smallest, args.steps, "random", 1))
    if args.instruments > 1:
        cases.append((min(max(args.traders), 10_000), args.steps, "hold", args.instruments))
    rows = [
        _median_case(args.repeats, str(traders), str(steps), strategy, str(instruments))
        for traders, steps, strategy, instruments in cases
    ]
    header = (
        f"{'instr':>5} {'traders':>8} {'steps':>6} {'strategy':>8} {'setup s':>8} {'run s':>7} "
        f"{'run s range':>12} "
        f"{'results s':>9} {'peak MB':>8} {'actions/s':>10} {'recording':>9} {'liquidated':>10}"
    )
    if args.repeats > 1:
        print(f"each row: the median of {args.repeats} fresh processes by run time (range: all of them)")
    print(header)
    for row in rows:
        spread = f"{row['run_s_min']:.2f}-{row['run_s_max']:.2f}"
        print(
            f"{row['instruments']:>5} {row['traders']:>8,} {row['steps']:>6,} {row['strategy']:>8} "
            f"{row['setup_s']:>8.2f} "
            f"{row['run_s']:>7.2f} {spread:>12} {row['results_s']:>9.2f} {row['peak_rss_mb']:>8.0f} "
            f"{row['actions_per_s']:>10,.0f} {row['recording_share']:>9.1%} {row['liquidations']:>10,}"
        )
    if args.only_instruments:
        return
    single = [row for row in rows if row["instruments"] == 1]
    by_steps = [row for row in single if row["traders"] == smallest and row["strategy"] == "hold"]
    by_traders = [row for row in single if row["steps"] == args.steps and row["strategy"] == "hold"]
    print(
        "growth exponent of run time: with steps "
        f"{_slope([r['steps'] for r in by_steps], [r['run_s'] for r in by_steps]):.2f}, with traders "
        f"{_slope([r['traders'] for r in by_traders], [r['run_s'] for r in by_traders]):.2f}"
    )
    largest = max(args.traders)
    if largest > smallest:
        small = _child("--passive", str(smallest))["seconds_per_step"]
        large = _child("--passive", str(largest))["seconds_per_step"]
        per_account = (large - small) / (largest - smallest)
        print(
            f"passive account: {1e3 * small:.3f} ms/step at {smallest:,} traders, {1e3 * large:.3f} ms/step "
            f"at {largest:,}: {1e9 * per_account:.1f} ns per account per step"
        )


if __name__ == "__main__":
    main()
