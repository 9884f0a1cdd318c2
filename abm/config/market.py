"""Scenario schema of the markets: each traded instrument, its book, its mark price, its index and margin.

A single-instrument scenario gives ``market``, ``fundamental`` and ``margin`` at the top level (its one
instrument is named :data:`DEFAULT_INSTRUMENT`); a multi-instrument one gives an ``instruments:`` list of
:class:`InstrumentConfig`, each with all three. ``book_engine`` takes the names registered in
:data:`abm.book.BOOK_ENGINES`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from abm.book import BOOK_ENGINES, engine_problem
from abm.book.protocol import MAX_PRICE_TICKS
from abm.config.common import MAX_PRICE, MAX_STEPS, MIN_UNIT, Price, StepCount, Strict
from abm.margin.settings import FixedMargin, MarginConfig

__all__ = [
    "DEFAULT_INSTRUMENT",
    "INSTRUMENT_NAME",
    "FundamentalConfig",
    "FundingConfig",
    "IndexConfig",
    "InstrumentConfig",
    "MarkPriceConfig",
    "MarketConfig",
    "MarketOrderProtection",
]

# The name of a single-instrument scenario's instrument (the `instrument` column of its tables).
DEFAULT_INSTRUMENT = "PERP"
# Instrument names: short identifiers, so that they can stand in tables, file names and summary keys.
INSTRUMENT_NAME = r"^[A-Za-z][A-Za-z0-9_-]{0,31}$"


class MarkPriceConfig(Strict):
    """How the exchange's mark price is formed."""

    source: Literal["last", "mid", "index", "index_ema_basis"] = "mid"
    ema_steps: StepCount = Field(default=30, description="EMA span of the basis (index_ema_basis).")


class FundingConfig(Strict):
    """Perpetual funding in the form Binance publishes for its USD-M perpetuals (docs/references.md).

    Every step the premium index is sampled from the book: ``(max(0, impact_bid - index) - max(0, index -
    impact_ask)) / index``, the impact prices being the average fill of a market order for
    ``impact_notional`` on each side. At the end of every ``interval`` steps the funding rate is the
    time-weighted average premium ``P`` (the k-th sample weighted k) plus ``clamp(interest_rate - P,
    -clamp, +clamp)``, limited to ``+-cap``, and every position pays ``rate x position x mark x
    contract_size`` (longs pay shorts when the rate is positive).
    """

    enabled: bool = Field(default=True, description="Pay funding (every instrument is a perpetual).")
    interval: StepCount = Field(
        default=480, description="Steps between payments (8 hours of one-minute steps, as Binance)."
    )
    impact_notional: float | None = Field(
        default=None,
        gt=0.0,
        le=1e15,
        description="Notional of the impact bid and ask (price x lots x contract size); default 10 lots.",
    )
    interest_rate: float = Field(
        default=0.0001, ge=-0.01, le=0.01, description="Interest term per interval (Binance: 0.01%)."
    )
    clamp: float = Field(
        default=0.0005, ge=0.0, le=0.1, description="Bound on interest minus premium (Binance: 0.05%)."
    )
    cap: float = Field(default=0.0075, gt=0.0, le=0.1, description="Bound on the rate per interval.")


class MarketOrderProtection(Strict):
    """Market orders filled only within a band: CME Globex's protection, or a band around the mark.

    A market order fills only up to its *protection limit*, ``band`` beyond a reference price: with
    ``reference: touch`` (CME Globex's market order with protection, docs/references.md) a buy's is the
    best ask when it arrives and a sell's the best bid (the mark when that side is empty); with
    ``reference: mark`` it is the last mark, the same for every order of a step, so the orders of one
    step together cannot move the price more than the band (a percent-price band). What is left is
    cancelled, or with ``remainder: rest`` stays in the book as a limit order at the limit (CME's rule).
    It applies to the agents' market orders, a shock's sell program and newcomers' entry orders; the
    liquidation engine's orders keep the liquidation design's own limits.
    """

    band: float = Field(
        gt=0.0, le=1.0, description="How far beyond the reference a market order may fill (share of it)."
    )
    reference: Literal["touch", "mark"] = Field(
        default="touch", description="The best opposite price when the order arrives (CME), or the last mark."
    )
    remainder: Literal["cancel", "rest"] = Field(
        default="cancel", description="What is left at the limit: cancelled, or a resting limit order (CME)."
    )


MAX_VENUES = 50


