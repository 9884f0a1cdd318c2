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

This module draws the time series; the stress figures are drawn in :mod:`abm.stress_plots` and what
every figure shares (size, margins, panels, saving) is in :mod:`abm.plot_style`. Every figure
function is exported from here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from abm.figure_names import (
    FIGURE_NAMES,
    figure_caption,
    figure_order,
    has_figure,
    instrument_names,
)
from abm.plot_style import (
    _SHOCK_COLOUR,
    FIGURE_DPI,
    FIGURE_SIZE,
    AxesArgument,
    _as_shock,
    _bar_edges,
    _finish,
    _line,
    _mark_shocks,
    _panels,
    _present,
    _rows_of,
)
from abm.results import RunResult
from abm.stress_plots import (
    plot_cascade,
    plot_cascade_sizes,
    plot_depth,
    plot_leverage_distribution,
    plot_stress,
    stress_window,
)

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
