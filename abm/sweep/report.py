"""The per-group report of one or more sweeps: summary table and figures.

For every group (the ``group_by`` keys of the sweep, e.g. the margin rule) and every summary measure, the
table gives the number of runs, the mean, the standard deviation and a 95% **Student t interval** for the
mean over seeds, ``mean +/- t(0.975, n - 1) * sd / sqrt(n)`` (no interval with fewer than two runs). Only
runs with status ``ok`` enter the figures; failed runs are counted per group.

Written files: ``summary_by_group.csv`` and ``.parquet`` (one row per group; columns ``<measure>.mean``,
``.sd``, ``.low``, ``.high``), ``figures/boxplots.png`` (liquidated notional, maximum drawdown and bad debt
per group) and, when the runs' time series are at hand (``--keep-runs``) or ``paths=True`` re-runs the
first seed of each group, ``figures/margin_paths.png`` (the maintenance rate of each group through the
stress). ``report.html`` puts the headline table, the paired differences and the figures on one
self-contained page (as a run's report). With a baseline group, ``differences_vs_<group>.csv``: every
other group minus the baseline, seed by seed (the seeds are common to all groups), with a paired Student t
interval of the mean difference.
Figures use matplotlib's object API (no pyplot).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from abm.headline import measure_of, possible_range
from abm.sweep.journal import (
    FIXED_COLUMNS,
    MANIFEST_NAME,
    RESULTS_NAME,
    ROWS_DIR,
    RUNS_DIR,
    read_rows,
    rows_to_frame,
    run_columns,
)

__all__ = [
    "BOXPLOT_MEASURES",
    "CONFIDENCE",
    "HEADLINE_MEASURES",
    "SweepReport",
    "baseline_pairs",
    "format_group_table",
    "headline_measures",
    "missing_runs",
    "group_summary",
    "load_sweep_results",
    "margin_paths",
    "paired_differences",
    "write_report",
]

CONFIDENCE = 0.95
BOXPLOT_MEASURES = ("liquidated_notional", "max_drawdown", "bad_debt")
# Printed on the terminal, when present; the files hold every measure.
REPORT_FILE = "report.html"
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
_FIGURE_DPI = 100


@dataclass
class SweepReport:
    """The report of one or more sweep directories.

    Attributes:
        results: Every run (all sweeps), with a ``sweep`` column when there are several.
        summary: One row per group (see :func:`group_summary`).
        measures: The measure columns summarised.
        files: The files written.
        differences: Each group minus the baseline, when one was given (see :func:`paired_differences`).
        missing: Group -> runs planned but absent (an interrupted sweep; see :func:`missing_runs`).
    """

    results: pd.DataFrame
    summary: pd.DataFrame
    measures: list[str]
    files: list[Path] = field(default_factory=list)
    differences: pd.DataFrame | None = None
    missing: dict[str, int] = field(default_factory=dict)


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


def write_report(
    sweep_dirs: Sequence[str | Path],
    out_dir: str | Path | None = None,
    *,
    paths: bool = False,
    figures: bool = True,
    baseline: str | None = None,
) -> SweepReport:
    """Summarise one or more sweep directories per group and draw the figures.

    Args:
        sweep_dirs: Sweep directories; with several, each group is prefixed by its sweep's name.
        out_dir: Where to write; default the sweep directory (required with several).
        paths: Re-run the first seed of each group (in this process) when its time series was not kept.
        figures: Draw the figures.
        baseline: A group to compare every other group with, seed by seed
            (``differences_vs_<baseline>.csv``, see :func:`paired_differences`).

    Returns:
        The report.

    Raises:
        FileNotFoundError: A directory is not a sweep directory.
        ValueError: Several directories and no ``out_dir``; or no results at all.
    """
    folders = [Path(d) for d in sweep_dirs]
    if out_dir is None:
        if len(folders) != 1:
            raise ValueError("comparing several sweep directories needs --out DIR for the report")
        out_dir = folders[0]
    out = Path(out_dir)
    loaded = [load_sweep_results(folder) for folder in folders]
    names = [manifest["name"] for _, manifest in loaded]
    if len(set(names)) < len(names):
        # Two runs of one sweep file: their directory names tell them apart.
        names = [folder.name for folder in folders]
    frames, manifests, parameter_columns = [], [], []
    for folder, name, (frame, manifest) in zip(folders, names, loaded, strict=True):
        frame = frame.copy()
        frame.insert(0, "sweep", name)
        frame["sweep_dir"] = str(folder)
        if len(folders) > 1:
            frame["group"] = name + "/" + frame["group"].astype(str)
        frames.append(frame)
        manifests.append(manifest)
        parameter_columns += manifest.get("parameter_columns", [])
    results = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    if results.empty:
        raise ValueError("no finished runs to report")
    measures = _measure_columns(results.drop(columns=["sweep_dir"]), parameter_columns)
    summary = group_summary(results, measures)
    # A bad baseline is bad input: found before anything is written.
    group_by = sorted({key for manifest in manifests for key in manifest.get("group_by", [])}) or None
    differences = (
        paired_differences(results, measures, baseline, group_by=group_by) if baseline is not None else None
    )
    out.mkdir(parents=True, exist_ok=True)
    files = [out / "summary_by_group.csv", out / "summary_by_group.parquet"]
    summary.to_csv(files[0], index=False, lineterminator="\n")
    summary.to_parquet(files[1], index=False)
    if differences is not None:
        path = out / f"differences_vs_{_file_safe(baseline)}.csv"
        differences.to_csv(path, index=False, lineterminator="\n")
        files.append(path)
    if figures:
        ok = results[results["status"] == "ok"]
        files.append(_boxplots(ok, summary["group"].tolist(), out / "figures" / "boxplots.png"))
        series = margin_paths(results, manifests, rerun=paths)
        if series:
            files.append(_margin_figure(series, manifests, out / "figures" / "margin_paths.png"))
    missing: dict[str, int] = {}
    for (frame, manifest), name in zip(loaded, names, strict=True):
        for group, count in missing_runs(frame, manifest).items():
            missing[f"{name}/{group}" if len(folders) > 1 else group] = count
    figures_written = [f for f in files if f.suffix == ".png"]
    files.append(
        _html_report(out, names, summary, differences, measures, figures_written, missing, manifests)
    )
    return SweepReport(
        results=results,
        summary=summary,
        measures=measures,
        files=files,
        differences=differences,
        missing=missing,
    )


def _interval_table(
    frame: pd.DataFrame, measures: Sequence[str], value: str, definitions: bool = True
) -> pd.DataFrame:
    # One row per measure, one column per group: "value [low, high]"; the unit and definition first.
    shown = [m for m in measures if f"{m}.{value}" in frame.columns]
    table: dict[str, list[str]] = {"measure": shown}
    entries = [measure_of(m) for m in shown]
    table["unit"] = [entry.unit if entry else "" for entry in entries]
    if definitions:
        table["definition"] = [entry.definition if entry else "" for entry in entries]
    for _, row in frame.iterrows():
        cells = []
        for measure in shown:
            cell = _number(row[f"{measure}.{value}"])
            if np.isfinite(row[f"{measure}.low"]):
                cell += f" [{_number(row[f'{measure}.low'])}, {_number(row[f'{measure}.high'])}]"
            cells.append(cell)
        table[str(row["group"])] = cells
    return pd.DataFrame(table)


def _html_report(
    out: Path,
    names: Sequence[str],
    summary: pd.DataFrame,
    differences: pd.DataFrame | None,
    measures: Sequence[str],
    figures: Sequence[Path],
    missing: Mapping[str, int] | None = None,
    manifests: Sequence[Mapping[str, Any]] = (),
) -> Path:
    from abm.report import html_table, write_table_report
    from abm.sweep.design import sweep_design

    headline = headline_measures(measures)
    table = _interval_table(summary, headline, "mean")
    counts = {
        "measure": "runs ok/failed",
        "unit": "runs",
        "definition": "runs of the group that finished / failed",
        **{str(r.group): f"{r.ok}/{r.failed}" for r in summary.itertuples()},
    }
    table = pd.concat([table, pd.DataFrame([counts])], ignore_index=True)
    extra = []
    for name, manifest in zip(names, manifests, strict=False):
        settings, points = sweep_design(manifest)  # what was run, so the tables can be read alone
        extra.append((f"What was run: {name}", html_table(settings) + html_table(points)))
    if differences is not None and len(differences):
        extra.append(
            (
                "Each group minus the baseline, seed by seed (mean [paired 95% t interval])",
                html_table(_interval_table(differences, headline, "diff")),
            )
        )
    # Every measure as rows (one column per group), not a row per group with four columns per measure.
    extra.append(
        (
            "Every measure (mean [95% interval], the sd in summary_by_group.csv)",
            html_table(_interval_table(summary, measures, "mean", definitions=False)),
        )
    )
    groups = ", ".join(f"{r.group} ({r.runs} runs)" for r in summary.itertuples())
    intro = (
        f"Sweep {', '.join(names)}. Groups: {groups}. "
        "Mean and 95% Student t interval over seeds, per group, clipped to the values a measure can take. "
        "Tables: summary_by_group.csv"
        + (" and differences_vs_*.csv" if differences is not None else "")
        + "."
    )
    if missing:
        lacking = ", ".join(f"{group} ({count} runs missing)" for group, count in missing.items())
        intro += f" Incomplete sweep (interrupted; finish it with --resume): {lacking}."
    captions = {
        "boxplots.png": "Per group, over seeds: liquidated notional, maximum drawdown, bad debt",
        "margin_paths.png": "The maintenance rate and the mark of one seed per group through the stress",
    }
    return write_table_report(
        out / REPORT_FILE,
        f"Sweep report: {', '.join(names)}",
        table,
        figures,
        intro=intro,
        captions=captions,
        extra_sections=extra,
    )


def _file_safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def margin_paths(
    results: pd.DataFrame, manifests: Sequence[dict[str, Any]], *, rerun: bool = False
) -> dict[str, pd.DataFrame]:
    """The time series of one run per group: the first seed of the group's first point.

    Args:
        results: The results table (with ``sweep_dir``).
        manifests: The sweeps' manifests, in the order their directories first appear in ``results``.
        rerun: Re-run the run in this process when its run directory was not kept.

    Returns:
        Group -> time series (``step``, ``mmr`` and the other recorded columns); groups without a series
        are left out.
    """
    by_dir = dict(zip(results.drop_duplicates("sweep_dir")["sweep_dir"], manifests, strict=True))
    series: dict[str, pd.DataFrame] = {}
    ok = results[results["status"] == "ok"]
    for group, members in ok.groupby("group", sort=False):
        first = members.sort_values(["point", "seed_index"], kind="stable").iloc[0]
        kept = Path(first["sweep_dir"]) / RUNS_DIR / first["run_id"] / "timeseries.parquet"
        if kept.is_file():
            series[group] = pd.read_parquet(kept)
        elif rerun:
            manifest = by_dir[first["sweep_dir"]]
            point = next(p for p in manifest["points"] if p["point"] == int(first["point"]))
            series[group] = _rerun(point["scenario"], int(first["seed"]))
    return series


def _rerun(scenario_data: dict[str, Any], seed: int) -> pd.DataFrame:
    from abm.config import scenario_from_dict
    from abm.runs import run_scenario

    scenario = scenario_from_dict({**scenario_data, "seed": seed})
    return run_scenario(scenario, seed=seed).timeseries


def _figure(rows: int, columns: int, size: tuple[float, float]):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=size, dpi=_FIGURE_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure, figure.subplots(rows, columns, squeeze=False)


def _boxplots(ok: pd.DataFrame, groups: list[str], path: Path) -> Path:
    measures = [m for m in BOXPLOT_MEASURES if m in ok.columns]
    longest = max((len(str(g)) for g in groups), default=1)
    # Tall enough for the slanted group names under the boxes (about 0.07 in per character).
    height = 3.5 + 0.07 * longest
    figure, axes = _figure(1, max(1, len(measures)), (max(4.0, 0.45 * len(groups)) * len(measures), height))
    for axis, measure in zip(axes[0], measures, strict=False):
        data = [
            pd.to_numeric(ok.loc[ok["group"] == g, measure], errors="coerce").dropna().to_numpy()
            for g in groups
        ]
        axis.boxplot(data, tick_labels=groups, showmeans=True)
        axis.set_title(measure.replace("_", " "))
        for label in axis.get_xticklabels():
            label.set_rotation(45)
            label.set_horizontalalignment("right")
            label.set_rotation_mode("anchor")
        axis.grid(True, axis="y", alpha=0.3)
    figure.suptitle("per group, over seeds (triangle: mean)")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return path


def _margin_figure(series: dict[str, pd.DataFrame], manifests: Sequence[dict[str, Any]], path: Path) -> Path:
    figure, axes = _figure(2, 1, (10.0, 7.0))
    rate_axis, price_axis = axes[0][0], axes[1][0]
    for group, frame in series.items():
        lines = rate_axis.plot(frame["step"], frame["mmr"], label=str(group), linewidth=1.2)
        price_axis.plot(frame["step"], frame["mark"], color=lines[0].get_color(), linewidth=1.0)
    shock_steps = {
        shock["step"]
        for manifest in manifests
        for point in manifest["points"][:1]
        for shock in point["scenario"].get("shocks", [])
    }
    for axis in (rate_axis, price_axis):
        for step in sorted(shock_steps):
            axis.axvline(step, color="tab:red", linestyle=":", linewidth=0.8)
        axis.grid(True, alpha=0.3)
    rate_axis.set_ylabel("maintenance rate")
    rate_axis.set_title("margin path per group (first seed; dotted: shocks)")
    rate_axis.legend(fontsize="small", ncols=2)
    price_axis.set_ylabel("mark price")
    price_axis.set_xlabel("step")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return path
