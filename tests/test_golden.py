"""Golden runs: sha256 checksums of the key tables of small canonical runs, stored in tests/golden/.

A change that alters any of these tables fails here until the checksums are updated on purpose::

    ABM_UPDATE_GOLDEN=1 python -m pytest -q tests/test_golden.py

rewrites ``tests/golden/checksums.json`` (and the test then reports what changed, as a skip). Say why
the figures changed in the commit message. Tables are hashed as canonical CSV (column order as
written, floats in shortest round-trip form), so the checksums do not depend on the Parquet writer.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pandas as pd
import pytest

from abm.config import load_scenario, resolve_scenario
from abm.runs import run_scenario

GOLDEN_FILE = Path(__file__).parent / "golden" / "checksums.json"
TABLES = ("timeseries", "trades", "liquidations", "accounts", "ledger")
# Canonical runs: scenario, overrides, seed. The spiral's shocks move to the middle of the short run.
GOLDEN_RUNS = {
    "spiral-120": ("spiral", ["steps=120", "shocks.0.step=60", "shocks.1.step=60"], 7),
    "calm-120": ("calm", ["steps=120"], 7),
    # The makers requote only the levels that moved (Book.amend_ladder).
    "spiral-120-kept-priority": (
        "spiral",
        ["steps=120", "shocks.0.step=60", "shocks.1.step=60", "agents.0.keep_queue_priority=true"],
        7,
    ),
}


def table_sha256(frame: pd.DataFrame) -> str:
    """sha256 of a table's canonical CSV text."""
    frame = frame.reset_index(drop=True).copy()
    for column in frame.columns:
        if frame[column].dtype == object:
            frame[column] = [json.dumps(v) if isinstance(v, list) else v for v in frame[column]]
    text = frame.to_csv(index=False, lineterminator="\n")
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def golden_checksums(name: str, engine: str = "python") -> dict:
    scenario_name, overrides, seed = GOLDEN_RUNS[name]
    overrides = [*overrides, f"market.book_engine={engine}"]
    result = run_scenario(
        load_scenario(resolve_scenario(scenario_name), overrides), seed=seed, check_invariants=True
    )
    checksums = {table: table_sha256(getattr(result, table)) for table in TABLES}
    checksums["rows"] = {table: len(getattr(result, table)) for table in TABLES}
    return checksums


def test_table_hash_is_canonical():
    frame = pd.DataFrame({"a": [1, 2], "b": [0.1, 1.0 / 3.0], "parents": [[1, 2], []]})
    text = 'a,b,parents\n1,0.1,"[1, 2]"\n2,0.3333333333333333,[]\n'
    assert table_sha256(frame) == hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize("name", sorted(GOLDEN_RUNS))
def test_golden_run_tables_are_unchanged(name):
    actual = golden_checksums(name)
    stored = json.loads(GOLDEN_FILE.read_text()) if GOLDEN_FILE.is_file() else {}
    if os.environ.get("ABM_UPDATE_GOLDEN") == "1":
        changed = stored.get(name) != actual
        stored[name] = actual
        GOLDEN_FILE.write_text(json.dumps(stored, indent=2, sort_keys=True) + "\n")
        pytest.skip(f"golden checksums of {name} {'rewritten' if changed else 'unchanged'}")
    assert name in stored, f"no golden checksums for {name}: run with ABM_UPDATE_GOLDEN=1"
    expected = stored[name]
    changed = [table for table in TABLES if expected[table] != actual[table]]
    assert not changed, (
        f"{name}: tables {changed} changed (rows {expected['rows']} -> {actual['rows']}); if intended, "
        "rerun with ABM_UPDATE_GOLDEN=1 and give the reason in the commit"
    )


@pytest.mark.parametrize("name", sorted(GOLDEN_RUNS))
def test_compiled_book_gives_the_same_tables(name):
    # The engine is not part of the result: the numba book must reproduce the stored checksums.
    pytest.importorskip("numba")
    stored = json.loads(GOLDEN_FILE.read_text())
    assert golden_checksums(name, engine="fast") == stored[name]
