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
from abm.config.common import PositiveFloat, Strict
from abm.margin.settings import FixedMargin, MarginConfig

__all__ = [
    "DEFAULT_INSTRUMENT",
    "INSTRUMENT_NAME",
    "FundamentalConfig",
    "InstrumentConfig",
    "MarkPriceConfig",
    "MarketConfig",
]

# The name of a single-instrument scenario's instrument (the `instrument` column of its tables).
DEFAULT_INSTRUMENT = "PERP"
# Instrument names: short identifiers, so that they can stand in tables, file names and summary keys.
INSTRUMENT_NAME = r"^[A-Za-z][A-Za-z0-9_-]{0,31}$"


class MarkPriceConfig(Strict):
    """How the exchange's mark price is formed."""

    source: Literal["last", "mid", "index", "index_ema_basis"] = "mid"
    ema_steps: int = Field(default=30, ge=1, description="EMA span of the basis (index_ema_basis).")


class MarketConfig(Strict):
    """The traded future and its book."""

    tick_size: PositiveFloat = 0.01
    initial_price: PositiveFloat = 100.0
    contract_size: PositiveFloat = Field(default=1.0, description="Units of underlying per lot.")
    mark_price: MarkPriceConfig = Field(default_factory=MarkPriceConfig)
    vol_window: int = Field(default=60, ge=2, description="Steps in the realised-volatility window.")
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


class FundamentalConfig(Strict):
    """The fundamental value (the external spot index) process, in log terms per step."""

    process: Literal["gbm", "ou", "constant"] = "gbm"
    volatility: float = Field(default=0.0005, ge=0.0, le=0.2, description="Per-step log sigma.")
    drift: float = Field(default=0.0, ge=-0.1, le=0.1, description="Per-step log drift.")
    mean_reversion: float = Field(default=0.01, ge=0.0, le=1.0, description="OU speed per step.")
    long_run: float | None = Field(default=None, gt=0.0, description="OU level; default initial.")
    initial: float | None = Field(default=None, gt=0.0, description="Default market.initial_price.")


class InstrumentConfig(MarketConfig):
    """One instrument of a multi-instrument scenario: its market, fundamental process and margin rule."""

    name: str = Field(
        pattern=INSTRUMENT_NAME, description="The instrument's name (letters, digits, _ and -)."
    )
    fundamental: FundamentalConfig = Field(default_factory=FundamentalConfig)
    margin: MarginConfig = Field(default_factory=lambda: FixedMargin(rule="fixed"))
