"""A live dashboard on Mesa's SolaraViz: ``abm dash SCENARIO`` serves it on a loopback port.

The page has Mesa's play / step / reset controls, three controls of the run (the margin rule, a
scale on the traders' leverage and a scale on the shocks; changing one takes effect at the next
reset) and live panels: price, mark and index; the book's depth now; liquidations per step; the
margin rates with the insurance fund and bad debt; the cascade graph so far; the headline figures so
far. Every panel is drawn by the same functions as the run directory's figures (:mod:`abm.plots`), from
what the model holds at the current step, so the dashboard shows exactly what a run would write.

The controls change the scenario, never the model's code (:func:`dashboard_scenario`):

>>> scenario = dashboard_scenario("spiral", margin_rule="ewma_vol", leverage_scale=0.5, shock_scale=2.0)
>>> scenario.margin.rule, scenario.agents[1].leverage.high, scenario.shocks[0].size
('ewma_vol', 12.5, -0.08)

It needs the ``dash`` extra (Mesa's visualisation: solara, and ``solara-assets`` so that the page's
scripts and styles come from the installed packages, never from the internet).
"""

from __future__ import annotations

import html
import json
import math
import os
from collections.abc import Mapping
from functools import cache
from typing import Any

import numpy as np
import pandas as pd
import solara
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from mesa.visualization import SolaraViz

from abm import config as scenario_config
from abm.assembly import liquidations_table
from abm.dash_command import OVERRIDES_ENVIRONMENT, SCENARIO_ENVIRONMENT
from abm.headline import measure_of
from abm.model import MarketModel
from abm.plots import instrument_names, plot_cascade, plot_instrument_prices, plot_margin, plot_price
from abm.recorder import DEPTH_BUCKET_WIDTH, DEPTH_BUCKETS

__all__ = [
    "PANELS",
    "DashboardModel",
    "Page",
    "dashboard_scenario",
    "margin_choices",
    "model_parameters",
]

SCENARIO_OWN_RULE = "the scenario's own"
# The rules offered besides the scenario's own: the policy comparison's, calibrated to ask the same
# margin in calm times (one source of truth: scenarios/policy_comparison.yaml).
_RULES_SWEEP = "policy_comparison"
_KEPT_MARGIN_SETTINGS = ("call_buffer", "review_every")
_PANEL_SIZE = (5.0, 3.4)
_PANEL_DPI = 80


@cache
def margin_choices() -> dict[str, dict[str, Any]]:
    """The margin rules the dashboard offers, by label: each a whole ``margin:`` section.

    >>> list(margin_choices())[:3]
    ['fixed', 'tiered', 'ewma_vol']
    """
    from abm.sweep.spec import load_sweep

    plan = load_sweep(scenario_config.resolve_scenario(_RULES_SWEEP))
    return {point.labels["margin"]: point.values["margin"] for point in plan.points}


def _scaled_leverage(leverage: dict[str, Any], scale: float, ceiling: float) -> dict[str, Any]:
    # Every figure of the distribution that is a leverage (not sigma), scaled and kept in [1, ceiling].
    scaled = dict(leverage)
    for key in ("value", "low", "high", "median", "cap"):
        if scaled.get(key) is not None:
            scaled[key] = min(max(float(scaled[key]) * scale, 1.0), ceiling)
    if scaled.get("distribution") == "lognormal" and ceiling < 100.0:
        scaled["cap"] = min(scaled.get("cap") or ceiling, ceiling)
    return scaled


def _scaled_shock(shock: dict[str, Any], scale: float) -> dict[str, Any]:
    scaled = dict(shock)
    if shock["type"] in ("fundamental_jump", "index_misprint"):
        scaled["size"] = min(max(float(shock["size"]) * scale, -0.99), 10.0)
    elif shock["type"] == "market_order":
        scaled["quantity"] = max(int(round(shock["quantity"] * scale)), 1)
    return scaled


