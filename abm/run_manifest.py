"""The manifest of a run directory: what ran, with what, where and when.

``manifest.json`` holds the resolved scenario and its hash, the seed and its SeedSequence, the
versions of Python and the libraries, the git commit of the code, the platform, the command line and
the times (see :mod:`abm.outputs`, which adds the digests of the files); :func:`_jsonable` turns
numpy and pandas values into the plain JSON every file of the directory is written in.
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import json
import math
import platform
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import abm
from abm.config import Scenario, scenario_hash
from abm.results import RunResult

__all__ = ["MANIFEST_NAME", "canonical_json", "scenario_sha256"]

MANIFEST_NAME = "manifest.json"

_VERSIONED_PACKAGES = ("numpy", "pandas", "mesa", "networkx", "pydantic", "matplotlib", "pyarrow")


def _jsonable(value: Any) -> Any:
    """Convert numpy / pandas / path values to plain JSON types; NaN and inf become None."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset, np.ndarray, pd.Series)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else list(value)
        return [_jsonable(v) for v in items]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        number = float(value)
        return number if math.isfinite(number) else None
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (_dt.datetime, _dt.date, pd.Timestamp)):
        return value.isoformat()
    if isinstance(value, Path):
        return value.as_posix()
    if isinstance(value, str):
        return value
    raise TypeError(f"cannot write {type(value).__name__} value {value!r} to JSON")


# --------------------------------------------------------------------------- hashing


def canonical_json(obj: Any) -> str:
    """Return the canonical JSON text of ``obj``: sorted keys, no spaces, NaN/inf refused.

    Args:
        obj: A JSON-serialisable value (plain Python types).

    Returns:
        The compact, key-sorted JSON text used for hashing.
    """
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def scenario_sha256(scenario: Scenario) -> str:
    """Return the sha256 hex digest of the scenario's canonical JSON (:func:`abm.config.scenario_hash`).

    Args:
        scenario: The resolved scenario.

    Returns:
        64 hex characters identifying the scenario's content.
    """
    # One definition of the scenario hash: the manifest and `abm.config` must never disagree.
    return scenario_hash(scenario)


# --------------------------------------------------------------------------- manifest


def _build_manifest(
    result: RunResult,
    written_at: _dt.datetime,
    command_line: Sequence[str] | str | None,
    table_format: str,
) -> dict[str, Any]:
    wall_seconds = float(result.wall_seconds)
    end_time = _as_utc(result.extra.get("end_time")) or written_at
    start_time = _as_utc(result.extra.get("start_time")) or end_time - _dt.timedelta(seconds=wall_seconds)
    if command_line is None:
        command_line = list(sys.argv)
    elif not isinstance(command_line, str):
        command_line = [str(part) for part in command_line]
    commit, dirty = _git_state(Path(abm.__file__).parent)
    manifest: dict[str, Any] = {
        "scenario": _scenario_payload(result.scenario),
        "scenario_sha256": scenario_sha256(result.scenario),
        "seed": int(result.seed),
        "abm_version": abm.__version__,
        "git_commit": commit,
        "git_dirty": dirty,
        "python": platform.python_version(),
        "versions": {name: _package_version(name) for name in _VERSIONED_PACKAGES},
        "platform": platform.platform(),
        "command_line": command_line,
        "start_time": start_time.isoformat(),
        "end_time": end_time.isoformat(),
        "wall_seconds": wall_seconds,
        "invariant_checks": bool(result.invariant_checks),
        # A run whose check breached an invariant stops before writing, so a checked run here passed.
        "invariant_check_result": "passed" if result.invariant_checks else "not checked",
        "seed_sequence": _seed_sequence(result),
        "table_format": table_format,
    }
    return manifest


def _seed_sequence(result: RunResult) -> dict[str, Any] | None:
    """Entropy and spawn key of the run's ``numpy.random.SeedSequence`` (rebuilds the generator exactly)."""
    recorded = result.extra.get("seed_sequence")
    if isinstance(recorded, Mapping):
        return {"entropy": recorded.get("entropy"), "spawn_key": list(recorded.get("spawn_key", ()))}
    if int(result.seed) >= 0:
        # The model seeds numpy.random.default_rng(seed): its SeedSequence has the seed as entropy.
        return {"entropy": int(result.seed), "spawn_key": []}
    return None


def _scenario_payload(scenario: Scenario) -> dict[str, Any]:
    # The resolved scenario as the plain JSON mapping that is hashed and stored.
    return _jsonable(scenario.model_dump(mode="json"))


def _as_utc(value: Any) -> _dt.datetime | None:
    if value is None:
        return None
    moment = _dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_dt.UTC)
    return moment.astimezone(_dt.UTC)


def _utc_now() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC)


def _package_version(name: str) -> str | None:
    # The loaded module's version where it is loaded; else the installed distribution's, read from its
    # metadata: importing matplotlib only to read its version cost a run without figures 0.2 s.
    module = sys.modules.get(name)
    if module is not None and getattr(module, "__version__", None) is not None:
        return str(module.__version__)
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git_state(package_dir: Path) -> tuple[str | None, bool | None]:
    """Commit and dirtiness of the checkout holding the package; (None, None) outside git."""

    def git(*args: str) -> str:
        completed = subprocess.run(
            ["git", *args], cwd=package_dir, capture_output=True, text=True, timeout=10, check=True
        )
        return completed.stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
    except (OSError, subprocess.SubprocessError):
        return None, None
    try:
        # Untracked files are left out: scratch files beside the code do not change what ran.
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        dirty = None
    return commit, dirty
