"""The statistics of a sweep's report: runs per group, means with Student t intervals, paired differences.

For every group (the ``group_by`` keys of the sweep, e.g. the margin rule) and every summary measure,
:func:`group_summary` gives the number of runs, the mean, the standard deviation and a 95% **Student t
interval** for the mean over seeds, ``mean +/- t(0.975, n - 1) * sd / sqrt(n)`` (no interval with fewer
than two runs); :func:`paired_differences` every other group minus a baseline, seed by seed, with a
paired t interval of the mean difference. :mod:`abm.sweep.report` writes them with the figures.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from abm.headline import possible_range
from abm.sweep.journal import (
    FIXED_COLUMNS,
    MANIFEST_NAME,
    RESULTS_NAME,
    ROWS_DIR,
    read_rows,
    rows_to_frame,
    run_columns,
)

__all__ = [
    "CONFIDENCE",
    "HEADLINE_MEASURES",
    "baseline_pairs",
    "format_difference_table",
    "format_group_table",
    "group_summary",
    "headline_measures",
    "load_sweep_results",
    "missing_runs",
    "paired_differences",
]

CONFIDENCE = 0.95
# Printed on the terminal, when present; the files hold every measure.
HEADLINE_MEASURES = (
    "liquidated_notional",
    "max_drawdown",
    "liquidation_added_drawdown",
    "bad_debt",
    "liquidations",
    "cascade_depth",
    "insurance_fund_used",
    "mmr_peak_to_trough",
    "mmr_largest_increase",
    "margin_calls",
    "calm_margin_per_notional",
    # with portfolio-margined accounts
    "portfolio_calm_margin_per_notional",
    "portfolio_calm_offset",
    "portfolio_margin_peak_to_trough",
)
# With several instruments, after the headline: the contagion and each instrument's drawdown.
_INSTRUMENT_HEADLINE = ("liquidations", "max_drawdown")


def headline_measures(measures: Sequence[str]) -> list[str]:
    """The measures shown first (on the terminal and atop report.html), in order, of those present.

    :data:`HEADLINE_MEASURES`, then with several instruments ``contagion_liquidated_notional`` and
    each instrument's ``by_instrument.<name>.liquidations`` and ``.max_drawdown``, then each trader
    group's ``by_group.<label>.liquidated_share`` (over the seeds: its probability of liquidation).

    Example:
        >>> headline_measures(["bad_debt", "by_instrument.B.max_drawdown", "max_drawdown", "volume"])
        ['max_drawdown', 'bad_debt', 'by_instrument.B.max_drawdown']
    """
    present = set(measures)
    shown = [m for m in HEADLINE_MEASURES if m in present]
    if "contagion_liquidated_notional" in present:
        shown.append("contagion_liquidated_notional")
    shown += [
        m for m in measures if m.startswith("by_instrument.") and m.rsplit(".", 1)[-1] in _INSTRUMENT_HEADLINE
    ]
    shown += [m for m in measures if m.startswith("by_group.") and m.endswith(".liquidated_share")]
    return shown or list(measures)


_NOT_MEASURES = {*FIXED_COLUMNS, "wall_seconds", "status", "error", "sweep"}


def missing_runs(results: pd.DataFrame, manifest: Mapping[str, Any]) -> dict[str, int]:
    """The runs a sweep planned that its results lack (interrupted, not yet resumed), per group.

    Args:
        results: The sweep's results table (``point`` column; failed runs count as present).
        manifest: Its manifest (``points`` with ``point`` and ``group``, ``seeds``).

    Returns:
        Group -> number of runs missing, for the groups that lack any, in the order of the points.

    >>> manifest = {"points": [{"point": 0, "group": "a"}, {"point": 1, "group": "b"}], "seeds": [1, 2]}
    >>> missing_runs(pd.DataFrame({"point": [0, 0, 1]}), manifest)
    {'b': 1}
    """
    per_point = len(manifest.get("seeds", []))
    done = results["point"].value_counts().to_dict() if "point" in results else {}
    missing: dict[str, int] = {}
    for point in manifest.get("points", []):
        lacking = per_point - int(done.get(point["point"], 0))
        if lacking > 0:
            group = str(point["group"])
            missing[group] = missing.get(group, 0) + lacking
    return missing


def load_sweep_results(sweep_dir: str | Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read a sweep directory's results table and manifest.

    The table is rebuilt from the journal when ``results.parquet`` is missing or behind it (a sweep killed
    between two rewrites).

    Args:
        sweep_dir: The sweep directory.

    Returns:
        The results table and the manifest.

    Raises:
        FileNotFoundError: Not a sweep directory.
    """
    folder = Path(sweep_dir)
    manifest_path = folder / MANIFEST_NAME
    if not manifest_path.is_file():
        raise FileNotFoundError(f"{folder} is not a sweep directory: no {MANIFEST_NAME}")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    results_path = folder / RESULTS_NAME
    frame = pd.read_parquet(results_path) if results_path.is_file() else None
    entries = read_rows(folder / ROWS_DIR)
    if frame is None or len(frame) != len(entries):
        frame = rows_to_frame(entries, run_columns(manifest))
    return frame, manifest


