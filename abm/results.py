"""The result of one run: the tables, the cascade graph and the headline figures.

A :class:`RunResult` is what :func:`abm.runs.run_scenario` returns and what
:mod:`abm.outputs` writes to a run directory; it holds no reference to the live model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import pandas as pd

from abm.config import Scenario

__all__ = ["RunResult", "TIMESERIES_COLUMNS", "ACCOUNT_COLUMNS", "LIQUIDATION_COLUMNS", "TRADE_COLUMNS"]

TIMESERIES_COLUMNS = (
    "step",
    "price",
    "mid",
    "mark",
    "index",
    "best_bid",
    "best_ask",
    "spread",
    "depth_bid",
    "depth_ask",
    "volume",
    "liquidations",
    "liquidated_notional",
    "adl_volume",
    "open_interest",
    "insurance_fund",
    "bad_debt",
    "socialised_loss",
    "margin_calls",
    "margin_call_amount",
    "margin_held",
    "gross_notional",
    "imr",
    "mmr",
    "realised_vol",
    "mean_leverage",
    "cascade_rounds",
)
TRADE_COLUMNS = ("step", "round", "price", "quantity", "taker", "maker", "taker_side", "is_liquidation")
LIQUIDATION_COLUMNS = (
    "liquidation_id",
    "step",
    "round",
    "account_id",
    "kind",
    "side",
    "quantity",
    "filled_quantity",
    "average_price",
    "mark_before",
    "notional",
    "equity_before",
    "equity_after",
    "bad_debt",
    "adl_quantity",
    "price_impact",
    "parents",
    "full",
)
ACCOUNT_COLUMNS = (
    "account_id",
    "kind",
    "group",
    "collateral",
    "position",
    "entry_price",
    "equity",
    "liquidated",
    "deposits",
    "initial_collateral",
    "leverage_target",
)


@dataclass
class RunResult:
    """Everything a finished run produced.

    Attributes:
        scenario: The resolved scenario (after overrides) that was run.
        seed: The seed of the run's ``numpy.random.Generator``.
        timeseries: One row per step, columns ``TIMESERIES_COLUMNS`` plus rule state columns.
        trades: One row per fill, columns ``TRADE_COLUMNS``.
        liquidations: One row per liquidation, columns ``LIQUIDATION_COLUMNS``.
        accounts: One row per account at the end, columns ``ACCOUNT_COLUMNS``.
        cascade: The liquidation cascade DAG (nodes are liquidation ids).
        summary: Headline metrics (JSON-serialisable scalars).
        wall_seconds: Wall time of the simulation itself.
        invariant_checks: Whether invariants were checked after every step.
    """

    scenario: Scenario
    seed: int
    timeseries: pd.DataFrame
    trades: pd.DataFrame
    liquidations: pd.DataFrame
    accounts: pd.DataFrame
    cascade: nx.DiGraph
    summary: dict[str, Any]
    wall_seconds: float = 0.0
    invariant_checks: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
