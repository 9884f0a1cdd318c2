"""Running a sweep: in-process, on a local process pool, or on a Dask distributed cluster.

:func:`run_sweep` runs every run of a plan that is not done yet and writes each result to the sweep
directory's journal as it finishes (layout in :mod:`abm.sweep.journal`). A run that raises is recorded with
``status: failed`` and its error; the others go on. ``resume=True`` runs only the runs whose journal entry is
missing or failed, after checking that the sweep still expands to the same runs. The run's seed comes with
the task (from its seed index), so the rows are the same whichever backend and worker ran them.

On Dask, short runs go several to a task (:func:`abm.sweep.tasks.execute_runs`), so that the cost of a
task does not dominate: by default each task is sized from the runs finished so far to last about a
second (:class:`abm.sweep.backends.TaskSizer`), while leaving every worker thread several tasks to
balance the end of the sweep (``runs_per_task`` fixes the size instead).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from abm.config import Scenario
from abm.sweep.backends import _backend_workers, _execute, _worker_count
from abm.sweep.journal import (
    MANIFEST_NAME,
    ROWS_DIR,
    RUNS_DIR,
    now,
    prepare_directory,
    read_rows,
    run_columns,
    write_json,
    write_results,
)
from abm.sweep.spec import SweepError, SweepPlan
from abm.sweep.tasks import RunTask

__all__ = ["SweepOutcome", "run_sweep"]

_FLUSH_SECONDS = 5.0


@dataclass
class SweepOutcome:
    """What one call of :func:`run_sweep` did.

    Attributes:
        out_dir: The sweep directory.
        total: Runs in the sweep.
        executed: Runs executed in this call.
        skipped: Runs already done (resume) and not executed again.
        ok: Runs with status ok in the results, after this call.
        failed: Runs with status failed in the results, after this call.
        interrupted: Whether the call was interrupted before every run finished.
        terminated: Whether that interruption was SIGTERM (rather than Ctrl-C / SIGINT).
        results: The results table.
        notices: What was repaired on the way (a rebuilt manifest, damaged journal rows run again).
    """

    out_dir: Path
    total: int
    executed: int
    skipped: int
    ok: int
    failed: int
    interrupted: bool = False
    terminated: bool = False
    results: pd.DataFrame = field(default_factory=pd.DataFrame)
    notices: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- the sweep


def run_sweep(
    plan: SweepPlan,
    out_dir: str | Path,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    keep_runs: bool = False,
    resume: bool = False,
    progress: bool = True,
    simulate: Callable[[Scenario, int], Any] | None = None,
    flush_seconds: float = _FLUSH_SECONDS,
    command_line: Iterable[str] | None = None,
    runs_per_task: int | None = None,
) -> SweepOutcome:
    """Run every run of a plan that is not done yet, writing results as runs finish.

    Args:
        plan: The validated sweep.
        out_dir: The sweep directory; it must not exist unless ``resume``.
        workers: Local worker processes (default: the machine's cores); 1 runs in this process. With
            ``scheduler="local"``, the number of Dask workers (default 2).
        scheduler: None for local processes; ``"local"`` for a Dask ``LocalCluster``; otherwise the address
            of a Dask scheduler (``tcp://host:8786``).
        keep_runs: Also write every run's directory under ``runs/``.
        resume: Continue an existing sweep directory: run what is missing or failed.
        progress: Show a progress bar on stderr.
        simulate: Replacement for :func:`abm.runs.run_scenario` (see :func:`abm.sweep.tasks.execute_run`).
        flush_seconds: How often ``results.parquet`` is rewritten while the sweep runs.
        command_line: Recorded in the manifest.
        runs_per_task: On Dask, runs sent to a worker in one task; None sizes each task from the
            runs finished so far (:class:`~abm.sweep.backends.TaskSizer`). Ignored by the local backends.

    Returns:
        The outcome; ``results`` holds the results table.

    Raises:
        SweepError: The directory exists without ``resume``, is not a sweep directory, or belongs to a
            different sweep; or dask is missing for a Dask scheduler; or ``runs_per_task`` is below 1.
    """
    if runs_per_task is not None and runs_per_task < 1:
        raise SweepError([f"runs per task must be at least 1 (got {runs_per_task})"])
    out = Path(out_dir)
    notices: list[str] = []
    manifest = prepare_directory(plan, out, resume, notices)
    rows_dir = out / ROWS_DIR
    damaged: list[str] = []
    fingerprint = plan.fingerprint()
    # A repaired manifest cannot vouch for old rows: only those that carry the fingerprint count.
    done = read_rows(rows_dir, fingerprint if "repaired" in manifest else None, damaged)
    if damaged:
        notices.append(f"damaged journal entries in {rows_dir}, run again: " + "; ".join(damaged))
    tasks = []
    for point in plan.points:
        for seed_index, seed in enumerate(plan.seeds.seeds):
            run_id = plan.run_id(point.index, seed_index)
            previous = done.get(run_id)
            if previous is not None and previous["status"] == "ok":
                continue
            scenario = point.scenario.model_copy(update={"seed": seed})
            # Absolute: a Dask worker elsewhere writes to the same (shared) path.
            run_dir = str((out / RUNS_DIR / run_id).resolve()) if keep_runs else None
            tasks.append(RunTask(run_id, scenario, seed, run_dir, plan.spec.counterfactual))
    meta = run_columns(manifest)
    backend = "inline" if scheduler is None and _worker_count(workers) == 1 else scheduler or "processes"
    session: dict[str, Any] = {
        "started": now(),
        "backend": backend,
        "workers": _backend_workers(workers, scheduler),
        "to_run": len(tasks),
        **({"runs_per_task": runs_per_task or "auto"} if scheduler is not None else {}),
        "command_line": list(command_line) if command_line is not None else list(sys.argv),
    }
    manifest.setdefault("sessions", []).append(session)
    write_json(out / MANIFEST_NAME, manifest)

    executed = failed_now = 0
    interrupted = terminated = False
    last_flush = time.monotonic()
    bar = _progress_bar(len(tasks), plan.name, progress)
    stream = _execute(tasks, workers, scheduler, simulate, runs_per_task)
    try:
        for entry in stream:
            entry["fingerprint"] = fingerprint  # so that a rebuilt manifest knows whose row it is
            write_json(rows_dir / f"{entry['run_id']}.json", entry)
            done[entry["run_id"]] = entry
            executed += 1
            failed_now += entry["status"] != "ok"
            bar.set_postfix_str(f"ok {executed - failed_now}, failed {failed_now}", refresh=False)
            bar.update(1)
            if time.monotonic() - last_flush >= flush_seconds:
                write_results(out, done, meta)
                last_flush = time.monotonic()
    except KeyboardInterrupt as exc:
        interrupted = True
        terminated = type(exc).__name__ == "Terminated"  # abm.cli's SIGTERM, raised like Ctrl-C
    finally:
        stream.close()  # stops the workers of a pool or cluster even when interrupted
        bar.close()
        frame = write_results(out, done, meta)
        ok = int((frame["status"] == "ok").sum()) if len(frame) else 0
        session.update(
            {
                "finished": now(),
                "executed": executed,
                "failed": failed_now,
                "interrupted": interrupted,
            }
        )
        manifest["status"] = "complete" if ok == plan.run_count else "incomplete"
        manifest["counts"] = {"runs": plan.run_count, "ok": ok, "failed": len(frame) - ok}
        write_json(out / MANIFEST_NAME, manifest)
    return SweepOutcome(
        out_dir=out,
        total=plan.run_count,
        executed=executed,
        skipped=plan.run_count - len(tasks),
        ok=ok,
        failed=len(frame) - ok,
        interrupted=interrupted,
        terminated=terminated,
        results=frame,
        notices=notices,
    )


def _progress_bar(total: int, name: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=name, unit="run", file=sys.stderr, disable=not enabled, smoothing=0.1)
