"""Every shipped scenario's headline over any seeds: how far a claim calibrated on seeds 1-10 carries.

Each scenario's header states its headline and the share of seeds 1-10 it holds on, and
``tests/test_scenario_library.py`` checks that share (at least 9 of 10). The same checks
(``tests/scenario_claims.py``) run here over other seeds, out of the sample the scenarios were
calibrated on, and print one markdown row a scenario (held / seeds) and, for each seed where the
headline fails, the figures the check measured.

Usage::

    python benchmarks/headlines.py [--seeds 11-40] [--workers 2] [--scenario NAME ...]
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from scenario_claims import CLAIMS, check  # noqa: E402  (tests/ holds the claims, for the suite)


def _seed_range(text: str) -> range:
    first, _, last = text.partition("-")
    try:
        start, stop = int(first), int(last or first)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected FIRST-LAST (e.g. 11-40), got {text!r}") from None
    if start < 0 or stop < start:
        raise argparse.ArgumentTypeError(f"expected 0 <= FIRST <= LAST, got {text!r}")
    return range(start, stop + 1)


def _check(job: tuple[str, int]) -> tuple[str, int, bool, dict]:
    return check(*job)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=_seed_range, default=_seed_range("11-40"), help="FIRST-LAST")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--scenario", action="append", choices=sorted(CLAIMS), help="only this one (repeatable)"
    )
    options = parser.parse_args(argv)
    names = options.scenario or list(CLAIMS)
    jobs = [(name, seed) for name in names for seed in options.seeds]
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=options.workers) as pool:
        outcomes = list(pool.map(_check, jobs, chunksize=2))
    seeds = f"{options.seeds.start}-{options.seeds.stop - 1}"
    print(f"| scenario | held on seeds {seeds} | failing seeds |")
    print("|---|---:|---|")
    failures = []
    for name in names:
        mine = [outcome for outcome in outcomes if outcome[0] == name]
        failing = [seed for _, seed, holds, _ in mine if not holds]
        listed = ", ".join(map(str, failing)) or "-"
        print(f"| `{name}` | {len(mine) - len(failing)} of {len(mine)} | {listed} |")
        failures += [(name, seed, figures) for _, seed, holds, figures in mine if not holds]
    for name, seed, figures in failures:
        shown = ", ".join(
            f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}"
            for key, value in figures.items()
        )
        print(f"- {name}, seed {seed}: {shown}")
    print(f"({len(jobs)} runs, {time.perf_counter() - start:.0f} s, {options.workers} workers)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
