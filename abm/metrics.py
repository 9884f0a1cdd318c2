"""Run summary metrics: the headline figures of one run.

Definitions (all computed from the run's tables):

* ``max_drawdown``: largest fall of the mark from its running peak, as a fraction of the peak;
  ``max_rise``: largest rise from its running trough, as a fraction of the trough (a short squeeze);
* ``liquidations`` / ``liquidated_notional``: count and notional (at the mark) of liquidations;
* ``cascade_max_rounds``: most liquidation rounds in one step; ``cascade_depth``: longest chain of
  the cascade DAG in links (see :mod:`abm.network`);
* ``bad_debt``: negative equity the fund took on, at the mark (deficits covered, takeovers at a
  loss); ``insurance_fund_min``, ``insurance_fund_final``, ``insurance_fund_used`` (largest fall from
  its running peak) of the fund's worth (cash and inventory marked); ``adl_volume``;
* ``steps_to_dispose``: the longest run of steps in which the liquidation engine held inventory it
  had taken over (the first instrument's; each instrument's in ``by_instrument``);
* from the journal (the ``ledger`` table, :func:`abm.journal.money_figures`): ``liquidation_fees``,
  ``fund_payouts``, ``socialised_loss``, ``leftover_to_fund``, ``net_deposits``, ``revaluation``;
* procyclicality of the margin rule: ``mmr_stress_increase`` (peak maintenance rate after the first
  shock over the mean rate in force before it, minus one: the rise traders face relative to what they
  held), ``mmr_peak_to_trough`` and ``margin_held_peak_to_trough``
  (peak over trough of the maintenance rate and of the total initial margin asked), ``mmr_largest_increase``
  (largest relative rise over ``market.vol_window`` steps), ``margin_calls`` (account-steps inside the call
  buffer), ``margin_call_amount`` / ``margin_call_peak`` (cash the calls demand: initial requirement minus
  equity, summed / at the worst step);
* cost in normal times: ``calm_margin_per_notional``, the mean initial margin held per unit of gross
  notional before the first shock (the whole run when there is none);
* with portfolio-margined accounts (:func:`portfolio_summary`): ``portfolio_calm_margin_per_notional``,
  ``portfolio_calm_offset``, ``portfolio_margin_peak_to_trough``, ``portfolio_margin_largest_increase``;
* the leveraged traders' accounts just before the stress (:func:`account_risk_summary`):
  ``trader_median_utilisation``, ``trader_median_buffer``, ``trader_median_distance_to_liquidation``,
  ``trader_share_within_5pct``, and ``by_group`` (the same per trader group, with ``liquidated_share``);
* coverage: ``coverage_exceptions`` of ``coverage_observations`` (steps where the adverse move over the
  rule's ``horizon`` exceeded the maintenance rate in force, long and short sides counted separately),
  ``kupiec_lr`` and ``kupiec_pvalue`` at the rule's confidence (``DEFAULT_HORIZON`` steps and
  ``DEFAULT_CONFIDENCE`` for rules without those parameters);
* several instruments: ``instruments`` (their names, always there); price and margin figures are the
  first instrument's, counts and notionals every instrument's; ``by_instrument`` holds each
  instrument's own figures and ``contagion_liquidated_notional`` the notional liquidated in the
  instruments no shock acted on (both only with two or more instruments).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from abm.cascades import TableCascade
from abm.margin import measures as margin_measures

__all__ = [
    "DEFAULT_CONFIDENCE",
    "DEFAULT_HORIZON",
    "instrument_frame",
    "margin_summary",
    "portfolio_summary",
    "account_risk_summary",
    "max_drawdown",
    "max_rise",
    "summarise",
]

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


def max_rise(prices: np.ndarray) -> float:
    """Largest trough-to-peak rise as a fraction of the running trough (0 for an empty series).

    >>> round(max_rise(np.array([100.0, 80.0, 108.0, 90.0])), 12)  # 80 to 108
    0.35
    """
    prices = np.asarray(prices, dtype=float)
    prices = prices[np.isfinite(prices) & (prices > 0)]
    if len(prices) == 0:
        return 0.0
    trough = np.minimum.accumulate(prices)
    return float(np.max(prices / trough - 1.0))


def _longest_run(flags: np.ndarray) -> int:
    """The longest run of consecutive True values (steps the engine held inventory).

    >>> _longest_run(np.array([0, 5, 5, 0, 3, 3, 3, 0]) != 0)
    3
    """
    longest = current = 0
    for flag in flags.tolist():
        current = current + 1 if flag else 0
        longest = max(longest, current)
    return longest


def _running_drop(values: np.ndarray) -> float:
    if len(values) == 0:
        return 0.0
    peak = np.maximum.accumulate(values)
    return float(np.max(peak - values))


def instrument_frame(timeseries: pd.DataFrame, instrument: str) -> pd.DataFrame:
    """The rows of one instrument of a (long-form) time series."""
    if "instrument" not in timeseries:
        return timeseries
    return timeseries[timeseries["instrument"].to_numpy() == instrument]


def _price_figures(frame: pd.DataFrame, liquidations: pd.DataFrame) -> dict[str, Any]:
    mark = frame["mark"].to_numpy()
    mmr = frame["mmr"].to_numpy()
    return {
        "liquidations": int(len(liquidations)),
        "liquidated_notional": float(liquidations["notional"].sum()) if len(liquidations) else 0.0,
        "max_drawdown": max_drawdown(mark),
        "max_rise": max_rise(mark),
        "final_mark": float(mark[-1]) if len(mark) else float("nan"),
        "min_mark": float(np.nanmin(mark)) if len(mark) else float("nan"),
        "adl_volume": int(frame["adl_volume"].sum()),
        "steps_to_dispose": _longest_run(frame["engine_position"].to_numpy() != 0)
        if "engine_position" in frame
        else 0,
        "volume": int(frame["volume"].sum()),
        "mmr_max": float(np.nanmax(mmr)) if len(mmr) else float("nan"),
        "mmr_min": float(np.nanmin(mmr)) if len(mmr) else float("nan"),
    }


def summarise(
    timeseries: pd.DataFrame,
    liquidations: pd.DataFrame,
    scenario,
    policy=None,
) -> dict[str, Any]:
    """Headline metrics of a run (JSON-serialisable Python scalars).

    Price figures (``max_drawdown``, ``final_mark``, ``min_mark``, ``mmr_*``, the margin measures) are
    the first instrument's; counts and notionals (``liquidations``, ``liquidated_notional``,
    ``adl_volume``, ``volume``) are over every instrument; with several instruments ``by_instrument``
    holds each one's figures. ``contagion_liquidated_notional`` is the notional liquidated in the
    instruments no shock acted on.
    """
    names = scenario.instrument_names()
    by_instrument_liquidations = {
        name: liquidations[liquidations["instrument"].to_numpy() == name]
        if "instrument" in liquidations
        else liquidations
        for name in names
    }
    frames = {name: instrument_frame(timeseries, name) for name in names}
    first = frames[names[0]]
    configs = {config.name: config for config in scenario.instrument_configs()}
    fund = np.concatenate([[scenario.liquidation.insurance_fund], first["insurance_fund"].to_numpy()])
    cascade = TableCascade(liquidations)  # the cascade DAG's measures, from the table in arrays
    components = cascade.components()
    measures = cascade.measures(components)
    headline = _price_figures(first, by_instrument_liquidations[names[0]])
    summary: dict[str, Any] = {
        "steps": int(len(first)),
        "instruments": list(names),
        "liquidations": int(len(liquidations)),
        "liquidated_accounts": int(liquidations["account_id"].nunique()) if len(liquidations) else 0,
        "liquidated_notional": float(liquidations["notional"].sum()) if len(liquidations) else 0.0,
        "max_drawdown": headline["max_drawdown"],
        "max_rise": headline["max_rise"],
        "final_mark": headline["final_mark"],
        "min_mark": headline["min_mark"],
        "cascade_max_rounds": int(first["cascade_rounds"].max()) if len(first) else 0,
        "cascade_depth": int(measures["cascade_depth"]),
        "cascades": int(measures["cascades"]),
        "largest_cascade": int(measures["largest_cascade"]),
        "branching_ratio": float(measures["branching_ratio"]),
        "bad_debt": float(first["bad_debt"].iloc[-1]) if len(first) else 0.0,
        "socialised_loss": float(first["socialised_loss"].iloc[-1]) if len(first) else 0.0,
        "adl_volume": int(timeseries["adl_volume"].sum()),
        "steps_to_dispose": headline["steps_to_dispose"],
        "insurance_fund_min": float(fund.min()),
        "insurance_fund_final": float(fund[-1]),
        "insurance_fund_used": _running_drop(fund),
        "margin_calls": int(first["margin_calls"].sum()),
        "volume": int(timeseries["volume"].sum()),
        "mmr_max": headline["mmr_max"],
        "mmr_min": headline["mmr_min"],
    }
    summary.update(margin_summary(first, scenario, configs[names[0]]))
    summary.update(portfolio_summary(first, scenario, configs[names[0]]))
    summary.update(cascade.summary(components))
    if len(names) > 1:
        shocked = set(scenario.shocked_instruments())
        summary["contagion_liquidated_notional"] = sum(
            float(by_instrument_liquidations[name]["notional"].sum()) for name in names if name not in shocked
        )
        summary["by_instrument"] = {
            name: {
                **_price_figures(frames[name], by_instrument_liquidations[name]),
                **margin_summary(frames[name], scenario, configs[name]),
            }
            for name in names
        }
    return summary


def _stress_increase(rates: np.ndarray, calm: np.ndarray) -> float:
    # Peak after the calm part over the mean rate held in calm, minus one: how much more margin the
    # rule asks in the stress than traders held before it (NaN without both parts).
    if not calm.any() or calm.all():
        return float("nan")
    return float(np.nanmax(rates[~calm]) / np.nanmean(rates[calm]) - 1.0)


def portfolio_summary(timeseries: pd.DataFrame, scenario, instrument) -> dict[str, Any]:
    """What the portfolio rule asks of the portfolio accounts (none without them).

    From the account-wide columns ``margin_portfolio_*`` (one instrument's rows): the maintenance rate
    ``maintenance / gross notional`` of the portfolio accounts with a position, its mean before the
    first shock (``portfolio_calm_margin_per_notional``), its peak over trough and largest rise over
    ``vol_window`` steps (procyclicality), and ``portfolio_calm_offset``, one minus the rule's
    maintenance over what the positions would need alone, summed over the calm steps.
    """
    if "margin_portfolio_maintenance" not in timeseries or len(timeseries) == 0:
        return {}
    maintenance = timeseries["margin_portfolio_maintenance"].to_numpy()
    alone = timeseries["margin_portfolio_standalone_maintenance"].to_numpy()
    notional = timeseries["margin_portfolio_gross_notional"].to_numpy()
    rate = np.full(len(notional), np.nan)
    np.divide(maintenance, notional, out=rate, where=notional > 0)
    first_shock = min((shock.step for shock in scenario.shocks), default=None)
    calm = timeseries["step"].to_numpy() < (first_shock if first_shock is not None else np.inf)
    calm_rate = rate[calm & np.isfinite(rate)]
    calm_alone = float(alone[calm].sum())
    held = rate[np.isfinite(rate) & (rate > 0)]
    return {
        "portfolio_calm_margin_per_notional": float(calm_rate.mean()) if calm_rate.size else float("nan"),
        "portfolio_calm_offset": 1.0 - float(maintenance[calm].sum()) / calm_alone
        if calm_alone > 0
        else float("nan"),
        "portfolio_margin_peak_to_trough": margin_measures.peak_to_trough(held),
        "portfolio_margin_largest_increase": _largest_increase_of_positive(rate, instrument.vol_window),
    }


def _largest_increase_of_positive(rate: np.ndarray, window: int) -> float:
    # Steps without a rate (no position) or with a zero rate (a rule that asked nothing) are left out:
    # NaN when no pair of steps window apart has a positive rate at both.
    positive = np.where(rate > 0, rate, np.nan)
    if len(positive) <= window or not np.isfinite(positive[window:] / positive[:-window]).any():
        return float("nan")
    return margin_measures.largest_increase(positive, window)


def margin_summary(timeseries: pd.DataFrame, scenario, instrument=None) -> dict[str, Any]:
    """Procyclicality, calm-time cost and coverage of an instrument's margin rule (the module docstring).

    Args:
        timeseries: The instrument's rows of the time series.
        scenario: The scenario.
        instrument: The instrument's settings (default the scenario's first).
    """
    if len(timeseries) == 0:
        return {}
    if instrument is None:
        instrument = scenario.instrument_configs()[0]
    margin = instrument.margin
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
        "mmr_largest_increase": margin_measures.largest_increase(mmr, instrument.vol_window),
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


def account_risk_summary(snapshots: pd.DataFrame, accounts: pd.DataFrame) -> dict[str, Any]:
    """What risk teams read off the leveraged traders' accounts just before the stress.

    From the ``before_stress`` account snapshot (:mod:`abm.margin.sensitivity`), over the leveraged-trader
    accounts with a position: the medians of ``utilisation`` (initial margin over equity), ``buffer``
    (equity over maintenance, less one) and ``joint_distance_to_liquidation`` (the move of every mark
    that liquidates the account), and the share a 5% move liquidates. ``by_group`` holds the same per
    trader group, with ``liquidated_share``: the share of the group's accounts liquidated in the run (over
    a sweep's seeds, the probability of liquidation). Empty without a snapshot or traders.

    >>> snapshot = pd.DataFrame({"snapshot": "before_stress", "account_id": [1, 2, 3],
    ...     "kind": "leveraged_trader", "position": [5, 5, 0], "utilisation": [0.5, 0.7, 0.0],
    ...     "buffer": [1.0, 0.2, 0.0], "joint_distance_to_liquidation": [0.08, 0.03, 0.0]})
    >>> accounts = pd.DataFrame({"account_id": [1, 2, 3], "kind": "leveraged_trader",
    ...     "group": ["a", "a", "b"], "liquidated": [0, 1, 0]})
    >>> summary = account_risk_summary(snapshot, accounts)
    >>> summary["trader_median_distance_to_liquidation"], summary["trader_share_within_5pct"]
    (0.055, 0.5)
    >>> summary["by_group"]["a"]["liquidated_share"], summary["by_group"]["b"]["liquidated_share"]
    (0.5, 0.0)
    """
    if "joint_distance_to_liquidation" not in snapshots or "group" not in accounts:
        return {}
    before = snapshots[(snapshots["snapshot"] == "before_stress") & (snapshots["kind"] == "leveraged_trader")]
    held_ids = before.loc[before["position"] != 0, "account_id"].unique()
    rows = before[before["account_id"].isin(held_ids)].drop_duplicates("account_id").set_index("account_id")
    traders = accounts[accounts["kind"] == "leveraged_trader"].drop_duplicates("account_id")
    if len(traders) == 0:
        return {}

    def figures(frame: pd.DataFrame) -> dict[str, float]:
        distance = frame["joint_distance_to_liquidation"].to_numpy(dtype=float)
        return {
            "median_utilisation": float(frame["utilisation"].median()) if len(frame) else math.nan,
            "median_buffer": float(frame["buffer"].median()) if len(frame) else math.nan,
            "median_distance_to_liquidation": float(np.median(distance)) if len(frame) else math.nan,
            "share_within_5pct": float(np.mean(distance <= 0.05)) if len(frame) else math.nan,
        }

    summary = {f"trader_{name}": value for name, value in figures(rows).items()}
    by_group = {}
    for label, members in traders.groupby("group", sort=False):
        ids = members["account_id"].to_numpy()
        by_group[str(label)] = {
            "accounts": int(len(ids)),
            "liquidated_share": float((members["liquidated"].to_numpy() > 0).mean()),
            **figures(rows[rows.index.isin(ids)]),
        }
    summary["by_group"] = by_group
    return summary