def dashboard_scenario(
    scenario: Any = "spiral",
    margin_rule: str = SCENARIO_OWN_RULE,
    leverage_scale: float = 1.0,
    shock_scale: float = 1.0,
) -> scenario_config.Scenario:
    """The scenario the dashboard runs: ``scenario`` with its controls applied.

    Args:
        scenario: A scenario name, path, mapping or Scenario.
        margin_rule: A label of :func:`margin_choices` (every instrument gets that ``margin:``
            section, keeping the scenario's ``call_buffer`` and ``review_every``), or the scenario's own.
        leverage_scale: Multiplies every leveraged-trader group's leverage figures, clipped to 1x and to
            1 / the initial margin rate where the rule's rate is known before the run (the most the
            exchange lets a trader open with), else to 100x.
        shock_scale: Multiplies the size of every fundamental jump and index misprint (clipped to
            -99%) and the lots of every sell or buy program; 0 keeps the shocks' timing, at their
            smallest.

    Returns:
        The validated scenario.
    """
    base = scenario if isinstance(scenario, scenario_config.Scenario) else _load(scenario)
    data = base.model_dump(mode="json", exclude_unset=True)
    if margin_rule != SCENARIO_OWN_RULE:
        choices = margin_choices()
        if margin_rule not in choices:
            raise ValueError(f"margin_rule: {margin_rule!r} is not one of {', '.join(choices)}")
        if data.get("instruments"):
            for instrument in data["instruments"]:
                instrument["margin"] = _swapped(instrument.get("margin", {}), choices[margin_rule])
        else:
            data["margin"] = _swapped(data.get("margin", {}), choices[margin_rule])
    data["shocks"] = [_scaled_shock(shock, shock_scale) for shock in data.get("shocks", [])]
    ruled = scenario_config.scenario_from_dict(data)  # the rule chosen, the leverage as it was
    for index, group in enumerate(data["agents"]):
        if group["kind"] == "leveraged_trader" and "leverage" in group:
            # The most the exchange lets these traders open with (the schema refuses more), else the
            # schema's 100x bound.
            limit = ruled.leverage_limit(ruled.agents[index])
            ceiling = 100.0 if limit is None else min(limit, 100.0)
            group["leverage"] = _scaled_leverage(group["leverage"], leverage_scale, ceiling)
    return scenario_config.scenario_from_dict(data)


def _swapped(own: Mapping[str, Any], chosen: Mapping[str, Any]) -> dict[str, Any]:
    # The chosen rule, with the scenario's own margin-call buffer and review schedule: the exchange's
    # settings around the rule stay as the scenario has them, so that only the rule differs.
    kept = {key: own[key] for key in _KEPT_MARGIN_SETTINGS if key in own and key not in chosen}
    return {**chosen, **kept}


def _load(scenario: Any) -> scenario_config.Scenario:
    if isinstance(scenario, Mapping):
        return scenario_config.scenario_from_dict(scenario)
    return scenario_config.load_scenario(scenario_config.resolve_scenario(scenario))


class DashboardModel(MarketModel):
    """The market model with the dashboard's controls as keyword arguments (what SolaraViz resets with)."""

    def __init__(
        self,
        base_scenario: Any = "spiral",
        margin_rule: str = SCENARIO_OWN_RULE,
        leverage_scale: float = 1.0,
        shock_scale: float = 1.0,
        rng: Any = None,
    ) -> None:
        # Not `scenario`: on Reset, SolaraViz passes a Mesa Scenario to a model that takes `scenario`.
        super().__init__(dashboard_scenario(base_scenario, margin_rule, leverage_scale, shock_scale), rng=rng)
        own = ", ".join(sorted({str(policy.config.rule) for policy in self.checker.policies}))
        self.margin_rule_label = own if margin_rule == SCENARIO_OWN_RULE else margin_rule


def model_parameters(scenario: Any) -> dict[str, Any]:
    """SolaraViz's ``model_params``: the scenario and seed fixed, the three controls adjustable."""
    loaded = scenario if isinstance(scenario, scenario_config.Scenario) else _load(scenario)
    return {
        "base_scenario": loaded,
        "rng": loaded.seed,
        "margin_rule": {
            "type": "Select",
            "label": "Margin rule",
            "value": SCENARIO_OWN_RULE,
            "values": [SCENARIO_OWN_RULE, *margin_choices()],
        },
        "leverage_scale": {
            "type": "SliderFloat",
            "label": "Leverage (x the scenario's)",
            "value": 1.0,
            "min": 0.25,
            "max": 2.0,
            "step": 0.05,
        },
        "shock_scale": {
            "type": "SliderFloat",
            "label": "Shock size (x the scenario's)",
            "value": 1.0,
            "min": 0.0,
            "max": 3.0,
            "step": 0.1,
        },
    }


# ---------------------------------------------------------------------------------------------- panels


