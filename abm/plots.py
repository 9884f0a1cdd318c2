"""Figures of one run, drawn with matplotlib's object API.

Every figure is a :class:`matplotlib.figure.Figure` on its own :class:`FigureCanvasAgg`: no pyplot,
no global figure registry, so drawing is safe in sweep worker processes and leaks nothing. Size and
dpi are fixed so that figures of different runs line up side by side.

The time-series columns used are documented in :data:`abm.results.TIMESERIES_COLUMNS`; per-step
flows (``liquidated_notional``) are drawn as bars, levels and running totals (``insurance_fund``,
``open_interest``, ``bad_debt``, which the model records as the total to date) as lines.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from abm.results import RunResult

__all__ = ["FIGURE_SIZE", "FIGURE_DPI", "plot_run", "plot_price", "plot_margin", "plot_leverage"]

FIGURE_SIZE = (10.0, 6.0)
FIGURE_DPI = 100
_SHOCK_COLOUR = "tab:red"


def plot_run(result: RunResult, fig_dir: Path | str) -> list[Path]:
    """Draw the standard figures of a run into ``fig_dir``.

    Args:
        result: The finished run.
        fig_dir: Directory for the PNG files (created if missing).

    Returns:
        The paths written: ``price.png``, ``margin.png`` and ``leverage.png``.
    """
    fig_dir = Path(fig_dir)
    fig_dir.mkdir(parents=True, exist_ok=True)
    return [
        plot_price(result.timeseries, result.scenario.shocks, fig_dir / "price.png"),
        plot_margin(result.timeseries, fig_dir / "margin.png"),
        plot_leverage(result.timeseries, fig_dir / "leverage.png"),
    ]


def plot_price(timeseries: pd.DataFrame, shocks: Iterable[Any], path: Path | str) -> Path:
    """Plot price, mark and index, with liquidated notional per step below.

    Args:
        timeseries: The run's time series (``step``, ``price``, ``mark``, ``index``,
            ``liquidated_notional``).
        shocks: Scenario shocks (objects with ``step`` and optionally ``over_steps`` and ``type``);
            their steps are marked with vertical lines on both panels.
        path: The PNG file to write.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    figure, (price_axes, liquidation_axes) = _two_panels()
    steps = timeseries["step"].to_numpy()
    for column, label, style in (
        ("price", "last trade", "-"),
        ("mark", "mark", "-"),
        ("index", "index", "--"),
    ):
        _line(price_axes, steps, timeseries[column], label=label, linestyle=style)
    price_axes.set_ylabel("price")
    price_axes.set_title("Price, mark and index")

    notional = pd.to_numeric(timeseries["liquidated_notional"], errors="coerce").fillna(0.0).to_numpy(float)
    if len(steps):
        # One filled step outline instead of a bar per step: bar() and stairs() cost seconds on long runs.
        edges = _bar_edges(steps)
        liquidation_axes.fill_between(
            np.repeat(edges, 2)[1:-1], np.repeat(notional, 2), color="tab:orange", linewidth=0
        )
    liquidation_axes.set_ylabel("liquidated notional")
    liquidation_axes.set_xlabel("step")

    shock_list = list(shocks)
    for axes in (price_axes, liquidation_axes):
        _mark_shocks(axes, shock_list)
    if shock_list:
        price_axes.plot([], [], color=_SHOCK_COLOUR, linestyle=":", label="shock")
    price_axes.legend(loc="best", fontsize="small")
    return _save(figure, path)


def plot_margin(timeseries: pd.DataFrame, path: Path | str) -> Path:
    """Plot the margin rates in force, and the insurance fund with cumulative bad debt below.

    Args:
        timeseries: The run's time series (``step``, ``imr``, ``mmr``, ``insurance_fund``,
            ``bad_debt`` as the running total).
        path: The PNG file to write.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    figure, (rate_axes, fund_axes) = _two_panels()
    steps = timeseries["step"].to_numpy()
    _line(rate_axes, steps, timeseries["imr"] * 100.0, label="initial margin rate")
    _line(rate_axes, steps, timeseries["mmr"] * 100.0, label="maintenance margin rate")
    rate_axes.set_ylabel("rate (% of notional)")
    rate_axes.set_title("Margin rates in force")
    rate_axes.legend(loc="best", fontsize="small")

    _line(fund_axes, steps, timeseries["insurance_fund"], label="insurance fund")
    _line(fund_axes, steps, timeseries["bad_debt"], label="cumulative bad debt")
    fund_axes.set_ylabel("cash")
    fund_axes.set_xlabel("step")
    fund_axes.legend(loc="best", fontsize="small")
    return _save(figure, path)


def plot_leverage(timeseries: pd.DataFrame, path: Path | str) -> Path:
    """Plot mean leverage and open interest over time.

    Args:
        timeseries: The run's time series (``step``, ``mean_leverage``, ``open_interest``).
        path: The PNG file to write.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    figure, (leverage_axes, interest_axes) = _two_panels(height_ratios=(1, 1))
    steps = timeseries["step"].to_numpy()
    _line(leverage_axes, steps, timeseries["mean_leverage"], label="mean leverage")
    leverage_axes.set_ylabel("notional / equity")
    leverage_axes.set_title("Leverage and open interest")
    _line(interest_axes, steps, timeseries["open_interest"], label="open interest", color="tab:green")
    interest_axes.set_ylabel("open interest (lots)")
    interest_axes.set_xlabel("step")
    return _save(figure, path)


def _two_panels(height_ratios: Sequence[float] = (2, 1)) -> tuple[Figure, tuple[Axes, Axes]]:
    figure = Figure(figsize=FIGURE_SIZE, dpi=FIGURE_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    upper, lower = figure.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": list(height_ratios)})
    return figure, (upper, lower)


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
