"""Interrupted runs leave nothing that looks like a finished run directory.

A real ``abm run`` subprocess with a long ``--steps`` is stopped with SIGINT or SIGTERM once its
progress bar shows it is simulating; it must exit with the documented status and message and leave
neither the run directory nor a temp directory. An exception inside the model or inside the writer
(in-process, through :func:`abm.cli.main`) leaves nothing either.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from abm import cli
from abm.model import MarketModel

REPOSITORY = Path(__file__).resolve().parents[1]


def _start_long_run(out_dir: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "abm.cli", "run", "calm", "--steps", "200000", "--out", str(out_dir)]
    command += ["--set", "agents.1.count=50", "--no-report"]
    environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        command, cwd=REPOSITORY, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environment, text=True
    )


def _wait_until_simulating(process: subprocess.Popen, timeout: float = 60.0) -> None:
    """Read stderr until the progress bar (drawn after one second of simulation) shows steps done."""
    deadline = time.monotonic() + timeout
    seen = ""
    while time.monotonic() < deadline:
        char = process.stderr.read(1)
        if not char:
            pytest.fail(f"abm run ended before it was interrupted: {seen!r}")
        seen += char
        if "step" in seen and "/200000" in seen:
            return
    pytest.fail(f"no progress bar within {timeout} s: {seen!r}")


@pytest.mark.parametrize(
    ("signal_number", "status", "message"),
    [
        (signal.SIGINT, cli.EXIT_INTERRUPTED, "interrupted: nothing written"),
        (signal.SIGTERM, cli.EXIT_TERMINATED, "terminated (SIGTERM): run stopped, nothing written"),
    ],
    ids=["SIGINT", "SIGTERM"],
)
def test_killed_run_leaves_no_directory(tmp_path, signal_number, status, message):
    out_dir = tmp_path / "run"
    process = _start_long_run(out_dir)
    try:
        _wait_until_simulating(process)
        process.send_signal(signal_number)
        _, rest = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == status
    assert message in rest
    assert "Traceback" not in rest
    assert list(tmp_path.iterdir()) == []  # no run directory, no hidden temp directory


def test_exception_inside_the_model_writes_nothing(monkeypatch, tmp_path, capsys):
    original = MarketModel.step

    def failing_step(self):
        if self.steps == 5:
            raise ZeroDivisionError("injected failure in step 4")
        original(self)

    monkeypatch.setattr(MarketModel, "step", failing_step)
    status = cli.main(["run", "calm", "--steps", "20", "--out", str(tmp_path / "run"), "--no-progress"])
    err = capsys.readouterr().err
    assert status == cli.EXIT_INTERNAL
    assert "internal error: ZeroDivisionError: injected failure in step 4" in err
    assert list(tmp_path.iterdir()) == []


def test_exception_while_writing_removes_the_temp_directory(monkeypatch, tmp_path, capsys):
    import abm.plots

    def failing_plots(*args, **kwargs):
        raise OSError("disk full (injected)")

    monkeypatch.setattr(abm.plots, "plot_all", failing_plots)
    status = cli.main(["run", "calm", "--steps", "5", "--out", str(tmp_path / "run"), "--no-progress"])
    err = capsys.readouterr().err
    assert status == cli.EXIT_INTERNAL
    assert "could not write the run directory: disk full (injected)" in err
    assert list(tmp_path.iterdir()) == []


def test_interrupt_while_writing_removes_the_temp_directory(monkeypatch, tmp_path, capsys):
    import abm.plots

    def interrupted_plots(*args, **kwargs):
        raise cli.Terminated("SIGTERM")

    monkeypatch.setattr(abm.plots, "plot_all", interrupted_plots)
    status = cli.main(["run", "calm", "--steps", "5", "--out", str(tmp_path / "run"), "--no-progress"])
    assert status == cli.EXIT_TERMINATED
    assert "terminated (SIGTERM)" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
