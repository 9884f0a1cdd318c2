"""Scenario schema: the strict pydantic (v2) models of a scenario file's sections.

Every section rejects unknown keys and numbers written as text, and ``.inf`` / ``.nan``. The
margin section's models live in :mod:`abm.margin.settings`. Reading files and turning
validation errors into messages is done by :mod:`abm.config.reading` and :mod:`abm.config.loading`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from abm.book import fast_engine_available
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
    book_engine: Literal["python", "fast"] = Field(
        default="python",
        description="Order book engine: pure Python, or numba-compiled (extra 'fast'); same results.",
    )

    @field_validator("book_engine")
    @classmethod
    def _engine_installed(cls, engine: str) -> str:
        if engine == "fast" and not fast_engine_available():
            raise ValueError("'fast' needs numba: pip install -e '.[fast]', or use book_engine: python")
        return engine

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


class ValueFundGroup(_GroupBase):
    """Leveraged value investors with a leverage cap (Thurner, Farmer and Geanakoplos 2012).

    Each fund wants leverage ``aggression x max(log(V / p), 0)`` (long only), capped at ``max_leverage``,
    on its current equity; it trades toward that position with market orders every time it acts.
    ``aggression_high`` spreads the funds' aggression evenly from ``aggression`` to it (TFG: 5 to 50).
    """

    kind: Literal["value_fund"]
    arrival_rate: Fraction = 1.0
    aggression: float = Field(default=20.0, gt=0.0, description="Leverage per unit log mispricing.")
    aggression_high: float | None = Field(
        default=None, gt=0.0, description="Spread aggression evenly up to this value across the group."
    )
    max_leverage: float = Field(default=5.0, ge=1.0, description="The fund's leverage cap.")
    adjustment: float = Field(
        default=1.0,
        gt=0.0,
        le=1.0,
        description="Share of the gap to the target closed per action; above the cap it cuts at once.",
    )
    min_trade: int = Field(default=1, ge=1, description="Smallest rebalancing order (lots).")
    reentry_steps: int | None = Field(
        default=None, ge=1, description="Steps after a liquidation before fresh capital restores it."
    )
    payout_above: PositiveFloat | None = Field(
        default=None, description="Equity above this is paid out to the fund's investors."
    )


class AR1NoiseGroup(_GroupBase):
    """Noise demand whose log follows an AR(1) (Thurner, Farmer and Geanakoplos 2012).

    ``x_t = rho x_{t-1} + sigma eps_t``; the target position is ``scale x (exp(x_t) - 1)`` lots. The
    paper's demand is in cash (``exp(x) / p`` shares); a demand in lots keeps the book's lagged clearing
    from oscillating when the price impact is strong (see docs/validation.md).
    """

    kind: Literal["ar1_noise"]
    collateral: PositiveFloat = 100_000_000.0
    arrival_rate: Fraction = 1.0
    rho: float = Field(default=0.99, ge=0.0, lt=1.0, description="AR(1) coefficient of log demand.")
    sigma: float = Field(default=0.035, ge=0.0, le=1.0, description="AR(1) innovation sd per step.")
    scale: int = Field(default=1_000, ge=1, description="Lots demanded at the long-run demand per unit.")


AgentGroup = Annotated[
    LeveragedTraderGroup
    | MarketMakerGroup
    | NoiseTraderGroup
    | FundamentalistGroup
    | ValueFundGroup
    | AR1NoiseGroup,
    Field(discriminator="kind"),
]
AGENT_KINDS = ("leveraged_trader", "market_maker", "noise", "fundamentalist", "value_fund", "ar1_noise")


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

TRIGGER_CONDITIONS = ("mark_below", "mark_above", "drawdown_above", "volatility_above")


class ShockTrigger(_Strict):
    """A condition that fires a shock the first time it holds (checked at the start of each step).

    Exactly one condition is given. Prices are the mark at the end of the previous step; the
    drawdown is the fall of that mark from its running peak, as a fraction of the peak; the
    volatility is the realised per-step volatility of the mark over ``market.vol_window``.
    """

    mark_below: PositiveFloat | None = Field(default=None, description="Fire when the mark < this.")
    mark_above: PositiveFloat | None = Field(default=None, description="Fire when the mark > this.")
    drawdown_above: float | None = Field(
        default=None, gt=0.0, lt=1.0, description="Fire when the mark is this fraction below its peak."
    )
    volatility_above: PositiveFloat | None = Field(
        default=None, description="Fire when the realised per-step volatility exceeds this."
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> ShockTrigger:
        given = [name for name in TRIGGER_CONDITIONS if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(
                f"give exactly one condition ({', '.join(TRIGGER_CONDITIONS)}); got {len(given)}"
            )
        return self

    @property
    def condition(self) -> tuple[str, float]:
        """The condition's name and threshold."""
        for name in TRIGGER_CONDITIONS:
            value = getattr(self, name)
            if value is not None:
                return name, float(value)
        raise AssertionError("validated trigger without a condition")  # unreachable after validation