class IndexConfig(Strict):
    """The index the exchange publishes: a composite of spot venues, with its pricing rule (abm.venues).

    With one venue and no venue noise (the default) the index is the fundamental. With ``venues > 1``
    each venue prints the fundamental times ``exp(d)``, its own deviation ``d`` following ``d <-
    persistence x d + noise x z``; venues not updated for ``stale_after`` steps are left out, then with
    ``outlier_band`` those whose log distance from the median is above it, and the index is the
    ``median`` or the (``weights``-weighted) ``mean`` of the rest. A ``venue_fault`` shock makes one
    venue stale, misprint or drop out.
    """

    venues: int = Field(default=1, ge=1, le=MAX_VENUES, description="Spot venues in the composite.")
    method: Literal["median", "mean"] = Field(
        default="median", description="How the venues' prices are combined."
    )
    weights: list[float] | None = Field(
        default=None, description="Each venue's weight in the mean (one per venue, > 0); default equal."
    )
    noise: float = Field(default=0.0, ge=0.0, le=0.1, description="Per-step sd of a venue's log deviation.")
    persistence: float = Field(
        default=0.9, ge=0.0, lt=1.0, description="AR(1) coefficient of a venue's deviation."
    )
    outlier_band: float | None = Field(
        default=None, gt=0.0, le=1.0, description="Leave out venues this far (log) from the median."
    )
    stale_after: StepCount | None = Field(
        default=None, description="Leave out a venue that has not updated for this many steps."
    )

    @model_validator(mode="after")
    def _weights_per_venue(self) -> IndexConfig:
        if self.weights is not None:
            if len(self.weights) != self.venues:
                raise ValueError(
                    f"weights has {len(self.weights)} numbers: give one per venue ({self.venues})"
                )
            if any(not (0.0 < w <= 1e6) for w in self.weights):
                raise ValueError("weights must be > 0 (and at most 1e6)")
        return self

    @property
    def composite(self) -> bool:
        """Whether the index is formed from venues (False: it is the fundamental itself)."""
        return self.venues > 1 or self.noise > 0.0


MIN_PRICE_TICKS = 10
MAX_START_TICKS = MAX_PRICE_TICKS // 8


class MarketConfig(Strict):
    """The traded future and its book."""

    tick_size: float = Field(default=0.01, ge=MIN_UNIT, le=1e6, description="Price of one tick.")
    initial_price: Price = 100.0
    contract_size: float = Field(default=1.0, ge=MIN_UNIT, le=1e6, description="Units of underlying per lot.")
    mark_price: MarkPriceConfig = Field(default_factory=MarkPriceConfig)
    funding: FundingConfig = Field(default_factory=FundingConfig)
    index: IndexConfig = Field(default_factory=IndexConfig)
    vol_window: int = Field(
        default=60, ge=2, le=MAX_STEPS, description="Steps in the realised-volatility window."
    )
    market_order_protection: MarketOrderProtection | None = Field(
        default=None,
        description="Market orders fill only within a band of the touch or mark (none: no limit).",
    )
    book_engine: BOOK_ENGINES.literal() = Field(  # type: ignore[valid-type]
        default="python",
        description="Order book engine: pure Python, or numba-compiled (extra 'fast'); same results.",
    )

    @field_validator("book_engine")
    @classmethod
    def _engine_installed(cls, engine: str) -> str:
        problem = engine_problem(engine)
        if problem is not None:
            raise ValueError(problem)
        return engine

    @model_validator(mode="before")
    @classmethod
    def _mark_price_shorthand(cls, data: Any) -> Any:
        # `mark_price: mid` is accepted as shorthand for `mark_price: {source: mid}`.
        if isinstance(data, dict) and isinstance(data.get("mark_price"), str):
            data = {**data, "mark_price": {"source": data["mark_price"]}}
        return data

    @model_validator(mode="after")
    def _price_in_ticks(self) -> MarketConfig:
        # The books hold prices as whole ticks below MAX_PRICE_TICKS (both engines): the start price
        # must leave room to rise 8x, and a tick coarser than a tenth of the price is no market.
        ticks = self.initial_price / self.tick_size
        if ticks < MIN_PRICE_TICKS:
            raise ValueError(
                f"initial_price / tick_size is {ticks:.3g} ticks: at least {MIN_PRICE_TICKS} (a tick of at "
                "most a tenth of the price); lower tick_size"
            )
        if ticks > MAX_START_TICKS:
            raise ValueError(
                f"initial_price / tick_size is {ticks:,.0f} ticks: at most {MAX_START_TICKS:,} (the books "
                f"hold prices below {MAX_PRICE_TICKS:,} ticks, with room to rise 8x); raise tick_size"
            )
        return self


class FundamentalConfig(Strict):
    """The fundamental value (the external spot index) process, in log terms per step."""

    process: Literal["gbm", "ou", "constant"] = "gbm"
    volatility: float = Field(default=0.0005, ge=0.0, le=0.2, description="Per-step log sigma.")
    drift: float = Field(default=0.0, ge=-0.1, le=0.1, description="Per-step log drift.")
    mean_reversion: float = Field(default=0.01, ge=0.0, le=1.0, description="OU speed per step.")
    long_run: float | None = Field(
        default=None, gt=0.0, le=MAX_PRICE, description="OU level; default initial."
    )
    initial: float | None = Field(
        default=None, gt=0.0, le=MAX_PRICE, description="Default market.initial_price."
    )


class InstrumentConfig(MarketConfig):
    """One instrument of a multi-instrument scenario: its market, fundamental process and margin rule."""

    name: str = Field(
        pattern=INSTRUMENT_NAME, description="The instrument's name (letters, digits, _ and -)."
    )
    fundamental: FundamentalConfig = Field(default_factory=FundamentalConfig)
    margin: MarginConfig = Field(default_factory=lambda: FixedMargin(rule="fixed"))
