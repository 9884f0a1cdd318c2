"""What every section of the scenario schema shares: the strict base model and common number types."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Fraction", "PositiveFloat", "Strict"]


class Strict(BaseModel):
    """Base for every section: unknown keys rejected, no silent type coercion."""

    # allow_inf_nan=False: `.inf` or `.nan` in a file is a typo, never a meaningful setting.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=False, allow_inf_nan=False)


Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
PositiveFloat = Annotated[float, Field(gt=0.0)]