class _ShockBase(_Strict):
    step: int | None = Field(
        default=None,
        ge=0,
        description="Step at which the shock starts; with `when`, the first step the condition is checked.",
    )
    when: ShockTrigger | None = Field(
        default=None, description="Fire the first time this condition holds (from `step`, default 0)."
    )

    @model_validator(mode="after")
    def _step_or_condition(self) -> _ShockBase:
        if self.step is None:
            if self.when is None:
                raise ValueError("give a `step`, or a `when` condition, or both")
            self.step = 0  # armed from the start of the run
        return self

    @property
    def active_steps(self) -> int | None:
        """Steps the shock acts once started (None: until its own work is done or the run ends)."""
        return 1


class _LastingShock(_ShockBase):
    over_steps: int = Field(default=1, ge=1, description="Steps the shock lasts once started.")

    @property
    def active_steps(self) -> int | None:
        """Steps the shock acts once started."""
        return self.over_steps


class FundamentalJump(_ShockBase):
    """The fundamental (and with it the index) jumps by a fraction (-0.1 is a 10% fall)."""

    type: Literal["fundamental_jump"]
    size: float = Field(gt=-1.0, le=10.0)


class FundamentalRegime(_LastingShock):
    """Drift and / or volatility of the fundamental replaced for ``over_steps`` steps.

    Under an ``ou`` process the long-run level moves with the drift, so a drift regime is a repricing
    spread over time (as a jump is one at once) rather than a gap the process reverts from.
    """

    type: Literal["regime"]
    drift: float | None = Field(default=None, ge=-0.1, le=0.1, description="Per-step log drift.")
    volatility: float | None = Field(default=None, ge=0.0, le=0.2, description="Per-step log sigma.")

    @model_validator(mode="after")
    def _something_changes(self) -> FundamentalRegime:
        if self.drift is None and self.volatility is None:
            raise ValueError("a regime sets drift, volatility or both")
        return self


class MarketOrderShock(_ShockBase):
    """An exogenous sell (or buy) program of ``quantity`` lots.

    All at once (``over_steps: 1``), evenly over ``over_steps`` steps (TWAP), or, with ``volume_share``,
    each step a share of the previous step's traded volume until ``quantity`` lots are done (within
    ``over_steps`` steps when given, else by the end of the run).
    """

    type: Literal["market_order"]
    side: Literal["buy", "sell"] = "sell"
    quantity: int = Field(ge=1)
    over_steps: int | None = Field(default=None, ge=1, description="TWAP length; default 1 (all at once).")
    volume_share: float | None = Field(
        default=None, gt=0.0, le=1.0, description="Trade this share of the previous step's volume."
    )
    min_lots: int = Field(default=1, ge=1, description="Volume share: lots traded in a step at least.")

    @model_validator(mode="after")
    def _default_length(self) -> MarketOrderShock:
        if self.over_steps is None and self.volume_share is None:
            self.over_steps = 1
        return self

    @property
    def active_steps(self) -> int | None:
        """TWAP steps, or the cap on a volume-share program's length (None: until done)."""
        return self.over_steps


class LiquidityWithdrawal(_LastingShock):
    """Market makers pull a share of their depth and / or widen their quotes, then come back.

    Full strength for ``over_steps`` steps, then the withdrawal fades linearly to nothing over
    ``recovery_steps`` steps (the book's resiliency; 0: the makers return at once).
    """

    type: Literal["liquidity_withdrawal"]
    share: Fraction = Field(default=0.0, description="Share of every maker's depth withheld.")
    spread_factor: float = Field(
        default=1.0, ge=1.0, le=100.0, description="Makers' half spread and level spacing times this."
    )
    recovery_steps: int = Field(default=0, ge=0, description="Steps to return to normal afterwards.")

    @model_validator(mode="after")
    def _something_changes(self) -> LiquidityWithdrawal:
        if self.share == 0.0 and self.spread_factor == 1.0:
            raise ValueError("a liquidity withdrawal sets share > 0, spread_factor > 1, or both")
        return self

    @property
    def active_steps(self) -> int | None:
        """Full-strength steps plus recovery steps."""
        return self.over_steps + self.recovery_steps


