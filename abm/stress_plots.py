"""The figures of the stress itself: book depth around it, leverage before and after, the cascade.

:func:`plot_stress` draws them into a directory; each single-figure function returns its Figure and
takes ``ax=`` as the time-series ones do (see :mod:`abm.plots`, which exports them all).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from abm.figure_names import (
    instrument_names,
)
from abm.plot_style import (
    _MARGINS_WITH_COLOURBAR,
    AxesArgument,
    _bar_edges,
    _finish,
    _line,
    _mark_shocks,
    _panels,
    _plain_log_labels,
    _present,
    _rows_of,
    _thin_ticks,
)
from abm.recorder import DEPTH_BUCKET_WIDTH, DEPTH_BUCKETS, depth_bucket_columns

__all__ = [
    "plot_cascade",
    "plot_cascade_sizes",
    "plot_depth",
    "plot_leverage_distribution",
    "plot_stress",
    "stress_window",
]

_STRESS_MARGIN_STEPS = 30  # steps shown either side of the stress in the depth heat map


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
            bar = figure.colorbar(mesh, cax=bar_axes, label="resting lots")
        else:
            bar = figure.colorbar(mesh, ax=depth_axes, label="resting lots")
        _plain_log_labels(bar.ax.yaxis)
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
    _plain_log_labels(axes.xaxis)
    axes.set_xlabel("leverage (notional / equity)")
    axes.set_ylabel("traders")
    axes.set_title("Leverage of the leveraged traders with an open position")
    if axes.get_legend_handles_labels()[0]:
        axes.legend(loc="best", fontsize="small")
    else:  # a run without leveraged traders (the value funds' market, a noise-only book)
        axes.text(0.5, 0.5, "no leveraged traders in this run", transform=axes.transAxes, ha="center")
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
    _plain_log_labels(axes.xaxis, axes.yaxis)
    axes.set_xlabel("cascade size (liquidations)")
    axes.set_ylabel("cascades")
    axes.set_title(f"Cascade sizes: {int(counts.sum())} cascades, largest {int(sizes.max())}")
    axes.legend(loc="best", fontsize="small")
    return _finish(figure, path)
