"""Sweeps: many runs of a scenario over a grid of settings and seeds, reproducible and resumable.

- :mod:`abm.sweep.spec`: the sweep file schema and its expansion (``load_sweep`` -> ``SweepPlan``), with
  per-run seeds from ``numpy.random.SeedSequence`` spawned by seed index, the same for every grid point;
- :mod:`abm.sweep.runner`: ``run_sweep`` in-process, on a local process pool or on Dask distributed
  (:mod:`abm.sweep.backends`), each run a task of :mod:`abm.sweep.tasks`;
- :mod:`abm.sweep.journal`: the sweep directory: ``sweep_manifest.json``, the per-run journal ``rows/`` and
  ``results.parquet``;
- :mod:`abm.sweep.statistics`: the per-group summary (mean and 95% t interval over seeds) and the paired
  differences against a baseline group;
- :mod:`abm.sweep.report`: their files, figures and ``report.html``;
- :mod:`abm.sweep.commands`: the ``abm sweep`` and ``abm compare`` commands.

Names are imported on first use, so ``import abm.sweep`` (and the command line) stays quick.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "RunTask",
    "SeedCount",
    "SeedPlan",
    "SweepError",
    "SweepOutcome",
    "SweepPlan",
    "SweepPoint",
    "SweepReport",
    "SweepSpec",
    "derive_seeds",
    "execute_run",
    "expand_sweep",
    "group_summary",
    "read_rows",
    "rows_to_frame",
    "run_columns",
    "load_sweep",
    "load_sweep_results",
    "run_sweep",
    "write_report",
]

_HOMES = {
    "spec": (
        "SeedCount",
        "SeedPlan",
        "SweepError",
        "SweepPlan",
        "SweepPoint",
        "SweepSpec",
        "derive_seeds",
        "expand_sweep",
        "load_sweep",
    ),
    "runner": ("SweepOutcome", "run_sweep"),
    "tasks": ("RunTask", "execute_run"),
    "journal": ("read_rows", "rows_to_frame", "run_columns"),
    "statistics": ("group_summary", "load_sweep_results"),
    "report": ("SweepReport", "write_report"),
}
_MODULE_OF = {name: module for module, names in _HOMES.items() for name in names}


def __getattr__(name: str) -> Any:
    """Import a public name from its submodule on first use."""
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'abm.sweep' has no attribute {name!r}")
    return getattr(importlib.import_module(f"abm.sweep.{module}"), name)
