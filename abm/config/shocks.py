"""Scenario schema of the shocks: one model per shock type, registered in :data:`SHOCK_TYPES`.

Adding a shock type touches two files: a model here, decorated with ``@shock_type`` (its ``type``
Literal is the name a scenario uses), and its handler in :mod:`abm.shocks`, decorated with
``@handles(Model)``. The schema's choices, the docs' tables and the conformance tests are derived from
the two registries.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field, model_validator

from abm.config.agents import AGENT_KINDS, LeveragedTraderGroup
from abm.config.common import MAX_STEPS, Fraction, Lots, Price, StepCount, Strict
from abm.registry import Registry, literal_name, union_of

__all__ = [
    "SHOCK_TYPES",
    "TRIGGER_CONDITIONS",
    "CollateralHaircut",
    "CorrelationRegime",
    "Depeg",
    "FundamentalJump",
    "FundamentalRegime",
    "FundingSpike",
    "IndexMisprint",
    "LiquidityWithdrawal",
    "MarginChange",
    "MarketOrderShock",
    "Shock",
    "ShockTrigger",
    "StaleIndex",
    "TraderInflow",
    "TraderOutflow",
    "VenueFault",
    "correlation_problem",
    "shock_type",
]

SHOCK_TYPES: Registry[type[Strict]] = Registry("shock type")


def shock_type(model: type[Strict]) -> type[Strict]:
    """Register a shock model under its ``type`` Literal."""
    SHOCK_TYPES.add(literal_name(model, "type"), model)
    return model


TRIGGER_CONDITIONS = ("mark_below", "mark_above", "drawdown_above", "volatility_above")


class ShockTrigger(Strict):
    """A condition that fires a shock the first time it holds (checked at the start of each step).

    Exactly one condition is given. Prices are the mark at the end of the previous step; the
    drawdown is the fall of that mark from its running peak, as a fraction of the peak; the
    volatility is the realised per-step volatility of the mark over ``market.vol_window``.
    """

    mark_below: Price | None = Field(default=None, description="Fire when the mark < this.")
    mark_above: Price | None = Field(default=None, description="Fire when the mark > this.")
    drawdown_above: float | None = Field(
        default=None, gt=0.0, lt=1.0, description="Fire when the mark is this fraction below its peak."
    )
    volatility_above: float | None = Field(
        default=None, gt=0.0, le=1.0, description="Fire when the realised per-step volatility exceeds this."
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


class _ShockBase(Strict):
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

    @property
    def instrument_touched(self) -> str | None:
        """The instrument the shock acts on (None: it acts on accounts, not on a market)."""
        return None


class _LastingShock(_ShockBase):
    over_steps: StepCount = Field(default=1, description="Steps the shock lasts once started.")

    @property
    def active_steps(self) -> int | None:
        """Steps the shock acts once started."""
        return self.over_steps


class _MarketShock(_ShockBase):
    instrument: str | None = Field(
        default=None, description="The instrument it acts on (default: the scenario's first)."
    )

    @property
    def instrument_touched(self) -> str | None:
        """The instrument the shock acts on (None here means the scenario's first; see Scenario)."""
        return self.instrument


class _LastingMarketShock(_MarketShock):
    over_steps: StepCount = Field(default=1, description="Steps the shock lasts once started.")

    @property
    def active_steps(self) -> int | None:
        """Steps the shock acts once started."""
        return self.over_steps


@shock_type
class FundamentalJump(_MarketShock):
    """The fundamental (and with it the index) jumps by a fraction (-0.1 is a 10% fall)."""

    type: Literal["fundamental_jump"]
    size: float = Field(gt=-1.0, le=10.0)


@shock_type
class MarketOrderShock(_MarketShock):
    """An exogenous sell (or buy) program of ``quantity`` lots.

    All at once (``over_steps: 1``), evenly over ``over_steps`` steps (TWAP), or, with ``volume_share``,
    each step a share of the previous step's traded volume until ``quantity`` lots are done (within
    ``over_steps`` steps when given, else by the end of the run).
    """

    type: Literal["market_order"]
    side: Literal["buy", "sell"] = "sell"
    quantity: Lots
    over_steps: StepCount | None = Field(default=None, description="TWAP length; default 1 (all at once).")
    volume_share: float | None = Field(
        default=None, gt=0.0, le=1.0, description="Trade this share of the previous step's volume."
    )
    min_lots: Lots = Field(default=1, description="Volume share: lots traded in a step at least.")

    @model_validator(mode="after")
    def _default_length(self) -> MarketOrderShock:
        if self.over_steps is None and self.volume_share is None:
            self.over_steps = 1
        return self

    @property
    def active_steps(self) -> int | None:
        """TWAP steps, or the cap on a volume-share program's length (None: until done)."""
        return self.over_steps


@shock_type
class FundamentalRegime(_LastingMarketShock):
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


@shock_type
class LiquidityWithdrawal(_LastingMarketShock):
    """Market makers pull a share of their depth and / or widen their quotes, then come back.

    Full strength for ``over_steps`` steps, then the withdrawal fades linearly to nothing over
    ``recovery_steps`` steps (the book's resiliency; 0: the makers return at once).
    """

    type: Literal["liquidity_withdrawal"]
    share: Fraction = Field(default=0.0, description="Share of every maker's depth withheld.")
    spread_factor: float = Field(
        default=1.0, ge=1.0, le=100.0, description="Makers' half spread and level spacing times this."
    )
    recovery_steps: int = Field(
        default=0, ge=0, le=MAX_STEPS, description="Steps to return to normal afterwards."
    )

    @model_validator(mode="after")
    def _something_changes(self) -> LiquidityWithdrawal:
        if self.share == 0.0 and self.spread_factor == 1.0:
            raise ValueError("a liquidity withdrawal sets share > 0, spread_factor > 1, or both")
        return self

    @property
    def active_steps(self) -> int | None:
        """Full-strength steps plus recovery steps."""
        return self.over_steps + self.recovery_steps


@shock_type
class MarginChange(_MarketShock):
    """The exchange decrees new margin rates (a hike), effective ``notice_steps`` after it is announced.

    Either ``factor`` (the base rates in force times this, capped at 1) or both ``initial`` and
    ``maintenance`` (new base-bracket rates). Applies to held positions too.
    """

    type: Literal["margin_change"]
    factor: float | None = Field(default=None, gt=0.0, le=100.0)
    initial: float | None = Field(default=None, gt=0.0, le=1.0)
    maintenance: float | None = Field(default=None, gt=0.0, le=1.0)
    notice_steps: int = Field(default=0, ge=0, le=MAX_STEPS, description="0: in force at once (no notice).")

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


@shock_type
class CollateralHaircut(_ShockBase):
    """Collateral held in a volatile asset loses a fraction of its value (money leaves the system)."""

    type: Literal["collateral_haircut"]
    size: float = Field(gt=0.0, lt=1.0, description="Share of (positive) collateral value lost.")
    kinds: list[AGENT_KINDS.literal()] = Field(  # type: ignore[valid-type]
        default_factory=lambda: ["leveraged_trader"], min_length=1, description="Agent kinds hit."
    )


@shock_type
class Depeg(_ShockBase):
    """A collateral asset is quoted at ``fraction`` of its price for ``over_steps`` steps (a depeg).

    Margin values every account's holding of the asset at the quoted price, less its haircut; with
    ``recover`` the quote returns to the asset's own price after ``over_steps``, else it stays.
    """

    type: Literal["depeg"]
    asset: str = Field(min_length=1, description="The collateral asset (a name in collateral_assets).")
    fraction: float = Field(gt=0.0, lt=1.0, description="Quoted price over the asset's own.")
    over_steps: StepCount = Field(default=1, description="Steps the depeg lasts (with recover).")
    recover: bool = Field(default=True, description="Back to the asset's price after over_steps.")

    @property
    def active_steps(self) -> int | None:
        """Steps the shock acts once started (None: to the end of the run)."""
        return self.over_steps if self.recover else None


@shock_type
class FundingSpike(_LastingMarketShock):
    """A funding-rate spike: each step longs pay shorts ``rate`` x notional at the mark (< 0: shorts pay)."""

    type: Literal["funding_spike"]
    rate: float = Field(ge=-0.1, le=0.1, description="Per-step rate on notional at the mark.")


@shock_type
class StaleIndex(_LastingMarketShock):
    """The oracle index stops updating for ``over_steps`` steps (it holds its last published value)."""

    type: Literal["stale_index"]


@shock_type
class IndexMisprint(_LastingMarketShock):
    """The oracle index prints ``size`` away from the fundamental (-0.1: 10% low) for ``over_steps`` steps."""

    type: Literal["index_misprint"]
    size: float = Field(gt=-1.0, le=10.0)


@shock_type
class VenueFault(_LastingMarketShock):
    """One spot venue of a composite index (``market.index.venues > 1``) is faulty for ``over_steps`` steps.

    ``stale``: it keeps printing the price it had when the fault began; ``misprint``: it prints ``size``
    away from its own price (-0.3: 30% low); ``drop``: it prints nothing. What the index does then is the
    pricing rule's business (``market.index``: median or mean, ``outlier_band``, ``stale_after``).
    """

    type: Literal["venue_fault"]
    venue: int = Field(ge=0, description="The venue (0 to market.index.venues - 1).")
    mode: Literal["stale", "misprint", "drop"]
    size: float = Field(default=0.0, gt=-1.0, le=10.0, description="The misprint (a fraction).")

    @model_validator(mode="after")
    def _size_for_misprint(self) -> VenueFault:
        if self.mode == "misprint" and self.size == 0.0:
            raise ValueError("a misprint needs a size (a fraction: -0.3 prints 30% low)")
        if self.mode != "misprint" and self.size != 0.0:
            raise ValueError(f"size applies to a misprint only, not to mode {self.mode!r}")
        return self


@shock_type
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


@shock_type
class TraderOutflow(_ShockBase):
    """Some leveraged traders take money out: their leverage rises (the margin they leave is thinner).

    A random ``share`` of the leveraged traders with a position each withdraw ``fraction`` of their free
    collateral (equity above the initial requirement, at most their cash).
    """

    type: Literal["trader_outflow"]
    share: float = Field(gt=0.0, le=1.0, description="Share of leveraged traders that withdraw.")
    fraction: float = Field(gt=0.0, le=1.0, description="Share of their free collateral withdrawn.")


def correlation_problem(matrix: list[list[float]]) -> str | None:
    """Why ``matrix`` is not a correlation matrix, or None when it is one.

    A correlation matrix is square and symmetric, with 1 on the diagonal, entries in [-1, 1], and
    positive semi-definite.
    """
    size = len(matrix)
    if any(len(row) != size for row in matrix):
        return f"must be square: {size} rows of {size} numbers"
    array = np.asarray(matrix, dtype=np.float64)
    if not np.allclose(np.diag(array), 1.0, rtol=0.0, atol=1e-12):
        return "must have 1 on the diagonal"
    if (np.abs(array) > 1.0 + 1e-12).any():
        return "correlations must lie in [-1, 1]"
    if not np.allclose(array, array.T, rtol=0.0, atol=1e-12):
        return "must be symmetric"
    smallest = float(np.linalg.eigvalsh(array).min())
    if smallest < -1e-9:
        return f"must be positive semi-definite (its smallest eigenvalue is {smallest:.3g})"
    return None


@shock_type
class CorrelationRegime(_LastingShock):
    """The correlation of the fundamentals' shocks is replaced for ``over_steps`` steps (a stress regime).

    Either ``correlation`` (a whole matrix, instruments in scenario order) or ``common`` (every pair's
    correlation set to it), for example ``common: 0.95`` for a stress in which everything moves together.
    """

    type: Literal["correlation_regime"]
    correlation: list[list[float]] | None = Field(default=None, description="The matrix in force.")
    common: float | None = Field(default=None, ge=-1.0, le=1.0, description="Every pair's correlation.")

    @model_validator(mode="after")
    def _one_form(self) -> CorrelationRegime:
        if (self.correlation is None) == (self.common is None):
            raise ValueError("give correlation (a matrix) or common (one number), not both")
        if self.correlation is not None:
            problem = correlation_problem(self.correlation)
            if problem is not None:
                raise ValueError(f"correlation {problem}")
        return self

    def matrix(self, size: int) -> np.ndarray:
        """The correlation matrix in force during the regime, for ``size`` instruments."""
        if self.correlation is not None:
            return np.asarray(self.correlation, dtype=np.float64)
        matrix = np.full((size, size), float(self.common))
        np.fill_diagonal(matrix, 1.0)
        return matrix


# The union of every registered shock model: `type` picks one (derived from the registry).
Shock = Annotated[union_of(SHOCK_TYPES.values()), Field(discriminator="type")]
