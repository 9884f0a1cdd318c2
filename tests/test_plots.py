"""Tests of the run figures (abm.plots) on hand-built RunResults."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from abm.config import Scenario
from abm.plots import (
    FIGURE_DPI,
    FIGURE_SIZE,
    plot_cascade,
    plot_cascade_sizes,
    plot_leverage,
    plot_margin,
    plot_price,
    plot_run,
    plot_stress,
)
from abm.recorder import depth_bucket_columns
from abm.results import ACCOUNT_COLUMNS, LIQUIDATION_COLUMNS, TIMESERIES_COLUMNS, TRADE_COLUMNS, RunResult
from abm.stress_plots import _account_leverage, plot_leverage_distribution

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
REPO_ROOT = Path(__file__).resolve().parents[1]


def make_scenario(steps: int) -> Scenario:
    shocks = [{"type": "fundamental_jump", "step": steps // 2, "size": -0.2}] if steps > 1 else []
    if steps > 4:
        shocks.append({"type": "market_order", "step": 1, "quantity": 10, "over_steps": 3})
    return Scenario.model_validate({"name": "plots", "steps": steps, "shocks": shocks})


def make_timeseries(steps: int) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({column: rng.random(steps) for column in TIMESERIES_COLUMNS})
    frame["step"] = np.arange(steps)
    frame["instrument"] = "PERP"
    price = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, steps)))
    frame["price"], frame["mark"], frame["index"] = price, price, price * 0.999
    frame["imr"], frame["mmr"] = 0.10, 0.05
    # bad_debt is the running total, as the model records it
    frame["bad_debt"] = np.cumsum(np.where(rng.random(steps) < 0.2, rng.random(steps), 0.0))
    return frame


def make_result(steps: int, with_liquidations: bool = True) -> RunResult:
    liquidations = pd.DataFrame({column: [] for column in LIQUIDATION_COLUMNS})
    if with_liquidations:
        row = dict.fromkeys(LIQUIDATION_COLUMNS, 1.0)
        row.update(liquidation_id=0, step=0, round=0, account_id=5, kind="leveraged_trader", side="sell")
        row["parents"] = []
        liquidations = pd.DataFrame([row], columns=list(LIQUIDATION_COLUMNS))
    return RunResult(
        scenario=make_scenario(steps),
        seed=1,
        timeseries=make_timeseries(steps),
        trades=pd.DataFrame({column: [] for column in TRADE_COLUMNS}),
        liquidations=liquidations,
        accounts=pd.DataFrame({column: [] for column in ACCOUNT_COLUMNS}),
        cascade=nx.DiGraph(),
        summary={},
    )


def assert_png(drawn: Figure | Path, path: Path | None = None) -> None:
    # The single-figure functions return their Figure and write the PNG they were given a path for.
    if isinstance(drawn, Figure):
        assert path is not None
    else:
        path = drawn
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > 1000  # a drawn figure, not an empty canvas header
    # IHDR holds the pixel size: fixed figure size x dpi.
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (round(FIGURE_SIZE[0] * FIGURE_DPI), round(FIGURE_SIZE[1] * FIGURE_DPI))


@pytest.mark.parametrize(
    ("steps", "with_liquidations"), [(200, True), (200, False), (1, True), (1, False)], ids=str
)
def test_plot_run_writes_valid_pngs(tmp_path, steps, with_liquidations):
    paths = plot_run(make_result(steps, with_liquidations), tmp_path / "figures")
    assert [p.name for p in paths] == ["price.png", "margin.png", "leverage.png"]
    for path in paths:
        assert path.parent == tmp_path / "figures"
        assert_png(path)


def test_each_plot_function_works_alone(tmp_path):
    timeseries = make_timeseries(50)
    shocks = make_scenario(50).shocks
    assert_png(plot_price(timeseries, shocks, tmp_path / "p.png"), tmp_path / "p.png")
    assert_png(plot_price(timeseries, [], tmp_path / "p_no_shocks.png"), tmp_path / "p_no_shocks.png")
    assert_png(plot_margin(timeseries, tmp_path / "m.png"), tmp_path / "m.png")
    assert_png(plot_leverage(timeseries, tmp_path / "l.png"), tmp_path / "l.png")


def two_instrument_result(steps: int = 60) -> RunResult:
    # Long form: a row per step and instrument; B's mark falls after A's shock at step 30.
    a, b = make_timeseries(steps), make_timeseries(steps)
    a["instrument"], b["instrument"] = "A", "B"
    b["mark"] = np.where(b["step"] > 30, 90.0, 100.0)
    timeseries = pd.concat([a, b]).sort_values(["step", "instrument"], kind="stable").reset_index(drop=True)
    scenario = Scenario.model_validate(
        {
            "name": "plots",
            "steps": steps,
            "instruments": [{"name": "A"}, {"name": "B"}],
            "shocks": [{"type": "fundamental_jump", "step": 30, "size": -0.2, "instrument": "A"}],
        }
    )
    base = make_result(steps)
    return RunResult(
        scenario=scenario,
        seed=1,
        timeseries=timeseries,
        trades=base.trades,
        liquidations=base.liquidations,
        accounts=base.accounts,
        cascade=nx.DiGraph(),
        summary={},
    )


def test_several_instruments_get_an_overview_and_a_figure_each(tmp_path):
    result = two_instrument_result()
    paths = plot_run(result, tmp_path)
    assert [p.name for p in paths] == [
        "price.png",
        "price_A.png",
        "price_B.png",
        "margin.png",
        "leverage.png",
    ]
    for path in paths:
        assert_png(path)
    depth = pd.DataFrame({"step": np.repeat(np.arange(60), 2), "instrument": ["A", "B"] * 60})
    for column in depth_bucket_columns():
        depth[column] = 5
    stress = plot_stress(
        result.timeseries, result.scenario.shocks, nx.DiGraph(), tmp_path, depth_profile=depth
    )
    assert [p.name for p in stress] == ["depth_A.png", "depth_B.png", "cascade.png", "cascade_sizes.png"]


def test_long_form_snapshots_give_one_leverage_per_account():
    # Account 7 holds A (notional 600) and B (notional 400) on equity 100: leverage 10, counted once.
    # Account 8 holds only B (notional 300, equity 100): leverage 3; its A row is flat.
    snapshots = pd.DataFrame(
        {
            "snapshot": ["end"] * 4,
            "step": [9] * 4,
            "account_id": [7, 7, 8, 8],
            "instrument": ["A", "B", "A", "B"],
            "kind": ["leveraged_trader"] * 4,
            "position": [6, 4, 0, 3],
            "equity": [100.0] * 4,
            "notional": [600.0, 400.0, 0.0, 300.0],
            "leverage": [6.0, 4.0, 0.0, 3.0],
        }
    )
    accounts = _account_leverage(snapshots)
    assert accounts["account_id"].tolist() == [7, 8]
    assert accounts["leverage"].tolist() == [10.0, 3.0]
    assert accounts["position"].tolist() == [1, 1]


def test_a_run_without_leveraged_traders_says_so_instead_of_an_empty_legend(tmp_path, recwarn):
    # The value funds' market (validation_leverage) has no leveraged_trader accounts: matplotlib warned
    # "No artists with labels found to put in legend" on every abm run of it.
    snapshots = pd.DataFrame(
        {
            "snapshot": ["end"],
            "step": [9],
            "account_id": [3],
            "instrument": ["A"],
            "kind": ["value_fund"],
            "position": [5],
            "equity": [100.0],
            "notional": [500.0],
            "leverage": [5.0],
        }
    )
    figure = plot_leverage_distribution(snapshots, tmp_path / "leverage_distribution.png")
    (axes,) = figure.axes
    assert axes.get_legend() is None
    assert [text.get_text() for text in axes.texts] == ["no leveraged traders in this run"]
    assert not [str(warning.message) for warning in recwarn]


def test_all_nan_series_still_draw(tmp_path):
    # A run without trades has no last price; bad debt may be missing before the first liquidation.
    timeseries = make_timeseries(20)
    timeseries["price"] = np.nan
    timeseries["bad_debt"] = np.nan
    assert_png(plot_price(timeseries, [], tmp_path / "p.png"), tmp_path / "p.png")
    assert_png(plot_margin(timeseries, tmp_path / "m.png"), tmp_path / "m.png")


def test_shocks_change_the_price_figure(tmp_path):
    timeseries = make_timeseries(50)
    plot_price(timeseries, make_scenario(50).shocks, tmp_path / "with.png")
    plot_price(timeseries, [], tmp_path / "without.png")
    with_shocks, without = (tmp_path / "with.png").read_bytes(), (tmp_path / "without.png").read_bytes()
    assert with_shocks != without


def test_drawing_is_deterministic(tmp_path):
    result = make_result(100)
    first = [p.read_bytes() for p in plot_run(result, tmp_path / "a")]
    second = [p.read_bytes() for p in plot_run(result, tmp_path / "b")]
    assert first == second


def test_plots_do_not_use_pyplot():
    # A fresh interpreter, since other tests in this session may have imported pyplot themselves.
    code = (
        "import sys, tempfile, pathlib\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "import pandas as pd\n"
        "from abm.plots import plot_margin\n"
        "from abm.results import TIMESERIES_COLUMNS\n"
        "frame = pd.DataFrame({c: [0.1, 0.2] for c in TIMESERIES_COLUMNS}).assign(step=[0, 1])\n"
        "plot_margin(frame, pathlib.Path(tempfile.mkdtemp()) / 'm.png')\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot was imported'\n"
    )
    env = {**os.environ, "MPLBACKEND": "agg"}
    completed = subprocess.run(
        [sys.executable, "-c", code, str(REPO_ROOT)], capture_output=True, text=True, env=env, timeout=60
    )
    assert completed.returncode == 0, completed.stderr


@pytest.mark.parametrize(
    ("steps", "edges"),
    [([0, 1, 2], [-0.5, 0.5, 1.5, 2.5]), ([0, 2], [-1.0, 1.0, 3.0]), ([7], [6.5, 7.5])],
)
def test_bar_edges_lie_halfway_between_steps(steps, edges):
    from abm.plot_style import _bar_edges

    assert _bar_edges(np.array(steps)).tolist() == edges


def test_single_figures_return_their_figure_and_draw_into_given_axes(tmp_path):
    # What a notebook does: a Figure to show inline, no file unless asked, the user's own axes.
    timeseries = make_timeseries(50)
    shocks = make_scenario(50).shocks
    figure = plot_price(timeseries, shocks)
    assert isinstance(figure, Figure) and len(figure.axes) == 2 and not list(tmp_path.iterdir())

    canvas = Figure()
    left, right = canvas.subplots(1, 2)
    assert plot_price(timeseries, shocks, ax=left) is canvas
    assert plot_margin(timeseries, ax=right) is canvas
    assert len(canvas.axes) == 2  # nothing added: the lower panels are left out
    assert [line.get_label() for line in left.get_lines()][:3] == ["last trade", "mark", "index"]
    assert right.get_title() == "Margin rates in force"

    both = Figure().subplots(2, 1)
    assert plot_leverage(timeseries, ax=both) is both[0].figure
    assert both[1].get_ylabel() == "open interest (lots)"
    with pytest.raises(ValueError, match="2 panel"):
        plot_leverage(timeseries, ax=[both[0]])

    cascade = make_result(100, True).cascade
    single = Figure().subplots()
    assert plot_cascade_sizes(cascade, ax=single) is single.figure
    assert plot_cascade(cascade, tmp_path / "c.png", ax=single) is single.figure
    assert (tmp_path / "c.png").read_bytes()[:8] == PNG_MAGIC
