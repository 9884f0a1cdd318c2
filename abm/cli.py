"""The ``abm`` command line: ``abm validate``, ``abm run`` and ``abm list``.

Every command validates its whole input before doing any work: a bad scenario, a bad
``--set`` override or an existing output directory is reported as ``error: ...`` lines on
stderr with exit status 2, never as a traceback. Later commands (``sweep``, ``compare``,
``report``) register themselves in ``_COMMANDS``.

Exit statuses: 0 success, 1 internal error (a bug in the model, a breached invariant under
``--check``, or an unwritable output), 2 bad input, 130 interrupted (Ctrl-C / SIGINT), 143 terminated
(SIGTERM). An interrupted or failed run writes nothing: the run directory appears only by an atomic
rename once complete.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from abm import __version__
from abm.dash_command import add_dash_command
from abm.headline import COMMAND_LINE_MEASURES, measure_of
from abm.sweep.commands import add_compare_command, add_sweep_command

# Only the standard library at start: `abm --help` and `abm --version` must not pay for pydantic, numpy,
# pandas, Mesa or matplotlib (0.6 s); each command imports what it needs when it runs.
if TYPE_CHECKING:
    from abm.config import Scenario, ScenarioError
    from abm.results import RunResult

__all__ = [
    "EXIT_INTERNAL",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_TERMINATED",
    "EXIT_USAGE",
    "HEADLINE_METRICS",
    "Terminated",
    "main",
]

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143  # 128 + SIGTERM, as a shell reports a process killed by it

# Summary entries printed after a run, in this order, when the run reports them (abm.headline).
HEADLINE_METRICS = COMMAND_LINE_MEASURES


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``abm`` command line.

    Args:
        argv: The arguments after the program name; ``sys.argv[1:]`` when None.

    Returns:
        The exit status (0 ok, 1 internal error, 2 bad input, 130 interrupted).
    """
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = _build_parser()
    try:
        options = parser.parse_args(arguments)
    except SystemExit as exc:
        # argparse exits by itself on --help (0) and on usage errors (2): report it as a status.
        return exc.code if isinstance(exc.code, int) else (EXIT_OK if exc.code is None else EXIT_USAGE)
    options.argv = arguments
    try:
        with _sigterm_as_interrupt():
            return options.handler(options)
    except KeyboardInterrupt as exc:
        return _interrupted(exc)


def entry() -> None:
    """The ``abm`` program: :func:`main`, then a quick exit with its status (see :func:`exit_now`)."""
    exit_now(main())


def exit_now(status: int) -> None:
    """End the process with ``status`` without tearing the interpreter down.

    Python's own exit frees every module and object one by one: 0.45 s after an ``abm run`` (Mesa,
    pandas and matplotlib loaded), 1 s after one of 100,000 traders, with every file already closed.
    Here the exit handlers still run (``atexit``: temporary directories, multiprocessing) and the
    standard streams are flushed, then the process ends. While a thread other than the main one is
    still working (not a daemon), or a stream cannot be flushed, it exits the usual way instead.
    """
    import atexit
    import threading

    working = [
        thread
        for thread in threading.enumerate()
        if thread is not threading.main_thread() and thread.is_alive() and not thread.daemon
    ]
    if working:
        sys.exit(status)
    try:
        atexit._run_exitfuncs()  # what the usual exit runs first (they unregister as they run)
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):  # a closed or broken stream: let the usual exit report it
        sys.exit(status)
    os._exit(status)


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: raised like Ctrl-C so that the same clean-up (no partial output) runs."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated(signal.Signals(signum).name)


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """Turn SIGTERM into :class:`Terminated` while a command runs (main thread only)."""
    try:
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:  # not the main thread: signals cannot be handled here
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupted(exc: KeyboardInterrupt) -> int:
    """Report an interruption (Ctrl-C or SIGTERM) and return its exit status."""
    if isinstance(exc, Terminated):
        print("terminated (SIGTERM): run stopped, nothing written", file=sys.stderr)
        return EXIT_TERMINATED
    print("interrupted: nothing written", file=sys.stderr)
    return EXIT_INTERRUPTED


