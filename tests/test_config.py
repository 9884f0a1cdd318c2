"""Scenario loading: every way a scenario file can be wrong, and the good paths.

The table of bad files (tests/config_cases.py) is checked three ways: :func:`load_scenario` raises a
ScenarioError naming the dotted path (and the line where there is one), ``abm validate`` exits 2
without a traceback, and ``abm run --out DIR`` exits 2 before writing anything.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import sys
import textwrap
import types
from pathlib import Path

import pytest
from config_cases import BAD_CASES, VALID, BadCase, materialise

from abm import cli, config
from abm.config import (
    Scenario,
    ScenarioError,
    apply_overrides,
    available_scenarios,
    load_scenario,
    read_yaml_mapping,
    resolve_scenario,
    scenario_from_dict,
    scenario_hash,
)
from abm.margin.settings import TieredMargin
from abm.outputs import scenario_sha256


def _set_args(overrides: tuple[str, ...]) -> list[str]:
    return [part for override in overrides for part in ("--set", override)]


@pytest.fixture
def forbidden_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stand-ins for the model and writer that fail the test if a bad scenario reaches them."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a bad scenario must be refused before the model or the writer is used")

    import abm.runs

    monkeypatch.setattr(abm.runs, "run_scenario", refuse)
    outputs = types.ModuleType("abm.outputs")
    outputs.OutputExistsError = type("OutputExistsError", (Exception,), {})
    outputs.check_out_dir = outputs.default_run_dir = outputs.write_run = refuse
    monkeypatch.setitem(sys.modules, "abm.outputs", outputs)


def test_table_has_at_least_25_distinct_cases() -> None:
    assert len({case.id for case in BAD_CASES}) == len(BAD_CASES) >= 25


@pytest.mark.parametrize("case", BAD_CASES, ids=lambda case: case.id)
def test_bad_scenario_names_path_and_line(tmp_path: Path, case: BadCase) -> None:
    file = materialise(tmp_path, case)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(file, case.overrides)
    error = caught.value
    at_path = [line for line in error.errors if line.startswith(f"{case.path}: ")]
    assert at_path, error.errors
    assert any(case.fragment in line for line in at_path), error.errors
    if case.line is not None:
        assert any(line.endswith(f"(line {case.line})") for line in at_path if case.fragment in line), (
            error.errors
        )
    else:
        assert not any("(line " in line for line in at_path if case.fragment in line), error.errors
    assert str(error).startswith(f"{file}: invalid scenario")


@pytest.mark.parametrize("case", BAD_CASES, ids=lambda case: case.id)
def test_bad_scenario_validate_exits_2(
    tmp_path: Path, case: BadCase, capsys: pytest.CaptureFixture[str], forbidden_model: None
) -> None:
    file = materialise(tmp_path, case)
    status = cli.main(["validate", str(file), *_set_args(case.overrides)])
    captured = capsys.readouterr()
    assert status == 2
    assert captured.out == ""
    assert "Traceback" not in captured.err
    assert f"{case.path}: " in captured.err
    assert all(line.startswith("error: ") for line in captured.err.splitlines())


@pytest.mark.parametrize("case", BAD_CASES, ids=lambda case: case.id)
def test_bad_scenario_run_writes_nothing(
    tmp_path: Path, case: BadCase, capsys: pytest.CaptureFixture[str], forbidden_model: None
) -> None:
    file = materialise(tmp_path, case)
    before = set(tmp_path.iterdir())
    out_dir = tmp_path / "run"
    status = cli.main(["run", str(file), "--out", str(out_dir), "--no-progress", *_set_args(case.overrides)])
    captured = capsys.readouterr()
    assert status == 2
    assert "Traceback" not in captured.out + captured.err
    assert f"{case.path}: " in captured.err
    assert not out_dir.exists()
    assert set(tmp_path.iterdir()) == before


# --------------------------------------------------------------------------- good files


def test_minimal_file_gets_the_defaults(tmp_path: Path) -> None:
    file = tmp_path / "minimal.yaml"
    file.write_text("name: minimal\n", encoding="utf-8")
    scenario = load_scenario(file)
    assert scenario == Scenario(name="minimal")
    assert scenario.margin.rule == "fixed"
    assert scenario.agents == []


def test_valid_file_loads_every_section(tmp_path: Path) -> None:
    file = tmp_path / "valid.yaml"
    file.write_text(VALID, encoding="utf-8")
    scenario = load_scenario(file)
    assert [group.kind for group in scenario.agents] == ["market_maker", "leveraged_trader"]
    assert scenario.agents[1].leverage.high == 5.0
    assert (scenario.margin.initial, scenario.margin.maintenance) == (0.1, 0.05)


def test_mark_price_shorthand(tmp_path: Path) -> None:
    file = tmp_path / "mark.yaml"
    file.write_text("name: demo\nmarket:\n  mark_price: index\n", encoding="utf-8")
    assert load_scenario(file).market.mark_price.source == "index"


def test_overrides_of_nested_and_list_keys(tmp_path: Path) -> None:
    file = tmp_path / "valid.yaml"
    file.write_text(VALID, encoding="utf-8")
    scenario = load_scenario(
        file,
        [
            "agents.1.count=1000",
            "agents.1.leverage.high=8",
            "margin.maintenance=0.04",
            "market.mark_price=last",
            "liquidation={mode: partial, target_ratio: 2.0}",
            "shocks=[{type: fundamental_jump, step: 50, size: -0.05}]",
            "description=two words",
        ],
    )
    assert scenario.agents[1].count == 1000
    assert scenario.agents[1].leverage.high == 8.0
    assert scenario.margin.maintenance == 0.04
    assert scenario.market.mark_price.source == "last"
    assert (scenario.liquidation.mode, scenario.liquidation.target_ratio) == ("partial", 2.0)
    assert scenario.shocks[0].step == 50 and scenario.shocks[0].size == -0.05
    assert scenario.description == "two words"


def test_later_override_wins(tmp_path: Path) -> None:
    file = tmp_path / "valid.yaml"
    file.write_text(VALID, encoding="utf-8")
    assert load_scenario(file, ["steps=10", "steps=20"]).steps == 20


def test_apply_overrides_parses_values_as_yaml_and_creates_keys() -> None:
    data = {"name": "demo", "agents": [{"kind": "noise", "count": 1}]}
    result = apply_overrides(
        data,
        ["a.b.int=3", "a.b.float=0.05", "a.b.flag=true", "a.b.list=[1,2]", "a.b.map={a: 1}", "a.b.none="],
    )
    assert result["a"]["b"] == {
        "int": 3,
        "float": 0.05,
        "flag": True,
        "list": [1, 2],
        "map": {"a": 1},
        "none": None,
    }
    assert data == {"name": "demo", "agents": [{"kind": "noise", "count": 1}]}


def test_apply_overrides_does_not_mutate_or_share() -> None:
    shared = {"count": 1}
    data = {"agents": [shared, shared]}
    result = apply_overrides(data, ["agents.0.count=5"])
    assert result["agents"] == [{"count": 5}, {"count": 1}]
    assert shared == {"count": 1}


def test_override_creates_missing_margin_apc_section(tmp_path: Path) -> None:
    file = tmp_path / "valid.yaml"
    file.write_text(VALID, encoding="utf-8")
    scenario = load_scenario(file, ["margin.apc.buffer=0.25"])
    assert scenario.margin.apc is not None and scenario.margin.apc.buffer == 0.25


def test_anchors_and_merge_keys_are_allowed(tmp_path: Path) -> None:
    file = tmp_path / "merge.yaml"
    file.write_text(
        textwrap.dedent(
            """\
            name: merged
            agents:
              - &noise {kind: noise, count: 3, min_size: 2, max_size: 4}
              - <<: *noise
                count: 7
            """
        ),
        encoding="utf-8",
    )
    first, second = load_scenario(file).agents
    assert (first.count, second.count) == (3, 7)
    assert (second.min_size, second.max_size) == (2, 4)


def test_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    file = tmp_path / "bom.yaml"
    file.write_bytes(b"\xef\xbb\xbfname: bom\n")
    assert load_scenario(file).name == "bom"


def test_errors_are_reported_together_in_file_order(tmp_path: Path) -> None:
    file = tmp_path / "many.yaml"
    file.write_text("name: demo\nsteps: 0\nseed: -1\nmarket:\n  tick_size: 0\n", encoding="utf-8")
    with pytest.raises(ScenarioError) as caught:
        load_scenario(file)
    assert [line.split(":")[0] for line in caught.value.errors] == ["steps", "seed", "market.tick_size"]


def test_scenario_from_dict_gives_paths_without_lines() -> None:
    with pytest.raises(ScenarioError) as caught:
        scenario_from_dict({"name": "demo", "agents": [{"kind": "noise", "cont": 1}]})
    assert caught.value.errors == [
        "agents.0.count: missing required key 'count'",
        "agents.0.cont: unknown key 'cont'; did you mean 'count'?",
    ]
    assert caught.value.source is None


def test_scenario_from_dict_applies_overrides_without_touching_input() -> None:
    data = {"name": "demo", "steps": 10}
    assert scenario_from_dict(data, ["steps=30"]).steps == 30
    assert data == {"name": "demo", "steps": 10}


def test_scenario_error_text_and_pickle() -> None:
    error = ScenarioError(
        ["steps: must be >= 1 (got 0) (line 2)", "seed: must be >= 0 (got -1) (line 3)"], "x.yaml"
    )
    assert str(error).splitlines() == [
        "x.yaml: invalid scenario (2 problems)",
        "  steps: must be >= 1 (got 0) (line 2)",
        "  seed: must be >= 0 (got -1) (line 3)",
    ]
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.errors, copy.source) == (error.errors, error.source)


def test_read_yaml_mapping_does_not_validate(tmp_path: Path) -> None:
    file = tmp_path / "sweep.yaml"
    file.write_text("base: spiral\ngrid: {seed: [1, 2]}\n", encoding="utf-8")
    assert read_yaml_mapping(file) == {"base": "spiral", "grid": {"seed": [1, 2]}}


# --------------------------------------------------------------------------- names and hashes


def test_resolve_scenario_by_path_and_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "scenarios"
    folder.mkdir()
    (folder / "spiral.yaml").write_text("name: spiral\n", encoding="utf-8")
    (folder / "calm.yaml").write_text("name: calm\n", encoding="utf-8")
    monkeypatch.setattr(config, "SCENARIOS_DIR", folder)
    assert resolve_scenario("spiral") == folder / "spiral.yaml"
    assert resolve_scenario(folder / "calm.yaml") == folder / "calm.yaml"
    assert available_scenarios() == ["calm", "spiral"]
    with pytest.raises(ScenarioError) as caught:
        resolve_scenario("spirl")
    (line,) = caught.value.errors
    assert "did you mean 'spiral'?" in line and "available scenarios: calm, spiral" in line


def test_default_scenarios_dir_is_the_repository_folder() -> None:
    # This file is <repo>/tests/test_config.py; the editable install maps <repo>/scenarios to abm.scenarios.
    assert config.SCENARIOS_DIR == Path(__file__).resolve().parent.parent / "scenarios"
    assert config.SCENARIOS_DIR.is_dir()


def test_scenario_hash_is_sha256_of_canonical_json(tmp_path: Path) -> None:
    first = tmp_path / "first.yaml"
    first.write_text("name: demo\nsteps: 10\nseed: 3\n", encoding="utf-8")
    reordered = tmp_path / "reordered.yaml"
    reordered.write_text("seed: 3\n# same content, other order\nsteps: 10\nname: demo\n", encoding="utf-8")
    scenario = load_scenario(first)
    canonical = json.dumps(scenario.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    assert scenario_hash(scenario) == hashlib.sha256(canonical.encode()).hexdigest()
    assert scenario_hash(load_scenario(reordered)) == scenario_hash(scenario)
    assert scenario_hash(load_scenario(first, ["seed=4"])) != scenario_hash(scenario)


def test_run_manifest_hash_is_the_config_hash(tmp_path: Path) -> None:
    file = tmp_path / "tiered.yaml"
    file.write_text(
        "name: demo\nsteps: 10\nmargin:\n  rule: tiered\n  tiers:\n"
        "    - {notional_floor: 0, initial: 0.1, maintenance: 0.05}\n"
        "    - {notional_floor: 100000, initial: 0.2, maintenance: 0.1}\n",
        encoding="utf-8",
    )
    scenario = load_scenario(file)
    canonical = json.dumps(scenario.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    expected = hashlib.sha256(canonical.encode()).hexdigest()
    assert scenario_sha256(scenario) == scenario_hash(scenario) == expected


def test_tiered_margin_loads(tmp_path: Path) -> None:
    file = tmp_path / "tiered.yaml"
    file.write_text(
        "name: demo\nmargin:\n  rule: tiered\n  tiers:\n"
        "    - {notional_floor: 0, initial: 0.1, maintenance: 0.05}\n"
        "    - {notional_floor: 100000, initial: 0.2, maintenance: 0.1}\n",
        encoding="utf-8",
    )
    margin = load_scenario(file).margin
    assert isinstance(margin, TieredMargin)
    assert [tier.notional_floor for tier in margin.tiers] == [0.0, 100000.0]


def test_load_scenario_takes_a_shipped_scenarios_name_as_the_cli_does(tmp_path, monkeypatch):
    by_name = load_scenario("calm", ["steps=50"])
    by_path = load_scenario(resolve_scenario("calm"), ["steps=50"])
    assert by_name == by_path
    with pytest.raises(ScenarioError, match="available scenarios: .*spiral"):
        load_scenario("spirl")
    # A path that does not exist is still reported as a missing file, not looked up as a name.
    with pytest.raises(ScenarioError, match="file not found"):
        load_scenario(tmp_path / "spiral")
    with pytest.raises(ScenarioError, match="file not found"):
        load_scenario("missing.yaml")
    # A file in the working directory wins over a shipped scenario of the same name.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "spiral").write_text("name: local\nsteps: 7\n", encoding="utf-8")
    assert load_scenario("spiral").name == "local"
