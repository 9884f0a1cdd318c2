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
from abm.tables import ACCOUNTS, LEDGER, LIQUIDATIONS, TIMESERIES, TRADES

__all__ = ["RunResult", "TIMESERIES_COLUMNS", "ACCOUNT_COLUMNS", "LIQUIDATION_COLUMNS", "TRADE_COLUMNS"]

# The declared columns of each table (abm/tables.py is their one definition).
TIMESERIES_COLUMNS = TIMESERIES.names()
TRADE_COLUMNS = TRADES.names()
LIQUIDATION_COLUMNS = LIQUIDATIONS.names()
ACCOUNT_COLUMNS = ACCOUNTS.names()


class _CascadeGraph:
    """The ``cascade`` field: the graph given, or (given None) built from the liquidations on first use.

    Most runs never need the networkx DAG (the summary and the report read the cascade from the
    liquidations table, :class:`abm.cascades.TableCascade`), and at 100,000 liquidations it takes
    seconds to build; so a run leaves it to whoever asks.
    """

    def __set_name__(self, owner: type, name: str) -> None:
        self._slot = f"_{name}_graph"

    def __get__(self, result: Any, owner: type | None = None) -> nx.DiGraph:
        if result is None:  # the dataclass asks for a default: there is none, the field is required
            raise AttributeError("cascade")
        graph = result.__dict__.get(self._slot)
        if graph is None:
            from abm.network import build_cascade_graph

            graph = build_cascade_graph(result.liquidations)
            result.__dict__[self._slot] = graph
        return graph

    def __set__(self, result: Any, graph: nx.DiGraph | None) -> None:
        result.__dict__[self._slot] = graph


@dataclass
class RunResult:
    """Everything a finished run produced.

    Attributes:
        scenario: The resolved scenario (after overrides) that was run.
        seed: The seed of the run's ``numpy.random.Generator``.
        timeseries: One row per step: :data:`abm.tables.TIMESERIES` (plus the rule's ``margin_*``).
        trades: One row per fill: :data:`abm.tables.TRADES`.
        liquidations: One row per liquidation: :data:`abm.tables.LIQUIDATIONS`.
        accounts: One row per account at the end: :data:`abm.tables.ACCOUNTS`.
        ledger: One row per movement of money: :data:`abm.tables.LEDGER` (the journal every money
            figure is derived from).
        cascade: The liquidation cascade DAG (nodes are liquidation ids); given as None, built from
            ``liquidations`` when first read.
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
    cascade: nx.DiGraph = _CascadeGraph()  # type: ignore[assignment]  (required: no default)
    summary: dict[str, Any]
    wall_seconds: float = 0.0
    invariant_checks: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    ledger: pd.DataFrame = field(default_factory=LEDGER.empty)

    @property
    def has_cascade_graph(self) -> bool:
        """Whether the cascade graph exists already (given, or built when first read)."""
        return self.__dict__.get("_cascade_graph") is not None

    def __repr__(self) -> str:
        summary = self.summary
        figures = ", ".join(
            f"{name}={summary[name]:.4g}" if isinstance(summary[name], float) else f"{name}={summary[name]}"
            for name in ("liquidations", "max_drawdown", "cascade_depth", "bad_debt")
            if name in summary
        )
        steps = int(summary.get("steps", len(self.timeseries)))
        return f"<RunResult {self.scenario.name!r} seed={self.seed} steps={steps}: {figures}>"

    def _repr_html_(self) -> str:
        """The notebook view: the headline figures with their units, and the price figure."""
        import base64
        import html
        import io

        from abm.plots import instrument_names, plot_instrument_prices, plot_price
        from abm.report import headline_table, html_table

        title = html.escape(f"{self.scenario.name}, seed {self.seed}")
        table = html_table(headline_table(self.summary))
        several = len(instrument_names(self.timeseries)) > 1
        draw = plot_instrument_prices if several else plot_price
        figure = draw(self.timeseries, list(self.scenario.shocks))
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=72)
        image = base64.b64encode(buffer.getvalue()).decode("ascii")
        return (
            f"<div><strong>RunResult: {title}</strong>{table}"
            '<img alt="price, mark and index" style="max-width:100%" '
            f'src="data:image/png;base64,{image}"></div>'
        )
