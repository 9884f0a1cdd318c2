"""Independent runs of a test spread over two processes (the CI machine has two cores).

The processes are spawned, not forked: forking a process that may hold threads (the dashboard and
report tests start some) is deprecated. A spawned process imports the test helpers by name, so the
function it runs must live at module level. One pool serves the whole session, so its processes
start (and import the project) once. Under ``pytest -n`` (pytest-xdist) the runs stay in the test's
own process: the other workers keep the other cores busy.
"""

from __future__ import annotations

import atexit
import functools
import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor

from abm.runs import run_scenario

__all__ = ["on_two_processes", "summaries"]


def on_two_processes(function: Callable, arguments: Sequence[tuple]) -> list:
    """``[function(*args) for args in arguments]``, in order: on two processes, or here under xdist."""
    if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
        return [function(*args) for args in arguments]
    futures = [_pool().submit(function, *args) for args in arguments]
    return [future.result() for future in futures]


@functools.cache
def _pool() -> ProcessPoolExecutor:
    pool = ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"))
    atexit.register(pool.shutdown, cancel_futures=True)
    return pool


def _summary(scenario, seed):
    return run_scenario(scenario, seed=seed).summary


def summaries(runs: Sequence[tuple]) -> list[dict]:
    """The run summaries of ``(scenario, seed)`` pairs, on two processes, in order."""
    return on_two_processes(_summary, runs)
