"""Scenario schema: the strict pydantic (v2) models of a scenario file's sections.

Every section rejects unknown keys and numbers written as text, and ``.inf`` / ``.nan``. The sections
live in their own modules (:mod:`~abm.config.market`, :mod:`~abm.config.agents`,
:mod:`~abm.config.shocks`, :mod:`~abm.config.liquidation`; the margin section in
:mod:`abm.margin.settings`); this module holds the top-level :class:`Scenario` and its cross-section
checks, and re-exports every section model. Reading files and turning validation errors into messages
is done by :mod:`abm.config.reading` and :mod:`abm.config.loading`.
"""

from __future__ import annotations

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from abm.config.agents import (
    AGENT_KINDS,
    AgentGroup,
    AR1NoiseGroup,
    FundamentalistGroup,
    LeverageDistribution,
    LeveragedTraderGroup,
    MarginCallReaction,
    MarketMakerGroup,
    NoiseTraderGroup,
    ValueFundGroup,
)
from abm.config.common import Fraction, PositiveFloat, Strict
from abm.config.liquidation import LiquidationConfig
from abm.config.market import FundamentalConfig, MarketConfig, MarkPriceConfig
from abm.config.shocks import (
    SHOCK_TYPES,
    TRIGGER_CONDITIONS,
    CollateralHaircut,
    FundamentalJump,
    FundamentalRegime,
    FundingSpike,
    IndexMisprint,
    LiquidityWithdrawal,
    MarginChange,
    MarketOrderShock,
    Shock,
    ShockTrigger,
    StaleIndex,
    TraderInflow,
    TraderOutflow,
)
from abm.margin.settings import FixedMargin, MarginConfig, max_initial_rate

__all__ = [
    "AGENT_KINDS",
    "SHOCK_TYPES",
    "TRIGGER_CONDITIONS",
    "AR1NoiseGroup",
    "AgentGroup",
    "CollateralHaircut",
    "Fraction",
    "FundamentalConfig",
    "FundamentalJump",
    "FundamentalRegime",
    "FundingSpike",
    "IndexMisprint",
    "LiquidityWithdrawal",
    "MarginChange",
    "ShockTrigger",
    "StaleIndex",
    "TraderInflow",
    "TraderOutflow",
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
    "ValueFundGroup",
    "PositiveFloat",
    "Scenario",
    "Shock",
    "Strict",
]


class Scenario(Strict):
    """A complete, validated scenario."""

    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    steps: int = Field(default=1_000, ge=1, le=10_000_000)
    seed: int = Field(default=0, ge=0)
    market: MarketConfig = Field(default_factory=MarketConfig)
    fundamental: FundamentalConfig = Field(default_factory=FundamentalConfig)
    agents: list[AgentGroup] = Field(default_factory=list)
    margin: MarginConfig = Field(default_factory=lambda: FixedMargin(rule="fixed"))
    liquidation: LiquidationConfig = Field(default_factory=LiquidationConfig)
    shocks: list[Shock] = Field(default_factory=list)

    @model_validator(mode="after")
    def _cross_checks(self) -> Scenario:
        # PydanticCustomError with a `path` in its context: the loader reports the error at that
        # dotted path (and its line) instead of at the top level where this validator runs.
        for i, shock in enumerate(self.shocks):
            if shock.step >= self.steps:
                raise PydanticCustomError(
                    "scenario_cross_check",
                    "step {step} is beyond the horizon: steps is {steps}, so shocks must fall in 0..{last}",
                    {
                        "path": f"shocks.{i}.step",
                        "step": shock.step,
                        "steps": self.steps,
                        "last": self.steps - 1,
                    },
                )
        initial = max_initial_rate(self.margin)
        if initial is not None:
            # Traders joining through a trader_inflow shock meet the same leverage limit as the groups.
            groups = [(f"agents.{i}", group) for i, group in enumerate(self.agents)]
            groups += [
                (f"shocks.{i}.traders", shock.traders)
                for i, shock in enumerate(self.shocks)
                if isinstance(shock, TraderInflow)
            ]
            for where, group in groups:
                if isinstance(group, LeveragedTraderGroup):
                    top = group.leverage.upper_bound
                    if top > 1.0 / initial + 1e-9:
                        limit = f"{1.0 / initial:g}"
                        if top == float("inf"):
                            message = (
                                "lognormal leverage without a cap: "
                                "set cap to at most {limit}x (1 / initial margin)"
                            )
                        else:
                            message = (
                                "leverage can reach {top}x, above 1 / initial margin = {limit}x "
                                "(lower the leverage or the initial margin rate)"
                            )
                        raise PydanticCustomError(
                            "scenario_cross_check",
                            message,
                            {"path": f"{where}.leverage", "top": f"{top:g}", "limit": limit},
                        )
        return self
