"""What every figure of :mod:`abm.plots` shares: size, dpi, margins, panels, shock marks and saving.

A figure is a :class:`matplotlib.figure.Figure` on its own :class:`FigureCanvasAgg` (no pyplot), of
``FIGURE_SIZE`` inches at ``FIGURE_DPI``, with fixed margins, so that figures of different runs line
up side by side; :func:`_panels` makes it, or takes the caller's axes (the ``ax=`` argument).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import LogFormatter

# The ax= argument of the single-figure functions: one Axes, one per panel, or None for a new figure.
AxesArgument = Axes | Sequence[Axes] | None

__all__ = ["FIGURE_DPI", "FIGURE_SIZE", "AxesArgument"]

FIGURE_SIZE = (10.0, 6.0)
FIGURE_DPI = 100
# Fixed margins (fractions of the figure) instead of a layout engine: matplotlib's constrained layout
# measured every label's extent before each save, 1.5 of 5.1 s for a 10,000-step run's seven figures.
# The labels here are short and the size is fixed, so fixed margins fit them (0.86: room for a
# colour bar on the right).
_MARGINS = {"left": 0.1, "right": 0.97, "top": 0.94, "bottom": 0.09, "hspace": 0.12}
_MARGINS_WITH_COLOURBAR = {**_MARGINS, "right": 0.86}
_SHOCK_COLOUR = "tab:red"


def _rows_of(table: pd.DataFrame, name: str | None) -> pd.DataFrame:
    if name is None or "instrument" not in table:
        return table
    return table[table["instrument"].to_numpy() == name]


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


def _plain_log_labels(*axes_axis: Any) -> None:
    """Label log-scaled axes 1, 10, 100 as plain text, not matplotlib's default mathtext (10 to a power).

    The first mathtext label of a process builds its parser: the 600-step spiral's figures took 1.44 s
    with it and 1.34 s without. The same ticks are labelled (the bases, and the minor ticks where few
    decades show).
    """
    for axis in axes_axis:
        axis.set_major_formatter(LogFormatter())
        axis.set_minor_formatter(LogFormatter(labelOnlyBase=False))


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
