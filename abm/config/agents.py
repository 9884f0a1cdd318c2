"""Scenario schema of the agents: one group model per agent kind, registered in :data:`AGENT_KINDS`.

Adding an agent kind touches two files: a group model here, decorated with ``@agent_kind("module:Class")``
(its ``kind`` Literal is the name a scenario uses), and the agent class in :mod:`abm.agents`. Everything
else (the schema's choices, the account kinds of the ledger, the docs' tables, the conformance tests)
is derived from the registry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, Field, model_validator

from abm.config.common import (
    MAX_AGENTS,
    MAX_LEVERAGE,
    MAX_ORDER_LOTS,
    MAX_TICKS,
    Fraction,
    Lots,
    Money,
    PositiveMoney,
    StepCount,
    Strict,
)
from abm.registry import Registry, registering, union_of

__all__ = [
    "AGENT_KINDS",
    "ActivityFeedback",
    "Holding",
    "AR1NoiseGroup",
    "AgentGroup",
    "AgentKind",
    "BasisArbitrageurGroup",
    "Comeback",
    "FundamentalistGroup",
    "LeverageDistribution",
    "MetaorderGroup",
    "LeveragedTraderGroup",
    "MarginCallReaction",
    "MarketMakerGroup",
    "NoiseTraderGroup",
    "SwitchingGroup",
    "TradingTime",
    "ValueFundGroup",
    "agent_kind",
]


@dataclass(frozen=True)
class AgentKind:
    """A registered agent kind.

    Attributes:
        name: The ``kind`` a scenario's group gives.
        settings: The group's pydantic model.
        agent: ``module:Class`` of the Mesa agent (imported by :mod:`abm.agents`).
    """

    name: str
    settings: type[BaseModel]
    agent: str


AGENT_KINDS: Registry[AgentKind] = Registry("agent kind")


def agent_kind(agent: str):
    """Register a group model under its ``kind`` Literal, with the ``module:Class`` of its agent."""
    return registering(AGENT_KINDS, "kind", lambda name, model: AgentKind(name, model, agent))


class LeverageDistribution(Strict):
    """Distribution of traders' target leverage (notional / equity)."""

    distribution: Literal["fixed", "uniform", "lognormal"] = "uniform"
    value: float | None = Field(default=None, ge=1.0, le=MAX_LEVERAGE, description="For fixed.")
    low: float | None = Field(default=None, ge=1.0, le=MAX_LEVERAGE, description="For uniform.")
    high: float | None = Field(default=None, ge=1.0, le=MAX_LEVERAGE, description="For uniform.")
    median: float | None = Field(default=None, ge=1.0, le=MAX_LEVERAGE, description="For lognormal.")
    sigma: float | None = Field(default=None, gt=0.0, le=10.0, description="For lognormal (log sd).")
    cap: float | None = Field(default=None, ge=1.0, le=MAX_LEVERAGE, description="Upper clip for lognormal.")

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


class MarginCallReaction(Strict):
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


class Comeback(Strict):
    """Liquidated traders come back: after ``delay`` steps, topped up from a reserve, at their leverage."""

    delay: StepCount = Field(default=100, description="Steps from a liquidation to the trader's return.")
    share: Fraction = Field(default=1.0, description="Chance that a liquidated trader comes back.")
    collateral: PositiveMoney | None = Field(
        default=None, description="Equity a returning account is topped up to (default: its opening one)."
    )
    reserve: Money | None = Field(
        default=None, description="Money the group's returns may draw in all (default: no limit)."
    )
    max_returns: int = Field(default=1_000, ge=1, le=1_000_000, description="Returns per account at most.")
    spread: int = Field(
        default=0, ge=0, le=100_000, description="Each return waits delay + a uniform 0..spread-1 more steps."
    )
    order: Literal["limit", "market"] = Field(
        default="limit",
        description="How a returning trader re-opens: a bid (ask) at the touch, or a market order.",
    )


