"""Margin settings: the pydantic schema of the scenario's ``margin:`` section.

Each built-in rule has its own model, selected by ``rule``; a user rule is named by a dotted
import path (``package.module:ClassName``) with its own ``params``. The rules themselves live
in the sibling modules of this package.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

from abm.registry import Registry, literal_name, union_of

__all__ = [
    "ApcConfig",
    "BUILTIN_RULES",
    "CustomMargin",
    "DynamicLeverageMargin",
    "EwmaVolMargin",
    "ExpectedShortfallMargin",
    "FixedMargin",
    "HistoricalVarMargin",
    "MarginConfig",
    "MarginTier",
    "RULE_SETTINGS",
    "TieredMargin",
    "max_initial_rate",
    "rule_settings",
]


class _Strict(BaseModel):
    # allow_inf_nan=False: `.inf` or `.nan` in a file is a typo, never a meaningful setting.
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


Fraction = Annotated[float, Field(ge=0.0, le=1.0)]

# The built-in rules' settings by rule name; the rule classes are registered in abm.margin.rules.
RULE_SETTINGS: Registry[type[BaseModel]] = Registry("margin rule")


def rule_settings(model: type[BaseModel]) -> type[BaseModel]:
    """Register a built-in rule's settings model under its ``rule`` Literal."""
    RULE_SETTINGS.add(literal_name(model, "rule"), model)
    return model


class ApcConfig(_Strict):
    """Anti-procyclicality tools wrapped around any margin rule (all optional)."""

    buffer: Fraction | None = Field(default=None, description="Buffer share built in calm.")
    release_ratio: float = Field(
        default=2.0, gt=1.0, description="Short/long vol ratio above which the buffer is released."
    )
    rebuild_after: int = Field(
        default=0, ge=0, description="Steps a released buffer stays released after the last stress reading."
    )
    buffer_on: Literal["both", "initial"] = Field(
        default="both", description="Rates the buffer is added to: both, or the initial rate only."
    )
    stressed_weight: Fraction | None = None
    stressed_volatility: float | None = Field(
        default=None, gt=0.0, description="Per-step sigma of the stressed period."
    )
    floor_lookback: int | None = Field(default=None, ge=2)
    speed_limit: float | None = Field(default=None, gt=0.0, description="Max relative change/review.")
    notice_steps: int = Field(default=0, ge=0)


class _MarginBase(_Strict):
    review_every: int = Field(default=1, ge=1)
    call_buffer: float = Field(default=0.2, ge=0.0, le=10.0)
    apc: ApcConfig | None = None


@rule_settings
class FixedMargin(_MarginBase):
    """Constant initial and maintenance rates."""

    rule: Literal["fixed"]
    initial: float = Field(default=0.10, gt=0.0, le=1.0)
    maintenance: float = Field(default=0.05, gt=0.0, le=1.0)

    @model_validator(mode="after")
    def _maintenance_below_initial(self) -> FixedMargin:
        if self.maintenance >= self.initial:
            raise ValueError(f"maintenance ({self.maintenance:g}) must be below initial ({self.initial:g})")
        return self


class MarginTier(_Strict):
    """One bracket of a tiered schedule, from `notional_floor` up to the next tier's floor."""

    notional_floor: float = Field(ge=0.0)
    initial: float = Field(gt=0.0, le=1.0)
    maintenance: float = Field(gt=0.0, le=1.0)

    @model_validator(mode="after")
    def _maintenance_below_initial(self) -> MarginTier:
        if self.maintenance >= self.initial:
            raise ValueError("maintenance must be below initial")
        return self


@rule_settings
class TieredMargin(_MarginBase):
    """Rates by position notional, as crypto exchanges publish them."""

    rule: Literal["tiered"]
    tiers: list[MarginTier] = Field(min_length=1)

    @model_validator(mode="after")
    def _tiers_ordered(self) -> TieredMargin:
        floors = [t.notional_floor for t in self.tiers]
        if floors[0] != 0.0:
            raise ValueError("the first tier must start at notional_floor 0")
        if any(b <= a for a, b in zip(floors, floors[1:], strict=False)):
            raise ValueError("tiers must have strictly increasing notional_floor")
        return self