def _axes(count: int = 1, height_ratios: tuple[float, ...] = (2, 1)):
    figure = Figure(figsize=_PANEL_SIZE, dpi=_PANEL_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    if count == 1:
        return figure.subplots()
    return figure.subplots(count, 1, sharex=True, gridspec_kw={"height_ratios": list(height_ratios)})


def _shown(figure: Figure):
    return solara.FigureMatplotlib(figure, format="png")


def _timeseries(model: MarketModel) -> pd.DataFrame:
    return model.recorder.to_frame()


def price_panel(model: MarketModel):
    """Price, mark and index (every instrument's mark when there are several), liquidated notional below."""
    timeseries = _timeseries(model)
    names = instrument_names(timeseries)
    if len(names) > 1:
        return _shown(plot_instrument_prices(timeseries, model.config.shocks, ax=_axes(2)))
    return _shown(plot_price(timeseries, model.config.shocks, ax=_axes(2)))


def depth_panel(model: MarketModel):
    """The first instrument's book now: resting lots by distance from the mid, bids left, asks right."""
    axes = _axes()
    recorder = model.recorder
    step = model.steps - 1
    if recorder.rows:
        row = recorder.depth_profile[recorder.rows - len(recorder.instruments)]
        edges = np.arange(-DEPTH_BUCKETS, DEPTH_BUCKETS + 1) * DEPTH_BUCKET_WIDTH * 100.0
        colours = ["tab:green"] * DEPTH_BUCKETS + ["tab:red"] * DEPTH_BUCKETS
        axes.bar(edges[:-1], row, width=np.diff(edges), align="edge", color=colours)
    axes.axvline(0.0, color="0.3", linewidth=0.8)
    axes.set_xlabel("distance from mid (%)")
    axes.set_ylabel("resting lots")
    axes.set_title(f"Book depth of {model.markets[0].name} at step {max(step, 0)}")
    return _shown(axes.figure)


def liquidations_panel(model: MarketModel):
    """Liquidations per step (every instrument)."""
    axes = _axes()
    timeseries = _timeseries(model)
    per_step = timeseries.groupby("step", sort=True)["liquidations"].sum()
    axes.fill_between(
        per_step.index.to_numpy(), per_step.to_numpy(dtype=float), step="mid", color="tab:orange"
    )
    axes.set_xlabel("step")
    axes.set_ylabel("liquidations")
    axes.set_title(f"Liquidations per step: {int(per_step.sum())} so far")
    return _shown(axes.figure)


def margin_panel(model: MarketModel):
    """The margin rates in force; the insurance fund and cumulative bad debt below."""
    return _shown(plot_margin(_timeseries(model), ax=_axes(2)))


def cascade_panel(model: MarketModel):
    """The liquidation cascade DAG so far (x: step and round; rows: the accounts)."""
    liquidations = liquidations_table(model.liquidator.liquidations, model.ledger)
    return _shown(plot_cascade(liquidations, ax=_axes()))


def headline_panel(model: MarketModel):
    """The headline figures so far, with their units."""
    tracker = model.headline
    figures = {
        "liquidations": tracker.liquidations,
        "liquidated_notional": tracker.liquidated_notional,
        "cascade_depth": tracker.cascade_depth,
        "max_drawdown": tracker.max_drawdown,
        "bad_debt": model.recorder.latest("bad_debt") if model.recorder.rows else 0.0,
        "insurance_fund_min": tracker.insurance_fund_min,
    }
    rows = []
    for name, value in figures.items():
        shown = f"{value:,.4g}" if isinstance(value, float) and math.isfinite(value) else f"{value:,}"
        measure = measure_of(name)
        rows.append(f"<tr><td>{name}</td><td>{shown}</td><td>{measure.unit if measure else 'cash'}</td></tr>")
    # Plain HTML, not solara.Markdown: that loads KaTeX from a CDN, and the page must work offline.
    return solara.HTML(
        tag="div",
        unsafe_innerHTML=(
            f"<p><b>{html.escape(model.config.name)}</b>: {model.steps} of {model.horizon} steps, "
            f"margin rule {html.escape(getattr(model, 'margin_rule_label', ''))}</p>"
            "<table><tr><th>measure</th><th>so far</th><th>unit</th></tr>" + "".join(rows) + "</table>"
        ),
    )


# Every panel, in page order (the test checks each renders).
PANELS = (price_panel, depth_panel, liquidations_panel, margin_panel, cascade_panel, headline_panel)


@solara.component
def Page():
    """The page solara serves: one model per browser session, of the scenario ``abm dash`` named."""
    scenario = os.environ.get(SCENARIO_ENVIRONMENT, "spiral")
    overrides = os.environ.get(OVERRIDES_ENVIRONMENT, "[]")
    parameters = solara.use_memo(
        lambda: model_parameters(
            scenario_config.load_scenario(scenario_config.resolve_scenario(scenario), json.loads(overrides))
        ),
        [scenario, overrides],
    )
    model = solara.use_memo(
        lambda: DashboardModel(parameters["base_scenario"], rng=parameters["rng"]), [scenario]
    )
    SolaraViz(
        model,
        components=[(panel, 0) for panel in PANELS],
        model_params=parameters,
        name=f"abm: {parameters['base_scenario'].name}",
        play_interval=50,
        render_interval=5,  # Mesa's slider moves in odd steps (1, 3, 5, ...)
    )
