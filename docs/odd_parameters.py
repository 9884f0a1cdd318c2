"""Generate the parameter tables of docs/ODD.md from the scenario schema (pydantic models).

Usage::

    python docs/odd_parameters.py           # rewrite the tables in docs/ODD.md
    python docs/odd_parameters.py --check   # exit 1 when docs/ODD.md is out of date

The tables sit between the ``<!-- parameters:start -->`` and ``<!-- parameters:end -->`` markers; the
rest of the document is written by hand. ``tests/validation/test_odd_document.py`` runs the check.
"""

from __future__ import annotations

import argparse
import sys
import types
import typing
from pathlib import Path

import annotated_types
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from abm.config import schema
from abm.config.agents import AGENT_KINDS, ActivityFeedback, Comeback, Holding, TradingTime
from abm.config.collateral import CollateralAsset, VolatilityHaircut
from abm.config.market import FundingConfig, IndexConfig, MarketOrderProtection
from abm.margin import portfolio_settings, settings

ODD_PATH = Path(__file__).with_name("ODD.md")
START = "<!-- parameters:start -->"
END = "<!-- parameters:end -->"

# (heading, model, dotted prefix in a scenario file); agent kinds and margin rules come from their registries.
SECTIONS: list[tuple[str, type[BaseModel], str]] = [
    ("Scenario (top level)", schema.Scenario, ""),
    ("Market", schema.MarketConfig, "market."),
    ("Mark price", schema.MarkPriceConfig, "market.mark_price."),
    ("Perpetual funding", FundingConfig, "market.funding."),
    ("Index from spot venues", IndexConfig, "market.index."),
    ("Market orders with protection", MarketOrderProtection, "market.market_order_protection."),
    ("Fundamental value (index)", schema.FundamentalConfig, "fundamental."),
    ("Instrument (several instruments)", schema.InstrumentConfig, "instruments[i]."),
    *((f"Agents: {name}", kind.settings, "agents[i].") for name, kind in AGENT_KINDS.items()),
    ("Agents: leverage distribution", schema.LeverageDistribution, "agents[i].leverage."),
    ("Agents: margin-call reaction", schema.MarginCallReaction, "agents[i].margin_call."),
    ("Agents: comeback of liquidated traders", Comeback, "agents[i].comeback."),
    ("Agents: arrivals that follow volatility", ActivityFeedback, "agents[i].activity."),
    ("Agents: arrivals in trading time", TradingTime, "trading_time."),
    ("Agents: portfolio holding", Holding, "agents[i].portfolio[j]."),
    ("Liquidation", schema.LiquidationConfig, "liquidation."),
    *((f"Margin: {name}", model, "margin.") for name, model in settings.RULE_SETTINGS.items()),
    ("Margin: tier", settings.MarginTier, "margin.tiers[i]."),
    ("Margin: user rule", settings.CustomMargin, "margin."),
    ("Margin: anti-procyclicality tools", settings.ApcConfig, "margin.apc."),
    *(
        (f"Portfolio margin: {name}", model, "portfolio_margin.")
        for name, model in portfolio_settings.PORTFOLIO_RULE_SETTINGS.items()
    ),
    (
        "Portfolio margin: SPAN combined commodity",
        portfolio_settings.CombinedCommodity,
        "portfolio_margin.combined_commodities[i].",
    ),
    (
        "Portfolio margin: SPAN tier of a combined commodity",
        portfolio_settings.SpreadTier,
        "portfolio_margin.combined_commodities[i].tiers[j].",
    ),
    (
        "Portfolio margin: SPAN tier spread",
        portfolio_settings.TierSpread,
        "portfolio_margin.combined_commodities[i].tier_spreads[j].",
    ),
    (
        "Portfolio margin: SPAN spread credit",
        portfolio_settings.SpreadCredit,
        "portfolio_margin.spread_credits[i].",
    ),
    (
        "Portfolio margin: SPAN scan ranges from volatility",
        portfolio_settings.ScanRangeScaling,
        "portfolio_margin.volatility_scaling.",
    ),
    ("Portfolio margin: stress window", portfolio_settings.StressWindow, "portfolio_margin.stress_window."),
    ("Collateral asset", CollateralAsset, "collateral_assets[i]."),
    ("Collateral asset: volatility haircut", VolatilityHaircut, "collateral_assets[i].volatility_haircut."),
]


