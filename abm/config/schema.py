"""Scenario schema: the strict pydantic (v2) models of a scenario file's sections.

Every section rejects unknown keys and numbers written as text, and ``.inf`` / ``.nan``. The
margin section's models live in :mod:`abm.margin.settings`. Reading files and turning
validation errors into messages is done by :mod:`abm.config.reading` and :mod:`abm.config.loading`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from abm.margin.settings import FixedMargin, MarginConfig, max_initial_rate

__all__ = [
    "AGENT_KINDS",
    "SHOCK_TYPES",
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
    "Shock",
]


class _Strict(BaseModel):
    """Base for every section: unknown keys rejected, no silent type coercion."""

    # allow_inf_nan=False: `.inf` or `.nan` in a file is a typo, never a meaningful setting.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=False, allow_inf_nan=False)


Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
PositiveFloat = Annotated[float, Field(gt=0.0)]


# --------------------------------------------------------------------------- market


class MarkPriceConfig(_Strict):
    """How the exchange's mark price is formed."""

    source: Literal["last", "mid", "index", "index_ema_basis"] = "mid"
    ema_steps: int = Field(default=30, ge=1, description="EMA span of the basis (index_ema_basis).")


class MarketConfig(_Strict):
    """The traded future and its book."""

    tick_size: PositiveFloat = 0.01
    initial_price: PositiveFloat = 100.0
    contract_size: PositiveFloat = Field(default=1.0, description="Units of underlying per lot.")
    mark_price: MarkPriceConfig = Field(default_factory=MarkPriceConfig)
    vol_window: int = Field(default=60, ge=2, description="Steps in the realised-volatility window.")

    @model_validator(mode="before")
    @classmethod
    def _mark_price_shorthand(cls, data: Any) -> Any:
        # `mark_price: mid` is accepted as shorthand for `mark_price: {source: mid}`.
        if isinstance(data, dict) and isinstance(data.get("mark_price"), str):
            data = {**data, "mark_price": {"source": data["mark_price"]}}
        return data


class FundamentalConfig(_Strict):
    """The fundamental value (the external spot index) process, in log terms per step."""

    process: Literal["gbm", "ou", "constant"] = "gbm"
    volatility: float = Field(default=0.0005, ge=0.0, le=0.2, description="Per-step log sigma.")
    drift: float = Field(default=0.0, ge=-0.1, le=0.1, description="Per-step log drift.")
    mean_reversion: float = Field(default=0.01, ge=0.0, le=1.0, description="OU speed per step.")
    long_run: float | None = Field(default=None, gt=0.0, description="OU level; default initial.")
    initial: float | None = Field(default=None, gt=0.0, description="Default market.initial_price.")


# --------------------------------------------------------------------------- agents


class LeverageDistribution(_Strict):
    """Distribution of traders' target leverage (notional / equity)."""

    distribution: Literal["fixed", "uniform", "lognormal"] = "uniform"
    value: float | None = Field(default=None, ge=1.0, description="For fixed.")
    low: float | None = Field(default=None, ge=1.0, description="For uniform.")
    high: float | None = Field(default=None, ge=1.0, description="For uniform.")
    median: float | None = Field(default=None, ge=1.0, description="For lognormal.")
    sigma: float | None = Field(default=None, gt=0.0, description="For lognormal (log sd).")
    cap: float | None = Field(default=None, ge=1.0, description="Upper clip for lognormal.")

    @model_validator(mode="after")
    def _check_parameters(self) -> LeverageDistribution:
        needed = {"fixed": ("value",), "uniform": ("low", "high"), "lognormal": ("median", "sigma")}
        missing = [p for p in needed[self.distribution] if getattr(self, p) is None]
        if missing:
            raise ValueError(f"distribution '{self.distribution}' needs {', '.join(missing)}")
        if self.distribution == "uniform" and self.low > self.high:
            raise ValueError("low must not exceed high")
        return self

    @property
    def upper_bound(self) -> float:
        """Largest leverage the distribution can draw (inf for an uncapped lognormal)."""
        if self.distribution == "fixed":
            return float(self.value)
        if self.distribution == "uniform":
            return float(self.high)
        return float(self.cap) if self.cap is not None else float("inf")


class MarginCallReaction(_Strict):
    """Probabilities of a trader's reaction to a margin call; they must sum to 1."""

    top_up: Fraction = 0.3
    reduce: Fraction = 0.3
    ignore: Fraction = 0.4

    @model_validator(mode="after")
    def _sum_to_one(self) -> MarginCallReaction:
        total = self.top_up + self.reduce + self.ignore
        if abs(total - 1.0) > 1e-9:
            raise ValueError(f"top_up + reduce + ignore must sum to 1 (got {total:g})")
        return self


class _GroupBase(_Strict):
    count: int = Field(ge=0, le=10_000_000)
    collateral: PositiveFloat = Field(default=1_000.0, description="Initial collateral per agent.")
    arrival_rate: Fraction = Field(default=0.1, description="Probability of acting in a step.")
    label: str | None = Field(default=None, description="Name of the group in outputs.")


