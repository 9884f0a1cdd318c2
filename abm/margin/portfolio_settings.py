"""Settings of the portfolio margin rules: the pydantic schema of the scenario's ``portfolio_margin:``.

The rule of ``margin_mode: portfolio`` accounts gives one requirement for the account's whole
portfolio. Each rule's settings model is registered under its ``rule`` name in
:data:`PORTFOLIO_RULE_SETTINGS`; the rules themselves are in :mod:`abm.margin.portfolio`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from abm.margin.settings import ApcConfig, _Strict
from abm.registry import Registry, literal_name, union_of

__all__ = [
    "PORTFOLIO_RULE_SETTINGS",
    "CorrelationOffsetMargin",
    "HistoricalPortfolioMargin",
    "ParametricVarMargin",
    "PortfolioEsMargin",
    "PortfolioMarginConfig",
    "PortfolioVarMargin",
    "CombinedCommodity",
    "ScanRangeScaling",
    "SpanMargin",
    "SpreadCredit",
    "SpreadTier",
    "StressWindow",
    "SumOfPositionsMargin",
    "TierSpread",
    "UnifiedAccountMargin",
]

PORTFOLIO_RULE_SETTINGS: Registry[type[BaseModel]] = Registry("portfolio margin rule")


def portfolio_rule_settings(model: type[BaseModel]) -> type[BaseModel]:
    """Register a portfolio rule's settings model under its ``rule`` Literal."""
    PORTFOLIO_RULE_SETTINGS.add(literal_name(model, "rule"), model)
    return model


_Confidence = Annotated[
    float, Field(gt=0.5, lt=1.0, description="Confidence of the loss quantile, in (0.5, 1).")
]
_LiquidationSteps = Annotated[
    int, Field(ge=1, le=10_000, description="Steps it takes to close a defaulter's portfolio.")
]
_Decay = Annotated[float, Field(gt=0.0, lt=1.0, description="EWMA decay of the volatility estimates.")]


class _PortfolioBase(_Strict):
    call_buffer: float = Field(default=0.2, ge=0.0, le=10.0)


class _Reviewed(_PortfolioBase):
    review_every: int = Field(default=1, ge=1, description="Steps between two reviews of the rule.")
    initial_multiple: float = Field(default=1.1, ge=1.0, le=10.0, description="Initial over maintenance.")


@portfolio_rule_settings
class CorrelationOffsetMargin(_PortfolioBase):
    """The positions' own requirements combined by correlation: ``sqrt(s' C s)``.

    ``s`` holds each position's requirement under its instrument's rule, signed by its side, and ``C`` is
    the correlation matrix (the scenario's ``correlation`` unless given here): long positions in
    correlated instruments get a small offset, a long hedged by a short in a correlated one a large one.
    """

    rule: Literal["correlation_offset"]
    correlation: list[list[float]] | None = Field(
        default=None, description="Correlation matrix of the offsets (default: the scenario's correlation)."
    )


@portfolio_rule_settings
class SumOfPositionsMargin(_PortfolioBase):
    """No offset: the sum of the positions' own requirements, each under its instrument's rule.

    What cross margin asks, as a portfolio rule: the baseline that every other rule's offset is measured
    against, with the portfolio rule's measures recorded like theirs.
    """

    rule: Literal["sum_of_positions"]


class SpreadCredit(_Strict):
    """An inter-commodity spread credit: offsetting positions earn ``rate`` x the smaller charge."""

    pair: list[str] = Field(
        min_length=2,
        max_length=2,
        description="The two legs, by name: combined commodities, or instruments in none.",
    )
    rate: float = Field(ge=0.0, le=1.0, description="Credit as a share of the smaller of the two charges.")


class SpreadTier(_Strict):
    """Members of a combined commodity whose offsets among themselves pay a rate of their own.

    SPAN's tiers group a commodity's contract months (the front months, the back months); here any
    members can form one (a perpetual and its nearest future, say).
    """

    name: str = Field(min_length=1, description="Name of the tier (not an instrument's or a commodity's).")
    instruments: list[str] = Field(min_length=1, description="Its instruments, members of the commodity.")
    intra_spread_rate: float = Field(
        ge=0.0, le=1.0, description="Share of the offset between the tier's members charged back."
    )


