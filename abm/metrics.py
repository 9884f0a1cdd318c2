"""Run summary metrics: the headline figures of one run.

Definitions (all computed from the run's tables):

* ``max_drawdown``: largest fall of the mark from its running peak, as a fraction of the peak;
* ``liquidations`` / ``liquidated_notional``: count and notional (at the mark) of liquidations;
* ``cascade_max_rounds``: most liquidation rounds in one step; ``cascade_depth``: longest chain of
  the cascade DAG in links (see :mod:`abm.network`);
* ``bad_debt``: losses beyond zero equity; ``insurance_fund_min``; ``insurance_fund_used``: largest
  fall of the fund from its running peak; ``adl_volume``; ``socialised_loss``;
* margin figures: ``mmr_peak_to_trough`` (max over t of running max / running min of the
  maintenance rate), ``margin_calls`` (account-steps inside the call buffer).
"""

from __future__ import annotations

from typing import Any

import networkx as nx
import numpy as np
import pandas as pd

from abm.network import cascade_measures

__all__ = ["max_drawdown", "summarise"]


def max_drawdown(prices: np.ndarray) -> float:
    """Largest peak-to-trough fall as a fraction of the running peak (0 for an empty series)."""
    prices = np.asarray(prices, dtype=float)
    prices = prices[np.isfinite(prices)]
    if len(prices) == 0:
        return 0.0
    peak = np.maximum.accumulate(prices)
    return float(np.max(1.0 - prices / peak))


def _running_drop(values: np.ndarray) -> float:
    if len(values) == 0:
        return 0.0
    peak = np.maximum.accumulate(values)
    return float(np.max(peak - values))


def summarise(
    timeseries: pd.DataFrame,
    liquidations: pd.DataFrame,
    cascade: nx.DiGraph,
    scenario,
    policy=None,
) -> dict[str, Any]:
    """Headline metrics of a run (JSON-serialisable Python scalars)."""
    mark = timeseries["mark"].to_numpy()
    fund = np.concatenate([[scenario.liquidation.insurance_fund], timeseries["insurance_fund"].to_numpy()])
    mmr = timeseries["mmr"].to_numpy()
    measures = cascade_measures(cascade)
    summary: dict[str, Any] = {
        "steps": int(len(timeseries)),
        "liquidations": int(len(liquidations)),
        "liquidated_accounts": int(liquidations["account_id"].nunique()) if len(liquidations) else 0,
        "liquidated_notional": float(liquidations["notional"].sum()) if len(liquidations) else 0.0,
        "max_drawdown": max_drawdown(mark),
        "final_mark": float(mark[-1]) if len(mark) else float("nan"),
        "min_mark": float(np.nanmin(mark)) if len(mark) else float("nan"),
        "cascade_max_rounds": int(timeseries["cascade_rounds"].max()) if len(timeseries) else 0,
        "cascade_depth": int(measures["cascade_depth"]),
        "cascades": int(measures["cascades"]),
        "largest_cascade": int(measures["largest_cascade"]),
        "branching_ratio": float(measures["branching_ratio"]),
        "bad_debt": float(timeseries["bad_debt"].iloc[-1]) if len(timeseries) else 0.0,
        "socialised_loss": float(timeseries["socialised_loss"].iloc[-1]) if len(timeseries) else 0.0,
        "adl_volume": int(timeseries["adl_volume"].sum()),
        "insurance_fund_min": float(fund.min()),
        "insurance_fund_final": float(fund[-1]),
        "insurance_fund_used": _running_drop(fund),
        "margin_calls": int(timeseries["margin_calls"].sum()),
        "volume": int(timeseries["volume"].sum()),
        "mmr_max": float(np.nanmax(mmr)) if len(mmr) else float("nan"),
        "mmr_min": float(np.nanmin(mmr)) if len(mmr) else float("nan"),
        "mmr_peak_to_trough": float(np.nanmax(mmr) / np.nanmin(mmr)) if len(mmr) else float("nan"),
    }
    return summary