class _RiskBased(_MarginBase):
    confidence: float = Field(default=0.99, gt=0.5, lt=1.0)
    horizon: int = Field(default=10, ge=1, description="Margin period of risk in steps.")
    floor: float = Field(default=0.01, gt=0.0, le=1.0)
    cap: float = Field(default=0.5, gt=0.0, le=1.0)
    initial_multiple: float = Field(default=1.5, gt=1.0, le=10.0)
    min_observations: int = Field(default=30, ge=2)

    @model_validator(mode="after")
    def _floor_below_cap(self) -> _RiskBased:
        if self.floor > self.cap:
            raise ValueError("floor must not exceed cap")
        return self


@rule_settings
class EwmaVolMargin(_RiskBased):
    """Maintenance = z(confidence) x EWMA sigma x sqrt(horizon)."""

    rule: Literal["ewma_vol"]
    decay: float = Field(default=0.94, gt=0.0, lt=1.0)
    initial_sigma: float | None = Field(default=None, gt=0.0)


@rule_settings
class HistoricalVarMargin(_RiskBased):
    """Maintenance = historical VaR of horizon returns over a lookback window."""

    rule: Literal["historical_var"]
    lookback: int = Field(default=500, ge=10)


@rule_settings
class ExpectedShortfallMargin(_RiskBased):
    """Maintenance = historical Expected Shortfall of horizon returns over a lookback."""

    rule: Literal["expected_shortfall"]
    lookback: int = Field(default=500, ge=10)
    confidence: float = Field(default=0.975, gt=0.5, lt=1.0)


@rule_settings
class DynamicLeverageMargin(_MarginBase):
    """A maximum leverage that falls as volatility rises."""

    rule: Literal["dynamic_leverage"]
    max_leverage: float = Field(default=20.0, gt=1.0)
    min_leverage: float = Field(default=2.0, ge=1.0)
    base_volatility: float = Field(default=0.0005, gt=0.0, description="Per-step sigma.")
    decay: float = Field(default=0.94, gt=0.0, lt=1.0)
    maintenance_fraction: float = Field(default=0.5, gt=0.0, lt=1.0)
    apply_to: Literal["new", "all"] = "all"

    @model_validator(mode="after")
    def _min_below_max(self) -> DynamicLeverageMargin:
        if self.min_leverage > self.max_leverage:
            raise ValueError("min_leverage must not exceed max_leverage")
        return self


class CustomMargin(_MarginBase):
    """A user rule named by a dotted import path, ``package.module:ClassName``."""

    rule: str = Field(pattern=r"^[A-Za-z_][\w.]*[:.][A-Za-z_]\w*$")
    params: dict[str, Any] = Field(default_factory=dict)


BUILTIN_RULES = RULE_SETTINGS.names()


def _margin_tag(value: Any) -> str | None:
    rule = value.get("rule") if isinstance(value, dict) else getattr(value, "rule", None)
    if not isinstance(rule, str):
        return None
    if rule in BUILTIN_RULES:
        return rule
    if ":" in rule or "." in rule:
        return "custom"
    return None


# Every built-in rule's settings, tagged by name, and the user rule: `rule` picks one (derived).
MarginConfig = Annotated[
    union_of(
        [
            *(Annotated[model, Tag(name)] for name, model in RULE_SETTINGS.items()),
            Annotated[CustomMargin, Tag("custom")],
        ]
    ),
    Discriminator(
        _margin_tag,
        custom_error_type="unknown_margin_rule",
        custom_error_message="unknown margin rule; use one of "
        + ", ".join(BUILTIN_RULES)
        + " or a dotted path 'package.module:ClassName'",
    ),
]


def max_initial_rate(margin: Any) -> float | None:
    """Lowest initial-margin rate a rule can ask for, when it is known before the run.

    It bounds the leverage a trader may open with; None for rules whose rates move.
    """
    if isinstance(margin, FixedMargin):
        return margin.initial
    if isinstance(margin, TieredMargin):
        return margin.tiers[0].initial
    return None