# --------------------------------------------------------------------------- parser


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="abm",
        description="Agent-based market stress simulator: liquidation spirals under margin rules.",
    )
    parser.add_argument("--version", action="version", version=f"abm {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_command in _COMMANDS:
        add_command(commands)
    return parser


def _add_overrides(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a scenario value, e.g. --set agents.1.count=1000 (value read as YAML; repeatable)",
    )


def _add_validate(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("validate", help="check a scenario file and print what it describes")
    parser.add_argument("file", metavar="FILE", help="scenario file or scenario name")
    _add_overrides(parser)
    add_no_user_code(parser)
    parser.set_defaults(handler=_validate_command)


def _add_run(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("run", help="run one scenario and write a run directory")
    parser.add_argument("file", metavar="FILE", help="scenario file or scenario name (see `abm list`)")
    parser.add_argument("--seed", type=int, help="seed of the run (overrides the scenario's seed)")
    parser.add_argument("--steps", type=int, help="number of steps (overrides the scenario's steps)")
    parser.add_argument(
        "--out", metavar="DIR", help="run directory (default: outputs/<scenario>-<seed>-<hash>)"
    )
    _add_overrides(parser)
    parser.add_argument("--force", action="store_true", help="replace an existing run directory")
    add_no_user_code(parser)
    parser.add_argument(
        "--counterfactual",
        action="store_true",
        help="also run with liquidations disabled and report the amplification of the drawdown",
    )
    parser.add_argument("--check", action="store_true", help="check the model's invariants after every step")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--no-report", action="store_true", help="do not write report.html into the run directory"
    )
    parser.add_argument(
        "--no-figures",
        action="store_true",
        help="draw no figures (figures/ and the report's): the tables and graphs only, about 1.3 s sooner",
    )
    parser.add_argument(
        "--graphml",
        action="store_true",
        help="also write the cascade and trade network as GraphML (rebuilt from the tables otherwise)",
    )
    parser.set_defaults(handler=_run_command)


def _add_report(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "report", help="write report.html (figures, summary, scenario) for a run directory"
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by `abm run`")
    parser.set_defaults(handler=_report_command)


def _add_facts(commands: argparse._SubParsersAction) -> None:
    """Register ``abm facts RUN_DIR`` (carried out by :mod:`abm.validation`, imported when it runs)."""
    parser = commands.add_parser(
        "facts", help="stylized facts of a run's returns beside their published ranges (Cont 2001)"
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by `abm run`")
    parser.add_argument("--interval", type=int, default=1, help="steps per return (default 1)")
    # The defaults live in abm.stylized (numpy, pandas): None here means theirs, stated in the help
    # (tests/test_cli.py checks the two agree).
    parser.add_argument("--max-lag", type=int, default=None, help="largest ACF lag (default 50)")
    parser.add_argument(
        "--hill-fraction",
        type=float,
        default=None,
        help="share of the returns in the Hill tail (default 0.05)",
    )
    parser.add_argument("--price", default="mark", help="price column of the time series (default mark)")
    parser.set_defaults(handler=_facts_command)


def _facts_command(options: argparse.Namespace) -> int:
    from abm.validation import facts_command

    return facts_command(options)


def _add_list(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("list", help="list the scenarios shipped in scenarios/")
    parser.set_defaults(handler=_list_command)


# --------------------------------------------------------------------------- helpers


def add_no_user_code(parser: argparse.ArgumentParser) -> None:
    """The ``--no-user-code`` switch: refuse scenarios that name a margin rule by import path."""
    parser.add_argument(
        "--no-user-code",
        action="store_true",
        help="refuse a margin rule named by import path (code that runs on import): for shared files",
    )


def user_code_problems(scenario) -> list[str]:
    """One error line per user rule of a scenario (for ``--no-user-code``)."""
    return [
        f"{path}: {rule!r} is user code (imported and run by the model); refused by --no-user-code"
        for path, rule in scenario.user_code()
    ]


def load_checked_scenario(
    file: str, overrides: Sequence[str], no_user_code: bool
) -> tuple[Path, Scenario] | int:
    """Resolve, validate and check a scenario as every command does before any work.

    A margin rule named by import path is imported and built here (what the run will do), or refused
    with ``no_user_code``. Returns ``(path, scenario)``, or the exit status after reporting bad input.
    """
    from abm.config import ScenarioError, check_user_rules, load_scenario, resolve_scenario

    try:
        path = resolve_scenario(file)
        scenario = load_scenario(path, overrides)
        if no_user_code and scenario.user_code():
            raise ScenarioError(user_code_problems(scenario), path)
        check_user_rules(scenario, path)
    except ScenarioError as exc:
        return _report_scenario_error(exc)
    return path, scenario


def _report_scenario_error(exc: ScenarioError) -> int:
    prefix = f"error: {exc.source}: " if exc.source else "error: "
    for line in exc.errors:
        print(f"{prefix}{line}", file=sys.stderr)
    return EXIT_USAGE


def _report_internal_error(exc: BaseException, checked: bool) -> int:
    print(f"internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
    if not checked:
        print("hint: rerun with --check to test the model's invariants after every step", file=sys.stderr)
    if os.environ.get("ABM_DEBUG") == "1":
        traceback.print_exc(file=sys.stderr)
    else:
        print("hint: set ABM_DEBUG=1 to see the traceback", file=sys.stderr)
    return EXIT_INTERNAL


def _scenario_overrides(options: argparse.Namespace) -> list[str]:
    overrides = list(options.overrides)
    # --seed / --steps come last so that they win over a --set of the same key.
    if getattr(options, "seed", None) is not None:
        overrides.append(f"seed={options.seed}")
    if getattr(options, "steps", None) is not None:
        overrides.append(f"steps={options.steps}")
    return overrides


def _simulate(
    run_scenario: Callable[..., RunResult], scenario: Scenario, options: argparse.Namespace, label: str
) -> RunResult:
    from tqdm import tqdm

    # delay=1.0: runs shorter than a second never draw a bar.
    with tqdm(
        total=scenario.steps,
        delay=1.0,
        file=sys.stderr,
        desc=label,
        unit="step",
        disable=options.no_progress,
    ) as bar:
        progress = None if options.no_progress else bar.update
        return run_scenario(scenario, seed=scenario.seed, check_invariants=options.check, progress=progress)


def _format_value(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def summary_notes(summary: dict[str, Any]) -> list[str]:
    """What a run's figures hide, in a sentence each (printed under the summary as ``note:`` lines).

    >>> print(*summary_notes({"tier_brackets_unreached": 2, "largest_position_notional": 1800.0}))
    ... # doctest: +NORMALIZE_WHITESPACE
    2 tier brackets of the margin rule above the first were never reached (the largest position held
    was 1,800 of notional): the rule acted as its lower brackets only
    """
    notes = []
    # With several instruments, each one's own figures (the top level repeats the first's).
    per_instrument = [(f" of {name}", each) for name, each in summary.get("by_instrument", {}).items()]
    for where, figures in per_instrument or [("", summary)]:
        unreached = int(figures.get("tier_brackets_unreached", 0))
        if unreached:
            plural = "s" if unreached > 1 else ""
            notes.append(
                f"{unreached} tier bracket{plural} of the margin rule{where} above the first "
                f"{'were' if plural else 'was'} never reached (the largest position held was "
                f"{figures['largest_position_notional']:,.0f} of notional): the rule acted as its lower "
                "brackets only"
            )
    return notes


def _summary_table(summary: dict[str, Any], wall_seconds: float) -> str:
    """Plain aligned ``metric  value`` lines for the headline figures of a run."""
    rows = [(name, summary[name]) for name in HEADLINE_METRICS if name in summary]
    if not rows:
        # A summary without the usual names still shows its scalar figures.
        rows = [(name, value) for name, value in summary.items() if not isinstance(value, dict | list)]
    rows.append(("wall_seconds", round(wall_seconds, 3)))
    width = max(len("metric"), *(len(name) for name, _ in rows))
    shown = [(name, _format_value(value)) for name, value in rows]
    value_width = max(len("value"), *(len(text) for _, text in shown))
    lines = [f"{'metric':<{width}}  {'value':<{value_width}}  unit"]
    for name, text in shown:
        measure = measure_of(name)
        unit = measure.unit if measure else ("s" if name == "wall_seconds" else "")
        lines.append(f"{name:<{width}}  {text:<{value_width}}  {unit}".rstrip())
    return "\n".join(lines)


# --------------------------------------------------------------------------- commands


def _validate_command(options: argparse.Namespace) -> int:
    loaded = load_checked_scenario(options.file, options.overrides, options.no_user_code)
    if isinstance(loaded, int):
        return loaded
    _, scenario = loaded
    groups = len(scenario.agents)
    print(
        f"ok: {scenario.name} ({scenario.steps} steps, {groups} agent group{'' if groups == 1 else 's'}, "
        f"margin rule {scenario.margin.rule})"
    )
    return EXIT_OK


def _run_command(options: argparse.Namespace) -> int:
    if options.out is not None and not options.out.strip():
        print(
            "error: --out: an empty path; give a directory (or leave --out out for the default)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    overrides = _scenario_overrides(options)
    loaded = load_checked_scenario(options.file, overrides, options.no_user_code)
    if isinstance(loaded, int):
        return loaded
    path, scenario = loaded
    try:
        from abm import runs
        from abm.errors import InvariantError
        from abm.outputs import OutputExistsError, check_out_dir, default_run_dir, write_run
    except ImportError as exc:
        return _report_internal_error(exc, checked=True)

    out_dir = Path(options.out) if options.out else default_run_dir(scenario, scenario.seed)
    try:
        check_out_dir(out_dir, options.force)
    except (OutputExistsError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE

    try:
        result = _simulate(runs.run_scenario, scenario, options, label=scenario.name)
        if options.counterfactual:
            counterfactual = _simulate(
                runs.run_scenario, runs.without_liquidations(scenario), options, label="counterfactual"
            )
            runs.add_counterfactual(result, counterfactual)
    except KeyboardInterrupt as exc:
        return _interrupted(exc)
    except InvariantError as exc:
        # --check stops the run at the first breach; the message names step, invariant and accounts.
        print(f"error: invariant breached: {exc}", file=sys.stderr)
        print("error: the run stopped at the first breach; nothing written", file=sys.stderr)
        return EXIT_INTERNAL
    except (Exception, SystemExit) as exc:  # any failure inside the model: a short report, no traceback
        # SystemExit included: user code (a margin rule) calling exit() must not end the run as a success.
        return _report_internal_error(exc, checked=options.check)

    extra_manifest = {
        "scenario_file": str(path),
        "overrides": overrides,
        "counterfactual": options.counterfactual,
    }
    try:
        run_dir = write_run(
            result,
            out_dir,
            force=options.force,
            command_line=["abm", *options.argv],
            extra_manifest=extra_manifest,
            figures=not options.no_figures,
            graphml=options.graphml,
        )
    except KeyboardInterrupt as exc:
        # write_run is atomic (temp dir, then rename): an interrupted write leaves nothing behind.
        return _interrupted(exc)
    except OutputExistsError as exc:
        # The directory appeared while the model ran.
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"error: could not write the run directory: {exc}", file=sys.stderr)
        return EXIT_INTERNAL
    except Exception as exc:  # a result the writer rejects is a bug, reported like one
        return _report_internal_error(exc, checked=options.check)

    status, report = EXIT_OK, None
    # write_run always leaves a manifest; a stand-in writer that does not has no run to report on.
    if not options.no_report and (Path(run_dir) / "manifest.json").is_file():
        try:
            status, report = _write_report(Path(run_dir), draw_missing=not options.no_figures, result=result)
        except KeyboardInterrupt as exc:
            # The run directory is written (atomically) and complete; only the report is missing.
            signal_name = "SIGTERM" if isinstance(exc, Terminated) else "interrupted"
            print(
                f"{signal_name} while writing report.html: the run directory {run_dir} is complete, the "
                f"report is not written; write it with: abm report {run_dir}",
                file=sys.stderr,
            )
            return EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED
    print(_summary_table(result.summary, result.wall_seconds))
    for note in summary_notes(result.summary):
        print(f"note: {note}")
    if report is not None:
        print(f"report: {report}")
    print(f"run directory: {run_dir}")
    return status


def _write_report(
    run_dir: Path, draw_missing: bool = True, result: RunResult | None = None
) -> tuple[int, Path | None]:
    """Write ``report.html``; returns the exit status and the report's path (None on failure)."""
    try:
        from abm.report import write_report

        return EXIT_OK, write_report(run_dir, draw_missing=draw_missing, result=result)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE, None
    except OSError as exc:
        print(f"error: could not write the report: {exc}", file=sys.stderr)
        return EXIT_INTERNAL, None
    except Exception as exc:  # a run directory the report cannot read is a bug, reported like one
        return _report_internal_error(exc, checked=True), None


def _report_command(options: argparse.Namespace) -> int:
    run_dir = Path(options.run_dir)
    if not run_dir.is_dir():
        print(f"error: {run_dir} is not a directory", file=sys.stderr)
        return EXIT_USAGE
    status, report = _write_report(run_dir)
    if report is not None:
        print(f"report: {report}")
    return status


def _first_line(text: Any) -> str:
    lines = str(text or "").strip().splitlines()
    return lines[0].strip() if lines else ""


def _list_command(options: argparse.Namespace) -> int:
    from abm import config
    from abm.config import ScenarioError, read_yaml_mapping

    folder = config.SCENARIOS_DIR
    names = config.available_scenarios(folder)
    if not names:
        # An install without its scenarios is broken, not empty: say so and fail.
        print(f"error: no scenarios in {folder}; the installation is incomplete", file=sys.stderr)
        return EXIT_INTERNAL
    rows = []
    for name in names:
        try:
            description = _first_line(read_yaml_mapping(folder / f"{name}.yaml").get("description"))
        except ScenarioError as exc:
            description = f"(unreadable: {exc.errors[0]})"
        rows.append((name, description))
    width = max(len(name) for name, _ in rows)
    for name, description in rows:
        print(f"{name:<{width}}  {description}".rstrip())
    sweeps = config.available_sweeps(folder)
    if sweeps:
        print(f"\nsweep files (abm sweep {folder.name}/FILE):")
        sweep_width = max(len(name) for name in sweeps)  # the descriptions in one column
        for name in sweeps:
            try:
                description = _first_line(read_yaml_mapping(folder / name).get("description"))
            except ScenarioError as exc:
                description = f"(unreadable: {exc.errors[0]})"
            print(f"  {name:<{sweep_width}}  {description}".rstrip())
    return EXIT_OK


# New commands (sweep, compare, report) add their `_add_<name>` here.
_COMMANDS: tuple[Callable[[argparse._SubParsersAction], None], ...] = (
    _add_validate,
    _add_run,
    _add_list,
    _add_report,
    add_sweep_command,
    add_compare_command,
    _add_facts,
    add_dash_command,
)


if __name__ == "__main__":
    # `python -m abm.cli`: run the package's copy of this module, not __main__'s, so that there is one
    # Terminated class (abm.dash_command and abm.runs import it from abm.cli).
    from abm.cli import entry as package_entry

    package_entry()
