"""Run directory writer and reader.

One run becomes one directory (by default ``outputs/<scenario>-<seed>-<8 hex>``) holding:

- ``manifest.json``: resolved scenario, its hash, seed, versions, git commit, platform, command line,
  times, and the sha256 and size of every other file;
- ``summary.json``: the headline metrics (sorted keys, NaN/inf written as ``null``);
- ``timeseries``, ``trades``, ``liquidations``, ``accounts`` tables as Parquet (CSV when pyarrow is
  missing, noted as ``"table_format": "csv"`` in the manifest);
- with ``graphml=True`` (``abm run --graphml``), ``cascade.graphml``: the liquidation cascade DAG, and
  ``trades.graphml``: the trade network (see :mod:`abm.network`). Both graphs are rebuilt from the
  tables when read back without them (the cascade's edges are the ``parents`` column of
  ``liquidations``), so they are written only for tools that read GraphML;
- ``book_depth`` (depth profile per step) and ``account_snapshots`` (positions and leverage before the
  stress and at the end) tables, when the model recorded them (``RunResult.extra``);
- ``figures/*.png`` (see :mod:`abm.plots`).

Writing is atomic: everything goes to a hidden temp directory beside the target, which is renamed into
place only once complete, so a directory under the target name is always a finished run. An existing
run directory is replaced only with ``force=True``. The same :class:`~abm.results.RunResult` gives
byte-identical tables, ``summary.json`` and ``cascade.graphml``; only the manifest's times differ.

This module writes and reads a run directory; where it goes and the checks before writing are in
:mod:`abm.run_paths`, the manifest and the scenario's hash in :mod:`abm.run_manifest` (their public
names are exported from here as well).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import os
import secrets
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd

from abm.results import RunResult
from abm.run_manifest import (
    MANIFEST_NAME,
    _build_manifest,
    _jsonable,
    _utc_now,
    canonical_json,
    scenario_sha256,
)
from abm.run_paths import (
    OutputExistsError,
    _temp_prefix,
    check_out_dir,
    check_path_lengths,
    clean_stale_temporaries,
    current_umask,
    default_run_dir,
    safe_component,
)
from abm.tables import TABLES

__all__ = [
    "MANIFEST_NAME",
    "SUMMARY_NAME",
    "CASCADE_NAME",
    "TRADE_GRAPH_NAME",
    "STRESS_TABLES",
    "FIGURES_DIR",
    "TABLE_NAMES",
    "OutputExistsError",
    "canonical_json",
    "scenario_sha256",
    "default_run_dir",
    "safe_component",
    "check_out_dir",
    "check_path_lengths",
    "clean_stale_temporaries",
    "current_umask",
    "write_run",
    "read_run",
    "read_run_tables",
]

SUMMARY_NAME = "summary.json"
CASCADE_NAME = "cascade.graphml"
TRADE_GRAPH_NAME = "trades.graphml"
# Optional tables: file name -> key of RunResult.extra that holds the DataFrame.
STRESS_TABLES = {"book_depth": "depth_profile", "account_snapshots": "account_snapshots"}
assert set(STRESS_TABLES) == {name for name, table in TABLES.items() if table.optional}
FIGURES_DIR = "figures"
TABLE_NAMES = tuple(name for name, table in TABLES.items() if not table.optional)

_REQUIRED_COLUMNS = {name: TABLES[name].names() for name in TABLE_NAMES}
# Columns whose cells are lists of ints (the cascade parents of a liquidation).
_LIST_COLUMNS = {
    name: table.names_of("list[int]") for name, table in TABLES.items() if table.names_of("list[int]")
}


# --------------------------------------------------------------------------- writing


def write_run(
    result: RunResult,
    out_dir: Path | str,
    *,
    force: bool = False,
    command_line: Sequence[str] | str | None = None,
    extra_manifest: Mapping[str, Any] | None = None,
    figures: bool = True,
    graphml: bool = False,
) -> Path:
    """Write a run directory atomically.

    Everything is written to ``<parent>/.<name>.tmp-<pid>-<random>`` and renamed to ``out_dir`` when
    complete (leftovers of killed writers are removed first, see :func:`clean_stale_temporaries`).
    With ``force`` an existing run directory is renamed aside, the new one renamed in, and the old one
    deleted. On any error the temp directory is removed and the error re-raised.

    The manifest's ``start_time`` and ``end_time`` come from ``result.extra["start_time"]`` /
    ``result.extra["end_time"]`` (datetime or ISO text) when the model recorded them; otherwise the
    end is the moment ``write_run`` is called and the start is the end minus ``result.wall_seconds``.

    Args:
        result: The finished run.
        out_dir: The run directory to create.
        force: Replace an existing run directory.
        command_line: The command that produced the run (``sys.argv`` by default).
        extra_manifest: Further manifest entries (e.g. sweep coordinates); they may not override the
            entries written here.
        figures: Whether to draw ``figures/*.png``.
        graphml: Also write the cascade and the trade network as GraphML (``cascade.graphml``,
            ``trades.graphml``); they are rebuilt from the tables when read back without them.

    Returns:
        The run directory path.

    Raises:
        OutputExistsError: See :func:`check_out_dir`.
        PermissionError: The parent directory is not writable.
        ValueError: A table lacks a documented column, or ``extra_manifest`` clashes with a manifest key.
    """
    written_at = _utc_now()
    out_dir = Path(out_dir)
    check_out_dir(out_dir, force)
    tables = {name: getattr(result, name) for name in TABLE_NAMES}
    for name, frame in tables.items():
        missing = [col for col in _REQUIRED_COLUMNS[name] if col not in frame.columns]
        if missing:
            raise ValueError(f"RunResult.{name} lacks the documented columns: {', '.join(missing)}")

    parent = out_dir.absolute().parent
    parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temporaries(parent)
    temp_dir = Path(tempfile.mkdtemp(prefix=_temp_prefix(out_dir.name), dir=parent))
    try:
        # mkdtemp makes the directory private (0700); a run directory should follow the umask like any
        # other directory, so that colleagues on a shared file system can read it.
        temp_dir.chmod(0o777 & ~current_umask())
        use_parquet = _pyarrow_available()
        table_format = "parquet" if use_parquet else "csv"
        for name, frame in tables.items():
            _write_table(
                frame, temp_dir / f"{name}.{table_format}", _LIST_COLUMNS.get(name, ()), table_format
            )
        _write_json(temp_dir / SUMMARY_NAME, result.summary)
        if graphml:
            _write_graphml(result.cascade, temp_dir / CASCADE_NAME)
            _write_graphml(_trade_graph(result), temp_dir / TRADE_GRAPH_NAME)
        for name, key in STRESS_TABLES.items():
            if isinstance(result.extra.get(key), pd.DataFrame):
                _write_table(result.extra[key], temp_dir / f"{name}.{table_format}", (), table_format)
        if figures:
            from abm.plots import plot_all  # matplotlib is only imported when figures are wanted

            plot_all(result, temp_dir / FIGURES_DIR)

        manifest = _build_manifest(result, written_at, command_line, table_format)
        if extra_manifest:
            clashes = sorted(set(extra_manifest) & (set(manifest) | {"files"}))
            if clashes:
                raise ValueError(f"extra_manifest may not override manifest keys: {', '.join(clashes)}")
            manifest.update(extra_manifest)
        manifest["files"] = _file_digests(temp_dir)
        _write_json(temp_dir / MANIFEST_NAME, manifest)
        _move_into_place(temp_dir, out_dir, force)
    except BaseException:
        shutil.rmtree(temp_dir, ignore_errors=True)
        raise
    return out_dir


def _move_into_place(temp_dir: Path, out_dir: Path, force: bool) -> None:
    # Re-check just before the rename: os.rename would silently replace an empty directory created
    # since the first check.
    if not (out_dir.exists() or out_dir.is_symlink()):
        os.rename(temp_dir, out_dir)
        return
    check_out_dir(out_dir, force)
    old_dir = out_dir.with_name(f"{_temp_prefix(out_dir.name, 'old')}{secrets.token_hex(4)}")
    os.rename(out_dir, old_dir)
    try:
        os.rename(temp_dir, out_dir)
    except BaseException:
        os.rename(old_dir, out_dir)
        raise
    shutil.rmtree(old_dir, ignore_errors=True)


def _write_table(frame: pd.DataFrame, path: Path, list_columns: Sequence[str], table_format: str) -> None:
    frame = frame.reset_index(drop=True)
    if table_format == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(frame, preserve_index=False)
        for column in list_columns:
            if column in frame.columns:
                # An explicit type: inference gives `null` for an empty table and may pick int32.
                values = pa.array([_int_list(v) for v in frame[column]], type=pa.list_(pa.int64()))
                table = table.set_column(table.schema.get_field_index(column), column, values)
        pq.write_table(table, path)
    else:
        frame = frame.copy()
        for column in list_columns:
            if column in frame.columns:
                frame[column] = [_list_cell_to_text(v) for v in frame[column]]
        frame.to_csv(path, index=False, lineterminator="\n")


def _int_list(value: Any) -> list[int] | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return [int(v) for v in value]


def _list_cell_to_text(value: Any) -> str:
    ints = _int_list(value)
    return "" if ints is None else json.dumps(ints)


def _write_json(path: Path, data: Any) -> None:
    text = json.dumps(_jsonable(data), sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False)
    path.write_text(text + "\n", encoding="utf-8")


def _graphml_value(value: Any) -> Any:
    """A value GraphML can hold (bool, int, float, str), or None to leave the attribute out."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple, np.ndarray, Mapping)):
        return json.dumps(_jsonable(value), sort_keys=True)
    return str(value)


def _graphml_attrs(data: Mapping[str, Any]) -> dict[str, Any]:
    # GraphML has no null: a missing value is an absent <data> element.
    converted = {str(k): _graphml_value(v) for k, v in data.items()}
    return {k: v for k, v in converted.items() if v is not None}


def _graphml_node(node: Any) -> Any:
    if isinstance(node, (np.integer, np.floating, np.bool_)):
        return node.item()
    return node


def _write_graphml(graph: nx.DiGraph, path: Path) -> None:
    clean = graph.__class__()
    clean.graph.update(_graphml_attrs(graph.graph))
    for node, data in graph.nodes(data=True):
        clean.add_node(_graphml_node(node), **_graphml_attrs(data))
    for source, target, data in graph.edges(data=True):
        clean.add_edge(_graphml_node(source), _graphml_node(target), **_graphml_attrs(data))
    # The pure-Python writer gives the same bytes whether or not lxml is installed;
    # numeric type inference gives one key per attribute when ints and floats mix.
    nx.write_graphml_xml(clean, path, encoding="utf-8", infer_numeric_types=True)


def _trade_graph(result: RunResult) -> nx.DiGraph:
    graph = result.extra.get("trade_graph")
    if isinstance(graph, nx.DiGraph):
        return graph
    from abm.network import build_trade_graph

    contract_size = result.scenario.market.contract_size
    return build_trade_graph(result.trades, result.accounts, result.liquidations, contract_size)


def _file_digests(run_dir: Path) -> dict[str, dict[str, Any]]:
    digests = {}
    for file_path in sorted(p for p in run_dir.rglob("*") if p.is_file()):
        relative = file_path.relative_to(run_dir).as_posix()
        if relative == MANIFEST_NAME:
            continue
        digests[relative] = {"sha256": _sha256_file(file_path), "size": file_path.stat().st_size}
    return digests


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _pyarrow_available() -> bool:
    return importlib.util.find_spec("pyarrow") is not None


# --------------------------------------------------------------------------- reading


def read_run_tables(run_dir: Path | str, *, verify: bool = False) -> dict[str, Any]:
    """Read a run directory written by :func:`write_run` as a mapping of its files.

    Args:
        run_dir: The run directory.
        verify: Check every file's sha256 and size against the manifest first.

    Returns:
        A dict with the tables (``timeseries``, ``trades``, ``liquidations``, ``accounts``) as
        DataFrames (``liquidations.parents`` as lists of ints), ``summary`` and ``manifest`` as dicts,
        ``cascade`` and ``trade_graph`` as ``networkx.DiGraph`` (read from their GraphML files when
        written, else rebuilt from the tables; ``trade_graph`` is None when the manifest has no
        scenario to take contract sizes from), the ``STRESS_TABLES`` (None when missing) and ``path``.

    Raises:
        FileNotFoundError: ``run_dir`` has no manifest.
        ValueError: ``verify`` is set and a file is missing or does not match the manifest.
    """
    run_dir = Path(run_dir)
    manifest_path = run_dir / MANIFEST_NAME
    if not manifest_path.is_file():
        raise FileNotFoundError(f"{run_dir} is not a run directory: no {MANIFEST_NAME}")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    if verify:
        _verify_files(run_dir, manifest.get("files", {}))
    table_format = manifest.get("table_format", "parquet")
    run: dict[str, Any] = {"path": run_dir, "manifest": manifest}
    for name in TABLE_NAMES:
        run[name] = _read_table(run_dir / f"{name}.{table_format}", _LIST_COLUMNS.get(name, ()), table_format)
    run["summary"] = json.loads((run_dir / SUMMARY_NAME).read_text(encoding="utf-8"))
    # The graphs: as written in GraphML, else rebuilt from the tables (what a run writes by default).
    cascade_path = run_dir / CASCADE_NAME
    run["cascade"] = _read_graphml(cascade_path) if cascade_path.is_file() else _cascade_of(run)
    trade_graph_path = run_dir / TRADE_GRAPH_NAME
    run["trade_graph"] = _read_graphml(trade_graph_path) if trade_graph_path.is_file() else _trades_of(run)
    for name in STRESS_TABLES:
        path = run_dir / f"{name}.{table_format}"
        run[name] = _read_table(path, (), table_format) if path.is_file() else None
    return run


def result_tables(result: RunResult, run_dir: Path | str) -> dict[str, Any]:
    """What :func:`read_run_tables` would read from ``run_dir``, taken from the run that wrote it.

    For the report written right after a run (``abm run``): the same mapping without reading the
    tables back; only the manifest is read from the directory. ``cascade`` is None: the report reads
    the cascade from ``liquidations`` (:class:`abm.cascades.TableCascade`), and building the graph
    of a large cascade would cost seconds for nothing.
    """
    run_dir = Path(run_dir)
    run: dict[str, Any] = {
        "path": run_dir,
        "manifest": json.loads((run_dir / MANIFEST_NAME).read_text(encoding="utf-8")),
        **{name: getattr(result, name) for name in TABLE_NAMES},
        "summary": result.summary,
        "cascade": None,
        "trade_graph": _trade_graph(result),
    }
    for name, key in STRESS_TABLES.items():
        table = result.extra.get(key)
        run[name] = table if isinstance(table, pd.DataFrame) else None
    return run


def read_run(run_dir: Path | str, *, verify: bool = False) -> RunResult:
    """Read a run directory back as the :class:`~abm.results.RunResult` that wrote it.

    The tables, summary, cascade and scenario are those of the run; ``extra`` holds the stress tables
    (``depth_profile``, ``account_snapshots``), ``trade_graph``, ``manifest`` and ``path``.

    Args:
        run_dir: The run directory.
        verify: Check every file's sha256 and size against the manifest first.

    Raises:
        FileNotFoundError: ``run_dir`` has no manifest.
        ValueError: ``verify`` is set and a file does not match, or the manifest's scenario is invalid.
    """
    from abm.config import ScenarioError, scenario_from_dict

    run = read_run_tables(run_dir, verify=verify)
    manifest = run["manifest"]
    try:
        scenario = scenario_from_dict(manifest["scenario"])
    except (KeyError, ScenarioError) as exc:
        raise ValueError(f"{run['path']}: the manifest's scenario cannot be read back: {exc}") from None
    extra = {key: run[name] for name, key in STRESS_TABLES.items() if run[name] is not None}
    extra.update(trade_graph=run["trade_graph"], manifest=manifest, path=run["path"])
    return RunResult(
        scenario=scenario,
        seed=int(manifest["seed"]),
        timeseries=run["timeseries"],
        trades=run["trades"],
        liquidations=run["liquidations"],
        accounts=run["accounts"],
        ledger=run["ledger"],
        cascade=run["cascade"] if run["cascade"] is not None else nx.DiGraph(),
        summary=run["summary"],
        wall_seconds=float(manifest.get("wall_seconds", 0.0)),
        invariant_checks=bool(manifest.get("invariant_checks", False)),
        extra=extra,
    )


def _verify_files(run_dir: Path, files: Mapping[str, Mapping[str, Any]]) -> None:
    for relative, expected in files.items():
        file_path = run_dir / relative
        if not file_path.is_file():
            raise ValueError(f"{run_dir}: {relative} is listed in the manifest but missing")
        if file_path.stat().st_size != expected["size"] or _sha256_file(file_path) != expected["sha256"]:
            raise ValueError(f"{run_dir}: {relative} does not match its manifest hash")


def _read_table(path: Path, list_columns: Sequence[str], table_format: str) -> pd.DataFrame:
    if table_format == "parquet":
        frame = pd.read_parquet(path)
        for column in list_columns:
            if column in frame.columns:
                frame[column] = pd.Series(
                    [_int_list(v) for v in frame[column]], index=frame.index, dtype=object
                )
        return frame
    frame = pd.read_csv(path, keep_default_na=True)
    for column in list_columns:
        if column in frame.columns:
            frame[column] = pd.Series(
                [json.loads(v) if isinstance(v, str) else None for v in frame[column]],
                index=frame.index,
                dtype=object,
            )
    return frame


def _cascade_of(run: Mapping[str, Any]) -> nx.DiGraph:
    from abm.network import build_cascade_graph

    return build_cascade_graph(run["liquidations"])


def _trades_of(run: Mapping[str, Any]) -> nx.DiGraph | None:
    from abm.network import build_trade_graph

    scenario = run["manifest"].get("scenario") or {}
    if scenario.get("instruments"):
        sizes: Any = {item["name"]: float(item["contract_size"]) for item in scenario["instruments"]}
    elif "contract_size" in (scenario.get("market") or {}):
        sizes = float(scenario["market"]["contract_size"])
    else:
        return None  # a manifest without the scenario (not written by write_run): no sizes
    return build_trade_graph(run["trades"], run["accounts"], run["liquidations"], sizes)


def _read_graphml(path: Path) -> nx.DiGraph:
    try:
        return nx.read_graphml(path, node_type=int)
    except (ValueError, TypeError):
        # Nodes that are not integers (a graph from a custom model) are kept as text.
        return nx.read_graphml(path)
