"""The margin-rule comparison's tables (docs/margin-rules.md) from a finished sweep directory.

Usage::

    abm sweep scenarios/policy_comparison.yaml --report --baseline fixed
    python benchmarks/policy_table.py outputs/sweep-policy_comparison
    python benchmarks/policy_table.py outputs/sweep-policy_comparison --against ewma_vol

Prints one markdown row per group, in the sweep file's order: means over the seeds of the headline
measures, the liquidated accounts (mean and range), the seeds whose liquidated notional passes
``--spiral``, and the paired difference of liquidated notional against ``--baseline`` with its 95%
interval. ``--against GROUP`` prints, instead, every other group's paired differences from GROUP in
liquidated notional, bad debt and the largest drawdown. The differences are
:func:`abm.sweep.statistics.paired_differences` of ``results.parquet`` (the runs paired by seed).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from abm.sweep.statistics import paired_differences  # noqa: E402

AGAINST_MEASURES = ("liquidated_notional", "bad_debt", "max_drawdown")


def _thousands(value: float) -> str:
    return f"{value / 1000:.0f}k"


def _signed(value: float, measure: str) -> str:
    sign = "+" if value >= 0 else "-"
    if measure == "liquidated_notional":
        return f"{sign}{abs(value) / 1000:.0f}k"
    if measure == "max_drawdown":
        return f"{sign}{abs(value):.3f}"
    return f"{sign}{abs(value):.0f}"


def _interval(row: pd.Series, measure: str) -> str:
    return (
        f"{_signed(row[f'{measure}.diff'], measure)} "
        f"[{_signed(row[f'{measure}.low'], measure)}, {_signed(row[f'{measure}.high'], measure)}]"
    )


def _results(sweep: Path) -> tuple[pd.DataFrame, list[str]]:
    results = pd.read_parquet(sweep / "results.parquet")
    groups = list(dict.fromkeys(results.sort_values("point")["group"].astype(str)))
    return results, groups


def _markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join([*lines, *("| " + " | ".join(cells) + " |" for cells in rows)])


def table(sweep: Path, baseline: str = "fixed", spiral: float = 100_000.0) -> str:
    """The comparison's main table: every group's means, and its paired difference from ``baseline``."""
    results, groups = _results(sweep)
    differences = paired_differences(results, ["liquidated_notional"], baseline).set_index("group")
    header = [
        "rule",
        "liquidated longs, mean (range)",
        "seeds that spiral",
        "liquidated notional",
        f"minus {baseline}, paired [95%]",
        "max drawdown",
        "bad debt",
        "MMR stress increase",
        "largest MMR increase",
        "margin calls",
        "calm margin / notional",
    ]
    rows = []
    for group in groups:
        runs = results[results["group"].astype(str) == group]
        longs = runs["liquidated_accounts"]
        paired = "-" if group == baseline else _interval(differences.loc[group], "liquidated_notional")
        rows.append(
            [
                f"`{group}`",
                f"{longs.mean():.0f} ({longs.min():.0f}-{longs.max():.0f})",
                f"{int((runs['liquidated_notional'] > spiral).sum())}/{len(runs)}",
                _thousands(runs["liquidated_notional"].mean()),
                paired,
                f"{runs['max_drawdown'].mean():.3f}",
                f"{runs['bad_debt'].mean():.0f}",
                f"{runs['mmr_stress_increase'].mean():.2f}",
                f"{runs['mmr_largest_increase'].mean():.2f}",
                f"{runs['margin_calls'].mean():.0f}",
                f"{runs['calm_margin_per_notional'].mean():.4f}",
            ]
        )
    return _markdown(header, rows)


def against(sweep: Path, group: str) -> str:
    """Every other group minus ``group``, seed by seed: liquidated notional, bad debt, drawdown."""
    results, groups = _results(sweep)
    differences = paired_differences(results, list(AGAINST_MEASURES), group).set_index("group")
    header = ["rule", *(f"{measure} minus {group} [95%]" for measure in AGAINST_MEASURES)]
    rows = [
        [f"`{other}`", *(_interval(differences.loc[other], measure) for measure in AGAINST_MEASURES)]
        for other in groups
        if other != group
    ]
    return _markdown(header, rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", type=Path, help="a finished sweep directory (abm sweep ...)")
    parser.add_argument("--baseline", default="fixed", help="the group of the main table's differences")
    parser.add_argument(
        "--spiral", type=float, default=100_000.0, help="liquidated notional above which a seed spirals"
    )
    parser.add_argument("--against", metavar="GROUP", help="print every group's differences from GROUP")
    args = parser.parse_args(argv)
    if not (args.sweep / "results.parquet").is_file():
        parser.error(f"{args.sweep}: no results.parquet (not a finished sweep directory)")
    try:
        print(
            against(args.sweep, args.against)
            if args.against
            else table(args.sweep, args.baseline, args.spiral)
        )
    except ValueError as error:  # paired_differences names a group the sweep does not have
        parser.error(f"{args.sweep}: {error}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
