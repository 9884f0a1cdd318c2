"""The run recorder's columns: built by one transposition of the rows, the same values as one pass each."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from abm.config import load_scenario
from abm.model import MarketModel
from abm.recorder import RunRecorder
from abm.results import TIMESERIES_COLUMNS
from abm.tables import TIMESERIES


def _row(step: int) -> dict:
    # Every base column, each with a value that tells the step and the column apart.
    row = {name: float(step) + position / 100 for position, name in enumerate(TIMESERIES_COLUMNS)}
    for name, dtype in TIMESERIES.pandas_dtypes().items():
        if dtype == "int64":
            row[name] = step * 1_000 + len(name)
        elif dtype == "object":
            row[name] = f"instrument-{step}"
    return row


def test_base_columns_equal_one_pass_a_column_on_a_run() -> None:
    # Past the shock (step 60): liquidations, a moving mark, the policy figures of every step.
    model = MarketModel(load_scenario("spiral", ["steps=120", "shocks.0.step=60", "shocks.1.step=60"]), rng=3)
    model.run()
    recorder = model.recorder
    columns = recorder.base_columns()
    assert list(columns) == list(TIMESERIES_COLUMNS)
    for name in TIMESERIES_COLUMNS:
        expected = recorder.column(name)
        assert columns[name].dtype == expected.dtype, name
        np.testing.assert_array_equal(columns[name], expected, err_msg=name)


def test_to_frame_keeps_types_and_order_of_the_rows() -> None:
    recorder = RunRecorder(steps=3)
    for step in range(3):
        recorder.record(_row(step), {"imr": 0.1, "mmr": 0.05, "scale": float(step)})
    frame = recorder.to_frame()
    assert list(frame.columns) == [*TIMESERIES_COLUMNS, "margin_scale"]
    for name in TIMESERIES_COLUMNS:
        assert frame[name].dtype == pd.Series(recorder.column(name)).dtype, name
        assert frame[name].tolist() == [_row(step)[name] for step in range(3)], name
    assert frame["margin_scale"].tolist() == [0.0, 1.0, 2.0]


def test_policy_columns_fill_a_figure_a_step_lacked_with_nan() -> None:
    recorder = RunRecorder(steps=3)
    states = [{"a": 1.0}, {"a": 2.0, "b": 3.0}, {"b": 4.0}]
    for step, state in enumerate(states):
        recorder.record(_row(step), state)
    columns = recorder.policy_columns()
    assert list(columns) == ["a", "b"]  # order of first appearance
    np.testing.assert_array_equal(columns["a"], [1.0, 2.0, np.nan])
    np.testing.assert_array_equal(columns["b"], [np.nan, 3.0, 4.0])


@pytest.mark.parametrize("states", [[{"a": 1.0}, {"a": 2.0}], [{"a": 1.0, "b": 2.0}, {"b": 5.0, "a": 4.0}]])
def test_policy_columns_of_the_same_figures_every_step(states: list[dict]) -> None:
    # One figure (itemgetter of one name gives the value itself) and keys given in another order.
    recorder = RunRecorder(steps=len(states))
    for step, state in enumerate(states):
        recorder.record(_row(step), state)
    columns = recorder.policy_columns()
    assert list(columns) == list(states[0])
    for name, column in columns.items():
        assert column.tolist() == [state[name] for state in states]


def test_an_empty_recorder_gives_an_empty_table_of_the_schema() -> None:
    frame = RunRecorder(steps=5).to_frame()
    assert isinstance(frame, pd.DataFrame) and len(frame) == 0
    assert list(frame.columns) == list(TIMESERIES_COLUMNS)
    for name in TIMESERIES_COLUMNS:
        assert frame[name].dtype == pd.Series(np.array([], dtype=TIMESERIES.pandas_dtypes()[name])).dtype, (
            name
        )