class TierSpread(_Strict):
    """A spread between two tiers of a combined commodity: offsetting tier nets pay ``rate`` of it."""

    tiers: list[str] = Field(
        min_length=2,
        max_length=2,
        description="The two legs: tiers of the commodity, or members in no tier.",
    )
    rate: float = Field(ge=0.0, le=1.0, description="Share of the offset between the two legs charged back.")


class CombinedCommodity(_Strict):
    """Instruments scanned together, as if their prices moved as one, with a charge on their spreads.

    Every scenario of the risk array moves each member by the same share of its own scan range, so a
    long in one member and a short in another offset in the scanning risk; the intra-commodity spread
    charge gives back ``intra_spread_rate`` of that offset (0: the members are taken as perfectly
    correlated; 1: as margined apart). With ``tiers`` and ``tier_spreads`` the offset is charged in
    SPAN's order: within each tier at its rate, then between the legs of each tier spread, in the
    order listed, at the spread's rate, and what offsets beyond them at ``intra_spread_rate``.
    """

    name: str = Field(min_length=1, description="Name of the combined commodity (not an instrument's).")
    instruments: list[str] = Field(min_length=2, description="Its instruments (by name), two at least.")
    intra_spread_rate: float = Field(
        ge=0.0,
        le=1.0,
        description="Share of the offset between the members' own scanning risks charged back "
        "(with tiers: of the offset no tier and no tier spread charged).",
    )
    tiers: list[SpreadTier] = Field(
        default_factory=list, description="Groups of members whose offsets pay their own rate."
    )
    tier_spreads: list[TierSpread] = Field(
        default_factory=list,
        description="Spreads between tiers (or members in no tier), formed in the order listed.",
    )


class ScanRangeScaling(_Strict):
    """Scan ranges scaled by each instrument's volatility: ``multiple x sigma x sqrt(liquidation_steps)``.

    ``sigma`` is the EWMA sd of the instrument's one-step log mark returns, seeded with the mean square
    of its first ``min_history`` returns; until then the ranges are the fixed ``scan_ranges``, which
    stay the floor afterwards.
    """

    multiple: float = Field(default=3.0, gt=0.0, le=50.0, description="Range in liquidation-period sds.")
    liquidation_steps: _LiquidationSteps = 10
    decay: _Decay = 0.94
    min_history: int = Field(default=50, ge=2, description="Returns before the ranges follow volatility.")


