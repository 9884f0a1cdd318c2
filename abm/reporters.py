"""What Mesa's DataCollector records each step: the headline measures so far, and optionally each agent.

``mesa.batch_run`` keeps the last step's values, so every model reporter of a headline measure is its
value *so far* (cumulative liquidations, the deepest cascade yet, the lowest fund yet): the last row is
the run's figure, and it agrees with the run's summary (``tests/test_model.py`` checks that).
:class:`HeadlineSoFar` keeps the running figures, updated once a step from what the model already
holds (the liquidator's records, the recorder's last row), so a step costs a few Python operations,
whatever the number of accounts.

The agent reporters (equity, leverage, position of every trader) cost a Python call per agent and
step, so they are collected only when the model is built with ``agent_reporting=True``.

:class:`HeadlineCollector` is Mesa's DataCollector with a cheaper ``collect`` for these reporters:
each gives a number, so Mesa's deep copy of every value is the value itself, and the collector
appends it directly (5.7-6.1 to 1.8-2.4 us a step for the ten reporters, docs/performance.md).

>>> tracker = HeadlineSoFar(initial_fund=100.0)
>>> tracker.max_drawdown, tracker.cascade_depth
(0.0, 0)
"""

from __future__ import annotations

import math
import types
from copy import deepcopy
from functools import partial
from typing import TYPE_CHECKING, Any

import mesa
import numpy as np

if TYPE_CHECKING:
    from abm.model import MarketModel

__all__ = ["AGENT_REPORTERS", "HeadlineCollector", "HeadlineSoFar", "model_reporters"]


class HeadlineCollector(mesa.DataCollector):
    """Mesa's DataCollector, collecting model reporters that give numbers without copying them.

    Mesa deep-copies every reporter's value so that a mutable value is not changed by later steps.
    A number cannot change, and its deep copy is the number itself, so the values stored are the same
    objects Mesa would store. The first collection, agent or agent-type reporters, and reporters
    that are not functions go through Mesa's own ``collect`` (which checks them).

    >>> collector = HeadlineCollector(model_reporters={"answer": lambda m: 42})
    >>> class Stub:
    ...     time = 1.0
    >>> collector.collect(Stub()); collector.collect(Stub())
    >>> collector.model_vars["answer"], collector._collection_steps
    ([42, 42], [1.0, 1.0])
    """

    def collect(self, model) -> None:
        """Collect the data for ``model`` (see ``mesa.DataCollector.collect``)."""
        if not self._validated or self.agent_reporters or self.agenttype_reporters:
            super().collect(model)
            return
        columns = self.__dict__.get("_columns")
        if columns is None:
            columns = self._columns = [
                (self.model_vars[name], reporter)
                for name, reporter in self.model_reporters.items()
                if isinstance(reporter, types.LambdaType | partial)
            ]
            if len(columns) != len(self.model_reporters):  # an attribute name or a method: Mesa's way
                self._columns = columns = []
        if not columns:
            super().collect(model)
            return
        self._collection_steps.append(model.time)
        for values, reporter in columns:
            value = reporter(model)
            # Only a number skips the copy: anything else is copied, as Mesa does.
            values.append(value if type(value) in _NUMBERS else deepcopy(value))


_NUMBERS = frozenset({int, float, bool, type(None), np.float64, np.int64, np.bool_})


class HeadlineSoFar:
    """The headline measures of a run up to the current step.

    Attributes:
        liquidations: Liquidations so far, every instrument.
        liquidated_notional: Their notional at the mark.
        cascade_depth: The longest chain of liquidations each caused by the one before, in links.
        max_drawdown: Largest fall of the first instrument's mark from its running peak.
        insurance_fund_min: The lowest worth of the insurance fund, its starting capital included.
    """

    def __init__(self, initial_fund: float) -> None:
        self.liquidations = 0
        self.liquidated_notional = 0.0
        self.cascade_depth = 0
        self.max_drawdown = 0.0
        self.insurance_fund_min = float(initial_fund)
        self._peak = -math.inf
        self._depth: list[int] = []  # per liquidation id: links from its cascade's root

    def update(self, model: MarketModel) -> None:
        """Take in the step just finished (called by the model before the DataCollector collects)."""
        records = model.liquidator.liquidations
        for record in records[self.liquidations :]:
            # Parents are earlier liquidations, so their depth is known; a root has depth 0.
            depth = max((self._depth[parent] + 1 for parent in record["parents"]), default=0)
            self._depth.append(depth)
            self.cascade_depth = max(self.cascade_depth, depth)
            self.liquidated_notional += record["notional"]
        self.liquidations = len(records)
        mark = model.markets[0].mark
        if math.isfinite(mark) and mark > 0:
            self._peak = max(self._peak, mark)
            self.max_drawdown = max(self.max_drawdown, 1.0 - mark / self._peak)
        self.insurance_fund_min = min(self.insurance_fund_min, model.recorder.latest("insurance_fund"))


def model_reporters(tracker: HeadlineSoFar) -> dict[str, Any]:
    """The DataCollector's model reporters: the market now and the headline measures so far."""
    return {
        "mark": lambda m: m.markets[0].mark,
        "index": lambda m: m.markets[0].index,
        "mmr": lambda m: m.checker.policies[0].mmr,
        "insurance_fund": lambda m: m.recorder.latest("insurance_fund"),
        "liquidations": lambda m: tracker.liquidations,
        "liquidated_notional": lambda m: tracker.liquidated_notional,
        "cascade_depth": lambda m: tracker.cascade_depth,
        "max_drawdown": lambda m: tracker.max_drawdown,
        "bad_debt": lambda m: m.recorder.latest("bad_debt"),
        "insurance_fund_min": lambda m: tracker.insurance_fund_min,
    }


def _equity(agent) -> float:
    return agent.model.ledger.account_equity(agent.account, agent.model.marks)


def _leverage(agent) -> float:
    """Gross notional over equity across the agent's instruments (inf when equity is gone)."""
    model = agent.model
    ledger = model.ledger
    notional = sum(
        abs(ledger.position_of(agent.account, market.column)) * market.mark * market.contract_size
        for market in agent.markets
    )
    equity = _equity(agent)
    if notional == 0:
        return 0.0
    return notional / equity if equity > 0 else math.inf


# Per trader and step, with agent_reporting=True: its equity (cash), leverage and position (lots, in
# its first instrument).
AGENT_REPORTERS = {"equity": _equity, "leverage": _leverage, "position": "position"}
