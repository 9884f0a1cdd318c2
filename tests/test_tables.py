"""The output tables' one declaration (abm/tables.py) against what a run writes and what the docs say."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from abm.config import load_scenario, resolve_scenario
from abm.outputs import read_run_tables, write_run
from abm.recorder import depth_bucket_columns
from abm.runs import run_scenario
from abm.tables import TABLES

ROOT = Path(__file__).resolve().parents[1]
PANDAS_KIND = {"int64": "i", "float64": "f", "bool": "b", "str": "O", "list[int]": "O"}


@pytest.fixture(scope="module")
def spiral_tables():
    overrides = ["steps=120", "shocks.0.step=60", "shocks.1.step=60"]
    scenario = load_scenario(resolve_scenario("spiral"), overrides)
    result = run_scenario(scenario, seed=7)
    return {
        "timeseries": result.timeseries,
        "trades": result.trades,
        "liquidations": result.liquidations,
        "accounts": result.accounts,
        "ledger": result.ledger,
        "book_depth": result.extra["depth_profile"],
        "account_snapshots": result.extra["account_snapshots"],
    }, result


def _pattern_columns(name: str, frame: pd.DataFrame) -> list[str]:
    declared = TABLES[name].names()
    return [column for column in frame.columns if column not in declared]


@pytest.mark.parametrize("name", list(TABLES))
def test_a_run_writes_exactly_the_declared_columns_and_types(spiral_tables, name):
    frames, _ = spiral_tables
    frame, table = frames[name], TABLES[name]
    assert list(frame.columns[: len(table.columns)]) == list(table.names())
    assert len(frame) > 0
    for column in table.columns:
        assert frame[column.name].dtype.kind == PANDAS_KIND[column.dtype], (name, column.name)
    extra = _pattern_columns(name, frame)
    if table.pattern is None:
        assert extra == []
    elif name == "timeseries":
        assert extra and all(re.fullmatch(r"margin_\w+", column) for column in extra)
        assert all(frame[column].dtype.kind == "f" for column in extra)
    else:
        assert extra == depth_bucket_columns()


def test_written_tables_keep_their_types(spiral_tables, tmp_path):
    _, result = spiral_tables
    run = read_run_tables(write_run(result, tmp_path / "run", figures=False))
    for name, table in TABLES.items():
        for column in table.columns:
            assert run[name][column.name].dtype.kind == PANDAS_KIND[column.dtype], (name, column.name)
    assert all(isinstance(parents, list) for parents in run["liquidations"]["parents"])


def test_empty_tables_are_typed():
    for table in TABLES.values():
        frame = table.empty()
        assert list(frame.columns) == list(table.names()) and len(frame) == 0
        for column in table.columns:
            assert frame[column.name].dtype.kind == PANDAS_KIND[column.dtype]


def test_generated_docs_are_up_to_date():
    completed = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "make_tables.py"), "--check"], capture_output=True, text=True
    )
    assert completed.returncode == 0, completed.stderr


def test_every_column_the_readme_names_exists():
    # Column names in the README's run-directory block must be declared (no `side` for `taker_side`).
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("<!-- tables:start -->")[1].split("<!-- tables:end -->")[0]
    words = set(re.findall(r"\b[a-z]+(?:_[a-z]+)*\b", block))
    for name, table in TABLES.items():
        assert f"{name}.parquet" in block and set(table.names()) <= words, name
    declared = {column for table in TABLES.values() for column in table.names()}
    listed = set(re.findall(r"\b[a-z]+(?:_[a-z]+)+\b", block)) - set(TABLES)
    summary = {
        "liquidated_notional",
        "cascade_depth",
        "cascade_max_rounds",
        "insurance_fund_min",
        "max_drawdown",
    }
    assert listed - declared <= summary
