"""The installed package, as a user gets it from ``pip install abm-stress``: not the source tree.

The wheel is built from a copy of the project's files, installed into a fresh virtual environment (its
dependencies borrowed from this one through a path file, so nothing is downloaded), and used from another
directory: the shipped scenarios must travel inside it.
"""

from __future__ import annotations

import os
import re
import shutil
import site
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

import abm

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_the_package_list_names_every_package_folder() -> None:
    # The list in pyproject.toml is written by hand (a package search cannot map scenarios/): a new
    # subpackage left out of it would be missing from the wheel.
    on_disk = {
        ".".join(init.parent.relative_to(ROOT).parts) for init in sorted((ROOT / "abm").rglob("__init__.py"))
    }
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    assert listed == on_disk | {"abm.scenarios"}
    assert PYPROJECT["tool"]["setuptools"]["package-dir"] == {"abm.scenarios": "scenarios"}


def test_the_version_is_written_once() -> None:
    assert "version" not in PYPROJECT["project"] and "version" in PYPROJECT["project"]["dynamic"]
    citation = (ROOT / "CITATION.cff").read_text(encoding="utf-8")
    assert re.search(rf"^version: {re.escape(abm.__version__)}$", citation, flags=re.MULTILINE)
    assert PYPROJECT["project"]["license"] == "Apache-2.0"
    assert (ROOT / "LICENSE").read_text(encoding="utf-8").lstrip().startswith("Apache License")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Build from a copy: setuptools writes build/ and *.egg-info beside the sources.
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "abm", source / "abm", ignore=ignore)
    shutil.copytree(ROOT / "scenarios", source / "scenarios", ignore=ignore)
    out = tmp_path_factory.mktemp("wheel")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out)]
        + ["."],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel_file,) = out.glob("abm_stress-*.whl")
    return wheel_file


def test_the_wheel_holds_the_scenarios_and_the_licence(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    shipped = {Path(name).name for name in names if name.startswith("abm/scenarios/")}
    in_repo = {path.name for path in (ROOT / "scenarios").glob("*.yaml")}
    assert in_repo and in_repo <= shipped
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)
    metadata = next(name for name in names if name.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(wheel).read(metadata).decode()
    assert "License-Expression: Apache-2.0" in text
    assert f"Version: {abm.__version__}" in text


def test_an_installed_wheel_lists_and_runs_scenarios_from_anywhere(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    # Dependencies from this environment: a path file adds its site-packages as plain paths, so this
    # environment's editable install of abm (itself a path file there) is not seen.
    (purelib,) = (venv / "lib").glob("python3*/site-packages")
    (purelib / "borrowed_dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}

    def command(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(args, cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)

    where = command(str(python), "-c", "import abm.config as c; print(c.__file__); print(c.SCENARIOS_DIR)")
    assert where.returncode == 0, where.stderr
    module_file, scenarios_dir = where.stdout.split()
    assert Path(module_file).is_relative_to(purelib) and Path(scenarios_dir).is_relative_to(purelib)

    listed = command(str(venv / "bin" / "abm"), "list")
    assert listed.returncode == 0, listed.stderr
    assert "spiral" in listed.stdout.split() and "calm" in listed.stdout.split()
    # The same program as a module (abm/__main__.py is in the wheel).
    as_module = command(str(python), "-m", "abm", "list")
    assert (as_module.returncode, as_module.stdout) == (0, listed.stdout), as_module.stderr

    ran = command(str(venv / "bin" / "abm"), "run", "spiral", "--steps", "400", "--out", "run", "--no-report")
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert (elsewhere / "run" / "summary.json").is_file()

    code = "from abm import MarketModel; m = MarketModel(); m.step(); print(m.config.name)"
    default = command(str(python), "-c", code)
    assert default.returncode == 0, default.stderr[-3000:]
    assert default.stdout.strip() == "spiral"
