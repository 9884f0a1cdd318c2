"""Figures of one run, drawn with matplotlib's object API.

Every figure is a :class:`matplotlib.figure.Figure` on its own :class:`FigureCanvasAgg`: no pyplot,
no global figure registry, so drawing is safe in sweep worker processes and leaks nothing. Size,
dpi and margins are fixed so that figures of different runs line up side by side.

The time-series columns used are documented in :data:`abm.results.TIMESERIES_COLUMNS`; per-step
flows (``liquidated_notional``) are drawn as bars, levels and running totals (``insurance_fund``,
``open_interest``, ``bad_debt``, which the model records as the total to date) as lines.

With several instruments the time series is long (a row per step and instrument): ``price.png`` then
shows every instrument's mark relative to its start, with each one's liquidated notional below, and
``price_<name>.png`` and ``depth_<name>.png`` each instrument alone; ``margin.png`` and
``leverage.png`` draw a line per instrument (account-wide figures, the fund and mean leverage, once).

Each single-figure function (``plot_price`` ... ``plot_cascade_sizes``) returns its
:class:`~matplotlib.figure.Figure`, so that a notebook shows it inline, writes a PNG only when given a
``path``, and draws into your own axes with ``ax=``: one :class:`~matplotlib.axes.Axes` (a two-panel
figure then draws its upper panel only) or a sequence of one Axes per panel. The directory functions
below write every figure of a run and return the paths.

:func:`plot_run` draws the three time-series figures; :func:`plot_stress` the figures of the stress
itself: the order book depth as a heat map around it, the leverage distribution before and after it,
the cascade DAG drawn by round and the cascade size distribution on log-log axes. :func:`plot_all`
draws both sets (what a run directory holds) and :func:`plot_tables` does the same from the tables of
a run directory read back with :func:`abm.outputs.read_run_tables`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from abm.figure_names import (
    FIGURE_NAMES,
    figure_caption,
    figure_order,
    has_figure,
    instrument_names,
)
from abm.recorder import DEPTH_BUCKET_WIDTH, DEPTH_BUCKETS, depth_bucket_columns
from abm.results import RunResult

# The ax= argument of the single-figure functions: one Axes, one per panel, or None for a new figure.
AxesArgument = Axes | Sequence[Axes] | None

__all__ = [
    "FIGURE_SIZE",
    "FIGURE_DPI",
    "FIGURE_NAMES",
    "plot_run",
    "plot_stress",
    "plot_all",
    "plot_tables",
    "plot_price",
    "plot_margin",
    "plot_leverage",
    "plot_depth",
    "plot_leverage_distribution",
    "plot_cascade",
    "plot_cascade_sizes",
    "plot_instrument_prices",
    "figure_caption",
    "figure_order",
    "has_figure",
    "instrument_names",
    "stress_window",
]

FIGURE_SIZE = (10.0, 6.0)
FIGURE_DPI = 100
# Fixed margins (fractions of the figure) instead of a layout engine: matplotlib's constrained layout
# measured every label's extent before each save, 1.5 of 5.1 s for a 10,000-step run's seven figures.
# The labels here are short and the size is fixed, so fixed margins fit them (0.86: room for a
# colour bar on the right).
_MARGINS = {"left": 0.1, "right": 0.97, "top": 0.94, "bottom": 0.09, "hspace": 0.12}
_MARGINS_WITH_COLOURBAR = {**_MARGINS, "right": 0.86}
_SHOCK_COLOUR = "tab:red"
_STRESS_MARGIN_STEPS = 30  # steps shown either side of the stress in the depth heat map


def plot_run(result: RunResult, fig_dir: Path | str) -> list[Path]:
    """Draw the standard figures of a run into ``fig_dir``.

    Args:
        result: The finished run.
        fig_dir: Directory for the PNG files (created if missing).

    Returns:
        The paths written: ``price.png``, ``margin.png`` and ``leverage.png``.
    """
    return _time_series_figures(result.timeseries, list(result.scenario.shocks), Path(fig_dir))


def _time_series_figures(timeseries: pd.DataFrame, shocks: list[Any], fig_dir: Path) -> list[Path]:
    fig_dir.mkdir(parents=True, exist_ok=True)
    names = instrument_names(timeseries)
    paths = [fig_dir / "price.png"]
    if len(names) <= 1:
        plot_price(timeseries, shocks, paths[0])
    else:
        plot_instrument_prices(timeseries, shocks, paths[0])
        for name in names:
            path = fig_dir / f"price_{name}.png"
            title = f"{name}: price, mark and index"
            plot_price(_rows_of(timeseries, name), _shocks_on(shocks, name), path, title=title)
            paths.append(path)
    plot_margin(timeseries, fig_dir / "margin.png")
    plot_leverage(timeseries, fig_dir / "leverage.png")
    return [*paths, fig_dir / "margin.png", fig_dir / "leverage.png"]


def _rows_of(table: pd.DataFrame, name: str | None) -> pd.DataFrame:
    if name is None or "instrument" not in table:
        return table
    return table[table["instrument"].to_numpy() == name]


def _first_instrument(table: pd.DataFrame) -> pd.DataFrame:
    # Account-wide figures (fund, bad debt, mean leverage) are repeated on every instrument's row.
    names = instrument_names(table)
    return _rows_of(table, names[0]) if names else table


def _shocks_on(shocks: Sequence[Any], name: str) -> list[Any]:
    # A shock without an instrument acts on every one (a correlation regime, a margin change) or on
    # the first (a market shock of a one-instrument scenario).
    return [shock for shock in shocks if getattr(shock, "instrument", None) in (None, name)]


def plot_price(
    timeseries: pd.DataFrame,
    shocks: Iterable[Any] = (),
    path: Path | str | None = None,
    title: str = "Price, mark and index",
    *,
    ax: AxesArgument = None,
) -> Figure:
    """Plot price, mark and index, with liquidated notional per step below.

    Args:
        timeseries: One instrument's time series (``step``, ``price``, ``mark``, ``index``,
            ``liquidated_notional``).
        shocks: Scenario shocks (objects with ``step`` and optionally ``over_steps`` and ``type``);
            their steps are marked with vertical lines on both panels.
        path: The PNG file to write (none without it).
        title: The upper panel's title.
        ax: Where to draw (see the module docstring); a new figure by default.

    Returns:
        The figure drawn on.
    """
    figure, (price_axes, liquidation_axes) = _panels(ax, 2)
    steps = timeseries["step"].to_numpy()
    for column, label, style in (
        ("price", "last trade", "-"),
        ("mark", "mark", "-"),
        ("index", "index", "--"),
    ):
        _line(price_axes, steps, timeseries[column], label=label, linestyle=style)
    price_axes.set_ylabel("price")
    price_axes.set_title(title)

    if liquidation_axes is not None:
        notional = (
            pd.to_numeric(timeseries["liquidated_notional"], errors="coerce").fillna(0.0).to_numpy(float)
        )
        if len(steps):
            # One filled step outline instead of a bar per step: bar() and stairs() cost seconds on long runs.
            edges = _bar_edges(steps)
            liquidation_axes.fill_between(
                np.repeat(edges, 2)[1:-1], np.repeat(notional, 2), color="tab:orange", linewidth=0
            )
        liquidation_axes.set_ylabel("liquidated notional")
        liquidation_axes.set_xlabel("step")
    else:
        price_axes.set_xlabel("step")

    shock_list = list(shocks)
    for axes in _present(price_axes, liquidation_axes):
        _mark_shocks(axes, shock_list)
    if shock_list:
        price_axes.plot([], [], color=_SHOCK_COLOUR, linestyle=":", label="shock")
    price_axes.legend(loc="best", fontsize="small")
    return _finish(figure, path)


def plot_instrument_prices(
    timeseries: pd.DataFrame,
    shocks: Iterable[Any] = (),
    path: Path | str | None = None,
    *,
    ax: AxesArgument = None,
) -> Figure:
    """Every instrument's mark relative to its first step, with each one's liquidated notional below.

    The overview of a multi-instrument run: a crash in one instrument and what it does to the others
    on one set of axes (``price_<name>.png`` has each instrument's own price, mark and index).

    Args:
        timeseries: The long-form time series (``step``, ``instrument``, ``mark``,
            ``liquidated_notional``).
        shocks: Scenario shocks (dotted lines).
        path: The PNG file to write (none without it).
        ax: Where to draw (see the module docstring); a new figure by default.

    Returns:
        The figure drawn on.
    """
    figure, (price_axes, liquidation_axes) = _panels(ax, 2)
    for name in instrument_names(timeseries):
        rows = _rows_of(timeseries, name)
        steps = rows["step"].to_numpy()
        mark = pd.to_numeric(rows["mark"], errors="coerce").to_numpy(dtype=float)
        start = mark[np.isfinite(mark)][0] if np.isfinite(mark).any() else np.nan
        (line,) = price_axes.plot(steps, (mark / start - 1.0) * 100.0, linewidth=1.0, label=name)
        if liquidation_axes is not None:
            notional = pd.to_numeric(rows["liquidated_notional"], errors="coerce").fillna(0.0).to_numpy(float)
            liquidation_axes.plot(steps, notional, linewidth=1.0, color=line.get_color(), label=name)
    price_axes.axhline(0.0, color="0.7", linewidth=0.6)
    price_axes.set_ylabel("mark, % from its start")
    price_axes.set_title("Every instrument's mark")
    if liquidation_axes is not None:
        liquidation_axes.set_ylabel("liquidated notional")
        liquidation_axes.set_xlabel("step")
    shock_list = list(shocks)
    for axes in _present(price_axes, liquidation_axes):
        _mark_shocks(axes, shock_list)
    if shock_list:
        price_axes.plot([], [], color=_SHOCK_COLOUR, linestyle=":", label="shock")
    price_axes.legend(loc="best", fontsize="small")
    return _finish(figure, path)


def plot_margin(
    timeseries: pd.DataFrame, path: Path | str | None = None, *, ax: AxesArgument = None
) -> Figure:
    """Plot the margin rates in force, and the insurance fund with cumulative bad debt below.

    Args:
        timeseries: The run's time series (``step``, ``imr``, ``mmr``, ``insurance_fund``,
            ``bad_debt`` as the running total).
        path: The PNG file to write (none without it).
        ax: Where to draw (see the module docstring); a new figure by default.

    Returns:
        The figure drawn on.
    """
    figure, (rate_axes, fund_axes) = _panels(ax, 2)
    names = instrument_names(timeseries)
    for name in names if len(names) > 1 else [None]:
        rows = _rows_of(timeseries, name)
        steps = rows["step"].to_numpy()
        suffix = f" ({name})" if name is not None else ""
        _line(rate_axes, steps, rows["imr"] * 100.0, label=f"initial margin rate{suffix}")
        _line(rate_axes, steps, rows["mmr"] * 100.0, label=f"maintenance margin rate{suffix}")
    rate_axes.set_ylabel("rate (% of notional)")
    rate_axes.set_title("Margin rates in force")
    rate_axes.legend(loc="best", fontsize="small")

    if fund_axes is None:
        rate_axes.set_xlabel("step")
        return _finish(figure, path)
    account_wide = _first_instrument(timeseries)
    steps = account_wide["step"].to_numpy()
    _line(fund_axes, steps, account_wide["insurance_fund"], label="insurance fund")
    _line(fund_axes, steps, account_wide["bad_debt"], label="cumulative bad debt")
    fund_axes.set_ylabel("cash")
    fund_axes.set_xlabel("step")
    fund_axes.legend(loc="best", fontsize="small")
    return _finish(figure, path)


def plot_leverage(
    timeseries: pd.DataFrame, path: Path | str | None = None, *, ax: AxesArgument = None
) -> Figure:
    """Plot mean leverage and open interest over time.

    Args:
        timeseries: The run's time series (``step``, ``mean_leverage``, ``open_interest``).
        path: The PNG file to write (none without it).
        ax: Where to draw (see the module docstring); a new figure by default.

    Returns:
        The figure drawn on.
    """
    figure, (leverage_axes, interest_axes) = _panels(ax, 2, height_ratios=(1, 1))
    account_wide = _first_instrument(timeseries)
    _line(
        leverage_axes, account_wide["step"].to_numpy(), account_wide["mean_leverage"], label="mean leverage"
    )
    leverage_axes.set_ylabel("notional / equity")
    leverage_axes.set_title("Leverage and open interest")
    if interest_axes is None:
        leverage_axes.set_xlabel("step")
        return _finish(figure, path)
    names = instrument_names(timeseries)
    if len(names) > 1:
        for name in names:
            rows = _rows_of(timeseries, name)
            _line(interest_axes, rows["step"].to_numpy(), rows["open_interest"], label=name)
        interest_axes.legend(loc="best", fontsize="small")
    else:
        steps = timeseries["step"].to_numpy()
        _line(interest_axes, steps, timeseries["open_interest"], label="open interest", color="tab:green")
    interest_axes.set_ylabel("open interest (lots)")
    interest_axes.set_xlabel("step")
    return _finish(figure, path)


def plot_all(result: RunResult, fig_dir: Path | str) -> list[Path]:
    """Draw every figure of a run: :func:`plot_run` and then :func:`plot_stress`.

    Args:
        result: The finished run (depth profile and account snapshots are read from ``result.extra``).
        fig_dir: Directory for the PNG files (created if missing).

    Returns:
        The paths written.
    """
    paths = plot_run(result, fig_dir)
    paths += plot_stress(
        result.timeseries,
        result.scenario.shocks,
        # The graph when someone built it; else the table, which draws the same without building it.
        result.cascade if result.has_cascade_graph else result.liquidations,
        fig_dir,
        depth_profile=result.extra.get("depth_profile"),
        snapshots=result.extra.get("account_snapshots"),
    )
    return paths


def plot_tables(run: Mapping[str, Any], shocks: Iterable[Any], fig_dir: Path | str) -> list[Path]:
    """Draw every figure a run directory's tables allow (:func:`abm.outputs.read_run_tables`' mapping).

    Args:
        run: With ``timeseries`` and optionally ``cascade``, ``book_depth``, ``account_snapshots``.
        shocks: Scenario shocks (objects or mappings with ``step``, optionally ``over_steps``).
        fig_dir: Directory for the PNG files (created if missing).

    Returns:
        The paths written.
    """
    fig_dir = Path(fig_dir)
    shock_list = [_as_shock(shock) for shock in shocks]
    timeseries = run["timeseries"]
    paths = _time_series_figures(timeseries, shock_list, fig_dir)
    cascade = run.get("cascade")
    if cascade is None:
        cascade = run.get("liquidations")
    paths += plot_stress(
        timeseries,
        shock_list,
        cascade if cascade is not None else nx.DiGraph(),
        fig_dir,
        depth_profile=run.get("book_depth"),
        snapshots=run.get("account_snapshots"),
    )
    return paths


def plot_stress(
    timeseries: pd.DataFrame,
    shocks: Iterable[Any],
    cascade: nx.DiGraph | pd.DataFrame,
    fig_dir: Path | str,
    *,
    depth_profile: pd.DataFrame | None = None,
    snapshots: pd.DataFrame | None = None,
) -> list[Path]:
    """Draw the figures of the stress: depth heat map, leverage distribution, cascade DAG and sizes.

    Args:
        timeseries: The run's time series.
        shocks: Scenario shocks.
        cascade: The cascade DAG, or the liquidations table it is built from (the same figures).
        fig_dir: Directory for the PNG files (created if missing).
        depth_profile: The book depth table (``depth.png`` is skipped without it).
        snapshots: The account snapshots (``leverage_distribution.png`` is skipped without them).

    Returns:
        The paths written: ``depth.png``, ``leverage_distribution.png``, ``cascade.png``,
        ``cascade_sizes.png`` (those whose data exist).
    """
    fig_dir = Path(fig_dir)
    fig_dir.mkdir(parents=True, exist_ok=True)
    shock_list = list(shocks)
    paths = []
    if depth_profile is not None:
        names = instrument_names(timeseries)
        if len(names) > 1:
            window = stress_window(timeseries, shock_list)  # one window for every book, side by side
            for name in names:
                path = fig_dir / f"depth_{name}.png"
                plot_depth(
                    _rows_of(depth_profile, name),
                    _rows_of(timeseries, name),
                    shock_list,
                    path,
                    title=f"{name}: order book depth",
                    window=window,
                )
                paths.append(path)
        else:
            plot_depth(depth_profile, timeseries, shock_list, fig_dir / "depth.png")
            paths.append(fig_dir / "depth.png")
    if snapshots is not None:
        plot_leverage_distribution(snapshots, fig_dir / "leverage_distribution.png")
        paths.append(fig_dir / "leverage_distribution.png")
    plot_cascade(cascade, fig_dir / "cascade.png")
    plot_cascade_sizes(cascade, fig_dir / "cascade_sizes.png")
    paths += [fig_dir / "cascade.png", fig_dir / "cascade_sizes.png"]
    return paths


def stress_window(
    timeseries: pd.DataFrame, shocks: Iterable[Any], margin: int = _STRESS_MARGIN_STEPS
) -> tuple[int, int]:
    """The steps around the stress: from the first shock to the last liquidation, ``margin`` either side.

    Without shocks the first liquidation starts the window; without either, the whole run is shown.

    Args:
        timeseries: The run's time series (``step``, ``liquidations``).
        shocks: Scenario shocks.
        margin: Steps added either side.

    Returns:
        ``(first, last)`` steps, inclusive, within the run.
    """
    steps = timeseries["step"].to_numpy()
    if len(steps) == 0:
        return 0, 0
    first_step, last_step = int(steps.min()), int(steps.max())
    liquidated = steps[pd.to_numeric(timeseries["liquidations"], errors="coerce").fillna(0).to_numpy() > 0]
    starts = [int(getattr(shock, "step", shock)) for shock in shocks]
    if len(liquidated):
        starts.append(int(liquidated.min()))
    if not starts:
        return first_step, last_step
    start = min(starts)
    end = int(liquidated.max()) if len(liquidated) else max(starts)
    return max(first_step, start - margin), min(last_step, max(end, start) + margin)


def plot_depth(
    depth_profile: pd.DataFrame,
    timeseries: pd.DataFrame,
    shocks: Iterable[Any] = (),
    path: Path | str | None = None,
    title: str = "Order book depth",
    window: tuple[int, int] | None = None,
    *,
    ax: AxesArgument = None,
) -> Figure:
    """Heat map of the resting lots by distance from the mid, over the steps around the stress.

    Args:
        depth_profile: One book's ``step`` and the bucket columns of
            :func:`abm.recorder.depth_bucket_columns`.
        timeseries: The same instrument's time series (for the window and the liquidations below).
        shocks: Scenario shocks (dotted lines).
        path: The PNG file to write (none without it).
        title: The heat map's title (the steps shown are appended).
        window: The steps shown (default: :func:`stress_window` of ``timeseries``).
        ax: Where to draw (see the module docstring); a new figure by default.

    Returns:
        The figure drawn on.
    """
    figure, (depth_axes, liquidation_axes) = _panels(ax, 2, height_ratios=(3, 1))
    first, last = window if window is not None else stress_window(timeseries, shocks)
    window = depth_profile[(depth_profile["step"] >= first) & (depth_profile["step"] <= last)]
    lots = window[depth_bucket_columns()].to_numpy(dtype=float).T
    steps = window["step"].to_numpy(dtype=float)
    edges_pct = np.arange(-DEPTH_BUCKETS, DEPTH_BUCKETS + 1) * DEPTH_BUCKET_WIDTH * 100.0
    if len(steps) and np.nanmax(lots, initial=0.0) > 0:
        # Log colours: a thin book is the story, so the few-lot buckets must stay visible.
        shown = np.where(lots > 0, lots, np.nan)
        mesh = depth_axes.pcolormesh(
            _bar_edges(steps), edges_pct, shown, norm=LogNorm(vmin=1.0, vmax=np.nanmax(lots)), cmap="viridis"
        )
        if ax is None:  # our figure: the bar beside the panel, which keeps its width (x aligned below)
            figure.subplots_adjust(**_MARGINS_WITH_COLOURBAR)
            bar_axes = depth_axes.inset_axes((1.02, 0.0, 0.025, 1.0))
            figure.colorbar(mesh, cax=bar_axes, label="resting lots")
        else:
            figure.colorbar(mesh, ax=depth_axes, label="resting lots")
    else:
        depth_axes.text(0.5, 0.5, "empty book", transform=depth_axes.transAxes, ha="center")
    depth_axes.axhline(0.0, color="white", linewidth=0.8)
    depth_axes.set_ylabel("distance from mid (%)\nbids below, asks above")
    depth_axes.set_title(f"{title}, steps {first}-{last}")

    if liquidation_axes is not None:
        in_window = (timeseries["step"] >= first) & (timeseries["step"] <= last)
        shown_series = timeseries[in_window]
        _line(
            liquidation_axes,
            shown_series["step"].to_numpy(),
            shown_series["liquidations"],
            label="liquidations",
        )
        liquidation_axes.set_ylabel("liquidations")
        liquidation_axes.set_xlabel("step")
    else:
        depth_axes.set_xlabel("step")
    for axes in _present(depth_axes, liquidation_axes):
        _mark_shocks(axes, [s for s in shocks if first <= getattr(s, "step", s) <= last])
    return _finish(figure, path)


def plot_leverage_distribution(
    snapshots: pd.DataFrame, path: Path | str | None = None, *, ax: AxesArgument = None
) -> Figure:
    """Histograms of the leveraged traders' leverage before the stress and at the end.

    Args:
        snapshots: Account snapshots (``snapshot``, ``kind``, ``position``, ``leverage``); the
            ``before_stress`` and ``end`` snapshots are drawn. Accounts with a position and no
            positive equity are counted in the legend as underwater.
        path: The PNG file to write (none without it).
        ax: Where to draw (see the module docstring); a new figure by default.

    Returns:
        The figure drawn on.
    """
    figure, (axes,) = _panels(ax, 1)
    traders = _account_leverage(snapshots[snapshots["kind"] == "leveraged_trader"])
    open_leverage = traders["leverage"].to_numpy(dtype=float)[traders["position"].to_numpy() != 0]
    finite = open_leverage[np.isfinite(open_leverage) & (open_leverage > 0)]
    if len(finite):
        bins = np.geomspace(max(finite.min() * 0.9, 1e-3), finite.max() * 1.1, 31)
    else:
        bins = np.geomspace(1.0, 100.0, 31)
    for label, colour, name in (
        ("before_stress", "tab:blue", "before the stress"),
        ("end", "tab:red", "end"),
    ):
        rows = traders[traders["snapshot"] == label]
        if rows.empty:
            continue
        step = int(rows["step"].iloc[0])
        open_rows = rows[rows["position"].to_numpy() != 0]
        leverage = open_rows["leverage"].to_numpy(dtype=float)
        underwater = int(np.sum(~np.isfinite(leverage)))
        values = leverage[np.isfinite(leverage) & (leverage > 0)]
        axes.hist(
            values,
            bins=bins,
            alpha=0.55,
            color=colour,
            label=f"{name} (step {step}): {len(open_rows)} of {len(rows)} open, {underwater} underwater",
        )
    axes.set_xscale("log")
    axes.set_xlabel("leverage (notional / equity)")
    axes.set_ylabel("traders")
    axes.set_title("Leverage of the leveraged traders with an open position")
    axes.legend(loc="best", fontsize="small")
    return _finish(figure, path)


def _account_leverage(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per account and snapshot: ``position`` 1 when it holds any, ``leverage`` over its positions.

    A long-form snapshot has a row per account and instrument, each with the position's notional over
    the account's equity; the account's leverage is their sum. One instrument: the rows as they are.
    """
    if len(instrument_names(rows)) <= 1:
        return rows
    grouped = rows.groupby(["snapshot", "account_id"], sort=False)
    accounts = grouped.agg(
        step=("step", "first"), equity=("equity", "first"), notional=("notional", "sum")
    ).reset_index()
    accounts["position"] = grouped["position"].agg(lambda lots: int((lots != 0).any())).to_numpy()
    equity = accounts["equity"].to_numpy(dtype=float)
    notional = accounts["notional"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        accounts["leverage"] = np.where(equity > 0, notional / equity, np.where(notional > 0, np.nan, 0.0))
    return accounts


def plot_cascade(
    cascade: nx.DiGraph | pd.DataFrame, path: Path | str | None = None, *, ax: AxesArgument = None
) -> Figure:
    """Draw the cascade DAG: x = step and round, y = the liquidated accounts in order.

    Every (step, round) with a liquidation gets a column, in time order, so the rounds of a spiral are
    legible however far apart the steps are; rows are the liquidated accounts sorted by id. Node size
    follows notional, colour the round; edges go from cause (left) to effect (right).

    Args:
        cascade: The cascade DAG (node attributes ``step``, ``round``, ``account``, ``notional``), or
            the liquidations table it is built from: the same figure, without building the graph.
        path: The PNG file to write (none without it).
        ax: Where to draw (see the module docstring); a new figure by default.

    Returns:
        The figure drawn on.
    """
    from matplotlib.collections import LineCollection

    figure, (axes,) = _panels(ax, 1)
    nodes, step, round_of, account, notional, parent, child = _cascade_arrays(cascade)
    if len(nodes) == 0:
        axes.text(0.5, 0.5, "no liquidations", transform=axes.transAxes, ha="center")
        axes.set_axis_off()
        return _finish(figure, path)
    stages, column = np.unique(np.column_stack([step, round_of]), axis=0, return_inverse=True)
    accounts, row = np.unique(account, return_inverse=True)
    x, y = column.reshape(-1).astype(float), row.reshape(-1).astype(float)
    scale = notional / notional.max() if notional.max() > 0 else np.ones_like(notional)
    if len(parent):
        # Straight lines, no arrow heads: a cause is always in an earlier column, and one arrow patch
        # per edge costs seconds on a real spiral (thousands of links).
        segments = np.stack(
            [np.column_stack([x[parent], y[parent]]), np.column_stack([x[child], y[child]])], 1
        )
        edges = LineCollection(segments, colors="0.6", linewidths=0.4, antialiaseds=(1,), zorder=1)
        axes.add_collection(edges)
        # A margin of 5% of the links' extent on each side, as networkx's drawing leaves.
        ends = segments.reshape(-1, 2)
        low, high = ends.min(axis=0), ends.max(axis=0)
        pad = 0.05 * (high - low)
        axes.update_datalim([low - pad, high + pad])
        axes.autoscale_view()
    # Markers without an edge line, their area grown by what the line added (scatter's default edge:
    # 1.5 pt of the face colour): the same discs, drawn in a third of the time (100,000 of them:
    # 1.3 against 3.7 s).
    edge = 1.5
    area = (np.sqrt(10 + 60 * scale) + edge) ** 2
    axes.scatter(x, y, s=area, c=round_of, cmap="plasma", marker="o", linewidths=0, zorder=2)
    ticks = _thin_ticks(len(stages), 12)
    labels = [f"{stages[i][0]}/{stages[i][1]}" for i in ticks]
    axes.set_xticks(ticks, labels, rotation=45, fontsize="small")
    axes.tick_params(left=True, bottom=True, labelleft=True, labelbottom=True)
    axes.set_xlabel("step / round")
    axes.set_ylabel(f"liquidated accounts ({len(accounts)}, by id)")
    axes.set_title(f"Liquidation cascade: {len(nodes)} liquidations, {len(parent)} links")
    return _finish(figure, path)


def _cascade_arrays(cascade: nx.DiGraph | pd.DataFrame):
    # Sorted nodes with their step, round, account and notional, and the edges as node positions.
    if isinstance(cascade, pd.DataFrame):
        from abm.cascades import TableCascade

        table = TableCascade(cascade)
        step = np.where(table.has_row, table.step, 0)  # as a graph node without attributes is drawn
        return table.nodes, step, table.round, table.account, table.notional, table.parent, table.child
    nodes = sorted(cascade.nodes)
    attributes = cascade.nodes
    # Graphs read back or built by other code may lack attributes: a missing step or round is 0 and a
    # missing account is the node itself.
    step = np.array([int(attributes[n].get("step", 0)) for n in nodes], dtype=np.int64)
    round_of = np.array([int(attributes[n].get("round", 0)) for n in nodes], dtype=np.int64)
    account = np.array([attributes[n].get("account", n) for n in nodes])
    notional = np.array([attributes[n].get("notional", 0.0) for n in nodes], dtype=float)
    position = {node: i for i, node in enumerate(nodes)}
    parent = np.array([position[a] for a, _ in cascade.edges], dtype=np.int64)
    child = np.array([position[b] for _, b in cascade.edges], dtype=np.int64)
    return np.asarray(nodes), step, round_of, account, notional, parent, child


def plot_cascade_sizes(
    cascade: nx.DiGraph | pd.DataFrame, path: Path | str | None = None, *, ax: AxesArgument = None
) -> Figure:
    """The cascade size distribution on log-log axes: counts per size and the survival function.

    Args:
        cascade: The cascade DAG, or the liquidations table it is built from (the same figure).
        path: The PNG file to write (none without it).
        ax: Where to draw (see the module docstring); a new figure by default.

    Returns:
        The figure drawn on.
    """
    figure, (axes,) = _panels(ax, 1)
    if isinstance(cascade, pd.DataFrame):
        from abm.cascades import TableCascade

        sizes, counts = np.unique(TableCascade(cascade).components()["size"], return_counts=True)
        distribution = {int(size): int(count) for size, count in zip(sizes, counts, strict=True)}
    else:
        from abm.network import cascade_size_distribution  # networkx measures live in abm.network

        distribution = cascade_size_distribution(cascade)
    if not distribution:
        axes.text(0.5, 0.5, "no cascades", transform=axes.transAxes, ha="center")
        axes.set_axis_off()
        return _finish(figure, path)
    sizes = np.array(list(distribution), dtype=float)
    counts = np.array(list(distribution.values()), dtype=float)
    # P(S >= s): the share of cascades at least this large, read from the largest size down.
    survival = np.cumsum(counts[::-1])[::-1] / counts.sum()
    axes.loglog(sizes, counts, "o", label="cascades of this size")
    axes.loglog(sizes, survival * counts.sum(), drawstyle="steps-post", label="cascades at least this large")
    axes.set_xlabel("cascade size (liquidations)")
    axes.set_ylabel("cascades")
    axes.set_title(f"Cascade sizes: {int(counts.sum())} cascades, largest {int(sizes.max())}")
    axes.legend(loc="best", fontsize="small")
    return _finish(figure, path)


def _thin_ticks(count: int, most: int) -> list[int]:
    step = max(1, int(np.ceil(count / most)))
    return list(range(0, count, step))


def _as_shock(shock: Any) -> Any:
    # Shocks read back from a manifest are plain mappings; the drawing code reads attributes.
    if isinstance(shock, Mapping):
        return SimpleNamespace(**shock)
    return shock


def _panels(
    ax: AxesArgument, count: int, height_ratios: Sequence[float] = (2, 1)
) -> tuple[Figure, tuple[Any, ...]]:
    """The figure and one Axes per panel: new ones, or the caller's (``None`` for a panel left out)."""
    if ax is None:
        figure = Figure(figsize=FIGURE_SIZE, dpi=FIGURE_DPI)
        figure.subplots_adjust(**_MARGINS)
        FigureCanvasAgg(figure)
        if count == 1:
            return figure, (figure.subplots(),)
        panels = figure.subplots(count, 1, sharex=True, gridspec_kw={"height_ratios": list(height_ratios)})
        return figure, tuple(panels)
    if isinstance(ax, Axes):
        # One Axes for a two-panel figure: the upper (main) panel only.
        return ax.figure, (ax, *([None] * (count - 1)))
    given = tuple(ax)
    if len(given) != count or not all(isinstance(each, Axes) for each in given):
        raise ValueError(
            f"ax: this figure has {count} panel(s): give one Axes, or a sequence of {count} Axes"
        )
    return given[0].figure, given


def _present(*panels: Axes | None) -> list[Axes]:
    return [panel for panel in panels if panel is not None]


def _finish(figure: Figure, path: Path | str | None) -> Figure:
    if path is not None:
        _save(figure, path)
    return figure


def _line(axes: Axes, steps: np.ndarray, values: pd.Series, **style: Any) -> None:
    data = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    # A single point draws no line segment: give it a marker so a one-step run still shows.
    marker = "o" if len(data) == 1 else None
    axes.plot(steps, data, marker=marker, linewidth=1.0, **style)


def _bar_edges(steps: np.ndarray) -> np.ndarray:
    # Bar edges halfway between consecutive steps, half a step beyond the first and last.
    centres = np.asarray(steps, dtype=float)
    if len(centres) == 1:
        return np.array([centres[0] - 0.5, centres[0] + 0.5])
    midpoints = (centres[1:] + centres[:-1]) / 2.0
    first = centres[0] - (midpoints[0] - centres[0])
    last = centres[-1] + (centres[-1] - midpoints[-1])
    return np.concatenate([[first], midpoints, [last]])


def _mark_shocks(axes: Axes, shocks: Sequence[Any]) -> None:
    for shock in shocks:
        start = getattr(shock, "step", shock)
        span = getattr(shock, "over_steps", 1) or 1
        axes.axvline(start, color=_SHOCK_COLOUR, linestyle=":", linewidth=1.0)
        if span > 1:
            axes.axvspan(start, start + span, color=_SHOCK_COLOUR, alpha=0.08, linewidth=0)


def _save(figure: Figure, path: Path | str) -> Path:
    path = Path(path)
    # No "Software" tag: the PNG bytes then depend on the drawing alone.
    figure.savefig(path, dpi=FIGURE_DPI, format="png", metadata={"Software": None})
    return path
