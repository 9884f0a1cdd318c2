"""One run of a sweep, as a worker runs it: the task, its result entry, a failure recorded.

:class:`RunTask` is what a worker gets (the validated scenario with its seed); :func:`execute_run`
runs it and returns its journal entry, a failing run becoming a ``failed`` entry rather than an
exception; :func:`execute_runs` runs several in one call (one Dask task). The summary is flattened
to dotted names with NaN and infinities as None, as the results table stores it.
"""

from __future__ import annotations

import json
import math
import os
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from abm.config import Scenario

__all__ = ["RunTask", "execute_run", "execute_runs"]


@dataclass(frozen=True)
class RunTask:
    """One run of a sweep, as sent to a worker.

    Attributes:
        run_id: The run's identifier.
        scenario: The validated scenario, its ``seed`` already set to the run's seed.
        seed: The run's seed.
        run_dir: Where to write the full run directory, or None.
        counterfactual: Whether to run it a second time without liquidations as well.
    """

    run_id: str
    scenario: Scenario
    seed: int
    run_dir: str | None = None
    counterfactual: bool = False


def execute_run(task: RunTask, simulate: Callable[[Scenario, int], Any] | None = None) -> dict[str, Any]:
    """Run one task and return its result entry; an exception becomes a failed entry, never a raise.

    Args:
        task: The run.
        simulate: ``simulate(scenario, seed)`` returning a :class:`~abm.results.RunResult` (or any object
            with a ``summary`` mapping); default :func:`abm.runs.run_scenario`. Must be picklable.

    Returns:
        ``{"run_id", "status", "error", "wall_seconds", "summary"}``.
    """
    started = time.perf_counter()
    try:
        if simulate is None:
            from abm.runs import run_scenario as simulate
        if task.counterfactual:
            result = simulate(task.scenario, task.seed, counterfactual=True)
        else:
            result = simulate(task.scenario, task.seed)
        summary = dict(result.summary)
        if task.run_dir is not None:
            from abm.outputs import write_run

            write_run(
                result,
                task.run_dir,
                force=True,
                figures=False,
                command_line=["abm", "sweep", f"run {task.run_id}"],
                extra_manifest={"sweep_run_id": task.run_id},
            )
        status, error = "ok", None
    except (Exception, SystemExit) as exc:  # a failing run is recorded and the sweep goes on
        # SystemExit too: user code (a margin rule) that calls exit() fails its run, not the sweep.
        summary, status = {}, "failed"
        error = f"{type(exc).__name__}: {exc}"
        if os.environ.get("ABM_DEBUG") == "1":
            error += "\n" + traceback.format_exc()
    return {
        "run_id": task.run_id,
        "status": status,
        "error": error,
        "wall_seconds": time.perf_counter() - started,
        "summary": _plain_summary(summary),
    }


def execute_runs(
    tasks: Sequence[RunTask], simulate: Callable[[Scenario, int], Any] | None = None
) -> list[dict[str, Any]]:
    """Run several tasks one after another in one worker call (one Dask task); one entry each, in order."""
    return [execute_run(task, simulate) for task in tasks]


def _plain_summary(summary: Mapping[str, Any]) -> dict[str, Any]:
    """Flatten nested summary entries to dotted names; lists become JSON text; NaN/inf become None."""
    plain: dict[str, Any] = {}
    for key, value in summary.items():
        if isinstance(value, Mapping):
            plain.update({f"{key}.{k}": v for k, v in _plain_summary(value).items()})
        elif isinstance(value, list | tuple | np.ndarray):
            plain[str(key)] = json.dumps(np.asarray(value).tolist())
        elif isinstance(value, np.generic):
            plain[str(key)] = _finite(value.item())
        else:
            plain[str(key)] = _finite(value)
    return plain


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
