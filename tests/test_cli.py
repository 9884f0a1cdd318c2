"""The ``abm`` command line: validate, run (with a fake model and writer) and list."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import networkx as nx
import pandas as pd
import pytest
from config_cases import VALID

from abm import cli, config
from abm.config import Scenario
from abm.results import RunResult


class FakeRunAPI:
    """Stand-ins for ``abm.runs.run_scenario`` and ``abm.outputs``, recording their calls."""

    def __init__(self, base: Path) -> None:
        self.base = base
        # Figures the fake model reports, keyed by liquidation.enabled.
        self.max_drawdown = {True: 0.30, False: 0.12}
        self.liquidation_rows = {True: 4, False: 1}
        self.failure: BaseException | None = None
        self.write_failure: BaseException | None = None
        self.runs: list[dict[str, Any]] = []
        self.writes: list[dict[str, Any]] = []
        self.OutputExistsError = type("OutputExistsError", (Exception,), {})

    def run_scenario(
        self,
        scenario: Scenario,
        seed: int | None = None,
        *,
        check_invariants: bool = False,
        progress: Any = None,
    ) -> RunResult:
        self.runs.append(
            {"scenario": scenario, "seed": seed, "check": check_invariants, "progress": progress}
        )
        if self.failure is not None:
            raise self.failure
        if progress is not None:
            for _ in range(scenario.steps):
                progress(1)
        enabled = scenario.liquidation.enabled
        rows = self.liquidation_rows[enabled]
        return RunResult(
            scenario=scenario,
            seed=seed,
            timeseries=pd.DataFrame({"step": range(scenario.steps)}),
            trades=pd.DataFrame(),
            liquidations=pd.DataFrame({"liquidation_id": range(rows)}),
            accounts=pd.DataFrame(),
            cascade=nx.DiGraph(),
            summary={"max_drawdown": self.max_drawdown[enabled], "liquidations": rows, "bad_debt": 12.5},
            wall_seconds=0.25,
        )

    def default_run_dir(self, scenario: Scenario, seed: int, base: Path = Path("outputs")) -> Path:
        return self.base / "outputs" / f"{scenario.name}-{seed}"

    def check_out_dir(self, path: Path | str, force: bool) -> None:
        if Path(path).exists() and not force:
            raise self.OutputExistsError(f"output directory {path} already exists; use --force to replace it")

    def write_run(
        self,
        result: RunResult,
        out_dir: Path | str,
        *,
        force: bool,
        command_line: Any,
        extra_manifest: Any,
        figures: bool = True,
        graphml: bool = False,
    ) -> Path:
        self.writes.append(
            {
                "graphml": graphml,
                "result": result,
                "out_dir": Path(out_dir),
                "force": force,
                "command_line": command_line,
                "extra_manifest": extra_manifest,
                "summary": dict(result.summary),
            }
        )
        if self.write_failure is not None:
            raise self.write_failure
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        return Path(out_dir)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeRunAPI:
    api = FakeRunAPI(tmp_path)
    import abm.runs

    monkeypatch.setattr(abm.runs, "run_scenario", api.run_scenario)
    outputs = types.ModuleType("abm.outputs")
    outputs.OutputExistsError = api.OutputExistsError
    outputs.default_run_dir = api.default_run_dir
    outputs.check_out_dir = api.check_out_dir
    outputs.write_run = api.write_run
    monkeypatch.setitem(sys.modules, "abm.outputs", outputs)
    monkeypatch.delenv("ABM_DEBUG", raising=False)
    return api


@pytest.fixture
def scenario_file(tmp_path: Path) -> Path:
    file = tmp_path / "demo.yaml"
    # The valid file of the loading tests, shorter: the commands below run it.
    file.write_text(VALID.replace("steps: 100\n", "steps: 40\n"), encoding="utf-8")
    return file


# --------------------------------------------------------------------------- validate


def test_validate_ok(scenario_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["validate", str(scenario_file)]) == 0
    captured = capsys.readouterr()
    assert captured.out == "ok: demo (40 steps, 2 agent groups, margin rule fixed)\n"
    assert captured.err == ""


def test_validate_applies_set(scenario_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = cli.main(
        [
            "validate",
            str(scenario_file),
            "--set",
            "steps=250",
            "--set",
            "margin={rule: ewma_vol}",
            "--set",
            "agents=[]",
        ]
    )
    assert status == 0
    assert capsys.readouterr().out == "ok: demo (250 steps, 0 agent groups, margin rule ewma_vol)\n"


def test_validate_by_scenario_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "scenarios"
    folder.mkdir()
    (folder / "tiny.yaml").write_text("name: tiny\nsteps: 5\n", encoding="utf-8")
    monkeypatch.setattr(config, "SCENARIOS_DIR", folder)
    assert cli.main(["validate", "tiny"]) == 0
    assert capsys.readouterr().out == "ok: tiny (5 steps, 0 agent groups, margin rule fixed)\n"
    assert cli.main(["validate", "tinny"]) == 2
    assert "did you mean 'tiny'?" in capsys.readouterr().err


def test_validate_error_lines_name_file_and_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "bad.yaml"
    file.write_text("name: demo\nsteps: 0\n", encoding="utf-8")
    assert cli.main(["validate", str(file)]) == 2
    assert capsys.readouterr().err == f"error: {file}: steps: must be >= 1 (got 0) (line 2)\n"


# --------------------------------------------------------------------------- run


def test_run_plumbs_seed_steps_and_set(
    fake: FakeRunAPI, scenario_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "run"
    argv = ["run", str(scenario_file), "--seed", "7", "--steps", "50", "--set", "agents.1.count=3"]
    argv += ["--out", str(out_dir), "--no-progress"]
    assert cli.main(argv) == 0
    (run,) = fake.runs
    assert run["seed"] == 7 and run["scenario"].seed == 7
    assert run["scenario"].steps == 50
    assert run["scenario"].agents[1].count == 3
    assert run["check"] is False and run["progress"] is None
    (write,) = fake.writes
    assert write["out_dir"] == out_dir and write["force"] is False
    assert write["command_line"] == ["abm", *argv]
    assert write["extra_manifest"]["overrides"] == ["agents.1.count=3", "seed=7", "steps=50"]
    assert write["extra_manifest"]["scenario_file"] == str(scenario_file)
    assert out_dir.is_dir()
    assert capsys.readouterr().out.splitlines()[-1] == f"run directory: {out_dir}"


def test_seed_flag_wins_over_set(fake: FakeRunAPI, scenario_file: Path, tmp_path: Path) -> None:
    argv = ["run", str(scenario_file), "--set", "seed=3", "--seed", "9", "--out", str(tmp_path / "r")]
    assert cli.main([*argv, "--no-progress"]) == 0
    assert fake.runs[0]["seed"] == 9


def test_run_check_flag_and_progress_callback(
    fake: FakeRunAPI, scenario_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["run", str(scenario_file), "--check", "--out", str(tmp_path / "r")]) == 0
    (run,) = fake.runs
    assert run["check"] is True
    assert callable(run["progress"])
    # The fake run takes well under tqdm's one-second delay: no bar is drawn.
    assert capsys.readouterr().err == ""


def test_run_bad_override_value_is_refused_before_running(
    fake: FakeRunAPI, scenario_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = cli.main(["run", str(scenario_file), "--seed", "-1", "--out", str(tmp_path / "r")])
    assert status == 2
    assert "seed: must be >= 0 (got -1) (set by override 'seed=-1')" in capsys.readouterr().err
    assert fake.runs == []


def test_existing_out_dir_needs_force(
    fake: FakeRunAPI, scenario_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "run"
    out_dir.mkdir()
    (out_dir / "keep.txt").write_text("old run", encoding="utf-8")
    assert cli.main(["run", str(scenario_file), "--out", str(out_dir), "--no-progress"]) == 2
    captured = capsys.readouterr()
    assert "already exists" in captured.err and "Traceback" not in captured.err
    assert fake.runs == [] and fake.writes == []
    assert (out_dir / "keep.txt").read_text(encoding="utf-8") == "old run"

    assert cli.main(["run", str(scenario_file), "--out", str(out_dir), "--no-progress", "--force"]) == 0
    assert fake.writes[0]["force"] is True


def test_default_out_dir_comes_from_outputs(fake: FakeRunAPI, scenario_file: Path, tmp_path: Path) -> None:
    assert cli.main(["run", str(scenario_file), "--seed", "4", "--no-progress"]) == 0
    assert fake.writes[0]["out_dir"] == tmp_path / "outputs" / "demo-4"


def test_run_by_scenario_name(
    fake: FakeRunAPI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scenario_file: Path
) -> None:
    monkeypatch.setattr(config, "SCENARIOS_DIR", scenario_file.parent)
    assert cli.main(["run", "demo", "--out", str(tmp_path / "r"), "--no-progress"]) == 0
    assert fake.runs[0]["scenario"].name == "demo"


def test_counterfactual_amplification(
    fake: FakeRunAPI, scenario_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["run", str(scenario_file), "--seed", "5", "--counterfactual", "--out", str(tmp_path / "r")]
    assert cli.main([*argv, "--no-progress"]) == 0
    main_run, counterfactual_run = fake.runs
    assert main_run["scenario"].liquidation.enabled is True
    assert counterfactual_run["scenario"].liquidation.enabled is False
    assert counterfactual_run["seed"] == main_run["seed"] == 5
    # Apart from liquidation.enabled, the two runs see the same scenario.
    same = counterfactual_run["scenario"].model_copy(update={"liquidation": main_run["scenario"].liquidation})
    assert same == main_run["scenario"]

    summary = fake.writes[0]["summary"]
    expected = fake.max_drawdown[True] / fake.max_drawdown[False]
    assert summary["amplification"] == pytest.approx(expected)
    assert summary["counterfactual_max_drawdown"] == fake.max_drawdown[False]
    assert summary["counterfactual_liquidations"] == fake.liquidation_rows[False]
    assert summary["max_drawdown"] == fake.max_drawdown[True]

    rows = {line.split()[0]: line.split()[1] for line in capsys.readouterr().out.splitlines()[1:-1]}
    assert rows["amplification"] == f"{expected:.6g}"
    assert rows["max_drawdown"] == "0.3"
    assert rows["counterfactual_liquidations"] == str(fake.liquidation_rows[False])


def test_counterfactual_without_drawdown_has_no_amplification(
    fake: FakeRunAPI, scenario_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.max_drawdown[False] = 0.0
    argv = ["run", str(scenario_file), "--counterfactual", "--out", str(tmp_path / "r"), "--no-progress"]
    assert cli.main(argv) == 0
    assert fake.writes[0]["summary"]["amplification"] is None
    assert "amplification                n/a" in capsys.readouterr().out


def test_summary_table_is_aligned(
    fake: FakeRunAPI, scenario_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["run", str(scenario_file), "--out", str(tmp_path / "r"), "--no-progress"]) == 0
    lines = capsys.readouterr().out.splitlines()
    table = lines[:-1]
    assert table[0].split() == ["metric", "value", "unit"]
    assert table[1].split()[2:] == ["share", "of", "peak"]  # max_drawdown's unit, from abm.headline
    assert [line.split()[0] for line in table[1:]] == [
        "max_drawdown",
        "liquidations",
        "bad_debt",
        "wall_seconds",
    ]
    value_column = {line.index(line.split()[1], len(line.split()[0])) for line in table}
    assert len(value_column) == 1


def test_interrupt_writes_nothing(
    fake: FakeRunAPI, scenario_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.failure = KeyboardInterrupt()
    out_dir = tmp_path / "r"
    assert cli.main(["run", str(scenario_file), "--out", str(out_dir), "--no-progress"]) == 130
    assert "interrupted: nothing written" in capsys.readouterr().err
    assert fake.writes == [] and not out_dir.exists()


def test_model_failure_is_an_internal_error(
    fake: FakeRunAPI, scenario_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.failure = RuntimeError("book crossed")
    out_dir = tmp_path / "r"
    assert cli.main(["run", str(scenario_file), "--out", str(out_dir), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "internal error: RuntimeError: book crossed" in err
    assert "--check" in err and "Traceback" not in err
    assert fake.writes == [] and not out_dir.exists()


def test_debug_env_shows_traceback(
    fake: FakeRunAPI,
    scenario_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake.failure = RuntimeError("book crossed")
    monkeypatch.setenv("ABM_DEBUG", "1")
    assert cli.main(["run", str(scenario_file), "--out", str(tmp_path / "r"), "--no-progress"]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_writer_failure_is_an_internal_error(
    fake: FakeRunAPI, scenario_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.write_failure = ValueError("RunResult.trades lacks the documented columns: price")
    assert cli.main(["run", str(scenario_file), "--out", str(tmp_path / "r"), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "internal error: ValueError" in err and "Traceback" not in err


def test_missing_model_module_is_an_internal_error(
    scenario_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "abm.model", None)  # makes `import abm.model` raise ImportError
    monkeypatch.delenv("ABM_DEBUG", raising=False)
    assert cli.main(["run", str(scenario_file), "--out", str(tmp_path / "r"), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("internal error: ") and "abm.model" in err


# --------------------------------------------------------------------------- list and parser


def test_list_shows_first_description_line_sorted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "scenarios"
    folder.mkdir()
    (folder / "spiral.yaml").write_text(
        "name: spiral\ndescription: |\n  Crowded longs, thin book.\n  More detail here.\n", encoding="utf-8"
    )
    (folder / "calm.yaml").write_text("name: calm\ndescription: No shock.\n", encoding="utf-8")
    (folder / "bare.yaml").write_text("name: bare\n", encoding="utf-8")
    (folder / "broken.yaml").write_text("name: a\nname: b\n", encoding="utf-8")
    (folder / "notes.txt").write_text("not a scenario", encoding="utf-8")
    monkeypatch.setattr(config, "SCENARIOS_DIR", folder)
    assert cli.main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "bare",
        "broken  (unreadable: name: duplicate key 'name', also set at line 1 (line 2))",
        "calm    No shock.",
        "spiral  Crowded longs, thin book.",
    ]


def test_list_shows_the_shipped_scenarios(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["list"]) == 0
    printed = capsys.readouterr().out
    scenarios, sweeps = printed.split("\n\nsweep files")
    listed = [line.split()[0] for line in scenarios.splitlines()]
    assert listed == sorted(
        path.stem for path in config.SCENARIOS_DIR.glob("*.yaml") if not config.is_sweep_file(path)
    )
    sweep_lines = sweeps.splitlines()[1:]
    # Each description starts in one column, after the longest file name and two spaces.
    width = max(len(line.split()[0]) for line in sweep_lines)
    assert {len(line) - len(line[2 + width :].lstrip()) for line in sweep_lines} == {width + 4}
    assert [line.split()[0] for line in sweep_lines] == [
        "contagion_modes.sweep.yaml",
        "liquidation_designs.yaml",
        "liquidation_designs_contagion.sweep.yaml",
        "liquidation_designs_flash_crash.sweep.yaml",
        "policy_comparison.yaml",
        "portfolio_comparison.yaml",
        "spiral_maintenance.sweep.yaml",
    ]


def test_usage_errors_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    assert cli.main(["frobnicate"]) == 2
    assert cli.main(["run", "x.yaml", "--seed", "soon"]) == 2
    assert "Traceback" not in capsys.readouterr().err
    assert cli.main(["--help"]) == 0
    assert "validate" in capsys.readouterr().out


@pytest.mark.parametrize("module", ["abm.cli", "abm"])
def test_module_entry_point_exit_status(tmp_path: Path, module: str) -> None:
    # `python -m abm` (abm/__main__.py) is the same program as `python -m abm.cli` and the script.
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: demo\nsteps: -5\n", encoding="utf-8")
    repo = Path(cli.__file__).resolve().parent.parent
    environment = {**os.environ, "PYTHONPATH": str(repo)}
    environment.pop("ABM_DEBUG", None)
    completed = subprocess.run(
        [sys.executable, "-m", module, "validate", str(bad)],
        capture_output=True,
        text=True,
        cwd=repo,
        env=environment,
        timeout=60,
    )
    assert completed.returncode == 2
    assert completed.stderr == f"error: {bad}: steps: must be >= 1 (got -5) (line 2)\n"


def test_list_with_nothing_to_list_fails(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(config, "SCENARIOS_DIR", tmp_path)
    # An installation without its scenarios is broken (issue: a plain `pip install .` shipped none).
    assert cli.main(["list"]) == 1
    assert capsys.readouterr().err == f"error: no scenarios in {tmp_path}; the installation is incomplete\n"


def test_the_command_line_starts_without_the_heavy_libraries() -> None:
    # `abm --help` and `abm --version` took 2.3 s when Mesa, matplotlib and pandas loaded at start.
    code = (
        "import sys, abm.cli as cli; cli._build_parser();"
        "heavy = ('numpy', 'pandas', 'pydantic', 'mesa', 'matplotlib', 'scipy');"
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "[]"


def test_facts_help_states_the_defaults_it_uses() -> None:
    from abm.stylized import DEFAULT_HILL_FRACTION, DEFAULT_MAX_LAG

    parser = cli._build_parser()
    facts = parser._subparsers._group_actions[0].choices["facts"]
    helps = {action.dest: action.help for action in facts._actions}
    assert f"(default {DEFAULT_MAX_LAG})" in helps["max_lag"]
    assert f"(default {DEFAULT_HILL_FRACTION})" in helps["hill_fraction"]


@pytest.mark.parametrize(
    ("rule", "params", "expected"),
    [
        ("nosuchmodule_for_abm:Rule", "", "no module named 'nosuchmodule_for_abm'"),
        ("abm.margin.base:NoSuchRule", "", "has no 'NoSuchRule'"),
        ("abm.margin.base:MarginRuleError", "", "not a subclass of abm.margin.MarginRule"),
        ("abm.margin.rules:FixedRule", "\n  params: {no_such_param: 1}", "rejected params ['no_such_param']"),
    ],
)
def test_a_user_rule_that_cannot_be_built_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], rule: str, params: str, expected: str
) -> None:
    # It once passed `abm validate`, and `abm run` ended with exit 1 and "internal error".
    path = tmp_path / "user_rule.yaml"
    path.write_text(
        "name: user_rule\nsteps: 50\nseed: 1\nagents:\n  - {kind: market_maker, count: 2}\n"
        f"  - {{kind: leveraged_trader, count: 5}}\nmargin:\n  rule: {rule}{params}\n",
        encoding="utf-8",
    )
    for argv in (["validate", str(path)], ["run", str(path), "--out", str(tmp_path / "r"), "--no-progress"]):
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert "margin.rule:" in err and expected in err and "(line 8)" in err, err
        assert "internal error" not in err
    assert not (tmp_path / "r").exists()


def test_an_exponent_without_a_dot_is_a_number_on_the_command_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # YAML 1.1 reads 1e-06 as text; the message used to suggest writing 1e-06.
    assert cli.main(["validate", "spiral", "--set", "margin.maintenance=1e-02"]) == 0
    assert cli.main(["validate", "spiral", "--set", "margin.maintenance=5E-3"]) == 0
    assert cli.main(["validate", "spiral", "--set", "margin.maintenance=1e-06"]) == 0
    capsys.readouterr()


def test_no_figures_draws_none_anywhere(tmp_path: Path) -> None:
    out = tmp_path / "r"
    argv = ["run", "spiral", "--steps", "320", "--out", str(out), "--no-progress", "--no-figures"]
    assert cli.main(argv) == 0
    assert not (out / "figures").exists()
    report = (out / "report.html").read_text(encoding="utf-8")
    assert "data:image/png" not in report and "No figures." in report


def test_a_tier_bracket_no_position_reaches_is_noted(tmp_path, capsys):
    # The spiral's margin-called traders hold 1,000-2,500 of notional, makers up to about 59,000 (seed 7):
    # a bracket from 1,000,000 is never reached, one from 1,500 is.
    tiers = (
        'margin={"rule": "tiered", "call_buffer": 0.25, "tiers": ['
        '{"notional_floor": 0, "initial": 0.04, "maintenance": 0.02}, '
        '{"notional_floor": 1500, "initial": 0.05, "maintenance": 0.025}, '
        '{"notional_floor": 1000000, "initial": 0.10, "maintenance": 0.05}]}'
    )
    arguments = ["run", "spiral", "--steps", "320", "--no-progress", "--no-report", "--no-figures"]
    assert cli.main([*arguments, "--set", tiers, "--out", str(tmp_path / "tiered")]) == 0
    out = capsys.readouterr().out
    assert "note: 1 tier bracket of the margin rule above the first was never reached" in out
    summary = json.loads((tmp_path / "tiered" / "summary.json").read_text())
    assert summary["tier_brackets_unreached"] == 1
    assert 1500 <= summary["largest_position_notional"] < 1_000_000
    assert cli.main([*arguments, "--out", str(tmp_path / "fixed")]) == 0  # no brackets: no note
    assert "note:" not in capsys.readouterr().out
