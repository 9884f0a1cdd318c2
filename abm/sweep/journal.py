"""The sweep directory: manifest, per-run journal and the results table.

A sweep directory holds:

- ``sweep_manifest.json``: the sweep file, its expansion (points, overrides, resolved scenarios), the seeds
  with their SeedSequence entropy and spawn keys, versions, and one entry per session (start, end, runs
  executed, backend);
- ``rows/<run_id>.json``: the journal, one small file per finished run, written atomically (temp file, then
  rename) as the run finishes, so a killed sweep loses only the runs in flight;
- ``results.parquet``: one row per run, rebuilt from the journal and replaced atomically: ``FIXED_COLUMNS``,
  then a ``label.<key>`` column per swept key and the swept values (mappings flattened to dotted columns),
  then every summary measure, then ``wall_seconds``, ``status`` and ``error``;
- ``runs/<run_id>/``: the full run directory of each run, only with ``keep_runs``.

Every column but the measures and ``wall_seconds`` comes from the manifest (:func:`run_columns`), so a row
does not depend on which worker ran it.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import shutil
import socket
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import abm
from abm.sweep.spec import SweepError, SweepPlan, flatten_values, format_run_id

__all__ = [
    "FIXED_COLUMNS",
    "MANIFEST_NAME",
    "RESULTS_NAME",
    "ROWS_DIR",
    "RUNS_DIR",
    "now",
    "parameter_columns",
    "prepare_directory",
    "read_rows",
    "rows_to_frame",
    "run_columns",
    "write_json",
    "write_results",
]

MANIFEST_NAME = "sweep_manifest.json"
RESULTS_NAME = "results.parquet"
ROWS_DIR = "rows"
RUNS_DIR = "runs"
# Columns every row has, before the swept parameters and after them the summary measures.
FIXED_COLUMNS = ("run_id", "point", "seed_index", "group", "seed", "seed_entropy", "seed_spawn_key")
_TAIL_COLUMNS = ("wall_seconds", "status", "error")
_MANIFEST_FORMAT = 1


# --------------------------------------------------------------------------- directory, journal, results


def prepare_directory(
    plan: SweepPlan, out: Path, resume: bool, notices: list[str] | None = None
) -> dict[str, Any]:
    """Create a sweep directory, or check that an existing one belongs to this sweep (``resume``).

    A damaged manifest (cut short, not JSON, not a mapping) is rebuilt from the sweep file on resume,
    with a notice; the journal rows then say which runs belong to this sweep (each row carries the
    sweep's fingerprint), and the others are run again.

    Args:
        plan: The sweep.
        out: The sweep directory.
        resume: Whether an existing directory may be continued.
        notices: Where to append what was repaired (shown to the user).

    Returns:
        The manifest (new, or the existing one).

    Raises:
        SweepError: The directory exists without ``resume``, is not a sweep directory, or holds another sweep.
    """
    from abm.outputs import OutputExistsError, check_path_lengths, clean_stale_temporaries, current_umask

    try:
        check_path_lengths(out)
    except OutputExistsError as exc:
        raise SweepError([str(exc)]) from None
    manifest_path = out / MANIFEST_NAME
    if _is_stub(out):
        # What a sweep that failed while creating its directory (a full disk) left: nothing of value.
        shutil.rmtree(out)
        if notices is not None:
            notices.append(f"{out} held only an empty, unfinished sweep directory: removed and started anew")
    if out.exists() or out.is_symlink():
        if not resume:
            raise SweepError(
                [f"sweep directory {out} already exists; use --resume to continue it or another --out"]
            )
        if not manifest_path.is_file():
            raise SweepError(
                [f"{out} is not a sweep directory (no {MANIFEST_NAME}); refusing to write into it"]
            )
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            damage = None if isinstance(manifest, dict) else "not a JSON object"
        except (OSError, ValueError) as exc:
            manifest, damage = None, f"unreadable ({type(exc).__name__})"
        if damage is not None or "fingerprint" not in manifest:
            damage = damage or "no fingerprint"
            if notices is not None:
                notices.append(
                    f"{manifest_path} was damaged ({damage}): rebuilt from the sweep file; journal rows "
                    "that do not carry this sweep's fingerprint are run again"
                )
            manifest = _new_manifest(plan)
            manifest["repaired"] = {"at": now(), "damage": damage}
            write_json(manifest_path, manifest)
        if manifest.get("fingerprint") != plan.fingerprint():
            raise SweepError(
                [
                    f"{out} holds a different sweep (its points, labels or seeds differ from this sweep file "
                    "and --set options); resume it with the same file and options, or use another --out"
                ]
            )
        for leftover in (out / ROWS_DIR).glob(".*.tmp"):
            leftover.unlink(missing_ok=True)
        return manifest
    # Built beside its place and renamed in, so that a failure (a full disk) leaves no stub behind.
    out.absolute().parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temporaries(out.absolute().parent)
    temp = Path(tempfile.mkdtemp(prefix=f".{out.name[:150]}.tmp-{os.getpid()}-", dir=out.absolute().parent))
    try:
        temp.chmod(0o777 & ~current_umask())  # mkdtemp's 0700 would hide the sweep from colleagues
        (temp / ROWS_DIR).mkdir()
        manifest = _new_manifest(plan)
        write_json(temp / MANIFEST_NAME, manifest)
        os.rename(temp, out)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return manifest


def _is_stub(out: Path) -> bool:
    """A directory holding nothing but an empty ``rows/`` (and temp files): an unfinished sweep directory."""
    if out.is_symlink() or not out.is_dir() or (out / MANIFEST_NAME).exists():
        return False
    entries = [entry for entry in out.iterdir() if not entry.name.endswith(".tmp")]
    if not entries:
        return (out / f".{MANIFEST_NAME}.tmp").exists()
    if [entry.name for entry in entries] != [ROWS_DIR] or not (out / ROWS_DIR).is_dir():
        return False
    return not any((out / ROWS_DIR).iterdir())


def _new_manifest(plan: SweepPlan) -> dict[str, Any]:
    from abm.outputs import canonical_json, scenario_sha256

    spec = plan.spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    seeds = [
        {
            "seed_index": index,
            "seed": seed,
            "entropy": plan.seeds.entropy,
            "spawn_key": list(key) if key is not None else None,
        }
        for index, (seed, key) in enumerate(zip(plan.seeds.seeds, plan.seeds.spawn_keys, strict=True))
    ]
    points = [
        {
            "point": point.index,
            "group": point.group,
            "labels": point.labels,
            "values": point.values,
            "overrides": list(point.overrides),
            "scenario_sha256": scenario_sha256(point.scenario),
            "scenario": json.loads(canonical_json(point.scenario.model_dump(mode="json"))),
        }
        for point in plan.points
    ]
    return {
        "format": _MANIFEST_FORMAT,
        "name": plan.name,
        "sweep_file": str(plan.source) if plan.source is not None else None,
        "base_scenario": str(plan.base),
        "spec": spec,
        "extra_set": list(plan.extra_set),
        "fingerprint": plan.fingerprint(),
        "group_by": list(plan.group_by),
        "swept_keys": plan.spec.swept_keys,
        "parameter_columns": parameter_columns(plan),
        "seeds": seeds,
        "seed_rule": "numpy.random.SeedSequence(entropy).spawn(count)[seed_index], "
        "seed = generate_state(1, uint64)[0] >> 1"
        if plan.seeds.entropy is not None
        else "seeds listed in the sweep file",
        "points": points,
        "runs": plan.run_count,
        "abm_version": abm.__version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "host": socket.gethostname(),
        "created": now(),
        "status": "running",
    }


def parameter_columns(plan: SweepPlan) -> list[str]:
    """The swept-parameter columns of the results: a label column per swept key, then the flat values.

    Args:
        plan: The sweep.

    Returns:
        Column names in order: ``label.<key>`` for each swept key, then the flattened values
        (``margin.rule``, ``margin.initial``, ...) in order of first appearance.
    """
    names = [f"label.{key}" for key in plan.spec.swept_keys]
    for point in plan.points:
        for name in flatten_values(point.values):
            if name not in names:
                names.append(name)
    return names


def run_columns(manifest: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Per run id, the fixed and parameter columns of its results row, from the sweep manifest.

    They depend on the plan only, never on who ran the run.

    Args:
        manifest: The sweep manifest.

    Returns:
        Run id -> ``FIXED_COLUMNS`` and parameter columns.
    """
    seeds = manifest["seeds"]
    columns = manifest["parameter_columns"]
    meta = {}
    for point in manifest["points"]:
        params = {f"label.{key}": label for key, label in point["labels"].items()}
        params.update(flatten_values(point["values"]))
        for seed in seeds:
            run_id = format_run_id(point["point"], seed["seed_index"], len(manifest["points"]), len(seeds))
            row = {
                "run_id": run_id,
                "point": point["point"],
                "seed_index": seed["seed_index"],
                "group": point["group"],
                "seed": seed["seed"],
                "seed_entropy": seed["entropy"],
                "seed_spawn_key": json.dumps(seed["spawn_key"]) if seed["spawn_key"] is not None else None,
            }
            row.update({name: params.get(name) for name in columns})
            meta[run_id] = row
    return meta


def read_rows(
    rows_dir: str | Path, fingerprint: str | None = None, damaged: list[str] | None = None
) -> dict[str, dict[str, Any]]:
    """Read the journal: run id -> entry (unfinished temp files are ignored).

    An entry that cannot be used (not JSON, not an object, no ``run_id``, ``status`` or ``summary``, a
    file name other than its run id, or, when ``fingerprint`` is given, a row of another sweep) is left
    out, so its run is run again; ``damaged`` collects one line per such file.

    Args:
        rows_dir: The ``rows/`` folder of a sweep directory.
        fingerprint: The sweep's fingerprint: rows that carry another one are left out.
        damaged: Where to append ``"<file>: <why>"`` for every entry left out.

    Returns:
        The finished entries.
    """
    entries: dict[str, dict[str, Any]] = {}
    folder = Path(rows_dir)
    if not folder.is_dir():
        return entries
    for path in sorted(folder.glob("*.json")):
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
            problem = _entry_problem(entry, path, fingerprint)
        except (OSError, ValueError) as exc:
            problem = f"unreadable ({type(exc).__name__})"
        if problem is not None:
            if damaged is not None:
                damaged.append(f"{path.name}: {problem}")
            continue
        entries[entry["run_id"]] = entry
    return entries


def _entry_problem(entry: Any, path: Path, fingerprint: str | None) -> str | None:
    if not isinstance(entry, dict):
        return "not a JSON object"
    for key, kind in (("run_id", str), ("status", str), ("summary", dict)):
        if not isinstance(entry.get(key), kind):
            return f"no {key}"
    if entry["status"] not in ("ok", "failed"):
        return f"status {entry['status']!r}"
    if path.stem != entry["run_id"]:
        return f"holds run {entry['run_id']!r}"
    if fingerprint is not None and entry.get("fingerprint", fingerprint) != fingerprint:
        return "a row of another sweep"
    return None


def rows_to_frame(
    entries: Mapping[str, Mapping[str, Any]], meta: Mapping[str, Mapping[str, Any]]
) -> pd.DataFrame:
    """Build the results table from journal entries and the per-run fixed columns.

    Args:
        entries: Run id -> journal entry.
        meta: Run id -> fixed and parameter columns (:func:`run_columns`).

    Returns:
        One row per finished run, sorted by run id. A measure whose name is also a parameter column is
        renamed ``summary.<name>``.
    """
    rows = []
    measures: list[str] = []
    for run_id in sorted(entries):
        if run_id not in meta:
            continue
        entry = entries[run_id]
        row = dict(meta[run_id])
        for name, value in entry["summary"].items():
            column = f"summary.{name}" if name in meta[run_id] else name
            if column not in measures:
                measures.append(column)
            row[column] = value
        row.update(
            {"wall_seconds": entry["wall_seconds"], "status": entry["status"], "error": entry["error"]}
        )
        rows.append(row)
    if not rows:
        return pd.DataFrame(columns=[*FIXED_COLUMNS, *_TAIL_COLUMNS])
    leading = list(next(iter(meta.values())))
    frame = pd.DataFrame(rows, columns=[*leading, *measures, *_TAIL_COLUMNS])
    for column in frame.columns:
        frame[column] = _uniform_column(frame[column])
    return frame.reset_index(drop=True)


def _uniform_column(column: pd.Series) -> pd.Series:
    """One type per column so that Parquet can store it: mixed numbers and text become text."""
    values = [v for v in column if v is not None and not (isinstance(v, float) and math.isnan(v))]
    kinds = {
        bool if isinstance(v, bool) else (float if isinstance(v, int | float) else type(v)) for v in values
    }
    if len(kinds) > 1:
        return column.map(lambda v: None if v is None else str(v)).astype(object)
    if kinds == {str} or not kinds:
        return column.astype(object)
    return column


def write_results(
    out: Path, entries: Mapping[str, Mapping[str, Any]], meta: Mapping[str, Any]
) -> pd.DataFrame:
    """Replace ``results.parquet`` atomically with the table of ``entries``; return the table as read back.

    Args:
        out: The sweep directory.
        entries: Run id -> journal entry.
        meta: Run id -> fixed and parameter columns (:func:`run_columns`).
    """
    frame = rows_to_frame(entries, meta)
    temp = out / f".{RESULTS_NAME}.tmp"
    frame.to_parquet(temp, index=False)
    os.replace(temp, out / RESULTS_NAME)
    # Read back: the caller gets the table with the column types every reader of the file sees.
    return pd.read_parquet(out / RESULTS_NAME)


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically: a temp file beside the target, then a rename."""
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(json.dumps(data, indent=1, sort_keys=False, allow_nan=False) + "\n", encoding="utf-8")
    os.replace(temp, path)


def now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
