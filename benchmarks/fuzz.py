"""The long fuzz budget: scenario files and ``--set`` overrides around the schema's bounds.

Draws cases as ``tests/test_hostile.py`` does (``tests/fuzz_cases.py``), runs each through
``abm run --check`` in this process with figures drawn, and prints how the cases ended: exit 0 (a
complete run, every invariant held after every step), exit 2 (a field error, nothing written), or a
defect (a traceback, exit 1, output written on an error, an error without a field path), with the
case to reproduce it.

Usage::

    python benchmarks/fuzz.py                 # 500 cases (about 10 minutes)
    python benchmarks/fuzz.py --cases 2000 --seed 3
    python benchmarks/fuzz.py --bases all      # every shipped scenario as a base, not only the three
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0, help="hypothesis's seed")
    parser.add_argument("--verbose", action="store_true", help="print every case as it ends")
    parser.add_argument(
        "--bases", nargs="+", default=None, help="library scenarios to start from ('all': every one)"
    )
    args = parser.parse_args(argv)

    from fuzz_cases import BASES, draw_case, problems, run_case
    from hypothesis import HealthCheck, given, seed, settings
    from hypothesis import strategies as st

    endings: collections.Counter[str] = collections.Counter()
    by_base: collections.Counter[tuple[str, int]] = collections.Counter()
    defects: list[str] = []
    started = time.perf_counter()

    from abm.config import available_scenarios

    bases = tuple(available_scenarios() if args.bases == ["all"] else args.bases or BASES)
    unknown = sorted(set(bases) - set(available_scenarios()))
    if unknown:
        parser.error(f"no such library scenario: {', '.join(unknown)} (see `abm list`)")

    @seed(args.seed)
    @settings(max_examples=args.cases, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(st.composite(draw_case)(bases=bases))
    def check(case):
        with tempfile.TemporaryDirectory() as folder:
            outcome = run_case(case, Path(folder))
        found = problems(case, outcome)
        defects.extend(found)
        endings["defect" if found else f"exit {outcome.status}"] += 1
        if args.verbose:
            print(f"exit {outcome.status}: {case.describe()}", file=sys.__stderr__, flush=True)
        by_base[(case.base, outcome.status)] += 1

    check()
    seconds = time.perf_counter() - started
    total = sum(endings.values())
    print(f"{total} cases in {seconds:.0f} s (hypothesis seed {args.seed})")
    for ending, count in sorted(endings.items()):
        print(f"  {ending:8} {count:6d}  {100 * count / total:5.1f}%")
    for (base, status), count in sorted(by_base.items()):
        print(f"  {base:10} exit {status}: {count}")
    for text in defects[:20]:
        print("\nDEFECT", text)
    return 1 if defects else 0


if __name__ == "__main__":
    sys.exit(main())