def _measure_columns(results: pd.DataFrame, parameter_columns: Sequence[str]) -> list[str]:
    skip = _NOT_MEASURES | set(parameter_columns)
    measures = []
    for column in results.columns:
        if column in skip or column.startswith("label."):
            continue
        numeric = pd.to_numeric(results[column], errors="coerce")
        # A column of text (or all null) is not a measure: it cannot be averaged.
        if numeric.notna().any() and numeric.notna().sum() == results[column].notna().sum():
            measures.append(column)
    return measures


def group_summary(
    results: pd.DataFrame, measures: Sequence[str], confidence: float = CONFIDENCE
) -> pd.DataFrame:
    """Mean, standard deviation and a Student t interval of every measure, per group.

    Args:
        results: The results table (``group``, ``point``, ``status`` and the measures).
        measures: The columns to summarise.
        confidence: Level of the interval for the mean.

    Returns:
        One row per group, in order of first appearance in ``results`` (grid order for a sweep's table):
        ``group``, ``runs``, ``ok``, ``failed``, and per measure ``<m>.mean``, ``<m>.sd``, ``<m>.low``,
        ``<m>.high`` (sd and the interval are NaN with fewer than two values).
    """
    from scipy import stats

    order = results["group"].drop_duplicates().tolist()
    rows = []
    for group in order:
        members = results[results["group"] == group]
        ok = members[members["status"] == "ok"]
        row: dict[str, Any] = {
            "group": group,
            "runs": len(members),
            "ok": len(ok),
            "failed": len(members) - len(ok),
        }
        for measure in measures:
            values = pd.to_numeric(ok[measure], errors="coerce").to_numpy(dtype=float)
            values = values[np.isfinite(values)]
            count = len(values)
            mean = float(values.mean()) if count else math.nan
            sd = float(values.std(ddof=1)) if count > 1 else math.nan
            if count > 1:
                half = float(stats.t.ppf(0.5 + confidence / 2.0, count - 1)) * sd / math.sqrt(count)
            else:
                half = math.nan
            # A share cannot fall below 0 or a count below 0, whatever the t interval says.
            floor, ceiling = possible_range(measure)
            row.update(
                {
                    f"{measure}.mean": mean,
                    f"{measure}.sd": sd,
                    f"{measure}.low": max(mean - half, floor),
                    f"{measure}.high": min(mean + half, ceiling),
                }
            )
        rows.append(row)
    return pd.DataFrame(rows)


def baseline_pairs(
    results: pd.DataFrame, baseline: str, group_by: Sequence[str] | None = None
) -> list[tuple[str, str]]:
    """Which group each group is compared with: ``(group, its baseline group)``, in order of appearance.

    ``baseline`` is a group (every other group is compared with it), or ``KEY=LABEL`` for a swept key:
    each group is compared with the group that has ``LABEL`` for ``KEY`` and the same labels for every
    other key that defines groups (``group_by``; default every swept key): ``portfolio_margin=fixed``
    compares each rule with the fixed rule under the same stress, never across stresses.

    >>> table = pd.DataFrame({"group": ["a, x", "b, x", "a, y", "b, y"],
    ...                       "label.rule": ["a", "b", "a", "b"], "label.stress": ["x", "x", "y", "y"]})
    >>> baseline_pairs(table, "rule=a")
    [('b, x', 'a, x'), ('b, y', 'a, y')]

    Raises:
        ValueError: ``baseline`` is neither a group nor ``KEY=LABEL`` of a swept key and one of its
            labels.
    """
    groups = results["group"].astype(str).drop_duplicates().tolist()
    if baseline in groups:
        return [(group, baseline) for group in groups if group != baseline]
    key, _, label = baseline.partition("=")
    column = f"label.{key}"
    label_columns = [c for c in results.columns if str(c).startswith("label.")]
    if not label or column not in label_columns:
        swept = ", ".join(c[len("label.") :] for c in label_columns) or "none"
        raise ValueError(
            f"baseline group {baseline!r} is not in the results; groups: {', '.join(groups)} "
            f"(or give KEY=LABEL for a swept key: {swept})"
        )
    labels = results.drop_duplicates("group").set_index(results.drop_duplicates("group")["group"].astype(str))
    if label not in set(labels[column].astype(str)):
        known = ", ".join(labels[column].astype(str).drop_duplicates())
        raise ValueError(f"baseline {baseline!r}: no group has {key}={label}; its labels: {known}")
    others = [c for c in label_columns if c != column]
    if group_by is not None:
        others = [c for c in others if c[len("label.") :] in group_by]
    pairs = []
    for group in groups:
        row = labels.loc[group]
        if str(row[column]) == label:
            continue
        match = labels[labels[column].astype(str) == label]
        for other in others:
            match = match[match[other].astype(str) == str(row[other])]
        if len(match):
            pairs.append((group, str(match.index[0])))
    return pairs