def _shock_sections() -> list[tuple[str, type[BaseModel], str]]:
    """One section per shock type, read from the ``Shock`` union (whatever types it holds)."""
    union = typing.get_args(schema.Shock)[0]
    sections = []
    for model in typing.get_args(union):
        literal = model.model_fields["type"].annotation
        name = typing.get_args(literal)[0]
        sections.append((f"Shock: {name}", model, "shocks[i]."))
    trigger = getattr(schema, "ShockTrigger", None)
    if trigger is not None:
        sections.append(("Shock trigger", trigger, "shocks[i].when."))
    return sections


def _type_name(annotation) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _type_name(typing.get_args(annotation)[0])
    if origin is typing.Literal:
        return " \\| ".join(f"`{value}`" for value in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        parts = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        optional = len(parts) < len(typing.get_args(annotation))
        text = " or ".join(_type_name(part) for part in parts)
        return f"{text} or null" if optional else text
    if origin in (list, tuple):
        args = typing.get_args(annotation)
        return f"list of {_type_name(args[0])}" if args else "list"
    if origin is dict:
        return "mapping"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"`{annotation.__name__}`"
    return getattr(annotation, "__name__", str(annotation))


def _range(field) -> str:
    bounds = []
    for item in field.metadata:
        for attribute, symbol in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            value = getattr(item, attribute, None)
            if value is not None and isinstance(
                item, annotated_types.Ge | annotated_types.Gt | annotated_types.Le | annotated_types.Lt
            ):
                bounds.append(f"{symbol} {value:g}" if isinstance(value, float) else f"{symbol} {value}")
        if isinstance(item, annotated_types.MinLen):
            bounds.append(f"length >= {item.min_length}")
        if isinstance(item, annotated_types.MaxLen):
            bounds.append(f"length <= {item.max_length}")
    return ", ".join(bounds)


def _default(field) -> str:
    if field.default is not PydanticUndefined:
        value = field.default
        if value is None:
            return "null"
        if isinstance(value, bool):
            return str(value).lower()
        if isinstance(value, float):
            return f"{value:g}"
        return f"`{value}`" if isinstance(value, str) else str(value)
    if field.default_factory is not None:
        made = field.default_factory()
        if isinstance(made, BaseModel):
            return "see its section"
        return "empty" if made in ([], {}) else str(made)
    return "required"


def _describe(model: type[BaseModel]) -> str:
    doc = (model.__doc__ or "").strip().split("\n\n")[0]
    return " ".join(line.strip() for line in doc.splitlines())


def parameter_tables() -> str:
    """The markdown of every parameter table."""
    lines = []
    for heading, model, prefix in SECTIONS + _shock_sections():
        lines.append(f"#### {heading}")
        lines.append("")
        description = _describe(model)
        if description:
            lines.append(description)
            lines.append("")
        lines.append("| parameter | type | default | range | meaning |")
        lines.append("| --- | --- | --- | --- | --- |")
        for name, field in model.model_fields.items():
            meaning = (field.description or "").replace("|", "\\|")
            lines.append(
                f"| `{prefix}{name}` | {_type_name(field.annotation)} | {_default(field)} | "
                f"{_range(field)} | {meaning} |"
            )
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def render(document: str) -> str:
    """``document`` with the text between the markers replaced by the current tables."""
    head, start, rest = document.partition(START)
    _, end, tail = rest.partition(END)
    if not start or not end:
        raise ValueError(f"{ODD_PATH.name} lacks the markers {START} ... {END}")
    return f"{head}{START}\n\n{parameter_tables()}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    """Rewrite (or with ``--check`` only check) the parameter tables of docs/ODD.md."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="only check that docs/ODD.md is up to date")
    options = parser.parse_args(argv)
    current = ODD_PATH.read_text(encoding="utf-8")
    updated = render(current)
    if options.check:
        if updated != current:
            print(f"{ODD_PATH} is out of date: run python docs/odd_parameters.py", file=sys.stderr)
            return 1
        return 0
    ODD_PATH.write_text(updated, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
