"""The ``abm sweep`` and ``abm compare`` commands (registered in :mod:`abm.cli`).

Exit statuses as in :mod:`abm.cli`: 0 every run ok, 1 some runs failed (rerun with ``--resume``) or an
internal error, 2 bad input (an invalid sweep file or point, an existing sweep directory without
``--resume``), 130 interrupted (finished runs are kept; ``--resume`` continues), 143 terminated
(SIGTERM; the same).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

__all__ = ["add_compare_command", "add_sweep_command"]

_EXIT_OK, _EXIT_FAILED, _EXIT_USAGE, _EXIT_INTERRUPTED, _EXIT_TERMINATED = 0, 1, 2, 130, 143


def add_sweep_command(commands: argparse._SubParsersAction) -> None:
    """Register ``abm sweep FILE``.

    Args:
        commands: The subparsers of the ``abm`` parser.
    """
    parser = commands.add_parser("sweep", help="run a sweep file: grid x seeds, on local processes or Dask")
    parser.add_argument("file", metavar="FILE", help="sweep file (see scenarios/*.sweep.yaml)")
    parser.add_argument(
        "--workers", type=int, metavar="N", help="worker processes (default: the machine's cores)"
    )
    parser.add_argument(
        "--scheduler",
        metavar="ADDRESS|local",
        help="run on a Dask cluster: a scheduler address (tcp://host:8786) or 'local' for a LocalCluster",
    )
    parser.add_argument(
        "--runs-per-task",
        type=int,
        metavar="N",
        help="with --scheduler: runs sent to a worker in one Dask task (default: sized from the runs' "
        "times, about 1 s a task)",
    )
    parser.add_argument("--out", metavar="DIR", help="sweep directory (default: outputs/sweep-<name>)")
    parser.add_argument(
        "--keep-runs", action="store_true", help="also write every run's directory under runs/"
    )
    parser.add_argument("--resume", action="store_true", help="continue DIR: run only missing or failed runs")
    parser.add_argument(
        "--report", action="store_true", help="write the per-group summary and figures at the end"
    )
    parser.add_argument(
        "--paths", action="store_true", help="with --report: re-run one seed per group for paths"
    )
    parser.add_argument(
        "--baseline",
        metavar="GROUP",
        help="with --report: compare every group with GROUP seed by seed (or KEY=LABEL: each group with "
        "the group that has LABEL for swept KEY and its own labels for the other keys)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a scenario value in every run (value read as YAML; repeatable)",
    )
    parser.add_argument("--dry-run", action="store_true", help="validate and print the plan; run nothing")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    from abm.cli import add_no_user_code  # the same switch as run and validate

    add_no_user_code(parser)
    parser.set_defaults(handler=_sweep_command)


def add_compare_command(commands: argparse._SubParsersAction) -> None:
    """Register ``abm compare DIR...``.

    Args:
        commands: The subparsers of the ``abm`` parser.
    """
    parser = commands.add_parser("compare", help="per-group summary table and figures of sweep directories")
    parser.add_argument("dirs", nargs="+", metavar="DIR", help="sweep directories")
    parser.add_argument("--out", metavar="DIR", help="where to write (default: the sweep directory)")
    parser.add_argument("--paths", action="store_true", help="re-run one seed per group to draw margin paths")
    parser.add_argument("--no-figures", action="store_true", help="tables only")
    parser.add_argument(
        "--baseline",
        metavar="GROUP",
        help="also compare every group with GROUP seed by seed (mean difference, paired 95%% t interval); "
        "KEY=LABEL compares each group with the one that has LABEL for swept KEY, other labels equal",
    )
    parser.set_defaults(handler=_compare_command)


def _errors(lines: list[str], source: str | None = None) -> int:
    prefix = f"error: {source}: " if source else "error: "
    for line in lines:
        print(f"{prefix}{line}", file=sys.stderr)
    return _EXIT_USAGE


def _sweep_command(options: argparse.Namespace) -> int:
    from abm.outputs import safe_component
    from abm.sweep.runner import run_sweep
    from abm.sweep.spec import SweepError, load_sweep

    if options.out is not None and not options.out.strip():
        return _errors(["--out: an empty path; give a directory (or leave --out out for the default)"])
    if options.workers is not None and options.workers < 1:
        return _errors(["--workers must be at least 1"])
    if options.runs_per_task is not None:
        if options.runs_per_task < 1:
            return _errors(["--runs-per-task must be at least 1"])
        if options.scheduler is None:
            return _errors(["--runs-per-task applies to a Dask cluster: give --scheduler too"])
    try:
        plan = load_sweep(options.file, options.overrides)
    except SweepError as exc:
        return _errors(exc.errors, exc.source)
    if options.no_user_code:
        from abm.cli import user_code_problems

        refused = [
            f"point {point.index} ({point.group}): {line}"
            for point in plan.points
            for line in user_code_problems(point.scenario)
        ]
        if refused:
            return _errors(refused, plan.source)
    # The sweep file names the sweep, not where it goes: the default directory is one safe component.
    out = (
        Path(options.out) if options.out else Path("outputs") / f"sweep-{safe_component(plan.name, 'sweep')}"
    )
    print(
        f"sweep {plan.name}: {len(plan.points)} point{'s' if len(plan.points) != 1 else ''} x "
        f"{len(plan.seeds.seeds)} seed{'s' if len(plan.seeds.seeds) != 1 else ''} = {plan.run_count} runs "
        f"-> {out}"
    )
    if options.dry_run:
        for point in plan.points:
            print(f"  point {point.index}: {point.group}")
        return _EXIT_OK
    from abm.run_paths import OutputExistsError, check_can_write_in

    try:
        check_can_write_in(out)  # before any run: a sweep's directory is made once its plan is checked
    except (OutputExistsError, OSError) as exc:
        print(f"error: --out: {exc}", file=sys.stderr)
        return _EXIT_USAGE
    try:
        outcome = run_sweep(
            plan,
            out,
            workers=options.workers,
            scheduler=options.scheduler,
            runs_per_task=options.runs_per_task,
            keep_runs=options.keep_runs,
            resume=options.resume,
            progress=not options.no_progress,
            command_line=["abm", *options.argv],
        )
    except SweepError as exc:
        return _errors(exc.errors)
    except OSError as exc:
        print(f"error: cannot write the sweep directory: {exc}", file=sys.stderr)
        return _EXIT_FAILED
    for notice in outcome.notices:
        print(f"notice: {notice}", file=sys.stderr)
    print(
        f"{outcome.executed} runs executed, {outcome.skipped} already done; "
        f"{outcome.ok} ok, {outcome.failed} failed of {outcome.total}"
    )
    print(f"results: {out / 'results.parquet'}")
    if outcome.interrupted:
        what = "terminated (SIGTERM)" if outcome.terminated else "interrupted"
        print(f"{what}: finished runs are kept; continue with --resume", file=sys.stderr)
        return _EXIT_TERMINATED if outcome.terminated else _EXIT_INTERRUPTED
    if outcome.failed:
        _show_failures(outcome.results)
    if options.report and outcome.ok:
        status = _report([out], None, paths=options.paths, figures=True, baseline=options.baseline)
        if status != _EXIT_OK:
            return status
    return _EXIT_FAILED if outcome.failed else _EXIT_OK


def _show_failures(results) -> None:
    failed = results[results["status"] != "ok"]
    for row in failed.head(5).itertuples():
        print(f"failed: {row.run_id}: {str(row.error).splitlines()[0]}", file=sys.stderr)
    if len(failed) > 5:
        print(f"failed: ... and {len(failed) - 5} more (see the error column)", file=sys.stderr)
    print(
        "hint: rerun with --resume to run the failed runs again; ABM_DEBUG=1 keeps tracebacks",
        file=sys.stderr,
    )


def _compare_command(options: argparse.Namespace) -> int:
    figures = not options.no_figures
    return _report(options.dirs, options.out, paths=options.paths, figures=figures, baseline=options.baseline)


def _report(
    dirs: list[str | Path], out: str | None, *, paths: bool, figures: bool, baseline: str | None = None
) -> int:
    from abm.sweep.report import write_report
    from abm.sweep.statistics import format_difference_table, format_group_table, headline_measures

    try:
        report = write_report(dirs, out, paths=paths, figures=figures, baseline=baseline)
    except (FileNotFoundError, ValueError) as exc:
        return _errors([str(exc)])
    if report.missing:
        # An interrupted sweep: the intervals rest on fewer seeds than planned, so say which groups.
        lacking = ", ".join(f"{group} ({count} missing)" for group, count in report.missing.items())
        print(
            f"warning: the sweep is incomplete: {lacking}; finish it with abm sweep FILE --resume",
            file=sys.stderr,
        )
    shown = headline_measures(report.measures)
    print("mean [95% t interval] over seeds, per group:")
    print(format_group_table(report.summary, shown))
    if report.differences is not None:
        print(f"\nminus {baseline}, seed by seed: mean difference [paired 95% t interval]:")
        print(format_difference_table(report.differences, shown))
    for path in report.files:
        print(f"wrote {os.fspath(path)}")
    return _EXIT_OK
