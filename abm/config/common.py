"""What every section of the scenario schema shares: the strict base model and common number types."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "MAX_LEVERAGE",
    "MAX_MONEY",
    "MAX_ORDER_LOTS",
    "MAX_PRICE",
    "MAX_SEED",
    "MAX_STEPS",
    "MAX_TICKS",
    "MIN_UNIT",
    "Fraction",
    "Lots",
    "Money",
    "PositiveFloat",
    "PositiveMoney",
    "Price",
    "Seed",
    "StepCount",
    "Strict",
    "Ticks",
]


class Strict(BaseModel):
    """Base for every section: unknown keys rejected, no silent type coercion."""

    # allow_inf_nan=False: `.inf` or `.nan` in a file is a typo, never a meaningful setting.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=False, allow_inf_nan=False)


Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
PositiveFloat = Annotated[float, Field(gt=0.0)]


# Bounds of every magnitude a scenario can give, so that whatever validates also runs: money stays
# far inside float64 (sums over a million accounts, products with prices), lots inside int64 and the
# books' MAX_LOTS, prices inside the books' integer ticks, seeds inside the int64 of the outputs.
MAX_MONEY = 1e15  # one account's or the fund's cash
MAX_PRICE = 1e9  # a price or a price level of a trigger
MIN_UNIT = 1e-8  # the smallest tick size or contract size
MAX_ORDER_LOTS = 10**9  # one order, one level, one position limit
MAX_TICKS = 100_000  # a spread, an offset or a spacing in ticks
MAX_STEPS = 10_000_000
MAX_LEVERAGE = 1_000.0
MAX_SEED = 2**63 - 1  # seeds are written as int64
# Agents in one scenario (every group and every trader inflow): about 7 KB each in a run, so the largest
# scenario fits in 8 GB.
MAX_AGENTS = 1_000_000

Money = Annotated[float, Field(ge=0.0, le=MAX_MONEY)]
PositiveMoney = Annotated[float, Field(gt=0.0, le=MAX_MONEY)]
Price = Annotated[float, Field(gt=0.0, le=MAX_PRICE)]
Lots = Annotated[int, Field(ge=1, le=MAX_ORDER_LOTS)]
Ticks = Annotated[int, Field(ge=0, le=MAX_TICKS)]
StepCount = Annotated[int, Field(ge=1, le=MAX_STEPS)]
Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]
