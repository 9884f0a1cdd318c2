"""The whole ``abm run`` command against its simulation: what the command line adds.

Each case runs ``abm run spiral`` in a fresh process (as a user does), with ``/usr/bin/time``-like
wall timing around the whole command, and reads the simulation's own wall time from the run's
``manifest.json`` (``wall_seconds``: model built and stepped to the horizon). The ratio whole /
simulation is what the issues set targets on (1.5x in issue 19, 1.3x in issue 20); ratios are robust
to the machine's speed, which on a shared VM moves by 30% from one minute to the next, so the cases
are interleaved round by round and the median of the rounds is reported.

Cases: the 600-step spiral, and the spiral at 1,000 traders x 10,000 steps (shocks moved to step
5,000); each with figures and report, ``--no-figures``, and ``--no-figures --no-report``.

Usage::

    python benchmarks/bench_cli.py [--rounds 3] [--python PATH] [--other CHECKOUT] [--small-only]
                                   [--case NAME]

``--python`` times another interpreter or environment the same way. ``--other`` times a second
checkout (e.g. a worktree of an older commit, put first on ``PYTHONPATH``) alternately with this one,
case by case within each round, and prints both and the whole command's ratio this / other: a before /
after comparison in one process tree, on a machine whose speed drifts. ``--case`` runs only the
cases named (repeatable; e.g. ``--case "spiral 1,000 x 10,000"``). Besides whole and simulation, the
table gives the time outside the simulation (whole minus simulation, median of the rounds): what the
command adds, and what changes to it move.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIG = ["--set", "agents.1.count=1000", "--set", "steps=10000"]
BIG += ["--set", "shocks.0.step=5000", "--set", "shocks.1.step=5000"]
CASES = {
    "spiral 600 steps": [],
    "spiral 600 steps --no-figures": ["--no-figures"],
    "spiral 600 steps --no-figures --no-report": ["--no-figures", "--no-report"],
    "spiral 1,000 x 10,000": BIG,
    "spiral 1,000 x 10,000 --no-figures": [*BIG, "--no-figures"],
    "spiral 1,000 x 10,000 --no-figures --no-report": [*BIG, "--no-figures", "--no-report"],
}


def run_once(
    python: str, extra: list[str], scratch: Path, checkout: str | None = None
) -> tuple[float, float]:
    """Whole wall seconds of one ``abm run``, and the simulation's own (from its manifest).

    With ``checkout``, that directory is put first on ``PYTHONPATH``: its ``abm`` is the one run.
    """
    out = scratch / f"run-{time.monotonic_ns()}"
    command = [python, "-m", "abm.cli", "run", "spiral", "--no-progress", "--out", str(out), *extra]
    start = time.perf_counter()
    # From the scratch directory: `-m` puts the current directory first, so run from a checkout it
    # would import that checkout whatever `python` is given.
    env = dict(os.environ)
    if checkout is not None:
        env["PYTHONPATH"] = os.pathsep.join([checkout, *filter(None, [env.get("PYTHONPATH")])])
    subprocess.run(command, check=True, capture_output=True, cwd=scratch, env=env)
    whole = time.perf_counter() - start
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    return whole, float(manifest["wall_seconds"])


def main() -> None:
    """Run the cases and print whole, simulation and their ratio (medians over rounds)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--python", default=sys.executable, help="the interpreter to time")
    parser.add_argument("--small-only", action="store_true", help="only the 600-step cases")
    parser.add_argument("--other", help="a second checkout to time alternately (put on PYTHONPATH)")
    parser.add_argument("--case", action="append", choices=list(CASES), help="only this case (repeatable)")
    options = parser.parse_args()
    cases = {name: extra for name, extra in CASES.items() if not (options.small_only and BIG[1] in extra)}
    if options.case:
        cases = {name: extra for name, extra in cases.items() if name in options.case}
    here = str(Path(__file__).resolve().parents[1])
    builds = {"this": here} if options.other is None else {"this": here, "other": options.other}
    times = {(build, name): [] for name in cases for build in builds}
    with tempfile.TemporaryDirectory(prefix="abm-bench-cli-") as scratch:
        for _ in range(options.rounds):
            for name, extra in cases.items():
                for build, checkout in builds.items():
                    times[build, name].append(run_once(options.python, extra, Path(scratch), checkout))
    print(f"{'build':<6} {'case':<48} {'whole s':>8} {'sim s':>7} {'outside s':>9} {'ratio':>6}")
    for (build, name), rows in times.items():
        whole = statistics.median(row[0] for row in rows)
        simulation = statistics.median(row[1] for row in rows)
        outside = statistics.median(row[0] - row[1] for row in rows)
        ratio = statistics.median(row[0] / row[1] for row in rows)
        print(f"{build:<6} {name:<48} {whole:8.2f} {simulation:7.2f} {outside:9.2f} {ratio:6.2f}")
    if options.other is not None:
        print("whole command, this / other, round by round:")
        for name in cases:
            pairs = zip(times["this", name], times["other", name], strict=True)
            print(f"  {name:<48} " + " ".join(f"{this[0] / other[0]:.3f}" for this, other in pairs))


if __name__ == "__main__":
    main()
