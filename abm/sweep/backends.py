"""Where a sweep's runs execute: in this process, on a local process pool, or on a Dask cluster.

:func:`_execute` yields one result entry per task as runs finish, from the backend
:func:`abm.sweep.runner.run_sweep` asks for. The process pool retries the runs in flight when a
worker dies, one at a time, so that only the run that kills its worker fails; its workers exit when
the sweep's process is gone. On Dask, short runs go several to a task (:class:`TaskSizer`).
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from abm.sweep.spec import SweepError
from abm.sweep.tasks import RunTask, execute_run, execute_runs

__all__ = ["TaskSizer"]

# A Dask task of several runs aims at about this long. A task costs its worker about 15 ms beyond its
# runs on the 2-core machine (docs/performance.md): under 2% of a one-second task. Runs over half a
# second go one a task, as before.
_TASK_SECONDS = 1.0


def _worker_count(workers: int | None) -> int:
    return max(1, workers if workers is not None else (os.cpu_count() or 1))


def _backend_workers(workers: int | None, scheduler: str | None) -> int | None:
    """Workers of the backend as recorded in the manifest (None: those of an existing Dask cluster)."""
    if scheduler == "local":
        return workers or 2
    if scheduler is not None:
        return None
    return _worker_count(workers)


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
