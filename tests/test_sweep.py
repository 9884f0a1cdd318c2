"""Sweeps: expansion and validation, seeds (common random numbers), backends, journal, resume, report."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import mesa
import numpy as np
import pandas as pd
import pytest

from abm import cli
from abm.model import MarketModel
from abm.runs import run_scenario
from abm.sweep.journal import ROWS_DIR
from abm.sweep.report import group_summary, load_sweep_results, write_report
from abm.sweep.runner import run_sweep
from abm.sweep.spec import SeedCount, SweepError, derive_seeds, expand_sweep, load_sweep

REPO = Path(__file__).resolve().parent.parent
# The spiral scenario, shortened: 40 steps with its shocks moved into the horizon, fewer agents.
SMALL = {
    "steps": 40,
    "shocks.0.step": 20,
    "shocks.1.step": 20,
    "shocks.1.quantity": 300,
    "agents.0.count": 2,
    "agents.0.levels": 8,
    "agents.1.count": 40,
    "agents.1.leverage.high": 18.0,
    "agents.2.count": 10,
}


def write_sweep(folder: Path, body: dict, name: str = "small.sweep.yaml") -> Path:
    path = folder / name
    path.write_text(json.dumps({"base": "spiral", **body}), encoding="utf-8")  # JSON is YAML
    return path


def small_sweep(folder: Path, seeds=None, **extra) -> Path:
    body = {
        "set": SMALL,
        "grid": {"margin.maintenance": [0.01, 0.02]},
        "seeds": seeds or {"count": 3, "root": 11},
        **extra,
    }
    return write_sweep(folder, body)


def comparable(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=["wall_seconds"]).sort_values("run_id").reset_index(drop=True)


def assert_same_rows(left: pd.DataFrame, right: pd.DataFrame) -> None:
    # Exact, every measure included: the eigenvector centrality's solver starts from a fixed vector.
    pd.testing.assert_frame_equal(comparable(left), comparable(right), check_exact=True)


# --------------------------------------------------------------------------- seeds and expansion


def test_seeds_come_from_seed_sequence_spawn_by_index():
    plan = derive_seeds(SeedCount(count=5, root=2024))
    children = np.random.SeedSequence(2024).spawn(5)
    expected = [int(child.generate_state(1, dtype=np.uint64)[0]) >> 1 for child in children]
    assert list(plan.seeds) == expected
    assert plan.entropy == 2024 and plan.spawn_keys == tuple((i,) for i in range(5))
    # A longer sweep keeps the seeds of the shorter one: a seed depends on its index only.
    assert derive_seeds(SeedCount(count=8, root=2024)).seeds[:5] == plan.seeds
    assert all(0 <= seed < 2**63 for seed in plan.seeds)


def test_grid_zip_labels_and_common_seeds(tmp_path):
    path = write_sweep(
        tmp_path,
        {
            "set": {**SMALL, "margin.call_buffer": 0.3},
            "grid": {
                "margin": [
                    {"label": "tight", "rule": "fixed", "initial": 0.04, "maintenance": 0.02},
                    {"rule": "fixed", "initial": 0.05, "maintenance": 0.03},
                ],
                "liquidation.mode": [{"label": "all-at-once", "value": "full"}, "partial"],
            },
            "zip": {"liquidation.fee": [0.005, 0.01], "liquidation.insurance_fund": [0.0, 1000.0]},
            "labels": {"liquidation.fee": ["low fee", "high fee"]},
            "group_by": ["margin"],
            "seeds": [5, 6, 7],
        },
    )
    plan = load_sweep(path)
    assert len(plan.points) == 2 * 2 * 2 and plan.run_count == 24
    first, last = plan.points[0], plan.points[-1]
    assert first.labels == {
        "margin": "tight",
        "liquidation.mode": "all-at-once",
        "liquidation.fee": "low fee",
        "liquidation.insurance_fund": "0",
    }
    # A mapping without a label is named by its content; the label key never reaches the scenario.
    assert last.labels["margin"] == "rule=fixed, initial=0.05, maintenance=0.03"
    assert last.group == last.labels["margin"]
    assert (last.scenario.margin.initial, last.scenario.margin.maintenance) == (0.05, 0.03)
    # `set` inside a swept mapping is applied on top of every swept value.
    assert {point.scenario.margin.call_buffer for point in plan.points} == {0.3}
    assert last.scenario.liquidation.mode == "partial" and last.scenario.liquidation.fee == 0.01
    assert last.scenario.liquidation.insurance_fund == 1000.0
    assert plan.seeds.seeds == (5, 6, 7) and plan.seeds.entropy is None
    assert plan.run_id(7, 2) == "p0007-s0002"


def test_default_group_by_is_every_swept_key(tmp_path):
    plan = load_sweep(
        small_sweep(tmp_path, grid={"margin.maintenance": [0.01, 0.02], "liquidation.fee": [0.0, 0.01]})
    )
    assert plan.group_by == ("margin.maintenance", "liquidation.fee")
    assert plan.points[1].group == "margin.maintenance=0.01, liquidation.fee=0.01"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"grid": {"margin.maintenance": 0.01}}, "grid.margin.maintenance: input should be a valid list"),
        ({"grid": {"margin.maintenance": []}}, "grid.margin.maintenance: needs at least one value"),
        ({"zip": {"a.b": [1, 2], "a.c": [1]}}, "zip.a.c: has 1 values but zip.a.b has 2"),
        (
            {"grid": {"steps": [10]}, "labels": {"steps": ["a", "b"]}},
            "labels.steps: has 2 labels for 1 values",
        ),
        ({"grid": {"seed": [1, 2]}}, "grid.seed: the seed is set by 'seeds:'"),
        ({"grid": {"margin": [{}], "margin.initial": [0.1]}}, "grid.margin.initial: overlaps the swept key"),
        ({"seeds": [1, 1]}, "seeds: seeds must be distinct"),
        ({"seeds": {"count": 0}}, "seeds.count: input should be greater than or equal to 1"),
        ({"grdi": {}}, "grdi: unknown key"),
        ({"group_by": ["steps"]}, "group_by.0: 'steps' is not a grid or zip key"),
    ],
)
def test_invalid_sweep_file_names_the_field_and_line(tmp_path, body, expected):
    body = {"seeds": [1, 2], **body}
    text = "base: spiral\n" + "".join(f"{key}: {json.dumps(value)}\n" for key, value in body.items())
    path = tmp_path / "bad.sweep.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SweepError) as caught:
        load_sweep(path)
    errors = caught.value.errors
    assert any(line.startswith(expected) for line in errors), errors
    # The line of the offending key is given (the key is on the last line written).
    assert any("(line " in line for line in errors), errors


def test_invalid_grid_point_names_point_and_field_and_nothing_runs(tmp_path, capsys):
    path = small_sweep(tmp_path, grid={"margin.maintenance": [0.01, 0.05, 0.02]})
    out = tmp_path / "out"
    status = cli.main(["sweep", str(path), "--out", str(out), "--workers", "1", "--no-progress"])
    assert status == 2
    err = capsys.readouterr().err
    assert (
        "point 1 (margin.maintenance=0.05): margin.maintenance: maintenance (0.05) must be below initial"
        in err
    )
    assert "point 0" not in err and "point 2" not in err
    assert not out.exists()


# --------------------------------------------------------------------------- running


@pytest.fixture(scope="module")
def inline_sweep(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inline")
    plan = load_sweep(small_sweep(folder))
    outcome = run_sweep(plan, folder / "out", workers=1, progress=False)
    return plan, outcome


def test_rows_hold_parameters_seeds_and_measures(inline_sweep):
    plan, outcome = inline_sweep
    frame = outcome.results
    assert outcome.executed == outcome.ok == 6 and outcome.failed == 0
    assert frame["run_id"].tolist() == sorted(frame["run_id"])
    # Common random numbers: every grid point ran the same seeds.
    seeds_by_point = frame.groupby("point")["seed"].apply(tuple)
    assert seeds_by_point.nunique() == 1 and seeds_by_point.iloc[0] == plan.seeds.seeds
    assert frame["margin.maintenance"].tolist() == [0.01] * 3 + [0.02] * 3
    assert frame["group"].tolist() == ["0.01"] * 3 + ["0.02"] * 3
    assert frame["seed_spawn_key"].tolist() == ["[0]", "[1]", "[2]"] * 2
    assert (frame["seed_entropy"] == 11).all() and (frame["status"] == "ok").all()
    # A row's measures are those of the same run made by hand.
    row = frame.iloc[4]
    scenario = plan.points[1].scenario.model_copy(update={"seed": int(row["seed"])})
    summary = run_scenario(scenario, seed=int(row["seed"])).summary
    for name in ("liquidated_notional", "max_drawdown", "bad_debt", "volume", "mmr_max"):
        assert row[name] == summary[name]
    on_disk = pd.read_parquet(outcome.out_dir / "results.parquet")
    pd.testing.assert_frame_equal(on_disk, frame)
    manifest = json.loads((outcome.out_dir / "sweep_manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["counts"] == {"runs": 6, "ok": 6, "failed": 0}
    assert [seed["spawn_key"] for seed in manifest["seeds"]] == [[0], [1], [2]]
    assert manifest["points"][1]["overrides"][-1] == "margin.maintenance=0.02"


def test_same_rows_with_two_processes_and_a_dask_local_cluster(inline_sweep, tmp_path):
    plan, outcome = inline_sweep
    two = run_sweep(plan, tmp_path / "two", workers=2, progress=False)
    assert_same_rows(two.results, outcome.results)
    dask = run_sweep(plan, tmp_path / "dask", scheduler="local", workers=2, progress=False)
    assert dask.executed == 6
    assert_same_rows(dask.results, outcome.results)
    sessions = json.loads((tmp_path / "dask" / "sweep_manifest.json").read_text())["sessions"]
    assert sessions[0]["backend"] == "local" and sessions[0]["runs_per_task"] == "auto"
    # Several runs a task (4 + 2 here) give the same rows as one run a task.
    batched = run_sweep(
        plan, tmp_path / "batched", scheduler="local", workers=2, progress=False, runs_per_task=4
    )
    assert batched.executed == 6
    assert_same_rows(batched.results, outcome.results)
    sessions = json.loads((tmp_path / "batched" / "sweep_manifest.json").read_text())["sessions"]
    assert sessions[0]["runs_per_task"] == 4


def test_an_out_where_no_directory_can_be_made_is_refused_before_any_run(tmp_path, capsys, monkeypatch):
    import tempfile

    import abm.sweep.runner

    path = small_sweep(tmp_path, seeds=[1])
    monkeypatch.setattr(abm.sweep.runner, "run_sweep", lambda *args, **kwargs: pytest.fail("ran"))
    # What /proc or a full disk answers (as root, access() calls /proc writable).
    monkeypatch.setattr(
        tempfile, "mkdtemp", lambda **kwargs: (_ for _ in ()).throw(OSError(28, "No space left on device"))
    )
    status = cli.main(["sweep", str(path), "--out", str(tmp_path / "out"), "--no-progress"])
    assert status == 2
    err = capsys.readouterr().err
    assert f"error: --out: cannot write output directory {tmp_path / 'out'}: no directory" in err
    assert "(No space left on device)" in err


def test_runs_per_task_is_checked(tmp_path, capsys):
    sweep = small_sweep(tmp_path, seeds=[1])
    assert cli.main(["sweep", str(sweep), "--scheduler", "local", "--runs-per-task", "0"]) == 2
    assert "--runs-per-task must be at least 1" in capsys.readouterr().err
    assert cli.main(["sweep", str(sweep), "--runs-per-task", "3", "--out", str(tmp_path / "o")]) == 2
    assert "give --scheduler too" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    with pytest.raises(SweepError, match="at least 1"):
        run_sweep(load_sweep(sweep), tmp_path / "o", scheduler="local", progress=False, runs_per_task=0)
    assert not (tmp_path / "o").exists()


def test_existing_directory_is_refused_without_resume(inline_sweep, capsys):
    plan, outcome = inline_sweep
    status = cli.main(["sweep", str(plan.source), "--out", str(outcome.out_dir), "--no-progress"])
    assert status == 2
    assert "already exists; use --resume" in capsys.readouterr().err


def test_resume_refuses_a_different_sweep(inline_sweep):
    plan, outcome = inline_sweep
    other = load_sweep(plan.source, ["liquidation.fee=0.01"])
    with pytest.raises(SweepError, match="holds a different sweep"):
        run_sweep(other, outcome.out_dir, resume=True, workers=1, progress=False)


def test_failed_runs_are_recorded_and_resumed(tmp_path):
    plan = load_sweep(small_sweep(tmp_path))
    calls: list[tuple[float, int]] = []
    bad_seed = plan.seeds.seeds[1]

    def flaky(scenario, seed):
        calls.append((scenario.margin.maintenance, seed))
        if seed == bad_seed:
            raise RuntimeError("injected failure")
        return run_scenario(scenario, seed=seed)

    first = run_sweep(plan, tmp_path / "out", workers=1, progress=False, simulate=flaky)
    assert len(calls) == 6 and (first.ok, first.failed) == (4, 2)
    failed = first.results[first.results["status"] == "failed"]
    assert failed["seed"].tolist() == [bad_seed, bad_seed]
    assert failed["error"].tolist() == ["RuntimeError: injected failure"] * 2
    assert failed["max_drawdown"].isna().all()

    calls.clear()
    second = run_sweep(
        plan, tmp_path / "out", workers=1, progress=False, resume=True, simulate=run_scenario_by_seed
    )
    assert (second.executed, second.skipped, second.ok, second.failed) == (2, 4, 6, 0)
    assert calls == []  # the finished runs were not run again
    sessions = json.loads((tmp_path / "out" / "sweep_manifest.json").read_text())["sessions"]
    assert [s["executed"] for s in sessions] == [6, 2]


def run_scenario_by_seed(scenario, seed):
    return run_scenario(scenario, seed=seed)


def test_resume_after_kill_completes_without_rerunning(tmp_path, inline_sweep):
    path = small_sweep(tmp_path, seeds={"count": 8, "root": 11})
    out = tmp_path / "out"
    command = [sys.executable, "-m", "abm.cli", "sweep", str(path), "--out", str(out), "--workers", "1"]
    process = subprocess.Popen(
        [*command, "--no-progress"], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    rows = out / ROWS_DIR
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        if rows.is_dir() and len(list(rows.glob("*.json"))) >= 2:
            break
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in rows.glob("*.json")}
    assert 2 <= len(finished) < 16, "the sweep was not killed part-way"

    status = cli.main(["sweep", str(path), "--out", str(out), "--workers", "1", "--resume", "--no-progress"])
    assert status == 0
    results, manifest = load_sweep_results(out)
    assert len(results) == 16 and (results["status"] == "ok").all()
    assert manifest["sessions"][-1]["executed"] == 16 - len(finished)
    for name, (content, mtime) in finished.items():
        assert (rows / name).read_bytes() == content and (rows / name).stat().st_mtime_ns == mtime
    # The same rows as an uninterrupted sweep: seeds 0-2 (same run ids) are those of the 3-seed sweep.
    assert_same_rows(results[results["seed_index"] < 3], inline_sweep[1].results)


def test_missing_dask_gives_an_install_hint(tmp_path, monkeypatch):
    plan = load_sweep(small_sweep(tmp_path, seeds=[1]))
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    with pytest.raises(SweepError, match=r"pip install 'abm-stress\[cluster\]'"):
        run_sweep(plan, tmp_path / "out", scheduler="local", progress=False)


# --------------------------------------------------------------------------- report


def test_group_summary_mean_and_t_interval():
    results = pd.DataFrame(
        {
            "group": ["a", "a", "a", "b", "b", "b", "b"],
            "point": [0, 0, 0, 1, 1, 1, 1],
            "status": ["ok", "ok", "ok", "ok", "ok", "ok", "failed"],
            "loss": [1.0, 2.0, 6.0, 4.0, 4.0, 4.0, np.nan],
        }
    )
    summary = group_summary(results, ["loss"]).set_index("group")
    # Group a by hand: mean 3, sd sqrt(((-2)^2 + (-1)^2 + 3^2) / 2) = sqrt(7); t(0.975, 2) = 4.303 (t table).
    assert summary.loc["a", "loss.mean"] == pytest.approx(3.0)
    assert summary.loc["a", "loss.sd"] == pytest.approx(np.sqrt(7.0))
    half = 4.303 * np.sqrt(7.0) / np.sqrt(3.0)
    assert summary.loc["a", "loss.low"] == pytest.approx(3.0 - half, abs=2e-3)
    assert summary.loc["a", "loss.high"] == pytest.approx(3.0 + half, abs=2e-3)
    # Group b: the failed run is counted, not averaged; no spread, so the interval is the mean.
    assert summary.loc["b", ["runs", "ok", "failed"]].tolist() == [4, 3, 1]
    assert summary.loc["b", "loss.low"] == summary.loc["b", "loss.high"] == 4.0


def test_compare_writes_tables_and_figures(tmp_path, capsys):
    path = small_sweep(tmp_path)
    out = tmp_path / "out"
    status = cli.main(
        ["sweep", str(path), "--out", str(out), "--workers", "1", "--keep-runs", "--report", "--no-progress"]
    )
    assert status == 0
    printed = capsys.readouterr().out
    assert "max_drawdown" in printed and "0.01" in printed and "3/0" in printed
    assert sorted(p.name for p in (out / "runs").iterdir()) == sorted(
        pd.read_parquet(out / "results.parquet")["run_id"]
    )
    table = pd.read_csv(out / "summary_by_group.csv")
    results = pd.read_parquet(out / "results.parquet")
    for group, members in results.groupby("group"):
        row = table[table["group"].astype(str) == str(group)].iloc[0]
        assert row["max_drawdown.mean"] == pytest.approx(members["max_drawdown"].mean())
    assert (out / "figures" / "boxplots.png").stat().st_size > 0
    assert (out / "figures" / "margin_paths.png").stat().st_size > 0
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.count('src="data:image/png;base64,') == 2 and "<script" not in page
    assert "liquidated_notional" in page and "runs ok/failed" in page
    # What was run, restated: the grid's key and both values, the seeds' rule (3 from root 11).
    design = page.split("What was run", 1)[1]
    assert "margin.maintenance: 2 values" in design
    assert "<td>0.01</td>" in design and "<td>0.02</td>" in design
    assert "3, common to every point: numpy.random.SeedSequence(11).spawn(3)" in design

    # Two sweeps compared: groups named by sweep; without kept runs, --paths re-runs one seed per group.
    other = tmp_path / "other"
    assert cli.main(["sweep", str(path), "--out", str(other), "--workers", "1", "--no-progress"]) == 0
    assert cli.main(["compare", str(out), str(other)]) == 2  # several directories need --out
    report = write_report([out, other], tmp_path / "both", paths=True)
    assert report.summary["group"].tolist() == ["out/0.01", "out/0.02", "other/0.01", "other/0.02"]
    assert (tmp_path / "both" / "figures" / "margin_paths.png").is_file()


def test_mesa_batch_run_still_works():
    results = mesa.batch_run(
        MarketModel,
        parameters={"scenario": "spiral", **SMALL, "margin.maintenance": [0.01, 0.02]},
        rng=[1],
        max_steps=40,
        number_processes=1,
        display_progress=False,
    )
    assert len(results) == 2
    assert sorted(row["margin.maintenance"] for row in results) == [0.01, 0.02]
    assert all("mark" in row for row in results)


def test_sweep_examples_in_scenarios_validate():
    files = sorted((REPO / "scenarios").glob("*.sweep.yaml"))
    assert files
    for file in files:
        plan = load_sweep(file)
        assert plan.run_count >= 1


def test_expand_sweep_from_a_mapping_resolves_base_by_name():
    plan = expand_sweep({"base": "spiral", "set": SMALL, "seeds": [3]})
    assert len(plan.points) == 1 and plan.points[0].group == "all" and plan.name == "spiral-sweep"
    assert os.path.basename(plan.base) == "spiral.yaml"


def test_paired_differences_by_hand():
    from abm.sweep.report import paired_differences

    # Seeds 1-3; B - A per seed: 2, 4, 6 (mean 4, sd 2); C has no run for seed 3 and a failed one for 2.
    results = pd.DataFrame(
        {
            "group": ["A", "A", "A", "B", "B", "B", "C", "C"],
            "seed": [1, 2, 3, 1, 2, 3, 1, 2],
            "status": ["ok"] * 7 + ["failed"],
            "loss": [10.0, 20.0, 30.0, 12.0, 24.0, 36.0, 11.0, 99.0],
        }
    )
    table = paired_differences(results, ["loss"], baseline="A").set_index("group")
    assert table.loc["B", "pairs"] == 3 and table.loc["B", "loss.diff"] == pytest.approx(4.0)
    half = 4.302652729911275 * 2.0 / np.sqrt(3)  # t(0.975, 2) x sd / sqrt(n)
    assert table.loc["B", "loss.low"] == pytest.approx(4.0 - half)
    assert table.loc["B", "loss.high"] == pytest.approx(4.0 + half)
    assert table.loc["C", "pairs"] == 1 and table.loc["C", "loss.diff"] == pytest.approx(1.0)
    assert np.isnan(table.loc["C", "loss.low"])
    with pytest.raises(ValueError, match="baseline group 'D' is not in the results; groups: A, B, C"):
        paired_differences(results, ["loss"], baseline="D")


def test_compare_with_a_baseline_writes_the_paired_table(tmp_path, capsys):
    path = small_sweep(tmp_path)
    out = tmp_path / "out"
    assert cli.main(["sweep", str(path), "--out", str(out), "--workers", "1", "--no-progress"]) == 0
    capsys.readouterr()
    assert cli.main(["compare", str(out), "--no-figures", "--baseline", "0.01"]) == 0
    printed = capsys.readouterr().out
    assert "minus 0.01, seed by seed" in printed
    table = pd.read_csv(out / "differences_vs_0.01.csv")
    results = pd.read_parquet(out / "results.parquet").set_index("seed")
    low, high = results[results["group"] == "0.01"], results[results["group"] == "0.02"]
    expected = (high["max_drawdown"] - low.loc[high.index, "max_drawdown"]).mean()
    assert table["group"].astype(str).tolist() == ["0.02"]
    assert table["max_drawdown.diff"].iloc[0] == pytest.approx(expected)
    before = sorted(p.name for p in out.iterdir())
    assert cli.main(["compare", str(out), "--no-figures", "--baseline", "nope"]) == 2
    assert "baseline group 'nope' is not in the results" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == before  # nothing written


def test_a_counterfactual_sweep_measures_the_drawdown_the_liquidations_add(tmp_path):
    from abm.sweep.runner import run_sweep
    from abm.sweep.spec import load_sweep

    sweep = tmp_path / "cf.sweep.yaml"
    sweep.write_text(
        "base: spiral\nset: {steps: 360}\ngrid:\n  liquidation.fee: [0.005]\nseeds: [7]\n"
        "counterfactual: true\n",
        encoding="utf-8",
    )
    plan = load_sweep(sweep, [])
    outcome = run_sweep(plan, tmp_path / "out", workers=1, progress=False)
    row = outcome.results.iloc[0]
    # The same figures as one run with --counterfactual: the fall with liquidations less the fall without.
    from abm.config import load_scenario, resolve_scenario
    from abm.runs import run_scenario

    single = run_scenario(
        load_scenario(resolve_scenario("spiral"), ["steps=360"]), seed=7, counterfactual=True
    )
    assert row["liquidation_added_drawdown"] == pytest.approx(single.summary["liquidation_added_drawdown"])
    assert row["liquidation_added_drawdown"] == pytest.approx(
        single.summary["max_drawdown"] - single.summary["counterfactual_max_drawdown"]
    )
    assert row["liquidation_added_drawdown"] > 0  # the spiral's liquidations deepen its fall
    # Asking for the counterfactual makes another sweep: resuming it without is refused.
    sweep.write_text(
        sweep.read_text(encoding="utf-8").replace("counterfactual: true\n", ""), encoding="utf-8"
    )
    with pytest.raises(Exception, match="different sweep"):
        run_sweep(load_sweep(sweep, []), tmp_path / "out", workers=1, progress=False, resume=True)


def test_compare_on_an_interrupted_sweep_names_the_groups_missing_runs(inline_sweep, tmp_path, capsys):
    # An interrupted sweep used to be compared in silence, its intervals resting on fewer seeds.
    _, outcome = inline_sweep
    copy = tmp_path / "interrupted"
    shutil.copytree(outcome.out_dir, copy)
    results, manifest = load_sweep_results(copy)
    last_group = manifest["points"][-1]["group"]
    dropped = results[results["point"] == manifest["points"][-1]["point"]]["run_id"].tolist()[:2]
    for run_id in dropped:
        (copy / ROWS_DIR / f"{run_id}.json").unlink()
    (copy / "results.parquet").unlink()
    assert cli.main(["compare", str(copy), "--no-figures"]) == 0
    err = capsys.readouterr().err
    assert f"warning: the sweep is incomplete: {last_group} (2 missing)" in err
    assert "(1 missing)" not in err and manifest["points"][0]["group"] + " (" not in err
    assert cli.main(["compare", str(outcome.out_dir), "--no-figures", "--out", str(tmp_path / "whole")]) == 0
    assert "incomplete" not in capsys.readouterr().err


def test_a_baseline_per_stratum_pairs_each_group_with_its_own_baseline():
    from abm.sweep.report import paired_differences

    # Two rules (a, b) under two stresses (x, y), seeds 1-2. b - a under x: 1, 3 (mean 2); under y:
    # 10, 30 (mean 20). Against one baseline group ("a, x") y's b would be 20 + 100 = 120 off.
    rows = []
    for stress, offset in (("x", 0.0), ("y", 100.0)):
        for rule, seed, loss in (("a", 1, 0.0), ("a", 2, 0.0), ("b", 1, 1.0), ("b", 2, 3.0)):
            scale = 10.0 if stress == "y" else 1.0
            rows.append(
                {
                    "group": f"rule={rule}, stress={stress}",
                    "label.rule": rule,
                    "label.stress": stress,
                    "seed": seed,
                    "status": "ok",
                    "loss": offset + scale * loss,
                }
            )
    table = paired_differences(pd.DataFrame(rows), ["loss"], baseline="rule=a").set_index("group")
    assert table["baseline"].to_dict() == {
        "rule=b, stress=x": "rule=a, stress=x",
        "rule=b, stress=y": "rule=a, stress=y",
    }
    assert table["loss.diff"].tolist() == pytest.approx([2.0, 20.0])
    # A swept key outside group_by (a value zipped with the rule, labelled differently per rule) does
    # not stop the pairing when group_by is given.
    frame = pd.DataFrame(rows)
    frame["label.rate"] = np.where(frame["label.rule"] == "a", "low", "high")
    assert paired_differences(frame, ["loss"], baseline="rule=a").empty
    table = paired_differences(frame, ["loss"], baseline="rule=a", group_by=["rule", "stress"])
    assert table["loss.diff"].tolist() == pytest.approx([2.0, 20.0])
    with pytest.raises(ValueError, match="no group has rule=z; its labels: a, b"):
        paired_differences(pd.DataFrame(rows), ["loss"], baseline="rule=z")
    with pytest.raises(ValueError, match=r"KEY=LABEL for a swept key: rule, stress"):
        paired_differences(pd.DataFrame(rows), ["loss"], baseline="method=a")


_PROBE = """
import json
from distributed import Client
from abm.sweep.backends import _local_cluster

