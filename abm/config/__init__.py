"""Scenario schema (pydantic v2) and loading.

A scenario file is YAML with the top-level sections ``name``, ``description``, ``steps``,
``seed``, ``market``, ``fundamental``, ``agents``, ``margin``, ``liquidation`` and ``shocks``.
Every section is a strict pydantic model: unknown keys are rejected, numbers written as text
are rejected, and every error names the field by its dotted path (``agents.1.count``).

Use :func:`load_scenario` to read a file, :func:`scenario_from_dict` for plain mappings, and
:func:`apply_overrides` for the ``--set dotted.key=value`` overrides of the command line.

The package is split into :mod:`~abm.config.schema` (the models), :mod:`~abm.config.reading`
(safe YAML reading, size and alias limits, overrides) and :mod:`~abm.config.loading` (validation
messages and the load functions); everything public is re-exported here. ``SCENARIOS_DIR`` is
read from this package when a name is looked up, so setting ``abm.config.SCENARIOS_DIR`` takes
effect; the reading limits (``MAX_FILE_BYTES`` ...) are read from :mod:`abm.config.reading`.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

from abm.config.agents import ActivityFeedback, TradingTime
from abm.config.loading import (
    available_scenarios,
    available_sweeps,
    check_user_rules,
    is_sweep_file,
    load_scenario,
    resolve_scenario,
    scenario_from_dict,
    scenario_hash,
)
from abm.config.market import MarketOrderProtection
from abm.config.reading import (
    MAX_ALIASES,
    MAX_EXPANDED_NODES,
    MAX_FILE_BYTES,
    ScenarioError,
    apply_overrides,
    read_yaml_mapping,
)
from abm.config.schema import (
    AGENT_KINDS,
    LIQUIDATION_DESIGNS,
    SHOCK_TYPES,
    TRIGGER_CONDITIONS,
    AgentGroup,
    CollateralHaircut,
    Fraction,
    FundamentalConfig,
    FundamentalistGroup,
    FundamentalJump,
    FundamentalRegime,
    FundingSpike,
    IndexMisprint,
    LeverageDistribution,
    LeveragedTraderGroup,
    LiquidationConfig,
    LiquidityWithdrawal,
    MarginCallReaction,
    MarginChange,
    MarginConfig,
    MarketConfig,
    MarketMakerGroup,
    MarketOrderShock,
    MarkPriceConfig,
    NoiseTraderGroup,
    PositiveFloat,
    Scenario,
    Shock,
    ShockTrigger,
    StaleIndex,
    TraderInflow,
    TraderOutflow,
    VenueFault,
)

__all__ = [
    "AGENT_KINDS",
    "LIQUIDATION_DESIGNS",
    "MAX_ALIASES",
    "MAX_EXPANDED_NODES",
    "MAX_FILE_BYTES",
    "SCENARIOS_DIR",
    "SHOCK_TYPES",
    "TRIGGER_CONDITIONS",
    "ActivityFeedback",
    "TradingTime",
    "MarketOrderProtection",
    "ShockTrigger",
    "FundamentalRegime",
    "LiquidityWithdrawal",
    "MarginChange",
    "CollateralHaircut",
    "FundingSpike",
    "StaleIndex",
    "IndexMisprint",
    "TraderInflow",
    "TraderOutflow",
    "VenueFault",
    "AgentGroup",
    "Fraction",
    "FundamentalConfig",
    "FundamentalJump",
    "FundamentalistGroup",
    "LeverageDistribution",
    "LeveragedTraderGroup",
    "LiquidationConfig",
    "MarginCallReaction",
    "MarginConfig",
    "MarkPriceConfig",
    "MarketConfig",
    "MarketMakerGroup",
    "MarketOrderShock",
    "NoiseTraderGroup",
    "PositiveFloat",
    "Scenario",
    "ScenarioError",
    "Shock",
    "apply_overrides",
    "available_scenarios",
    "available_sweeps",
    "check_user_rules",
    "is_sweep_file",
    "load_scenario",
    "read_yaml_mapping",
    "resolve_scenario",
    "scenario_from_dict",
    "scenario_hash",
]


def _shipped_scenarios() -> Path:
    """The folder of the shipped scenarios: the package ``abm.scenarios``.

    ``pyproject.toml`` maps the repository's top-level ``scenarios/`` into the wheel as that package, so an
    installed copy (editable or not) finds its scenarios wherever it runs from. A source tree used without
    installing it (``PYTHONPATH=.``) has no such package: its ``scenarios/`` is beside ``abm/``.
    """
    try:
        # Wheels are installed unpacked, so the resource is a real folder (no zip import to extract from).
        return Path(str(importlib.resources.files("abm.scenarios")))
    except ModuleNotFoundError:
        return Path(__file__).resolve().parent.parent.parent / "scenarios"


SCENARIOS_DIR = _shipped_scenarios()
