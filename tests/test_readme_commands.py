"""Every shell command in the README runs, as written or in a stated reduction, and does what it says.

The README's ``bash`` blocks are read line by line; each line must appear in ``HOW`` below, which says
how the test runs it: as written, with its placeholders (``FILE``, ``NAME``, ``spiral-7-...``) filled
in, made smaller (fewer steps, so the 260-run policy comparison takes seconds), or run elsewhere (the
install and test commands are ``.ci/run`` itself; ``abm dash`` is ``tests/test_dashboard.py``). A new
command in the README without an entry here fails the first test.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
# Every sweep here: 80-step runs with the shocks (both at step 300 in the README's files) at step 40.
SHORT = ["--set", "steps=80", "--set", "shocks.0.step=40", "--set", "shocks.1.step=40"]
SMALL = [*SHORT, "--workers", "2", "--no-progress"]

# README line (comment removed) -> the argv after `abm` run here, or why it is run elsewhere.
HOW: dict[str, list[str] | str] = {
    'python3 -m pip install -e ".[test]"': ".ci/run",
    "abm run scenarios/spiral.yaml": ["run", "scenarios/spiral.yaml", "--no-progress"],
    "abm sweep scenarios/policy_comparison.yaml --report": [
        "sweep", "scenarios/policy_comparison.yaml", "--report", *SMALL,
    ],
    "abm sweep FILE --scheduler local": [
        "sweep", "scenarios/spiral_maintenance.sweep.yaml", "--scheduler", "local", *SHORT, "--no-progress",
    ],
    "abm sweep FILE --resume --out outputs/sweep-NAME": [
        "sweep", "scenarios/spiral_maintenance.sweep.yaml", "--resume", "--out",
        "outputs/sweep-spiral_maintenance", *SMALL,
    ],
    "abm compare outputs/sweep-NAME --paths": ["compare", "outputs/sweep-policy_comparison", "--paths"],
    "abm report outputs/spiral-7-...": ["report", "<spiral run>"],
    "abm facts outputs/spiral-7-...": ["facts", "<spiral run>"],
    'python3 -m pip install -e ".[test]" && python3 -m pytest': ".ci/run",
    'python3 -m pip install -e ".[dash]"': "test_dashboard.py (the dash extra is in the test extra)",
    "abm dash spiral": "test_dashboard.py",
}  # fmt: skip


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL):
        for line in block.splitlines():
            command = re.sub(r"\s+#.*$", "", line).strip()
            if command:
                lines.append(command)
    return lines


def test_every_readme_command_has_a_way_to_run_here():
    commands = readme_commands()
    assert sorted(set(commands)) == sorted(HOW), "README commands and HOW differ"


def test_the_commands_run_elsewhere_are_run_there():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert 'python -m pip install --quiet -e ".[test]"' in ci and "python -m pytest -q" in ci
    dashboard_test = (ROOT / "tests" / "test_dashboard.py").read_text(encoding="utf-8")
    assert '"dash", "spiral", "--port"' in dashboard_test
    test_extra = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert '"abm-stress[dash]"' in test_extra


def _abm(arguments: list[str], cwd: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "abm.cli", *arguments]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600)


def test_the_readme_commands_run_in_order(tmp_path):
    # A user's working copy: the scenarios beside an empty outputs/, the two sweep files cut to 2 seeds
    # (13 rules x 2 seeds and 6 points x 2 seeds: the commands' work, not their minutes).
    shutil.copytree(ROOT / "scenarios", tmp_path / "scenarios")
    cuts = (("policy_comparison.yaml", "count: 20"), ("spiral_maintenance.sweep.yaml", "count: 10"))
    for name, seeds in cuts:
        path = tmp_path / "scenarios" / name
        text = path.read_text(encoding="utf-8")
        assert text.count(seeds) == 1, name
        path.write_text(text.replace(seeds, "count: 2"), encoding="utf-8")
    spiral_run = None
    for line in readme_commands():
        how = HOW[line]
        if isinstance(how, str):
            continue
        arguments = [str(spiral_run) if part == "<spiral run>" else part for part in how]
        done = _abm(arguments, tmp_path)
        assert done.returncode == 0, f"{line}\n{done.stderr[-2000:]}"
        if line == "abm run scenarios/spiral.yaml":
            (spiral_run,) = (tmp_path / "outputs").glob("spiral-7-*")
            summary = json.loads((spiral_run / "summary.json").read_text())
            assert summary["liquidations"] > 0 and "cascade_depth" in done.stdout  # "prints a summary"
    outputs = tmp_path / "outputs"
    # What each claims to write: the run directory and its report, the sweep reports, the comparison.
    assert (spiral_run / "report.html").is_file() and (spiral_run / "timeseries.parquet").is_file()
    comparison = outputs / "sweep-policy_comparison"
    assert (comparison / "summary_by_group.csv").is_file() and (comparison / "report.html").is_file()
    groups = (comparison / "summary_by_group.csv").read_text().count("\n") - 1
    assert groups == 13  # 13 margin rules
    maintenance = pd.read_parquet(outputs / "sweep-spiral_maintenance" / "results.parquet")
    assert len(maintenance) == 12 and (maintenance["status"] == "ok").all()


def test_facts_needs_the_run_directory_the_readme_shows(tmp_path):
    # The README's abm facts names a run directory (it once showed none), and without one argparse says
    # what is missing (exit 2).
    facts = [line for line in readme_commands() if line.startswith("abm facts")]
    assert facts and all(len(line.split()) >= 3 for line in facts), facts
    done = _abm(["facts"], tmp_path)
    assert done.returncode == 2 and "RUN_DIR" in done.stderr