def paired_differences(
    results: pd.DataFrame,
    measures: Sequence[str],
    baseline: str,
    confidence: float = CONFIDENCE,
    group_by: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Each group minus a baseline group, seed by seed (common random numbers), with a paired t interval.

    Runs are paired on ``seed``, so the noise the groups
    share cancels: with the 20 seeds of the policy comparison, paired intervals are several times
    narrower than the difference of the two groups' own intervals.

    Args:
        results: The results table (``group``, ``seed``, ``status`` and the measures).
        measures: The columns to compare.
        baseline: The group every other group is compared with, or ``KEY=LABEL`` to compare each
            group with its own baseline group (:func:`baseline_pairs`).
        confidence: Level of the interval of the mean difference.
        group_by: The keys that define groups, for ``KEY=LABEL`` (default every swept key).

    Returns:
        One row per group other than the baseline, in order of appearance: ``group``, ``baseline`` (the
        group it is compared with), ``pairs`` (seeds with an ok run in both), and per measure
        ``<m>.diff``, ``<m>.low``, ``<m>.high`` (NaN with fewer than two pairs).

    Raises:
        ValueError: ``baseline`` is not a group of ``results`` (nor ``KEY=LABEL`` of one).
    """
    from scipy import stats

    pairs = baseline_pairs(results, baseline, group_by)
    ok = results[results["status"] == "ok"]
    by_group = {str(group): frame.set_index("seed") for group, frame in ok.groupby(ok["group"].astype(str))}
    empty = ok.iloc[:0].set_index("seed")
    rows = []
    for group, base in pairs:
        # Pairs are runs with the same seed (groups of two compared sweeps pair when their seeds agree).
        other, paired_base = by_group.get(group, empty), by_group.get(base, empty)
        common = other.index.intersection(paired_base.index)
        row: dict[str, Any] = {"group": group, "baseline": base, "pairs": len(common)}
        for measure in measures:
            left = pd.to_numeric(other.loc[common, measure], errors="coerce").to_numpy(dtype=float)
            right = pd.to_numeric(paired_base.loc[common, measure], errors="coerce").to_numpy(dtype=float)
            difference = left - right
            difference = difference[np.isfinite(difference)]
            count = len(difference)
            mean = float(difference.mean()) if count else math.nan
            if count > 1:
                sd = float(difference.std(ddof=1))
                half = float(stats.t.ppf(0.5 + confidence / 2.0, count - 1)) * sd / math.sqrt(count)
            else:
                half = math.nan
            row[f"{measure}.diff"] = mean
            row[f"{measure}.low"] = mean - half
            row[f"{measure}.high"] = mean + half
        rows.append(row)
    return pd.DataFrame(rows)


def format_group_table(summary: pd.DataFrame, measures: Sequence[str]) -> str:
    """A plain text table: one line per measure, one column per group, ``mean [low, high]``.

    Args:
        summary: The output of :func:`group_summary`.
        measures: The measures to show (those missing from ``summary`` are skipped).

    Returns:
        The table, with a first line of group names and a last line of run counts.
    """
    shown = [m for m in measures if f"{m}.mean" in summary.columns]
    header = ["measure", *[str(g) for g in summary["group"]]]
    lines = [header]
    for measure in shown:
        cells = [measure]
        for _, row in summary.iterrows():
            mean, low, high = row[f"{measure}.mean"], row[f"{measure}.low"], row[f"{measure}.high"]
            cell = _number(mean)
            if np.isfinite(low):
                cell += f" [{_number(low)}, {_number(high)}]"
            cells.append(cell)
        lines.append(cells)
    lines.append(["runs ok/failed", *[f"{r.ok}/{r.failed}" for r in summary.itertuples()]])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def format_difference_table(differences: pd.DataFrame, measures: Sequence[str]) -> str:
    """A plain text table of :func:`paired_differences`: one line per measure, ``diff [low, high]``.

    Args:
        differences: The output of :func:`paired_differences`.
        measures: The measures to show (those missing are skipped).

    Returns:
        The table, with a first line of group names and a last line of pair counts.
    """
    shown = [m for m in measures if f"{m}.diff" in differences.columns]
    lines = [["measure", *[str(g) for g in differences["group"]]]]
    for measure in shown:
        cells = [measure]
        for _, row in differences.iterrows():
            cell = _number(row[f"{measure}.diff"])
            if np.isfinite(row[f"{measure}.low"]):
                cell += f" [{_number(row[f'{measure}.low'])}, {_number(row[f'{measure}.high'])}]"
            cells.append(cell)
        lines.append(cells)
    lines.append(["pairs", *[str(int(p)) for p in differences["pairs"]]])
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def _number(value: float) -> str:
    return "n/a" if not np.isfinite(value) else f"{value:.4g}"