@portfolio_rule_settings
class SpanMargin(_Reviewed):
    """SPAN-style scanning: the worst loss over a risk array of price moves, less spread credits.

    Per instrument, the position is revalued at moves of 0, +-1/3, +-2/3 and +-3/3 of its price scan
    range (a fraction of the mark) and at +-``extreme_move`` ranges counted at ``extreme_weight``; its
    scanning risk is the worst loss (0 at least). Instruments listed in a ``combined_commodities`` entry
    are scanned together (their losses summed scenario by scenario) and pay its intra-commodity spread
    charge; every other instrument is a combined commodity of its own. Each spread pair (of combined
    commodities or lone instruments), in the order given, whose net positions offset (one long, one
    short) takes ``rate`` x the smaller of the two legs' remaining scanning risks off the total, and
    uses that much of each leg. Maintenance is scanning risk plus spread charges less credits; initial
    is ``initial_multiple`` times it. With ``volatility_scaling`` the ranges follow each instrument's
    volatility at every review (``scan_ranges`` the floor), through the ``apc`` tools.
    """

    rule: Literal["span"]
    scan_ranges: dict[str, float] = Field(
        description="Price scan range of every instrument, as a fraction of its mark (0 < range <= 1); "
        "with volatility_scaling, the floor of the ranges."
    )
    extreme_move: float = Field(default=2.0, gt=0.0, le=10.0, description="Extreme moves, in scan ranges.")
    extreme_weight: float = Field(
        default=0.35, ge=0.0, le=1.0, description="Share of an extreme loss counted."
    )
    combined_commodities: list[CombinedCommodity] = Field(
        default_factory=list,
        description="Groups of instruments scanned together, each with its intra-commodity spread charge.",
    )
    spread_credits: list[SpreadCredit] = Field(
        default_factory=list,
        description="Inter-commodity spread credits between offsetting legs, applied in the order listed.",
    )
    volatility_scaling: ScanRangeScaling | None = Field(
        default=None, description="Scan ranges that follow volatility (default: the fixed scan_ranges)."
    )
    apc: ApcConfig | None = Field(
        default=None,
        description="Anti-procyclicality tools on the volatility-scaled ranges: stressed_weight, "
        "floor_lookback, buffer (release_ratio), speed_limit.",
    )

    @field_validator("scan_ranges")
    @classmethod
    def _positive_ranges(cls, ranges: dict[str, float]) -> dict[str, float]:
        for name, value in ranges.items():
            if not 0.0 < value <= 1.0:
                raise ValueError(
                    f"scan range of {name!r} is {value}: it must lie in (0, 1] (a fraction of the mark)"
                )
        return ranges

    @model_validator(mode="after")
    def _apc_on_scaled_ranges(self) -> SpanMargin:
        apc = self.apc
        if apc is None:
            return self
        if self.volatility_scaling is None:
            raise ValueError("apc acts on volatility-scaled ranges: add volatility_scaling, or remove apc")
        unsupported = [
            name
            for name, off in (("notice_steps", 0), ("rebuild_after", 0), ("buffer_on", "both"))
            if getattr(apc, name) != off
        ]
        if unsupported:
            raise ValueError(f"apc.{unsupported[0]} is not available for scan ranges: remove it")
        if apc.stressed_weight is not None and apc.stressed_volatility is None:
            raise ValueError("apc.stressed_weight needs apc.stressed_volatility (a per-step sigma)")
        return self


class StressWindow(_Strict):
    """A stress period whose moves join the scenarios once the run has seen it (Eurex Prisma's floor).

    The ``liquidation_steps``-step returns ending in steps ``start..end`` are added to the recent
    window's scenarios from the first review after ``end``, and kept.
    """

    start: int = Field(ge=0, description="First step of the stress period.")
    end: int = Field(ge=0, description="Last step of the stress period.")

    @model_validator(mode="after")
    def _ordered(self) -> StressWindow:
        if self.end < self.start:
            raise ValueError(f"end ({self.end}) is before start ({self.start})")
        return self


class _RiskBased(_Reviewed):
    confidence: _Confidence = 0.99
    liquidation_steps: _LiquidationSteps = 10
    minimum_rate: float = Field(
        default=0.0,
        ge=0.0,
        lt=1.0,
        description="Floor of the maintenance requirement, as a share of the account's gross notional.",
    )


class HistoricalPortfolioMargin(_RiskBased):
    """Historical simulation over the joint history of every instrument's mark.

    Scenarios are the overlapping ``liquidation_steps``-step log returns of all instruments over the last
    ``window`` one-step returns (and the ``stress_window``'s, once seen); an account's loss in a
    scenario is ``-sum_i lots_i x contract_i x mark_i x (exp(R_i) - 1)``. With ``filtered``, each
    one-step return is first rescaled by the instrument's EWMA volatility now over its volatility then
    (filtered historical simulation; the factor clipped to [1 / max_scale, max_scale], as after a still
    spell the forecast is near zero). Until ``min_scenarios`` scenarios exist, the requirement is the
    sum of the positions' own requirements (no offset). ``minimum_rate`` floors the requirement at that
    share of the account's gross notional.
    """

    window: int = Field(default=500, ge=2, le=100_000, description="One-step returns in the window.")
    min_scenarios: int = Field(default=50, ge=1, description="Scenarios before the rule takes over.")
    filtered: bool = Field(default=False, description="Rescale past returns by volatility now / then.")
    max_scale: float = Field(
        default=5.0,
        gt=1.0,
        le=1000.0,
        description="With filtered: the scale factor is clipped to [1 / max_scale, max_scale].",
    )
    decay: _Decay = 0.94
    stress_window: StressWindow | None = None

    @model_validator(mode="after")
    def _window_holds_a_period(self) -> HistoricalPortfolioMargin:
        if self.window < self.liquidation_steps:
            raise ValueError(
                f"window ({self.window}) is shorter than liquidation_steps ({self.liquidation_steps}): "
                "it must hold one liquidation period at least"
            )
        return self