class LeveragedTraderGroup(_GroupBase):
    """Leveraged position takers, the accounts whose liquidation makes the spiral."""

    kind: Literal["leveraged_trader"]
    side: Literal["long", "short", "mixed"] = "long"
    long_share: Fraction = Field(default=0.5, description="Share of longs when side is mixed.")
    leverage: LeverageDistribution = Field(
        default_factory=lambda: LeverageDistribution(distribution="uniform", low=2.0, high=10.0)
    )
    initial_position: bool = Field(
        default=True,
        description="Start at the target position (opposite side held by the counterparty "
        "account) instead of building it through the book.",
    )
    strategy: Literal["hold", "momentum", "value", "random"] = "hold"
    lookback: int = Field(default=20, ge=1, description="Momentum lookback in steps.")
    threshold: float = Field(default=0.002, ge=0.0, description="Signal threshold (momentum/value).")
    reentry_rate: Fraction = Field(default=0.0, description="Chance per step to re-enter when flat.")
    reserves: float = Field(default=0.0, ge=0.0, description="Off-exchange cash for top-ups.")
    margin_call: MarginCallReaction = Field(default_factory=MarginCallReaction)


class MarketMakerGroup(_GroupBase):
    """Market makers quoting a depth profile around the mid (or last price)."""

    kind: Literal["market_maker"]
    collateral: PositiveFloat = 1_000_000.0
    arrival_rate: Fraction = 1.0
    levels: int = Field(default=10, ge=1, le=500)
    half_spread_ticks: int = Field(default=2, ge=1)
    level_spacing_ticks: int = Field(default=2, ge=1)
    level_size: int = Field(default=5, ge=1, description="Lots at the first level.")
    size_growth: float = Field(default=0.0, ge=0.0, description="Size at level k: size*(1+g*k).")
    inventory_limit: int = Field(default=500, ge=1)
    skew_ticks: float = Field(default=0.0, ge=0.0, description="Quote shift per lot of inventory.")
    anchor_weight: Fraction = Field(
        default=0.0, description="Weight of the index in the quote reference (0: pure mid)."
    )
    vol_baseline: float = Field(default=0.0005, gt=0.0, description="Calm per-step volatility.")
    vol_widen: float = Field(default=1.0, ge=0.0, description="Spread x (1 + w (vol/base - 1)).")
    vol_pull_ratio: float = Field(default=5.0, gt=0.0, description="Vol/base ratio to pull depth.")
    pull_fraction: Fraction = Field(default=0.5, description="Share of depth pulled in stress.")


class NoiseTraderGroup(_GroupBase):
    """Uninformed traders: random side, market or limit orders near the touch."""

    kind: Literal["noise"]
    collateral: PositiveFloat = 100_000.0
    min_size: int = Field(default=1, ge=1)
    max_size: int = Field(default=5, ge=1)
    market_order_share: Fraction = 0.3
    max_offset_ticks: int = Field(default=10, ge=0)
    max_position: int = Field(default=200, ge=1)

    @model_validator(mode="after")
    def _sizes(self) -> NoiseTraderGroup:
        if self.min_size > self.max_size:
            raise ValueError("min_size must not exceed max_size")
        return self


class FundamentalistGroup(_GroupBase):
    """Value traders buying below and selling above the fundamental value."""

    kind: Literal["fundamentalist"]
    collateral: PositiveFloat = 100_000.0
    aggression: float = Field(default=200.0, gt=0.0, description="Lots per unit log mispricing.")
    threshold: float = Field(default=0.001, ge=0.0, description="Ignore smaller mispricing.")
    max_order: int = Field(default=20, ge=1)
    max_position: int = Field(default=500, ge=1)
    market_order_share: Fraction = 0.5


AgentGroup = Annotated[
    LeveragedTraderGroup | MarketMakerGroup | NoiseTraderGroup | FundamentalistGroup,
    Field(discriminator="kind"),
]
AGENT_KINDS = ("leveraged_trader", "market_maker", "noise", "fundamentalist")


# --------------------------------------------------------------------------- liquidation


class LiquidationConfig(_Strict):
    """How breaching accounts are closed and who pays for what is left."""

    enabled: bool = True
    mode: Literal["full", "partial"] = "full"
    target_ratio: float = Field(
        default=1.5, gt=1.0, description="Partial: equity / maintenance after the cut."
    )
    fee: float = Field(default=0.005, ge=0.0, le=0.1, description="Share of liquidated notional.")
    max_rounds: int = Field(default=50, ge=1, le=10_000)
    max_lots_per_round: int | None = Field(default=None, ge=1, description="Speed limit.")
    insurance_fund: float = Field(default=0.0, ge=0.0, description="Initial insurance fund.")
    price_limit: Literal["none", "bankruptcy"] = Field(
        default="none", description="bankruptcy: liquidation orders stop at the bankruptcy price."
    )
    adl: bool = Field(default=True, description="Auto-deleverage when the fund is empty.")


# --------------------------------------------------------------------------- shocks


class _ShockBase(_Strict):
    step: int = Field(ge=0)


class FundamentalJump(_ShockBase):
    """The fundamental / index jumps by a fraction (-0.1 is a 10% fall)."""

    type: Literal["fundamental_jump"]
    size: float = Field(gt=-1.0, le=10.0)


class MarketOrderShock(_ShockBase):
    """An exogenous sell (or buy) program of `quantity` lots, spread over `over_steps`."""

    type: Literal["market_order"]
    side: Literal["buy", "sell"] = "sell"
    quantity: int = Field(ge=1)
    over_steps: int = Field(default=1, ge=1)


Shock = Annotated[FundamentalJump | MarketOrderShock, Field(discriminator="type")]
SHOCK_TYPES = ("fundamental_jump", "market_order")


# --------------------------------------------------------------------------- scenario


class Scenario(_Strict):
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
            for i, group in enumerate(self.agents):
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
                            {"path": f"agents.{i}.leverage", "top": f"{top:g}", "limit": limit},
                        )
        return self