class ActivityFeedback(Strict):
    """Arrivals that follow volatility: a self-exciting order flow (after Hawkes; abm.activity).

    Before the agents act, each step the group's arrival rate is ``arrival_rate x m``, at most 1, with
    ``m = clip(1 + sensitivity x (v / b - 1), min_multiplier, max_multiplier)``: ``v`` is the mean of
    exponential averages of the group's market's |log mark return| over ``horizons`` steps, ``b`` the
    same return's average over the run so far (its last ``baseline_steps`` steps once that many).
    """

    sensitivity: float = Field(ge=0.0, le=100.0, description="How strongly the rate follows v / b.")
    horizons: list[StepCount] = Field(
        default=[5, 20, 100], min_length=1, max_length=10, description="Steps of the short averages."
    )
    baseline_steps: StepCount = Field(default=5_000, description="Steps of the long average at most.")
    min_multiplier: float = Field(default=0.5, ge=0.0, le=1.0, description="Lowest factor on the rate.")
    max_multiplier: float = Field(default=1.5, ge=1.0, le=1_000.0, description="Highest factor on the rate.")


_COLLATERAL_ASSET = (
    "The collateral asset (a name in collateral_assets) the collateral is posted in "
    "(default: cash in the settlement currency)."
)


class _GroupBase(Strict):
    count: int = Field(ge=0, le=MAX_AGENTS)
    collateral: PositiveMoney = Field(default=1_000.0, description="Initial collateral per agent.")
    arrival_rate: Fraction = Field(default=0.1, description="Probability of acting in a step.")
    activity: ActivityFeedback | None = Field(
        default=None, description="Arrival rate that follows the market's volatility (none: constant)."
    )
    label: str | None = Field(default=None, description="Name of the group in outputs.")
    instruments: list[str] | None = Field(
        default=None,
        min_length=1,
        description="Instruments the group trades (default: every instrument; its agents act in each).",
    )

    # Kinds whose agents trade one instrument only (the first listed, or the scenario's first).
    single_instrument: ClassVar[bool] = False


class Holding(Strict):
    """One position of a leveraged trader's portfolio: where, how much of the leverage, which way."""

    instrument: str = Field(description="The instrument's name.")
    weight: float = Field(default=1.0, ge=0.0, le=1e6, description="Share of the leverage (normalised).")
    side: Literal["long", "short"] | None = Field(
        default=None, description="long or short; default the trader's own side (drawn from `side`)."
    )


@agent_kind("abm.agents.leveraged:LeveragedTrader")
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
    lookback: StepCount = Field(default=20, description="Momentum lookback in steps.")
    threshold: float = Field(default=0.002, ge=0.0, le=10.0, description="Signal threshold (momentum/value).")
    reentry_rate: Fraction = Field(default=0.0, description="Chance per step to re-enter when flat.")
    reserves: Money = Field(default=0.0, description="Off-exchange cash for top-ups.")
    margin_call: MarginCallReaction = Field(default_factory=MarginCallReaction)
    comeback: Comeback | None = Field(
        default=None, description="Liquidated traders re-enter after a delay (default: they stay out)."
    )
    portfolio: list[Holding] | None = Field(
        default=None,
        min_length=1,
        description="Positions in several instruments (default: one, in the first instrument, on `side`).",
    )
    collateral_asset: str | None = Field(default=None, description=_COLLATERAL_ASSET)
    margin_mode: Literal["isolated", "cross", "portfolio"] = Field(
        default="cross",
        description="isolated: each position has its own collateral slice and is liquidated alone; "
        "cross: the account's equity against the sum of its maintenance; portfolio: the portfolio rule.",
    )

    @model_validator(mode="after")
    def _portfolio_weights(self) -> LeveragedTraderGroup:
        if self.portfolio is not None:
            if sum(holding.weight for holding in self.portfolio) <= 0.0:
                raise ValueError("portfolio weights are all zero: give at least one positive weight")
            names = [holding.instrument for holding in self.portfolio]
            if len(set(names)) != len(names):
                raise ValueError("portfolio names an instrument twice: give one holding per instrument")
        return self

    def holdings(self, first_instrument: str) -> list[Holding]:
        """The portfolio; else equal weights in the group's ``instruments``; else one in ``first_instrument``.

        A holding without a side is on the trader's own side.
        """
        if self.portfolio is not None:
            return list(self.portfolio)
        names = self.instruments or [first_instrument]
        return [Holding(instrument=name) for name in names]


