"""Runs per minute of a 100-run sweep of the spiral scenario with 1 and 2 local workers (and optionally Dask).

Usage::

    python benchmarks/bench_sweep.py                 # 100 runs (the spiral, 600 steps), 1 and 2 workers
    python benchmarks/bench_sweep.py --runs 20 --dask --workers 1 2 4
    python benchmarks/bench_sweep.py --engine fast   # the compiled book (extra "fast") in every run

``local-N`` is the local backend (``abm sweep --workers N``: one worker runs in the calling process,
more use a spawn-context process pool); ``dask-N`` a Dask LocalCluster of N worker processes
(``--scheduler local``). The sweep is the spiral scenario over 100 seeds (SeedSequence root 1, common to
every setting); each setting writes a fresh sweep directory in a temporary folder, and the time includes
starting the worker processes (or the Dask LocalCluster) and writing the journal and results.parquet.
Every setting must give the same rows (checked here, except for wall_seconds).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from abm.sweep.runner import run_sweep
from abm.sweep.spec import expand_sweep

_NOISY = ["wall_seconds"]


def _measure(runs: int, workers: int, scheduler: str | None, folder: Path, engine: str):
    plan = expand_sweep(
        {"base": "spiral", "set": {"market.book_engine": engine}, "seeds": {"count": runs, "root": 1}}
    )
    label = f"dask-{workers}" if scheduler else f"local-{workers}"
    started = time.perf_counter()
    outcome = run_sweep(plan, folder / label, workers=workers, scheduler=scheduler, progress=False)
    seconds = time.perf_counter() - started
    assert outcome.ok == runs, f"{outcome.failed} runs failed"
    return label, seconds, outcome.results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--dask", action="store_true", help="also time a Dask LocalCluster per worker count")
    parser.add_argument(
        "--engine", choices=["python", "fast"], default="python", help="order book engine (fast: numba)"
    )
    options = parser.parse_args()

    print(
        f"spiral scenario, {options.runs} runs, book engine {options.engine}; "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    )
    rows = []
    reference = None
    with tempfile.TemporaryDirectory() as temp:
        for workers in options.workers:
            for scheduler in [None, "local"] if options.dask else [None]:
                label, seconds, results = _measure(
                    options.runs, workers, scheduler, Path(temp), options.engine
                )
                comparable = results.drop(columns=[c for c in _NOISY if c in results.columns])
                if reference is None:
                    reference = comparable
                differing = [c for c in reference.columns if not comparable[c].equals(reference[c])]
                same = not differing
                if differing:
                    print(f"{label}: rows differ from the first setting in {', '.join(differing)}")
                mean_run = float(np.mean(results["wall_seconds"]))
                rows.append((label, seconds, 60.0 * options.runs / seconds, mean_run, same))
    print(f"{'setting':<14} {'seconds':>8} {'runs/min':>9} {'s/run (in worker)':>18} {'same rows':>10}")
    for label, seconds, per_minute, mean_run, same in rows:
        print(f"{label:<14} {seconds:>8.1f} {per_minute:>9.1f} {mean_run:>18.3f} {str(same).lower():>10}")


if __name__ == "__main__":
    main()
