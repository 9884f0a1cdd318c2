"""The per-group report of one or more sweeps: summary table and figures.

The figures it reports are computed in :mod:`abm.sweep.statistics` (its functions are exported from
here as well); this module writes the files, draws the figures and lays out ``report.html``.

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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from abm.headline import measure_of
from abm.sweep.journal import RUNS_DIR
from abm.sweep.statistics import (
    CONFIDENCE,
    HEADLINE_MEASURES,
    _measure_columns,
    _number,
    baseline_pairs,
    format_group_table,
    group_summary,
    headline_measures,
    load_sweep_results,
    missing_runs,
    paired_differences,
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

BOXPLOT_MEASURES = ("liquidated_notional", "max_drawdown", "bad_debt")
REPORT_FILE = "report.html"
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