@agent_kind("abm.agents.makers:MarketMaker")
class MarketMakerGroup(_GroupBase):
    """Market makers quoting a depth profile around the mid (or last price)."""

    kind: Literal["market_maker"]
    collateral: PositiveMoney = 1_000_000.0
    arrival_rate: Fraction = 1.0
    levels: int = Field(default=10, ge=1, le=500)
    half_spread_ticks: int = Field(default=2, ge=1, le=MAX_TICKS)
    level_spacing_ticks: int = Field(default=2, ge=1, le=MAX_TICKS)
    level_size: Lots = Field(default=5, description="Lots at the first level.")
    size_growth: float = Field(default=0.0, ge=0.0, le=100.0, description="Size at level k: size*(1+g*k).")
    inventory_limit: Lots = 500
    skew_ticks: float = Field(
        default=0.0, ge=0.0, le=1_000.0, description="Quote shift per lot of inventory."
    )
    anchor_weight: Fraction = Field(
        default=0.0, description="Weight of the index in the quote reference (0: pure mid)."
    )
    vol_baseline: float = Field(default=0.0005, gt=0.0, le=1.0, description="Calm per-step volatility.")
    vol_widen: float = Field(default=1.0, ge=0.0, le=1_000.0, description="Spread x (1 + w (vol/base - 1)).")
    vol_pull_ratio: float = Field(default=5.0, gt=0.0, le=1e6, description="Vol/base ratio to pull depth.")
    pull_fraction: Fraction = Field(default=0.5, description="Share of depth pulled in stress.")
    keep_queue_priority: bool = Field(
        default=False,
        description=(
            "Requote only the levels that moved: an order still resting in full at its level's new "
            "price and size keeps its place in the queue (false: cancel every quote, then the ladder)."
        ),
    )

    @model_validator(mode="after")
    def _no_activity(self) -> MarketMakerGroup:
        if self.activity is not None:
            raise ValueError("market makers quote every step: activity applies to the other kinds only")
        return self

    @model_validator(mode="after")
    def _ladder_within_order_limit(self) -> MarketMakerGroup:
        deepest = self.level_size * (1.0 + self.size_growth * (self.levels - 1))
        if deepest > MAX_ORDER_LOTS:
            raise ValueError(
                f"the deepest level would quote {deepest:.3g} lots (level_size x (1 + size_growth x "
                f"(levels - 1))): at most {MAX_ORDER_LOTS:,} per order; lower level_size or size_growth"
            )
        return self


@agent_kind("abm.agents.noise:NoiseTrader")
class NoiseTraderGroup(_GroupBase):
    """Uninformed traders: random side, market or limit orders near the touch."""

    kind: Literal["noise"]
    collateral: PositiveMoney = 100_000.0
    min_size: Lots = 1
    max_size: Lots = 5
    market_order_share: Fraction = 0.3
    max_offset_ticks: int = Field(default=10, ge=0, le=MAX_TICKS)
    max_position: Lots = 200

    @model_validator(mode="after")
    def _sizes(self) -> NoiseTraderGroup:
        if self.min_size > self.max_size:
            raise ValueError("min_size must not exceed max_size")
        return self


@agent_kind("abm.agents.fundamentalists:Fundamentalist")
class FundamentalistGroup(_GroupBase):
    """Value traders buying below and selling above the fundamental value."""

    kind: Literal["fundamentalist"]
    collateral: PositiveMoney = 100_000.0
    aggression: float = Field(default=200.0, gt=0.0, le=1e12, description="Lots per unit log mispricing.")
    threshold: float = Field(default=0.001, ge=0.0, le=10.0, description="Ignore smaller mispricing.")
    max_order: Lots = 20
    max_position: Lots = 500
    market_order_share: Fraction = 0.5


@agent_kind("abm.agents.tfg:ValueFund")
class ValueFundGroup(_GroupBase):
    """Leveraged value investors with a leverage cap (Thurner, Farmer and Geanakoplos 2012).

    Each fund wants leverage ``aggression x max(log(V / p), 0)`` (long only), capped at ``max_leverage``,
    on its current equity; it trades toward that position with market orders every time it acts.
    ``aggression_high`` spreads the funds' aggression evenly from ``aggression`` to it (TFG: 5 to 50).
    """

    kind: Literal["value_fund"]
    single_instrument: ClassVar[bool] = True
    arrival_rate: Fraction = 1.0
    aggression: float = Field(default=20.0, gt=0.0, le=1e6, description="Leverage per unit log mispricing.")
    aggression_high: float | None = Field(
        default=None,
        gt=0.0,
        le=1e6,
        description="Spread aggression evenly up to this value across the group.",
    )
    max_leverage: float = Field(default=5.0, ge=1.0, le=MAX_LEVERAGE, description="The fund's leverage cap.")
    adjustment: float = Field(
        default=1.0,
        gt=0.0,
        le=1.0,
        description="Share of the gap to the target closed per action; above the cap it cuts at once.",
    )
    min_trade: Lots = Field(default=1, description="Smallest rebalancing order (lots).")
    reentry_steps: StepCount | None = Field(
        default=None, description="Steps after a liquidation before fresh capital restores it."
    )
    payout_above: PositiveMoney | None = Field(
        default=None, description="Equity above this is paid out to the fund's investors."
    )


