"""The headline measures of a run: the figures every summary, report and notebook view shows first.

One table, in display order, with each measure's unit and a one-line definition; the command line's
summary, ``report.html``, the sweep report and :class:`abm.results.RunResult`'s notebook view all read
it. The measures themselves are computed in :mod:`abm.metrics` (``amplification`` and the
``counterfactual_*`` figures by :func:`abm.runs.add_counterfactual`, only with ``--counterfactual``).

>>> HEADLINE_MEASURES["max_drawdown"].unit
'share of peak'
>>> describe("liquidations")
'liquidations (count): forced liquidations over the run, every instrument'
"""

from __future__ import annotations

import math
from typing import NamedTuple

__all__ = [
    "COMMAND_LINE_MEASURES",
    "HEADLINE_MEASURES",
    "Measure",
    "describe",
    "measure_of",
    "possible_range",
]


class Measure(NamedTuple):
    """A headline measure's unit and one-line definition."""

    unit: str
    definition: str


HEADLINE_MEASURES: dict[str, Measure] = {
    "max_drawdown": Measure("share of peak", "largest fall of the mark from its running peak"),
    "max_rise": Measure("share of trough", "largest rise of the mark from its running trough (a squeeze)"),
    "min_mark": Measure("price", "lowest mark of the run"),
    "liquidations": Measure("count", "forced liquidations over the run, every instrument"),
    "liquidated_notional": Measure("cash", "notional of the liquidated positions, at the mark"),
    "contagion_liquidated_notional": Measure(
        "cash", "liquidated notional in the instruments no shock acted on (several instruments)"
    ),
    "cross_instrument_edge_share": Measure("share", "share of cascade links from one instrument to another"),
    "cascades": Measure("count", "groups of liquidations linked by cause (a lone liquidation counts)"),
    "largest_cascade": Measure("count", "liquidations in the largest cascade"),
    "largest_cascade_depth": Measure("links", "longest chain of causes inside the largest cascade"),
    "cascade_depth": Measure("links", "longest chain of liquidations each caused by the one before"),
    "cascade_max_rounds": Measure("rounds", "most liquidation rounds within one step"),
    "branching_ratio": Measure(
        "ratio", "liquidations each liquidation triggers, on average (1 or more: explosive)"
    ),
    "bad_debt": Measure("cash", "negative equity the insurance fund took on (deficits, takeovers at a loss)"),
    "insurance_fund_used": Measure(
        "cash", "largest fall of the insurance fund's worth from its running peak"
    ),
    "socialised_loss": Measure("cash", "losses charged to winning accounts once the fund was spent"),
    "adl_volume": Measure("lots", "lots closed by auto-deleveraging"),
    "absorption_hhi": Measure(
        "index 0-1", "concentration (Herfindahl) of the accounts that took the forced flow"
    ),
    "absorption_top_share": Measure(
        "share", "share of the forced notional taken by the largest single account"
    ),
    "maker_notional_share": Measure("share", "share of traded notional with a market maker on one side"),
    "mmr_peak_to_trough": Measure("ratio", "peak over trough of the maintenance rate in force"),
    "mmr_largest_increase": Measure(
        "share", "largest relative rise of the maintenance rate over market.vol_window steps"
    ),
    "margin_calls": Measure("account-steps", "steps accounts spent inside the margin-call buffer"),
    "calm_margin_per_notional": Measure(
        "share of notional", "initial margin held per unit of gross notional before the first shock"
    ),
    "portfolio_calm_margin_per_notional": Measure(
        "share of notional",
        "maintenance the portfolio rule asks per unit of the portfolio accounts' gross notional, before "
        "the first shock",
    ),
    "portfolio_calm_offset": Measure(
        "share", "one minus the portfolio rule's maintenance over the positions' own, before the first shock"
    ),
    "portfolio_margin_peak_to_trough": Measure(
        "ratio", "peak over trough of the portfolio accounts' maintenance per gross notional"
    ),
    "portfolio_margin_largest_increase": Measure(
        "share", "largest relative rise of that rate over market.vol_window steps"
    ),
    "trader_median_utilisation": Measure(
        "ratio", "median over the traders with a position of initial margin / equity, before the stress"
    ),
    "trader_median_buffer": Measure(
        "ratio", "median of equity / maintenance - 1 over those traders (below 0: liquidated)"
    ),
    "trader_median_distance_to_liquidation": Measure(
        "share of mark", "median move of every mark together that liquidates a trader, before the stress"
    ),
    "trader_share_within_5pct": Measure(
        "share", "share of those traders a 5% move of every mark liquidates (margin-call sensitivity)"
    ),
    "liquidated_share": Measure("share", "share of the group's accounts liquidated in the run"),
    "amplification": Measure(
        "ratio", "drawdown with liquidations over drawdown without them (--counterfactual)"
    ),
    "liquidation_added_drawdown": Measure(
        "share of peak", "max_drawdown less that of the run without liquidations (--counterfactual)"
    ),
    "counterfactual_max_drawdown": Measure("share of peak", "max_drawdown of the run without liquidations"),
    "tier_brackets_unreached": Measure(
        "count", "brackets of a tiered rule above the first that no margined position ever reached"
    ),
    "largest_position_notional": Measure(
        "cash", "largest notional a margined account held at the end of a step (tiered rules only)"
    ),
    "counterfactual_liquidations": Measure(
        "count", "liquidations counted in the run with forced liquidation off"
    ),
}

# What `abm run` prints, in this order (the run and sweep reports list theirs in abm.report and
# abm.sweep.report; every name in each list has its entry above).
COMMAND_LINE_MEASURES = (
    "max_drawdown",
    "max_rise",
    "liquidations",
    "liquidated_notional",
    "contagion_liquidated_notional",
    "cascade_depth",
    "bad_debt",
    "insurance_fund_used",
    "socialised_loss",
    "amplification",
    "counterfactual_max_drawdown",
    "counterfactual_liquidations",
)


def measure_of(name: str) -> Measure | None:
    """The entry of a measure, also for a per-instrument column (``by_instrument.B.max_drawdown``).

    >>> measure_of("by_instrument.B.liquidations").unit
    'count'
    >>> measure_of("volume") is None
    True
    """
    return HEADLINE_MEASURES.get(name) or HEADLINE_MEASURES.get(name.rsplit(".", 1)[-1])


# Units whose values lie in [0, 1]; every other measure listed above is at least 0.
_UNIT_INTERVAL = {"share", "share of peak", "index 0-1", "share of notional"}


def possible_range(name: str) -> tuple[float, float]:
    """The values a measure can take: intervals drawn around its mean are clipped to this range.

    >>> possible_range("max_drawdown"), possible_range("bad_debt"), possible_range("my_figure")
    ((0.0, 1.0), (0.0, inf), (-inf, inf))
    """
    measure = measure_of(name)
    if measure is None:
        return -math.inf, math.inf
    return (0.0, 1.0) if measure.unit in _UNIT_INTERVAL else (0.0, math.inf)


def describe(name: str) -> str:
    """``name (unit): definition`` for a headline measure (the bare name for others)."""
    measure = measure_of(name)
    return f"{name} ({measure.unit}): {measure.definition}" if measure else name
