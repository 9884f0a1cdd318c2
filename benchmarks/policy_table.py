"""The margin-rule comparison's table (docs/margin-rules.md) from a finished sweep directory.

Usage::

    abm sweep scenarios/policy_comparison.yaml --report --baseline fixed --out SWEEP
    python benchmarks/policy_table.py SWEEP

Prints one markdown row per group, in the sweep file's order: means over the seeds of the headline
measures, the liquidated longs (mean and range), the seeds whose liquidated notional passes
``--spiral`` (a cascade, against a crash that stops after a few accounts), and the paired difference
of liquidated notional against the baseline with its 95% interval (``differences_vs_<baseline>.csv``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd


def _thousands(value: float) -> str:
    return f"{value / 1000:.0f}k"


def _signed_thousands(value: float) -> str:
    return f"{'+' if value >= 0 else '-'}{abs(value) / 1000:.0f}k"


def table(sweep: Path, baseline: str = "fixed", spiral: float = 100_000.0) -> str:
    """The markdown table of a policy-comparison sweep directory."""
    results = pd.read_parquet(sweep / "results.parquet")
    differences = pd.read_csv(sweep / f"differences_vs_{baseline}.csv").set_index("group")
    groups = list(dict.fromkeys(results.sort_values("point")["group"]))
    header = (
        "| rule | liquidated longs, mean (range) | seeds that spiral | liquidated notional "
        f"| minus {baseline}, paired [95%] | max drawdown | bad debt | MMR stress increase "
        "| largest MMR increase | margin calls | calm margin / notional |"
    )
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for group in groups:
        runs = results[results["group"] == group]
        longs = runs["liquidated_accounts"]
        if group == baseline:
            paired = "-"
        else:
            row = differences.loc[group]
            paired = (
                f"{_signed_thousands(row['liquidated_notional.diff'])} "
                f"[{_signed_thousands(row['liquidated_notional.low'])}, "
                f"{_signed_thousands(row['liquidated_notional.high'])}]"
            )
        cells = [
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
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", type=Path, help="a finished sweep directory (abm sweep ... --report)")
    parser.add_argument("--baseline", default="fixed", help="the group of the paired differences")
    parser.add_argument(
        "--spiral", type=float, default=100_000.0, help="liquidated notional above which a seed spirals"
    )
    args = parser.parse_args(argv)
    if not (args.sweep / "results.parquet").is_file():
        parser.error(f"{args.sweep}: no results.parquet (run the sweep with --report first)")
    if not (args.sweep / f"differences_vs_{args.baseline}.csv").is_file():
        parser.error(
            f"{args.sweep}: no differences_vs_{args.baseline}.csv "
            f"(run the sweep with --report --baseline {args.baseline})"
        )
    print(table(args.sweep, args.baseline, args.spiral))
    return 0


if __name__ == "__main__":
    sys.exit(main())
