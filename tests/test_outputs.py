"""Tests of the run directory writer and reader (abm.outputs) on hand-built RunResults."""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import pytest

import abm
from abm import outputs
from abm.config import Scenario
from abm.outputs import OutputExistsError, check_out_dir, default_run_dir, read_run_tables, write_run
from abm.results import (
    ACCOUNT_COLUMNS,
    LIQUIDATION_COLUMNS,
    TIMESERIES_COLUMNS,
    TRADE_COLUMNS,
    RunResult,
)

TABLE_FILES = ("timeseries", "trades", "liquidations", "accounts", "ledger")


def make_scenario(name: str = "unit-test") -> Scenario:
    return Scenario.model_validate(
        {
            "name": name,
            "steps": 12,
            "shocks": [
                {"type": "fundamental_jump", "step": 3, "size": -0.1},
                {"type": "market_order", "step": 6, "quantity": 50, "over_steps": 3},
            ],
        }
    )


def make_result(steps: int = 12, n_liquidations: int = 3, summary: dict | None = None) -> RunResult:
    rng = np.random.default_rng(7)
    price = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, steps)))
    timeseries = pd.DataFrame({column: rng.random(steps) for column in TIMESERIES_COLUMNS})
    timeseries["step"] = np.arange(steps, dtype=np.int64)
    timeseries["price"] = price
    timeseries.loc[0, "price"] = np.nan  # no trade yet in the first step
    timeseries["mark"] = price
    timeseries["index"] = price * 1.001
    timeseries["liquidations"] = rng.integers(0, 3, steps)
    timeseries["instrument"] = "PERP"
    timeseries["extra_rule_state"] = rng.random(steps)  # rule state columns ride along

    trades = pd.DataFrame(
        {
            "step": [1, 1, 4],
            "instrument": ["PERP"] * 3,
            "round": [0, 0, 1],
            "price": [100.0, 100.01, 98.5],
            "quantity": [3, 2, 7],
            "taker": [10, 11, 12],
            "maker": [0, 0, 1],
            "taker_side": [1, -1, -1],  # BUY, SELL, SELL (the schema: int64)
            "is_liquidation": [False, False, True],
        },
        columns=list(TRADE_COLUMNS),
    )
    liquidation_parents = [[], [0], [0, 1], [2], [1, 3]][:n_liquidations]
    liquidations = pd.DataFrame(
        {
            "liquidation_id": np.arange(n_liquidations, dtype=np.int64),
            "step": np.full(n_liquidations, 4, dtype=np.int64),
            "round": np.array([0, 1, 2, 3, 4][:n_liquidations], dtype=np.int64),
            "account_id": np.arange(20, 20 + n_liquidations, dtype=np.int64),
            "instrument": ["PERP"] * n_liquidations,
            "kind": ["leveraged_trader"] * n_liquidations,
            "side": [-1] * n_liquidations,  # SELL
            "quantity": np.full(n_liquidations, 5, dtype=np.int64),
            "filled_quantity": np.full(n_liquidations, 5, dtype=np.int64),
            "average_price": np.linspace(98.0, 97.0, n_liquidations),
            "mark_before": np.linspace(98.5, 97.5, n_liquidations),
            "notional": np.linspace(490.0, 485.0, n_liquidations),
            "equity_before": np.linspace(10.0, -2.0, n_liquidations),
            "equity_after": np.zeros(n_liquidations),
            "bad_debt": np.linspace(0.0, 2.0, n_liquidations),
            "adl_quantity": np.zeros(n_liquidations, dtype=np.int64),
            "price_impact": np.linspace(0.1, 0.3, n_liquidations),
            "parents": pd.Series(liquidation_parents, dtype=object),
            "full": np.ones(n_liquidations, dtype=bool),
        },
        columns=list(LIQUIDATION_COLUMNS),
    )
    accounts = pd.DataFrame(
        {
            "account_id": [0, 1, 20],
            "instrument": ["PERP"] * 3,
            "kind": ["market_maker", "noise", "leveraged_trader"],
            "group": ["mm", "noise", "longs"],
            "margin_mode": ["cross"] * 3,
            "collateral": [1e6, 1e5, 0.0],
            "position": [-5, 3, 0],
            "entry_price": [100.0, 99.5, np.nan],
            "equity": [1e6 + 10.0, 1e5 - 1.5, 0.0],
            "liquidated": [False, False, True],
            "deposits": [0.0, 0.0, 0.0],
            "initial_collateral": [1e6, 1e5, 100.0],
            "leverage_target": [np.nan, np.nan, 8.0],
        },
        columns=list(ACCOUNT_COLUMNS),
    )
    cascade = nx.DiGraph(name="cascade", rounds=np.int64(3))
    for row in liquidations.itertuples():
        cascade.add_node(
            np.int64(row.liquidation_id),
            step=np.int64(row.step),
            round=int(row.round),
            notional=np.float64(row.notional),
            parents=list(row.parents),
            note=None,
            is_root=not row.parents,
        )
    for row in liquidations.itertuples():
        for parent in row.parents:
            cascade.add_edge(np.int64(parent), np.int64(row.liquidation_id), impact=np.float64(0.25))
    if summary is None:
        summary = {
            "max_drawdown": np.float64(0.123),
            "liquidated_notional": 1465.0,
            "cascade_depth": np.int64(3),
            "bad_debt": float("nan"),
            "insurance_fund_used": np.float64(np.inf),
            "any_adl": np.bool_(False),
            "per_round": np.array([1, 1, 1]),
            "nested": {"b": 2, "a": np.float32(0.5)},
        }
    return RunResult(
        scenario=make_scenario(),
        seed=42,
        timeseries=timeseries,
        trades=trades,
        liquidations=liquidations,
        accounts=accounts,
        cascade=cascade,
        summary=summary,
        wall_seconds=1.5,
        invariant_checks=True,
    )


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------- names