@agent_kind("abm.agents.tfg:AR1NoiseTrader")
class AR1NoiseGroup(_GroupBase):
    """Noise demand whose log follows an AR(1) (Thurner, Farmer and Geanakoplos 2012).

    ``x_t = rho x_{t-1} + sigma eps_t``; the target position is ``scale x (exp(x_t) - 1)`` lots. The
    paper's demand is in cash (``exp(x) / p`` shares); a demand in lots keeps the book's lagged clearing
    from oscillating when the price impact is strong (see docs/validation.md).
    """

    kind: Literal["ar1_noise"]
    single_instrument: ClassVar[bool] = True
    collateral: PositiveMoney = 100_000_000.0
    arrival_rate: Fraction = 1.0
    rho: float = Field(default=0.99, ge=0.0, lt=1.0, description="AR(1) coefficient of log demand.")
    sigma: float = Field(default=0.035, ge=0.0, le=1.0, description="AR(1) innovation sd per step.")
    scale: Lots = Field(default=1_000, description="Lots demanded at the long-run demand per unit.")


@agent_kind("abm.agents.arbitrageurs:BasisArbitrageur")
class BasisArbitrageurGroup(_GroupBase):
    """Cash-and-carry traders: the perpetual against a spot hedge held on another venue.

    An arbitrageur buys the perpetual when its mid is ``entry_basis`` or more below the index (and
    sells it that far above), ``max_order`` lots at a time up to ``leverage`` x its equity here, hedging
    every lot at once on spot at the index, off this exchange's ledger; it unwinds once the basis is
    back within ``exit_basis``. Only the perpetual leg is margined: on a call it tops up from
    ``reserves``, else cuts to what its equity carries.
    """

    kind: Literal["basis_arbitrageur"]
    single_instrument: ClassVar[bool] = True
    collateral: PositiveMoney = 100_000.0
    arrival_rate: Fraction = 1.0
    entry_basis: float = Field(
        default=0.005, gt=0.0, le=1.0, description="|mid / index - 1| at which it enters (its costs)."
    )
    exit_basis: float = Field(
        default=0.001, ge=0.0, le=1.0, description="|mid / index - 1| at which it unwinds."
    )
    leverage: float = Field(
        default=5.0, ge=1.0, le=MAX_LEVERAGE, description="Most notional per unit of its equity here."
    )
    max_order: Lots = Field(default=50, description="Most lots per step, entering or unwinding.")
    reserves: Money = Field(default=0.0, description="Cash off the exchange for margin calls.")
    collateral_asset: str | None = Field(default=None, description=_COLLATERAL_ASSET)

    @model_validator(mode="after")
    def _exit_inside_entry(self) -> BasisArbitrageurGroup:
        if self.exit_basis >= self.entry_basis:
            raise ValueError(
                f"exit_basis ({self.exit_basis}) must be below entry_basis ({self.entry_basis}): it unwinds "
                "once the basis has closed"
            )
        return self


@agent_kind("abm.agents.metaorders:MetaorderTrader")
class MetaorderGroup(_GroupBase):
    """Traders who split large orders: order signs with long memory (Lillo, Mike and Farmer 2005).

    Each works one metaorder at a time, ``child_size`` lots by market order each step it acts; a
    metaorder's length (child orders) has a Pareto tail of exponent ``tail_exponent`` from
    ``min_length``, capped at ``max_length``; its side leans against the trader's position. The signs'
    autocorrelation decays as ``lag ** -(tail_exponent - 1)``.
    """

    kind: Literal["metaorder"]
    single_instrument: ClassVar[bool] = True
    collateral: PositiveMoney = 100_000.0
    arrival_rate: Fraction = 0.2
    child_size: Lots = Field(default=5, ge=1, description="Lots of each child market order.")
    tail_exponent: float = Field(
        default=1.5,
        gt=1.0,
        le=3.0,
        description="Pareto tail of metaorder lengths (1.5: sign ACF ~ lag^-0.5).",
    )
    min_length: int = Field(default=1, ge=1, le=1_000_000, description="Shortest metaorder (child orders).")
    max_length: int = Field(
        default=10_000, ge=1, le=10_000_000, description="Longest metaorder (child orders)."
    )
    max_position: Lots = 2_000

    @model_validator(mode="after")
    def _lengths_in_order(self) -> MetaorderGroup:
        if self.max_length < self.min_length:
            raise ValueError(
                f"max_length ({self.max_length}) must be at least min_length ({self.min_length})"
            )
        return self


