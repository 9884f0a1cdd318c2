"""Run recorder: the per-step time series in preallocated numpy arrays.

Kept apart from the model logic: the model calls :meth:`RunRecorder.record` once at the end of
every step (DESIGN.md step 8) with plain numbers; the recorder writes them into arrays sized for the
horizon and turns them into a table at the end. The margin policy's own figures (its ``state()``)
become extra columns prefixed ``margin_``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from abm.results import TIMESERIES_COLUMNS

__all__ = ["RunRecorder"]

_INTEGER_COLUMNS = (
    "step",
    "volume",
    "liquidations",
    "adl_volume",
    "open_interest",
    "margin_calls",
    "cascade_rounds",
)


class RunRecorder:
    """Preallocated per-step columns.

    Args:
        steps: Horizon of the run (rows to allocate).
    """

    def __init__(self, steps: int) -> None:
        self.capacity = steps
        self.rows = 0
        self.columns: dict[str, np.ndarray] = {
            name: np.zeros(steps, dtype=np.int64 if name in _INTEGER_COLUMNS else np.float64)
            for name in TIMESERIES_COLUMNS
        }
        self.policy_columns: dict[str, np.ndarray] = {}

    def record(self, values: dict[str, float], policy_state: dict[str, float]) -> None:
        """Write one step's values (keys from TIMESERIES_COLUMNS) and the policy's state."""
        row = self.rows
        if row >= self.capacity:
            raise IndexError(f"recorder is full ({self.capacity} steps); the model ran past its horizon")
        columns = self.columns
        for name, value in values.items():
            columns[name][row] = value
        for name, value in policy_state.items():
            column = self.policy_columns.get(name)
            if column is None:
                column = self.policy_columns[name] = np.full(self.capacity, np.nan)
            column[row] = value
        self.rows = row + 1

    def latest(self, name: str) -> float:
        """The last recorded value of a column (NaN before the first record)."""
        if self.rows == 0:
            return float("nan")
        return float(self.columns[name][self.rows - 1])

    def to_frame(self) -> pd.DataFrame:
        """The recorded rows as a DataFrame (base columns, then ``margin_*`` columns)."""
        n = self.rows
        data = {name: column[:n].copy() for name, column in self.columns.items()}
        for name, column in self.policy_columns.items():
            key = f"margin_{name}"
            if key not in data and name not in ("imr", "mmr"):
                data[key] = column[:n].copy()
        return pd.DataFrame(data)