def probe():
    import dask, os
    return [dask.config.get("distributed.worker.profile.enabled"), os.environ.get("MALLOC_TRIM_THRESHOLD_"),
            os.environ.get("OPENBLAS_NUM_THREADS"), dask.config.get("distributed.admin.tick.interval"),
            dask.config.get("distributed.worker.memory.monitor-interval")]

if __name__ == "__main__":
    with _local_cluster(1) as cluster, Client(cluster) as client:
        first = client.submit(probe, pure=False).result()
        client.restart()  # the nanny starts a new worker, as it does after a crash
        print(json.dumps([first, client.submit(probe, pure=False).result()]))
"""


def test_the_local_clusters_workers_run_without_the_profiler_and_the_trim_threshold(tmp_path):
    # In a fresh process: a nanny leaves its pre-spawn variables in its own process's environment, so
    # a cluster started earlier in this one would hand MALLOC_TRIM_THRESHOLD_ on. One BLAS thread stays.
    # A worker the nanny restarts keeps them: the configuration stays set while the cluster lives. Its
    # event loop ticks and its memory monitor runs once a second, not every 20 and 100 ms.
    script = tmp_path / "probe.py"
    script.write_text(_PROBE)
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=True
    )
    seen = [False, None, "1", "1s", "1s"]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [seen, seen]
