"""The ``abm`` program's quick exit: the status, the exit handlers and every line of output kept."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _python(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)


def test_the_exit_handlers_run_and_the_piped_output_is_flushed():
    # stdout is a pipe here, so block-buffered: the quick exit must flush it after the handlers.
    # An object freed only by the interpreter's teardown says so: the quick exit skips the teardown.
    done = _python(
        "import atexit; atexit.register(lambda: print('handler ran'));"
        "Kept = type('Kept', (), {'__del__': lambda self: print('torn down')}); kept = Kept();"
        "from abm.cli import exit_now; print('before', end=' '); exit_now(3)"
    )
    assert done.returncode == 3
    assert done.stdout == "before handler ran\n"


def test_a_thread_still_working_gets_the_usual_exit():
    done = _python(
        "import threading, time; from abm.cli import exit_now;"
        "threading.Thread(target=lambda: (time.sleep(0.3), print('thread finished'))).start();"
        "exit_now(4)"
    )
    assert done.returncode == 4
    assert done.stdout == "thread finished\n"  # the usual exit waited for it


@pytest.mark.parametrize(
    ("arguments", "status"), [(["--no-figures", "--no-report"], 0), (["--steps", "0"], 2)]
)
def test_abm_run_through_the_program_entry(tmp_path, arguments, status):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "abm.cli", "run", "calm", "--steps", "20", "--out", str(out)]
    command += ["--no-progress", *arguments]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == status, done.stderr
    if status == 0:
        assert done.stdout.rstrip().splitlines()[-1] == f"run directory: {out}"
        assert (out / "manifest.json").is_file()
    else:
        assert "steps" in done.stderr and not out.exists()
