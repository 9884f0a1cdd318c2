"""`abm facts RUN_DIR`: each stylized fact of a run beside its published range."""

import pytest

from abm.cli import main
from abm.published_facts import PUBLISHED_FACTS
from abm.stylized import stylized_facts

# One worker runs this module (pytest -n): its module fixture is made once, not once per worker.
pytestmark = pytest.mark.xdist_group("test_facts_command")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("facts") / "calm-run"
    status = main(["run", "calm_facts", "--steps", "400", "--seed", "3", "--out", str(out), "--no-progress"])
    assert status == 0
    return out


def test_facts_prints_every_fact_with_its_published_range(run_dir, capsys):
    capsys.readouterr()
    assert main(["facts", str(run_dir), "--max-lag", "20", "--interval", "2"]) == 0
    output = capsys.readouterr().out
    assert "returns over 2 step(s)" in output
    for fact in PUBLISHED_FACTS:
        line = next(line for line in output.splitlines() if line.startswith(fact.label))
        assert fact.published in line


def test_facts_figures_are_those_of_the_run_tables(run_dir, capsys):
    from abm.outputs import read_run_tables

    capsys.readouterr()
    assert main(["facts", str(run_dir), "--max-lag", "20"]) == 0
    output = capsys.readouterr().out
    facts = stylized_facts(read_run_tables(run_dir)["timeseries"], 1, max_lag=20)
    kurtosis_line = next(line for line in output.splitlines() if line.startswith("excess kurtosis "))
    assert f"{facts['excess_kurtosis']:.4g}" in kurtosis_line


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--interval", "0"], "--interval must be at least 1"),
        (["--hill-fraction", "1.5"], "--hill-fraction"),
        (["--max-lag", "300"], "too few"),
        (["--price", "nope"], "no column 'nope'"),
    ],
)
def test_facts_rejects_bad_options_with_status_2(run_dir, capsys, arguments, message):
    assert main(["facts", str(run_dir), *arguments]) == 2
    assert message in capsys.readouterr().err


def test_facts_on_a_missing_directory(tmp_path, capsys):
    assert main(["facts", str(tmp_path / "nothing")]) == 2
    assert "error:" in capsys.readouterr().err
