"""Runs per minute of a 100-run sweep of the spiral scenario with 1 and 2 local workers (and optionally Dask).

Usage::

    python benchmarks/bench_sweep.py                 # 100 runs (the spiral, 600 steps), 1 and 2 workers
    python benchmarks/bench_sweep.py --runs 20 --dask --workers 1 2 4
    python benchmarks/bench_sweep.py --engine fast   # the compiled book (extra "fast") in every run
    python benchmarks/bench_sweep.py --dask --runs-per-task 1 auto   # Dask one run a task and sized
    python benchmarks/bench_sweep.py --base calm --runs 400 --steps 30 --workers 2 --dask --runs-per-task 1 8

``local-N`` is the local backend (``abm sweep --workers N``: one worker runs in the calling process,
more use a spawn-context process pool); ``dask-N`` a Dask LocalCluster of N worker processes
(``--scheduler local``), its tasks sized from the runs' times unless ``--runs-per-task`` gives sizes
(``dask-N/k``: k runs a task; ``auto`` the default sizing). The sweep is the spiral scenario over 100
seeds (SeedSequence root 1, common to every setting); each setting writes a fresh sweep directory in a
temporary folder, and the time includes starting the worker processes (or the Dask LocalCluster) and
writing the journal and results.parquet. Every setting must give the same rows (checked here, except for
wall_seconds).
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


def _measure(
    runs: int,
    workers: int,
    scheduler: str | None,
    folder: Path,
    engine: str,
    per_task: str | None = None,
    steps: int | None = None,
    base: str = "spiral",
):
    fixed = {"market.book_engine": engine, **({"steps": steps} if steps else {})}
    plan = expand_sweep({"base": base, "set": fixed, "seeds": {"count": runs, "root": 1}})
    label = f"dask-{workers}" if scheduler else f"local-{workers}"
    if per_task is not None:
        label += f"/{per_task}"
    started = time.perf_counter()
    outcome = run_sweep(
        plan,
        folder / label,
        workers=workers,
        scheduler=scheduler,
        progress=False,
        runs_per_task=None if per_task in (None, "auto") else int(per_task),
    )
    seconds = time.perf_counter() - started
    assert outcome.ok == runs, f"{outcome.failed} runs failed"
    return label, seconds, outcome.results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--base", default="spiral", help="the scenario swept over seeds (default spiral)")
    parser.add_argument("--steps", type=int, help="steps of each run (default: the scenario's)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--dask", action="store_true", help="also time a Dask LocalCluster per worker count")
    parser.add_argument(
        "--runs-per-task",
        nargs="+",
        metavar="K|auto",
        help="with --dask: one Dask setting per value (runs a task; auto: sized from the runs' times)",
    )
    parser.add_argument(
        "--engine", choices=["python", "fast"], default="python", help="order book engine (fast: numba)"
    )
    options = parser.parse_args()

    print(
        f"{options.base} scenario, {options.runs} runs, steps {options.steps or 'as shipped'}, "
        f"engine {options.engine}; "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    )
    rows = []
    reference = None
    with tempfile.TemporaryDirectory() as temp:
        for workers in options.workers:
            settings = [(None, None)]
            if options.dask:
                settings += [("local", size) for size in options.runs_per_task or [None]]
            for scheduler, per_task in settings:
                label, seconds, results = _measure(
                    options.runs,
                    workers,
                    scheduler,
                    Path(temp),
                    options.engine,
                    per_task,
                    options.steps,
                    options.base,
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
