"""Run summary metrics: the headline figures of one run.

Definitions (all computed from the run's tables):

* ``max_drawdown``: largest fall of the mark from its running peak, as a fraction of the peak;
* ``liquidations`` / ``liquidated_notional``: count and notional (at the mark) of liquidations;
* ``cascade_max_rounds``: most liquidation rounds in one step; ``cascade_depth``: longest chain of
  the cascade DAG in links (see :mod:`abm.network`);
* ``bad_debt``: losses beyond zero equity; ``insurance_fund_min``; ``insurance_fund_used``: largest
  fall of the fund from its running peak; ``adl_volume``; ``socialised_loss``;
* procyclicality of the margin rule: ``mmr_stress_increase`` (peak maintenance rate after the first
  shock over the mean rate in force before it, minus one: the rise traders face relative to what they
  held), ``mmr_peak_to_trough`` and ``margin_held_peak_to_trough``
  (peak over trough of the maintenance rate and of the total initial margin asked), ``mmr_largest_increase``
  (largest relative rise over ``market.vol_window`` steps), ``margin_calls`` (account-steps inside the call
  buffer), ``margin_call_amount`` / ``margin_call_peak`` (cash the calls demand: initial requirement minus
  equity, summed / at the worst step);
* cost in normal times: ``calm_margin_per_notional``, the mean initial margin held per unit of gross
  notional before the first shock (the whole run when there is none);
* coverage: ``coverage_exceptions`` of ``coverage_observations`` (steps where the adverse move over the
  rule's ``horizon`` exceeded the maintenance rate in force, long and short sides counted separately),
  ``kupiec_lr`` and ``kupiec_pvalue`` at the rule's confidence (``DEFAULT_HORIZON`` steps and
  ``DEFAULT_CONFIDENCE`` for rules without those parameters).
"""

from __future__ import annotations

from typing import Any

import networkx as nx
import numpy as np
import pandas as pd

from abm.margin import measures as margin_measures
from abm.network import cascade_measures, network_summary

__all__ = ["DEFAULT_CONFIDENCE", "DEFAULT_HORIZON", "margin_summary", "max_drawdown", "summarise"]

DEFAULT_HORIZON = 30
DEFAULT_CONFIDENCE = 0.99


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
    }
    summary.update(margin_summary(timeseries, scenario))
    summary.update(network_summary(cascade))
    return summary


def _stress_increase(rates: np.ndarray, calm: np.ndarray) -> float:
    # Peak after the calm part over the mean rate held in calm, minus one: how much more margin the
    # rule asks in the stress than traders held before it (NaN without both parts).
    if not calm.any() or calm.all():
        return float("nan")
    return float(np.nanmax(rates[~calm]) / np.nanmean(rates[calm]) - 1.0)


def margin_summary(timeseries: pd.DataFrame, scenario) -> dict[str, Any]:
    """Procyclicality, calm-time cost and coverage of the margin rule (see the module docstring)."""
    if len(timeseries) == 0:
        return {}
    margin = scenario.margin
    horizon = int(getattr(margin, "horizon", DEFAULT_HORIZON))
    confidence = float(getattr(margin, "confidence", DEFAULT_CONFIDENCE))
    mmr = timeseries["mmr"].to_numpy()
    held = timeseries["margin_held"].to_numpy()
    first_shock = min((shock.step for shock in scenario.shocks), default=None)
    calm = timeseries["step"].to_numpy() < (first_shock if first_shock is not None else np.inf)
    calls = margin_measures.margin_call_liquidity(
        timeseries["margin_calls"].to_numpy(), timeseries["margin_call_amount"].to_numpy()
    )
    exceptions, observations = margin_measures.coverage_exceptions(
        timeseries["mark"].to_numpy(), mmr, horizon
    )
    if observations > 0:
        kupiec_lr, kupiec_pvalue = margin_measures.kupiec_pof(exceptions, observations, 1.0 - confidence)
    else:
        kupiec_lr, kupiec_pvalue = float("nan"), float("nan")
    return {
        "mmr_peak_to_trough": margin_measures.peak_to_trough(mmr),
        "mmr_largest_increase": margin_measures.largest_increase(mmr, scenario.market.vol_window),
        "mmr_stress_increase": _stress_increase(mmr, calm),
        "margin_held_peak_to_trough": margin_measures.peak_to_trough(held[held > 0]),
        "margin_call_amount": calls["total_amount"],
        "margin_call_peak": calls["peak_amount"],
        "calm_margin_per_notional": margin_measures.calm_cost(
            held, timeseries["gross_notional"].to_numpy(), calm
        ),
        "coverage_horizon": horizon,
        "coverage_confidence": confidence,
        "coverage_exceptions": int(exceptions),
        "coverage_observations": int(observations),
        "kupiec_lr": float(kupiec_lr),
        "kupiec_pvalue": float(kupiec_pvalue),
    }