@agent_kind("abm.agents.switching:SwitchingTrader")
class SwitchingGroup(_GroupBase):
    """Chartists or fundamentalists by recent performance (Brock and Hommes 1998; Lux and Marchesi 1999).

    Each trader, when it acts, is a chartist with the group's chartist share, a logit with
    ``intensity`` of the two strategies' fitness (an exponential average, weight ``memory`` on the past,
    of what a unit position in each strategy's last direction earned), else a fundamentalist. A
    chartist trades ``chartist_aggression x`` the log return over ``trend_window`` steps (over the run
    so far while it is younger), a fundamentalist ``fundamentalist_aggression x log(V / mid)`` (``V``
    the fundamental), by market orders.
    """

    kind: Literal["switching"]
    single_instrument: ClassVar[bool] = True
    collateral: PositiveMoney = 100_000.0
    arrival_rate: Fraction = 0.2
    chartist_aggression: float = Field(
        default=2_000.0, ge=0.0, le=1e9, description="Lots per unit log trend."
    )
    fundamentalist_aggression: float = Field(
        default=2_000.0, ge=0.0, le=1e9, description="Lots per unit log mispricing."
    )
    trend_window: int = Field(
        default=10, ge=1, le=10_000, description="Steps the trend is measured over (fewer in a younger run)."
    )
    intensity: float = Field(
        default=1_000.0, ge=0.0, le=1e9, description="Intensity of choice (per unit fitness)."
    )
    memory: float = Field(default=0.95, ge=0.0, lt=1.0, description="Weight of past fitness per update.")
    initial_chartist_share: Fraction = 0.5
    max_order: Lots = 20
    max_position: Lots = 2_000


# The union of every registered group model: `kind` picks one (derived from the registry).
AgentGroup = Annotated[union_of(kind.settings for kind in AGENT_KINDS.values()), Field(discriminator="kind")]


def _arriving_kinds() -> list[str]:
    return [name for name in AGENT_KINDS.names() if name != "market_maker"]


class TradingTime(Strict):
    """Arrivals in multifractal trading time: one clock speeds up or slows down several kinds at once.

    The clock is the product of ``components`` factors, each ``high`` or ``2 - high`` with equal
    chance (mean 1), the ``j``-th redrawn in a step with probability ``1 / d_j``, the ``d_j`` spaced
    geometrically from ``slowest_steps`` to ``fastest_steps`` (the Markov-switching multifractal of
    Calvet and Fisher 2004; trading time after Mandelbrot, Fisher and Calvet 1997). Each step the
    arrival rate of every group of ``kinds`` is multiplied by it (with its ``activity`` factor too),
    at most 1 (abm.trading_time).
    """

    components: int = Field(default=8, ge=1, le=20, description="Factors in the product.")
    slowest_steps: float = Field(
        default=4_000.0, ge=1.0, le=1e9, description="Mean steps between redraws of the slowest factor."
    )
    fastest_steps: float = Field(
        default=2.0, ge=1.0, le=1e9, description="Mean steps between redraws of the fastest factor."
    )
    high: float = Field(
        default=1.3, gt=1.0, lt=2.0, description="A factor's high value (its low is 2 - high)."
    )
    kinds: list[AGENT_KINDS.literal()] = Field(  # type: ignore[valid-type]
        default_factory=_arriving_kinds,
        min_length=1,
        description="Agent kinds whose arrivals follow the clock (default: every kind but market_maker).",
    )

    @model_validator(mode="after")
    def _consistent(self) -> TradingTime:
        if self.fastest_steps > self.slowest_steps:
            raise ValueError(
                f"fastest_steps ({self.fastest_steps:g}) must not exceed "
                f"slowest_steps ({self.slowest_steps:g})"
            )
        if "market_maker" in self.kinds:
            raise ValueError("market makers quote every step: kinds lists the other kinds only")
        if len(set(self.kinds)) != len(self.kinds):
            raise ValueError("kinds lists a kind twice")
        return self
