"""The ``abm`` command line: ``abm validate``, ``abm run`` and ``abm list``.

Every command validates its whole input before doing any work: a bad scenario, a bad
``--set`` override or an existing output directory is reported as ``error: ...`` lines on
stderr with exit status 2, never as a traceback. Later commands (``sweep``, ``compare``,
``report``) register themselves in ``_COMMANDS``.

Exit statuses: 0 success, 1 internal error (a bug in the model or an unwritable output),
2 bad input, 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from abm import __version__, config
from abm.config import (
    Scenario,
    ScenarioError,
    load_scenario,
    read_yaml_mapping,
    resolve_scenario,
)

if TYPE_CHECKING:
    from abm.results import RunResult

__all__ = ["EXIT_INTERNAL", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "HEADLINE_METRICS", "main"]

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

# Summary entries printed after a run, in this order, when the run reports them.
HEADLINE_METRICS = (
    "max_drawdown",
    "liquidations",
    "liquidated_notional",
    "cascade_depth",
    "bad_debt",
    "insurance_fund_used",
    "socialised_loss",
    "amplification",
    "counterfactual_max_drawdown",
    "counterfactual_liquidations",
)


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
        return options.handler(options)
    except KeyboardInterrupt:
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
    parser.add_argument(
        "--counterfactual",
        action="store_true",
        help="also run with liquidations disabled and report the amplification of the drawdown",
    )
    parser.add_argument("--check", action="store_true", help="check the model's invariants after every step")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(handler=_run_command)


def _add_list(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("list", help="list the scenarios shipped in scenarios/")
    parser.set_defaults(handler=_list_command)


# --------------------------------------------------------------------------- helpers


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


def _without_liquidations(scenario: Scenario) -> Scenario:
    liquidation = scenario.liquidation.model_copy(update={"enabled": False})
    return scenario.model_copy(update={"liquidation": liquidation}, deep=True)


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


def _max_drawdown(result: RunResult, label: str) -> float:
    value = result.summary.get("max_drawdown")
    if value is None:
        raise RuntimeError(f"the {label} run's summary has no 'max_drawdown'")
    return float(value)


def _add_counterfactual(result: RunResult, counterfactual: RunResult) -> None:
    """Put the comparison with the no-liquidation run into ``result.summary``."""
    drawdown = _max_drawdown(result, "main")
    baseline = _max_drawdown(counterfactual, "counterfactual")
    result.summary["amplification"] = drawdown / baseline if baseline != 0 else None
    result.summary["counterfactual_max_drawdown"] = baseline
    result.summary["counterfactual_liquidations"] = len(counterfactual.liquidations)


def _format_value(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _summary_table(summary: dict[str, Any], wall_seconds: float) -> str:
    """Plain aligned ``metric  value`` lines for the headline figures of a run."""
    rows = [(name, summary[name]) for name in HEADLINE_METRICS if name in summary]
    if not rows:
        # A summary without the usual names still shows its scalar figures.
        rows = [(name, value) for name, value in summary.items() if not isinstance(value, dict | list)]
    rows.append(("wall_seconds", round(wall_seconds, 3)))
    width = max(len("metric"), *(len(name) for name, _ in rows))
    lines = [f"{'metric':<{width}}  value"]
    lines += [f"{name:<{width}}  {_format_value(value)}" for name, value in rows]
    return "\n".join(lines)


# --------------------------------------------------------------------------- commands


def _validate_command(options: argparse.Namespace) -> int:
    try:
        scenario = load_scenario(resolve_scenario(options.file), options.overrides)
    except ScenarioError as exc:
        return _report_scenario_error(exc)
    groups = len(scenario.agents)
    print(
        f"ok: {scenario.name} ({scenario.steps} steps, {groups} agent group{'' if groups == 1 else 's'}, "
        f"margin rule {scenario.margin.rule})"
    )
    return EXIT_OK


def _run_command(options: argparse.Namespace) -> int:
    overrides = _scenario_overrides(options)
    try:
        path = resolve_scenario(options.file)
        scenario = load_scenario(path, overrides)
    except ScenarioError as exc:
        return _report_scenario_error(exc)
    try:
        from abm.model import run_scenario
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
        result = _simulate(run_scenario, scenario, options, label=scenario.name)
        if options.counterfactual:
            counterfactual = _simulate(
                run_scenario, _without_liquidations(scenario), options, label="counterfactual"
            )
            _add_counterfactual(result, counterfactual)
    except KeyboardInterrupt:
        print("interrupted: nothing written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # any failure inside the model becomes a short report, not a traceback
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
        )
    except KeyboardInterrupt:
        # write_run is atomic (temp dir, then rename): an interrupted write leaves nothing behind.
        print("interrupted: nothing written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OutputExistsError as exc:
        # The directory appeared while the model ran.
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"error: could not write the run directory: {exc}", file=sys.stderr)
        return EXIT_INTERNAL
    except Exception as exc:  # a result the writer rejects is a bug, reported like one
        return _report_internal_error(exc, checked=options.check)

    print(_summary_table(result.summary, result.wall_seconds))
    print(f"run directory: {run_dir}")
    return EXIT_OK


def _first_line(text: Any) -> str:
    lines = str(text or "").strip().splitlines()
    return lines[0].strip() if lines else ""


def _list_command(options: argparse.Namespace) -> int:
    folder = config.SCENARIOS_DIR
    names = config.available_scenarios(folder)
    if not names:
        print(f"no scenarios in {folder}")
        return EXIT_OK
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
    return EXIT_OK


# New commands (sweep, compare, report) add their `_add_<name>` here.
_COMMANDS: tuple[Callable[[argparse._SubParsersAction], None], ...] = (_add_validate, _add_run, _add_list)


if __name__ == "__main__":
    sys.exit(main())
