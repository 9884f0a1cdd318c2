"""Result assembly: a finished run's parts turned into its tables, cascade graph, networks and summary.

Kept out of the model: :func:`assemble_result` is given the parts explicitly (the ledger, the
liquidator's records, the recorder, the population, the markets) and builds the
:class:`~abm.results.RunResult`, which holds no reference to the live model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from abm.journal import money_figures
from abm.ledger import KIND_NAMES, MARGIN_MODES, Ledger
from abm.metrics import account_risk_summary, summarise
from abm.network import (
    build_exposure_graph,
    build_trade_graph,
    exposures_from_accounts,
    trade_network_summary,
)
from abm.population import Population
from abm.recorder import RunRecorder
from abm.results import ACCOUNT_COLUMNS, LIQUIDATION_COLUMNS, TRADE_COLUMNS, RunResult
from abm.tables import LIQUIDATIONS

__all__ = ["accounts_table", "assemble_result", "liquidations_table", "trades_table"]


def _names(ledger: Ledger) -> np.ndarray:
    return np.array([instrument.name for instrument in ledger.instruments], dtype=object)


def trades_table(ledger: Ledger) -> pd.DataFrame:
    """Every fill of the run, one row each (columns ``TRADE_COLUMNS``)."""
    log = ledger.trades
    return pd.DataFrame(
        {
            "step": np.array(log.step, dtype=np.int64),
            "instrument": _names(ledger)[np.array(log.instrument, dtype=np.int64)],
            "round": np.array(log.round, dtype=np.int64),
            "price": np.array(log.price, dtype=np.float64),
            "quantity": np.array(log.quantity, dtype=np.int64),
            "taker": np.array(log.taker, dtype=np.int64),
            "maker": np.array(log.maker, dtype=np.int64),
            "taker_side": np.array(log.side, dtype=np.int64),
            "is_liquidation": np.array(log.is_liquidation, dtype=bool),
        },
        columns=list(TRADE_COLUMNS),
    )


def liquidations_table(records: Sequence[Mapping[str, Any]], ledger: Ledger) -> pd.DataFrame:
    """Every liquidation of the run, one row each (columns ``LIQUIDATION_COLUMNS``, kinds by name)."""
    liquidations = pd.DataFrame(list(records), columns=list(LIQUIDATION_COLUMNS))
    # Typed as declared (so that an empty table is typed too); kinds and instruments come as codes.
    liquidations = liquidations.astype(
        {**LIQUIDATIONS.pandas_dtypes(), "kind": "int64", "instrument": "int64"}
    )
    liquidations["kind"] = liquidations["kind"].map(dict(enumerate(KIND_NAMES))).astype(object)
    liquidations["instrument"] = (
        liquidations["instrument"].map(dict(enumerate(_names(ledger)))).astype(object)
    )
    return liquidations


def accounts_table(ledger: Ledger, population: Population, marks) -> pd.DataFrame:
    """One row per account and instrument at ``marks`` (the engine's included; ``ACCOUNT_COLUMNS``)."""
    n = ledger.n_accounts
    k = ledger.n_instruments
    leverage_target = np.full(n, np.nan)
    for account in range(n):
        agent = population.agent_of(account)
        leverage = getattr(agent, "leverage", None)
        if leverage is not None and agent.kind == "leveraged_trader":
            leverage_target[account] = leverage

    def each(values) -> np.ndarray:  # an account-wide column, once per instrument row
        return np.repeat(np.asarray(values), k)

    return pd.DataFrame(
        {
            "account_id": each(np.arange(n, dtype=np.int64)),
            "instrument": np.tile(_names(ledger), n),
            "kind": each(np.array([KIND_NAMES[int(code)] for code in ledger.kind], dtype=object)),
            "group": each(np.array(population.labels(), dtype=object)),
            "margin_mode": each(
                np.array([MARGIN_MODES[int(code)] for code in ledger.margin_mode], dtype=object)
            ),
            "collateral": each(ledger.collateral),
            "position": ledger.position.ravel().copy(),
            "entry_price": ledger.entry_price.ravel().copy(),
            "equity": each(ledger.equity(marks)),
            "liquidated": each(ledger.liquidated),
            "deposits": each(ledger.deposits),
            "initial_collateral": each(ledger.initial_collateral),
            "leverage_target": each(leverage_target),
        },
        columns=list(ACCOUNT_COLUMNS),
    )


def tier_figures(policy: Any) -> dict[str, Any]:
    """How much of a tiered rule a run used: its brackets above the first that no position reached.

    ``tier_brackets_unreached`` is 0 for a rule without brackets; ``largest_position_notional`` (the
    largest notional a margined account held at the end of a step) is there for tiered rules only (it
    is not tracked otherwise).
    """
    if not policy.tiered:
        return {"tier_brackets_unreached": 0}
    return {
        "tier_brackets_unreached": len(policy.unreached_floors()),
        "largest_position_notional": float(policy.largest_notional),
    }


def assemble_result(
    *,
    scenario: Any,
    seed: int,
    ledger: Ledger,
    population: Population,
    liquidations: Sequence[Mapping[str, Any]],
    recorder: RunRecorder,
    policies: Sequence[Any],
    marks,
    last_step: int,
    wall_seconds: float,
    invariant_checks: bool,
    extra: Mapping[str, Any],
    end_sensitivity=None,
    portfolio_backtest=None,
) -> RunResult:
    """Build a run's :class:`RunResult` from its parts.

    Args:
        scenario: The resolved scenario that ran.
        seed: The run's seed (-1 when unknown).
        ledger: The ledger at the end.
        population: The groups and agents.
        liquidations: The liquidator's records.
        recorder: The recorder (time series, depth, snapshots).
        policies: The margin policy of each instrument.
        marks: The final marks.
        last_step: The last step run (for the end snapshot).
        wall_seconds: Wall time of the simulation.
        invariant_checks: Whether invariants were checked after every step.
        extra: Further items for ``RunResult.extra`` (times, seed sequence).
        end_sensitivity: The accounts' :class:`~abm.margin.sensitivity.AccountSensitivity` at the end
            (for the end snapshot's risk columns).
        portfolio_backtest: The portfolio rule's :class:`~abm.margin.backtest.PortfolioBacktest`
            (its counts and tests join the summary), when some account is portfolio-margined.
    """
    timeseries = recorder.to_frame()
    trades = trades_table(ledger)
    liquidation_frame = liquidations_table(liquidations, ledger)
    accounts = accounts_table(ledger, population, marks)
    summary = summarise(timeseries, liquidation_frame, scenario, policies[0])
    names = [instrument.name for instrument in ledger.instruments]
    summary.update(tier_figures(policies[0]))
    for name, policy in zip(names, policies, strict=True):
        if len(names) > 1:
            summary["by_instrument"][name].update(tier_figures(policy))
    journal = ledger.journal.frame(names)
    summary.update(money_figures(journal))  # the money figures, from the journal every one is in
    marks = np.asarray(marks, dtype=np.float64)
    recorder.snapshot_accounts(
        "end",
        last_step,
        [KIND_NAMES[int(code)] for code in ledger.kind],
        ledger.position,
        ledger.equity(marks),
        np.abs(ledger.position) * marks * ledger.contract_sizes,
        end_sensitivity,
    )
    snapshots = recorder.snapshots_frame()
    sizes = (
        dict(zip(names, ledger.contract_sizes.tolist(), strict=True))
        if len(names) > 1
        else float(ledger.contract_sizes[0])
    )
    trade_graph = build_trade_graph(trades, accounts, liquidation_frame, sizes)
    summary.update(account_risk_summary(snapshots, accounts))
    if portfolio_backtest is not None:
        summary.update(portfolio_backtest.summary())
    before = snapshots[snapshots["snapshot"] == "before_stress"]
    exposure_graph = build_exposure_graph(exposures_from_accounts(before))
    summary.update(trade_network_summary(trade_graph, exposure_graph, asset=names[0]))
    return RunResult(
        scenario=scenario,
        seed=seed,
        timeseries=timeseries,
        trades=trades,
        liquidations=liquidation_frame,
        accounts=accounts,
        ledger=journal,
        cascade=None,  # the DAG is built from the liquidations when first asked for
        summary=summary,
        wall_seconds=wall_seconds,
        invariant_checks=invariant_checks,
        extra={
            **extra,
            "trade_graph": trade_graph,
            "depth_profile": recorder.depth_frame(),
            "account_snapshots": snapshots,
        },
    )