class MarginChange(_ShockBase):
    """The exchange decrees new margin rates (a hike), effective ``notice_steps`` after it is announced.

    Either ``factor`` (the base rates in force times this, capped at 1) or both ``initial`` and
    ``maintenance`` (new base-bracket rates). Applies to held positions too.
    """

    type: Literal["margin_change"]
    factor: float | None = Field(default=None, gt=0.0, le=100.0)
    initial: float | None = Field(default=None, gt=0.0, le=1.0)
    maintenance: float | None = Field(default=None, gt=0.0, le=1.0)
    notice_steps: int = Field(default=0, ge=0, description="0: in force at once (no notice).")

    @model_validator(mode="after")
    def _rates(self) -> MarginChange:
        absolute = (self.initial, self.maintenance)
        if self.factor is not None:
            if any(rate is not None for rate in absolute):
                raise ValueError("give factor, or initial and maintenance, not both")
        elif any(rate is None for rate in absolute):
            raise ValueError("give factor, or both initial and maintenance")
        elif self.maintenance > self.initial:
            raise ValueError("maintenance must not exceed initial")
        return self


class CollateralHaircut(_ShockBase):
    """Collateral held in a volatile asset loses a fraction of its value (money leaves the system)."""

    type: Literal["collateral_haircut"]
    size: float = Field(gt=0.0, lt=1.0, description="Share of (positive) collateral value lost.")
    kinds: list[
        Literal["leveraged_trader", "market_maker", "noise", "fundamentalist", "value_fund", "ar1_noise"]
    ] = Field(default_factory=lambda: ["leveraged_trader"], min_length=1, description="Agent kinds hit.")


class FundingSpike(_LastingShock):
    """A funding-rate spike: each step longs pay shorts ``rate`` x notional at the mark (< 0: shorts pay)."""

    type: Literal["funding_spike"]
    rate: float = Field(ge=-0.1, le=0.1, description="Per-step rate on notional at the mark.")


class StaleIndex(_LastingShock):
    """The oracle index stops updating for ``over_steps`` steps (it holds its last published value)."""

    type: Literal["stale_index"]


class IndexMisprint(_LastingShock):
    """The oracle index prints ``size`` away from the fundamental (-0.1: 10% low) for ``over_steps`` steps."""

    type: Literal["index_misprint"]
    size: float = Field(gt=-1.0, le=10.0)


class TraderInflow(_LastingShock):
    """New leveraged traders join (crowding), ``traders.count`` of them spread evenly over ``over_steps``.

    ``traders`` is a leveraged-trader group (``kind`` may be left out). With ``initial_position: true``
    each newcomer's position is booked at the mark against the fully funded counterparty (as at the
    start of a run); with false, each newcomer buys (or sells) its position with a market order.
    """

    type: Literal["trader_inflow"]
    traders: LeveragedTraderGroup

    @model_validator(mode="before")
    @classmethod
    def _default_kind(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("traders"), dict):
            data = {**data, "traders": {"kind": "leveraged_trader", **data["traders"]}}
        return data


class TraderOutflow(_ShockBase):
    """Some leveraged traders take money out: their leverage rises (the margin they leave is thinner).

    A random ``share`` of the leveraged traders with a position each withdraw ``fraction`` of their free
    collateral (equity above the initial requirement, at most their cash).
    """

    type: Literal["trader_outflow"]
    share: float = Field(gt=0.0, le=1.0, description="Share of leveraged traders that withdraw.")
    fraction: float = Field(gt=0.0, le=1.0, description="Share of their free collateral withdrawn.")


Shock = Annotated[
    FundamentalJump
    | MarketOrderShock
    | FundamentalRegime
    | LiquidityWithdrawal
    | MarginChange
    | CollateralHaircut
    | FundingSpike
    | StaleIndex
    | IndexMisprint
    | TraderInflow
    | TraderOutflow,
    Field(discriminator="type"),
]
SHOCK_TYPES = (
    "fundamental_jump",
    "market_order",
    "regime",
    "liquidity_withdrawal",
    "margin_change",
    "collateral_haircut",
    "funding_spike",
    "stale_index",
    "index_misprint",
    "trader_inflow",
    "trader_outflow",
)


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