@portfolio_rule_settings
class PortfolioVarMargin(HistoricalPortfolioMargin):
    """Historical-simulation VaR: the ``ceil((1 - confidence) x scenarios)``-th largest loss."""

    rule: Literal["portfolio_var"]


@portfolio_rule_settings
class PortfolioEsMargin(HistoricalPortfolioMargin):
    """Historical-simulation expected shortfall: the mean of the ``ceil((1 - c) x scenarios)`` worst."""

    rule: Literal["portfolio_es"]


@portfolio_rule_settings
class ParametricVarMargin(_RiskBased):
    """Variance-covariance VaR with an EWMA covariance matrix of the one-step log mark returns.

    ``requirement = z(confidence) x sqrt(liquidation_steps) x sqrt(e' S e)``, ``e`` the account's
    exposures (lots x contract x mark) and ``S`` the covariance, seeded with the mean cross-products of
    the first ``min_history`` returns. A correlation that jumps reaches ``S`` only as fast as the decay
    lets it: the rule under-margins a hedge whose correlation breaks. Until ``min_history`` returns
    exist, the requirement is the sum of the positions' own requirements; ``minimum_rate`` floors it.
    """

    rule: Literal["parametric_var"]
    decay: _Decay = 0.94
    min_history: int = Field(default=50, ge=2, description="Returns before the rule takes over.")


@portfolio_rule_settings
class UnifiedAccountMargin(_Strict):
    """An exchange's unified (portfolio-margin) account, in the form Binance publishes: a ladder on uniMMR.

    ``uniMMR = equity / maintenance``, the maintenance being the positions' own, each under its
    instrument's rule, summed. Below ``warning_ratio`` the account is margin-called (its trader reacts as
    to any call: top up, cut or ignore); below ``reduce_only_ratio`` it may only cut its positions;
    below ``liquidation_ratio`` it is liquidated. The rule's maintenance requirement is the liquidation
    line, ``liquidation_ratio x`` the positions' maintenance.
    """

    rule: Literal["unified_account"]
    warning_ratio: float = Field(default=1.5, gt=1.0, le=10.0, description="uniMMR of the margin call.")
    reduce_only_ratio: float = Field(
        default=1.2, gt=1.0, le=10.0, description="uniMMR below which the account may only cut."
    )
    liquidation_ratio: float = Field(
        default=1.05, ge=1.0, le=10.0, description="uniMMR at which the account is liquidated."
    )

    @model_validator(mode="after")
    def _ladder_in_order(self) -> UnifiedAccountMargin:
        if not self.liquidation_ratio < self.reduce_only_ratio <= self.warning_ratio:
            raise ValueError(
                f"the ladder must rise: liquidation_ratio ({self.liquidation_ratio:g}) < reduce_only_ratio "
                f"({self.reduce_only_ratio:g}) <= warning_ratio ({self.warning_ratio:g})"
            )
        return self


# One model needs no discriminator; several are told apart by `rule`.
PortfolioMarginConfig = (
    next(iter(PORTFOLIO_RULE_SETTINGS.values()))
    if len(PORTFOLIO_RULE_SETTINGS) == 1
    else Annotated[union_of(PORTFOLIO_RULE_SETTINGS.values()), Field(discriminator="rule")]
)
