"""Running a sweep: in-process, on a local process pool, or on a Dask distributed cluster.

:func:`run_sweep` runs every run of a plan that is not done yet and writes each result to the sweep
directory's journal as it finishes (layout in :mod:`abm.sweep.journal`). A run that raises is recorded with
``status: failed`` and its error; the others go on. ``resume=True`` runs only the runs whose journal entry is
missing or failed, after checking that the sweep still expands to the same runs. The run's seed comes with
the task (from its seed index), so the rows are the same whichever backend and worker ran them.

On Dask, short runs go several to a task (:func:`execute_runs`), so that the cost of a task does not
dominate: by default each task is sized from the runs finished so far to last about a second
(``_TASK_SECONDS``), while leaving every worker thread several tasks to balance the end of the sweep
(``runs_per_task`` fixes the size instead).
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import json
import math
import multiprocessing
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from abm.config import Scenario
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

__all__ = ["RunTask", "SweepOutcome", "TaskSizer", "execute_run", "execute_runs", "run_sweep"]

_FLUSH_SECONDS = 5.0
# A Dask task of several runs aims at about this long. A task costs its worker about 15 ms beyond its
# runs on the 2-core machine (docs/performance.md): under 2% of a one-second task. Runs over half a
# second go one a task, as before.
_TASK_SECONDS = 1.0


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


# --------------------------------------------------------------------------- one run (in a worker)


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
        simulate: Replacement for :func:`abm.runs.run_scenario` (see :func:`execute_run`).
        flush_seconds: How often ``results.parquet`` is rewritten while the sweep runs.
        command_line: Recorded in the manifest.
        runs_per_task: On Dask, runs sent to a worker in one task; None sizes each task from the
            runs finished so far (:class:`TaskSizer`). Ignored by the local backends.

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


def _worker_count(workers: int | None) -> int:
    return max(1, workers if workers is not None else (os.cpu_count() or 1))


def _backend_workers(workers: int | None, scheduler: str | None) -> int | None:
    """Workers of the backend as recorded in the manifest (None: those of an existing Dask cluster)."""
    if scheduler == "local":
        return workers or 2
    if scheduler is not None:
        return None
    return _worker_count(workers)


def _progress_bar(total: int, name: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=name, unit="run", file=sys.stderr, disable=not enabled, smoothing=0.1)


# --------------------------------------------------------------------------- backends


def _execute(
    tasks: list[RunTask],
    workers: int | None,
    scheduler: str | None,
    simulate: Callable[..., Any] | None,
    runs_per_task: int | None = None,
) -> Iterator[dict[str, Any]]:
    if not tasks:
        return
    if scheduler is not None:
        yield from _execute_dask(tasks, workers, scheduler, simulate, runs_per_task)
    elif _worker_count(workers) == 1:
        for task in tasks:
            yield execute_run(task, simulate)
    else:
        yield from _execute_processes(tasks, _worker_count(workers), simulate)


def _failed_entry(task: RunTask, exc: BaseException) -> dict[str, Any]:
    return {
        "run_id": task.run_id,
        "status": "failed",
        "error": f"{type(exc).__name__}: {exc}",
        "wall_seconds": 0.0,
        "summary": {},
    }


_PARENT_POLL_SECONDS = 0.5


def _exit_with_parent(parent: int) -> None:
    """Pool-worker initializer: exit as soon as the sweep's process is gone.

    A worker whose parent was killed (SIGKILL leaves no chance to stop the pool) is re-parented; it
    then exits at once instead of running on with the caller's pipes open. Linux also gets the
    kernel's parent-death signal; the polling thread covers every platform.
    """
    import threading

    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(_PARENT_POLL_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="abm-parent-watch", daemon=True).start()


def _execute_processes(
    tasks: list[RunTask], workers: int, simulate: Callable[..., Any] | None
) -> Iterator[dict[str, Any]]:
    """A spawn-context process pool with a bounded number of runs in flight.

    When a worker dies (a crash, the OOM killer, a kill), every run in flight comes back broken, but
    only one of them was running in the dead worker. They are retried one at a time in a fresh pool:
    a run that breaks its worker alone is failed, the others finish normally.
    """
    context = multiprocessing.get_context("spawn")
    queue = list(reversed(tasks))
    suspects: list[RunTask] = []  # in flight when a worker died: retried one at a time
    window = 4 * workers
    while queue or suspects:
        pool = cf.ProcessPoolExecutor(
            max_workers=workers, mp_context=context, initializer=_exit_with_parent, initargs=(os.getpid(),)
        )
        pending: dict[cf.Future, RunTask] = {}
        alone = False  # the one run in flight is a suspect, so a break is its own
        try:
            broken = False
            while (queue or suspects or pending) and not broken:
                if suspects:
                    if not pending:
                        task = suspects.pop()
                        pending[pool.submit(execute_run, task, simulate)] = task
                        alone = True
                else:
                    alone = False
                    while queue and len(pending) < window:
                        task = queue.pop()
                        pending[pool.submit(execute_run, task, simulate)] = task
                finished, _ = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
                for future in finished:
                    task = pending.pop(future)
                    try:
                        yield future.result()
                    except cf.process.BrokenProcessPool:
                        broken = True
                        if alone:
                            yield _failed_entry(task, RuntimeError("its worker process died running it"))
                        else:
                            suspects.append(task)
            suspects.extend(pending.values())  # a break also returns the runs still queued in the pool
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


# The local cluster's workers run simulations, one at a time each. Two of Dask's defaults cost them
# time (measured in docs/performance.md): the worker's statistical profiler, which samples the task's
# thread every 10 ms, and MALLOC_TRIM_THRESHOLD_, which the nanny sets and which also turns off glibc's
# sliding mmap threshold, so that every large numpy temporary is mapped and unmapped afresh. The
# configuration stays set for the cluster's whole life: a nanny reads it again each time it (re)starts
# a worker, so a worker restarted after a crash keeps it. A cluster of your own keeps its own.
# Its periodic work is made rarer too: with one worker per core, the event loops' health tick (every
# 20 ms by default), the memory monitor (100 ms) and the system monitor (500 ms) of the workers and of
# the scheduler and nannies in the calling process take the workers' cores; a worker still checks its
# memory every second.
_LOCAL_CLUSTER_CONFIG = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.worker.memory.monitor-interval": "1s",
    "distributed.admin.system-monitor.interval": "5s",
    "distributed.nanny.pre-spawn-environ": {
        "OMP_NUM_THREADS": 1,
        "MKL_NUM_THREADS": 1,
        "OPENBLAS_NUM_THREADS": 1,
    },
}


@contextlib.contextmanager
def _local_cluster(workers: int) -> Iterator[Any]:
    """A local cluster of ``workers`` single-threaded worker processes, closed on exit."""
    import logging

    import dask
    from distributed import LocalCluster

    # Passing config= to LocalCluster does not do: the nanny merges it shallowly and loses keys.
    with dask.config.set(_LOCAL_CLUSTER_CONFIG):
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            silence_logs=logging.ERROR,
        )
        try:
            yield cluster
        finally:
            cluster.close()


class TaskSizer:
    """How many runs the next Dask task gets.

    With a fixed size, that size. Otherwise one run a task until runs have finished, then as many runs
    as take about ``task_seconds`` at the mean run time so far; never so many that the runs left make
    fewer than ``tasks_per_thread`` tasks for each worker thread (so that the end of the sweep stays
    balanced), nor more than ``most``.

    Args:
        fixed: Runs per task, or None to size from the runs' times.
        threads: Worker threads of the cluster.
        task_seconds: The time a task aims at.
        tasks_per_thread: Tasks left for each thread, at least, while runs remain.
        most: The largest task.

    Example:
        >>> sizer = TaskSizer(None, threads=2)
        >>> sizer.size(100)  # nothing measured yet
        1
        >>> sizer.observe([0.125, 0.125])  # mean 0.125 s: 1.0 / 0.125 = 8 runs make a 1 s task
        >>> sizer.size(100)  # 100 runs left, 2 threads x 4 tasks: up to 12 a task
        8
        >>> sizer.size(40)  # 40 left: 40 // 8 = 5 a task
        5
        >>> sizer.size(3), TaskSizer(4, threads=2).size(3)  # never more than the runs left
        (1, 3)
    """

    def __init__(
        self,
        fixed: int | None,
        threads: int,
        *,
        task_seconds: float = _TASK_SECONDS,
        tasks_per_thread: int = 4,
        most: int = 100,
    ) -> None:
        self.fixed = fixed
        self.threads = max(1, threads)
        self.task_seconds = task_seconds
        self.tasks_per_thread = tasks_per_thread
        self.most = most
        self._seconds = 0.0
        self._runs = 0

    def observe(self, wall_seconds: Iterable[float]) -> None:
        """Take the times of finished runs into the mean."""
        for seconds in wall_seconds:
            self._seconds += float(seconds)
            self._runs += 1

    def size(self, remaining: int) -> int:
        """Runs for the next task, with ``remaining`` runs not yet sent (at least 1 when any remain)."""
        if remaining < 1:
            return 0
        if self.fixed is not None:
            return min(self.fixed, remaining)
        if not self._runs:
            return 1
        mean = max(self._seconds / self._runs, 1e-6)
        by_time = int(self.task_seconds / mean)
        by_balance = remaining // (self.tasks_per_thread * self.threads)
        return max(1, min(by_time, by_balance, self.most, remaining))


def _execute_dask(
    tasks: list[RunTask],
    workers: int | None,
    scheduler: str,
    simulate: Callable[..., Any] | None,
    runs_per_task: int | None = None,
) -> Iterator[dict[str, Any]]:
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise SweepError(["--scheduler needs dask distributed: pip install 'abm-stress[cluster]'"]) from None
    with contextlib.ExitStack() as stack:
        if scheduler == "local":
            cluster = stack.enter_context(_local_cluster(_backend_workers(workers, scheduler)))
            client = Client(cluster)
        else:
            try:
                client = Client(scheduler, timeout="20s")
            except (OSError, TimeoutError) as exc:
                raise SweepError([f"--scheduler {scheduler}: cannot connect ({exc})"]) from None
        with client:
            threads = sum(client.nthreads().values())
            sizer = TaskSizer(runs_per_task, threads)
            queue = list(reversed(tasks))
            window = max(8, 4 * threads)  # tasks in flight
            pending: dict[Any, list[RunTask]] = {}
            stream = as_completed()

            def submit(batch: list[RunTask]) -> None:
                first = batch[0].run_id
                key = f"abm-run-{first}" if len(batch) == 1 else f"abm-runs-{first}+{len(batch) - 1}"
                future = client.submit(execute_runs, batch, simulate, pure=False, key=key)
                pending[future] = batch
                stream.add(future)

            def refill() -> None:
                while queue and len(pending) < window:
                    submit([queue.pop() for _ in range(sizer.size(len(queue)))])

            refill()
            for future in stream:
                batch = pending.pop(future)
                try:
                    entries = future.result()
                except Exception as exc:  # a worker lost (KilledWorker)
                    if len(batch) > 1:
                        # Which of its runs lost the worker is not known: each goes again alone, so
                        # that only that run fails.
                        for task in batch:
                            submit([task])
                        continue
                    entries = [_failed_entry(batch[0], exc)]
                sizer.observe(entry["wall_seconds"] for entry in entries)
                yield from entries
                refill()