def test_default_run_dir_name_and_hash_recomputed_independently():
    scenario = make_scenario()
    run_dir = default_run_dir(scenario, 42, base=Path("somewhere"))
    payload = json.dumps(
        {"scenario": scenario.model_dump(mode="json"), "seed": 42}, sort_keys=True, separators=(",", ":")
    )
    expected_hash = hashlib.sha256(payload.encode()).hexdigest()[:8]
    assert run_dir == Path("somewhere") / f"unit-test-42-{expected_hash}"
    assert default_run_dir(scenario, 43).name != run_dir.name
    assert default_run_dir(scenario, 42).parent == Path("outputs")


def test_default_run_dir_sanitises_unsafe_names():
    run_dir = default_run_dir(make_scenario("../crash 2020/03"), 1, base=Path("out"))
    assert run_dir.parent == Path("out")
    assert re.fullmatch(r"crash_2020_03-1-[0-9a-f]{8}", run_dir.name)


# --------------------------------------------------------------------------- writing


def test_write_run_writes_every_file_and_a_complete_manifest(tmp_path):
    result = make_result()
    run_dir = write_run(result, tmp_path / "run", command_line=["abm", "run", "x.yaml"])
    assert run_dir == tmp_path / "run"
    names = {p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*") if p.is_file()}
    expected = {f"{t}.parquet" for t in TABLE_FILES} | {
        "manifest.json",
        "summary.json",
        "figures/price.png",
        "figures/margin.png",
        "figures/leverage.png",
        "figures/cascade.png",
        "figures/cascade_sizes.png",
    }
    assert names == expected

    manifest = json.loads((run_dir / "manifest.json").read_text())
    for key in (
        "scenario",
        "scenario_sha256",
        "seed",
        "abm_version",
        "git_commit",
        "git_dirty",
        "python",
        "versions",
        "platform",
        "command_line",
        "start_time",
        "end_time",
        "wall_seconds",
        "invariant_checks",
        "table_format",
        "files",
    ):
        assert key in manifest, key
    assert manifest["scenario"] == result.scenario.model_dump(mode="json")
    scenario_text = json.dumps(result.scenario.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    assert manifest["scenario_sha256"] == hashlib.sha256(scenario_text.encode()).hexdigest()
    assert manifest["seed"] == 42
    assert manifest["abm_version"] == abm.__version__
    assert manifest["versions"]["numpy"] == np.__version__
    assert manifest["versions"]["pandas"] == pd.__version__
    assert manifest["command_line"] == ["abm", "run", "x.yaml"]
    assert manifest["wall_seconds"] == 1.5
    assert manifest["invariant_checks"] is True
    assert manifest["table_format"] == "parquet"
    start = pd.Timestamp(manifest["start_time"])
    end = pd.Timestamp(manifest["end_time"])
    assert start.tzinfo is not None and (end - start).total_seconds() == pytest.approx(1.5)

    # Every other file is listed, with its real hash and size.
    assert set(manifest["files"]) == expected - {"manifest.json"}
    for relative, entry in manifest["files"].items():
        assert entry["sha256"] == sha256_of(run_dir / relative)
        assert entry["size"] == (run_dir / relative).stat().st_size
    # No temp directory is left beside the run.
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_manifest_git_commit_matches_checkout(tmp_path):
    package_dir = Path(abm.__file__).parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=package_dir, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("package is not in a git checkout")
    manifest = json.loads(
        (write_run(make_result(), tmp_path / "r", figures=False) / "manifest.json").read_text()
    )
    assert manifest["git_commit"] == head
    assert isinstance(manifest["git_dirty"], bool)


def test_git_state_outside_a_checkout_is_none(tmp_path):
    from abm import run_manifest

    assert run_manifest._git_state(tmp_path) == (None, None)


def test_start_and_end_time_taken_from_result_extra(tmp_path):
    result = make_result()
    result.extra["start_time"] = "2024-01-02T03:04:05+00:00"
    result.extra["end_time"] = "2024-01-02T03:04:06.500000+00:00"
    manifest = read_run_tables(write_run(result, tmp_path / "r", figures=False))["manifest"]
    assert manifest["start_time"] == "2024-01-02T03:04:05+00:00"
    assert manifest["end_time"] == "2024-01-02T03:04:06.500000+00:00"


def test_same_result_gives_byte_identical_files(tmp_path):
    first = write_run(make_result(), tmp_path / "first", figures=False, graphml=True)
    second = write_run(make_result(), tmp_path / "second", figures=False, graphml=True)
    for name in [f"{t}.parquet" for t in TABLE_FILES] + ["summary.json", "cascade.graphml"]:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    first_manifest = json.loads((first / "manifest.json").read_text())
    second_manifest = json.loads((second / "manifest.json").read_text())
    differing = {
        k
        for k in first_manifest.keys() | second_manifest.keys()
        if first_manifest.get(k) != second_manifest.get(k)
    }
    assert differing <= {"start_time", "end_time"}


def test_summary_json_nan_and_inf_become_null_and_numpy_becomes_python(tmp_path):
    run_dir = write_run(make_result(), tmp_path / "r", figures=False)
    text = (run_dir / "summary.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    summary = json.loads(text)
    assert summary["bad_debt"] is None
    assert summary["insurance_fund_used"] is None
    assert summary["cascade_depth"] == 3 and isinstance(summary["cascade_depth"], int)
    assert summary["max_drawdown"] == 0.123
    assert summary["any_adl"] is False
    assert summary["per_round"] == [1, 1, 1]
    assert summary["nested"] == {"a": 0.5, "b": 2}
    assert list(summary) == sorted(summary)
    assert text == json.dumps(summary, sort_keys=True, indent=2) + "\n"


def test_tables_round_trip_through_read_run(tmp_path):
    result = make_result()
    run = read_run_tables(write_run(result, tmp_path / "r", figures=False), verify=True)
    for name in ("timeseries", "trades", "accounts"):
        pd.testing.assert_frame_equal(run[name], getattr(result, name), check_dtype=False)
    liquidations = run["liquidations"]
    pd.testing.assert_frame_equal(
        liquidations.drop(columns="parents"), result.liquidations.drop(columns="parents"), check_dtype=False
    )
    assert list(liquidations["parents"]) == [[], [0], [0, 1]]
    assert all(type(p) is int for parents in liquidations["parents"] for p in parents)
    assert run["summary"]["cascade_depth"] == 3
    assert run["manifest"]["seed"] == 42


def test_parents_column_is_a_list_of_int64_in_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    for n_liquidations in (3, 0):
        run_dir = write_run(
            make_result(n_liquidations=n_liquidations), tmp_path / f"r{n_liquidations}", figures=False
        )
        schema = pq.read_schema(run_dir / "liquidations.parquet")
        assert schema.field("parents").type == pa.list_(pa.int64())


def test_empty_liquidations_and_empty_cascade(tmp_path):
    result = make_result(n_liquidations=0)
    result.cascade = nx.DiGraph()
    run = read_run_tables(write_run(result, tmp_path / "r"))
    assert len(run["liquidations"]) == 0
    assert list(run["liquidations"].columns) == list(LIQUIDATION_COLUMNS)
    assert run["cascade"].number_of_nodes() == 0


def test_graphml_round_trip_keeps_nodes_edges_and_converts_attributes(tmp_path):
    result = make_result()
    run_dir = write_run(result, tmp_path / "r", figures=False, graphml=True)
    graph = nx.read_graphml(run_dir / "cascade.graphml", node_type=int)
    assert isinstance(graph, nx.DiGraph)
    assert sorted(graph.nodes) == sorted(int(n) for n in result.cascade.nodes)
    assert sorted(graph.edges) == sorted((int(u), int(v)) for u, v in result.cascade.edges)
    assert sorted(graph.edges) == [(0, 1), (0, 2), (1, 2)]
    node = graph.nodes[2]
    assert json.loads(node["parents"]) == [0, 1]
    assert node["step"] == 4 and node["round"] == 2
    assert node["notional"] == pytest.approx(result.liquidations.loc[2, "notional"])
    assert node["is_root"] is False and graph.nodes[0]["is_root"] is True
    assert "note" not in node  # None has no GraphML value: the attribute is left out
    assert graph.edges[0, 1]["impact"] == 0.25
    assert graph.graph["rounds"] == 3
    # read_run_tables gives the same graph
    assert sorted(read_run_tables(run_dir)["cascade"].edges) == sorted(graph.edges)


def test_csv_fallback_without_pyarrow(tmp_path, monkeypatch):
    monkeypatch.setattr(outputs, "_pyarrow_available", lambda: False)
    result = make_result()
    run_dir = write_run(result, tmp_path / "r", figures=False)
    assert sorted(p.name for p in run_dir.glob("*.csv")) == sorted(f"{t}.csv" for t in TABLE_FILES)
    assert not list(run_dir.glob("*.parquet"))
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["table_format"] == "csv"
    assert set(manifest["files"]) >= {f"{t}.csv" for t in TABLE_FILES}

    run = read_run_tables(run_dir, verify=True)
    for name in ("timeseries", "trades", "accounts"):
        pd.testing.assert_frame_equal(run[name], getattr(result, name), check_dtype=False)
    assert list(run["liquidations"]["parents"]) == [[], [0], [0, 1]]
    assert run["liquidations"]["average_price"].tolist() == result.liquidations["average_price"].tolist()


# --------------------------------------------------------------------------- atomicity and overwrite


def test_failure_mid_write_leaves_no_target_and_no_temp_dir(tmp_path, monkeypatch):
    real_write_table = outputs._write_table
    calls = []

    def failing_write_table(frame, path, list_columns, table_format):
        calls.append(path.name)
        if len(calls) == 2:
            path.write_bytes(b"half a table")
            raise OSError("disk full")
        real_write_table(frame, path, list_columns, table_format)

    monkeypatch.setattr(outputs, "_write_table", failing_write_table)
    parent = tmp_path / "outputs"
    with pytest.raises(OSError, match="disk full"):
        write_run(make_result(), parent / "run", figures=False)
    assert len(calls) == 2
    assert not (parent / "run").exists()
    assert list(parent.iterdir()) == []


def test_refuses_to_overwrite_without_force(tmp_path):
    run_dir = write_run(make_result(), tmp_path / "run", figures=False)
    before = (run_dir / "manifest.json").read_bytes()
    with pytest.raises(OutputExistsError) as error:
        write_run(make_result(), run_dir, figures=False)
    assert str(run_dir) in str(error.value)
    assert "use --force to replace it" in str(error.value)
    assert (run_dir / "manifest.json").read_bytes() == before


def test_force_replaces_an_existing_run(tmp_path):
    run_dir = write_run(make_result(), tmp_path / "run", figures=False)
    (run_dir / "stale.txt").write_text("from the old run")
    write_run(make_result(summary={"label": "new"}), run_dir, force=True, figures=False)
    assert json.loads((run_dir / "summary.json").read_text()) == {"label": "new"}
    assert not (run_dir / "stale.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # the old copy is gone


def test_force_failure_keeps_the_old_run(tmp_path, monkeypatch):
    run_dir = write_run(make_result(), tmp_path / "run", figures=False)
    before = (run_dir / "summary.json").read_bytes()
    monkeypatch.setattr(
        outputs, "_write_graphml", lambda graph, path: (_ for _ in ()).throw(RuntimeError("boom"))
    )
    with pytest.raises(RuntimeError, match="boom"):
        write_run(make_result(summary={"label": "new"}), run_dir, force=True, figures=False, graphml=True)
    assert (run_dir / "summary.json").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_force_never_replaces_a_directory_that_is_not_a_run(tmp_path):
    precious = tmp_path / "home"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    with pytest.raises(OutputExistsError, match="not a run directory"):
        write_run(make_result(), precious, force=True, figures=False)
    assert (precious / "thesis.tex").read_text() == "years of work"


def test_force_replaces_an_empty_directory(tmp_path):
    (tmp_path / "run").mkdir()
    write_run(make_result(), tmp_path / "run", force=True, figures=False)
    assert (tmp_path / "run" / "manifest.json").is_file()


def test_check_out_dir_reports_unwritable_parent(tmp_path, monkeypatch):
    # Tests may run as root, where chmod does not stop writes: fake the permission answer instead.
    monkeypatch.setattr(outputs.os, "access", lambda path, mode: False)
    with pytest.raises(PermissionError, match="not writable"):
        check_out_dir(tmp_path / "new" / "run", force=False)


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_check_out_dir_refuses_where_no_directory_can_be_made(tmp_path):
    # /proc passes the permission check as root (access() says writable) but refuses every mkdir.
    with pytest.raises(PermissionError, match=r"no directory can be made in /proc \("):
        check_out_dir(Path("/proc/abm-run"), force=False)


def test_check_out_dir_leaves_nothing_behind(tmp_path):
    check_out_dir(tmp_path / "a" / "run", force=False)
    assert list(tmp_path.iterdir()) == []  # the probe is removed; the missing parent is not made


def test_abm_run_refuses_an_unwritable_out_before_simulating(tmp_path, monkeypatch, capsys):
    import abm.runs
    from abm import cli

    monkeypatch.setattr(abm.runs, "run_scenario", lambda *args, **kwargs: pytest.fail("simulated"))
    monkeypatch.setattr(
        tempfile, "mkdtemp", lambda **kwargs: (_ for _ in ()).throw(OSError(30, "Read-only file system"))
    )
    assert cli.main(["run", "spiral", "--out", str(tmp_path / "run"), "--no-progress"]) == 2
    error = capsys.readouterr().err
    assert f"no directory can be made in {tmp_path} (Read-only file system)" in error


def test_check_out_dir_accepts_new_nested_path(tmp_path):
    check_out_dir(tmp_path / "a" / "b" / "run", force=False)
    run_dir = write_run(make_result(), tmp_path / "a" / "b" / "run", figures=False)
    assert (run_dir / "manifest.json").is_file()


def test_run_directory_follows_the_umask_not_mkdtemp_privacy(tmp_path):
    old_mask = os.umask(0o022)
    try:
        run_dir = write_run(make_result(), tmp_path / "run", figures=False)
    finally:
        os.umask(old_mask)
    assert run_dir.stat().st_mode & 0o777 == 0o755


def test_missing_documented_column_is_refused_before_writing(tmp_path):
    result = make_result()
    result.trades = result.trades.drop(columns="maker")
    with pytest.raises(ValueError, match="trades lacks the documented columns: maker"):
        write_run(result, tmp_path / "run", figures=False)
    assert list(tmp_path.iterdir()) == []


def test_extra_manifest_is_added_but_cannot_override(tmp_path):
    run_dir = write_run(make_result(), tmp_path / "r", figures=False, extra_manifest={"sweep": {"point": 3}})
    assert json.loads((run_dir / "manifest.json").read_text())["sweep"] == {"point": 3}
    with pytest.raises(ValueError, match="seed"):
        write_run(make_result(), tmp_path / "r2", figures=False, extra_manifest={"seed": 1})
    assert not (tmp_path / "r2").exists()


def test_read_run_verify_detects_a_changed_file(tmp_path):
    run_dir = write_run(make_result(), tmp_path / "r", figures=False)
    read_run_tables(run_dir, verify=True)
    summary_path = run_dir / "summary.json"
    summary_path.write_text(summary_path.read_text().replace("0.123", "0.124"))
    with pytest.raises(ValueError, match="summary.json"):
        read_run_tables(run_dir, verify=True)


def test_read_run_rejects_a_directory_without_manifest(tmp_path):
    with pytest.raises(FileNotFoundError, match="no manifest.json"):
        read_run_tables(tmp_path)


def test_written_run_can_be_copied_and_still_verifies(tmp_path):
    # The manifest's file list uses relative paths, so a moved run directory still verifies.
    run_dir = write_run(make_result(), tmp_path / "r")
    moved = shutil.copytree(run_dir, tmp_path / "elsewhere" / "r")
    run = read_run_tables(moved, verify=True)
    assert math.isclose(run["timeseries"]["mark"].iloc[-1], make_result().timeseries["mark"].iloc[-1])


def test_read_run_gives_back_the_run_result(tmp_path):
    from abm.config import load_scenario
    from abm.outputs import read_run
    from abm.runs import run_scenario

    written = run_scenario(load_scenario("spiral", ["steps=320", "agents.1.count=60"]), seed=5)
    back = read_run(write_run(written, tmp_path / "r", figures=False), verify=True)
    assert isinstance(back, RunResult)
    assert back.scenario == written.scenario and back.seed == 5
    assert back.summary == json.loads(json.dumps(written.summary))
    for name in ("timeseries", "trades", "accounts", "ledger"):
        pd.testing.assert_frame_equal(getattr(back, name), getattr(written, name), check_dtype=False)
    assert back.liquidations["parents"].tolist() == written.liquidations["parents"].tolist()
    assert sorted(back.cascade.edges) == sorted(written.cascade.edges)
    assert back.extra["path"] == tmp_path / "r" and "trade_graph" in back.extra
    text = repr(back)
    assert text.startswith("<RunResult 'spiral' seed=5 steps=320:")
    assert f"liquidations={len(written.liquidations)}" in text
    page = back._repr_html_()
    assert "<table>" in page and "share of peak" in page and page.count("data:image/png;base64,") == 1


def test_run_scenario_takes_a_path_a_name_a_mapping_or_a_scenario(tmp_path):
    import yaml

    from abm.config import load_scenario
    from abm.runs import run_scenario

    scenario = load_scenario("spiral", ["steps=320", "agents.1.count=40"])
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(scenario.model_dump(mode="json")), encoding="utf-8")
    forms = [scenario, scenario.model_dump(mode="json"), path, str(path)]
    results = [run_scenario(form, seed=2) for form in forms]
    for other in results[1:]:
        pd.testing.assert_frame_equal(other.timeseries, results[0].timeseries)
    named = run_scenario("spiral", seed=2)  # a shipped scenario's name, as on the command line
    assert named.scenario.name == "spiral" and named.summary["steps"] == 600


def test_graphs_are_rebuilt_from_the_tables_without_graphml(tmp_path):
    # By default no GraphML is written: the cascade comes back from liquidations.parents and the
    # trade network from trades, accounts and liquidations, equal to what the GraphML files hold.
    result = make_result()
    plain = read_run_tables(write_run(result, tmp_path / "plain", figures=False))
    written = read_run_tables(write_run(result, tmp_path / "graphml", figures=False, graphml=True))
    assert not (tmp_path / "plain" / "cascade.graphml").exists()
    assert sorted(plain["cascade"].edges) == sorted(written["cascade"].edges) == [(0, 1), (0, 2), (1, 2)]
    assert sorted(plain["trade_graph"].edges) == sorted(written["trade_graph"].edges)
    for u, v, data in written["trade_graph"].edges(data=True):
        assert plain["trade_graph"].edges[u, v]["notional"] == pytest.approx(data["notional"])
