"""Collateral that is not cash: the scenario's ``collateral_assets:`` (see :mod:`abm.collateral`)."""

from __future__ import annotations

from pydantic import Field, model_validator

from abm.config.common import Price, StepCount, Strict

__all__ = ["CollateralAsset", "VolatilityHaircut"]


class VolatilityHaircut(Strict):
    """A haircut that follows the asset's volatility: ``multiple x sigma x sqrt(horizon)``, floored, capped.

    ``sigma`` is the EWMA sd (``decay``) of the asset's one-step log price returns, the quoted price's
    (a depeg moves it); the asset's fixed ``haircut`` is the floor.
    """

    multiple: float = Field(default=3.0, gt=0.0, le=50.0, description="Haircut in horizon sds.")
    horizon: StepCount = Field(default=10, description="Steps it takes to sell the collateral.")
    decay: float = Field(default=0.94, gt=0.0, lt=1.0, description="EWMA decay of the asset's volatility.")
    cap: float = Field(default=0.5, gt=0.0, lt=1.0, description="The largest haircut.")


class CollateralAsset(Strict):
    """An asset accounts may post as collateral, valued every step at its price less a haircut.

    Its price starts at ``price`` and moves as a driftless geometric random walk of per-step sd
    ``volatility`` (0: it stays at its price, as a stablecoin at par does), or, with ``tracks``, with
    an instrument's index (the coin of a coin-margined contract: collateral that falls with the
    market it margins); a ``depeg`` shock quotes it at a fraction of that for a while.
    """

    name: str = Field(min_length=1, max_length=64, description="The asset's name (groups name it).")
    price: Price = Field(default=1.0, description="Its price in the settlement currency at the start.")
    volatility: float = Field(default=0.0, ge=0.0, le=0.2, description="Per-step sd of its log price.")
    haircut: float = Field(default=0.0, ge=0.0, lt=1.0, description="Share of its value margin ignores.")
    volatility_haircut: VolatilityHaircut | None = Field(
        default=None, description="A haircut scaled by the asset's volatility (haircut is its floor)."
    )
    tracks: str | None = Field(
        default=None,
        min_length=1,
        description="An instrument whose index the price follows: price x index / the index at the start "
        "(the coin of a coin-margined contract; volatility must then be 0).",
    )

    @model_validator(mode="after")
    def _one_price_process(self) -> CollateralAsset:
        if self.tracks is not None and self.volatility > 0.0:
            raise ValueError(
                f"give volatility or tracks, not both: an asset that tracks '{self.tracks}' moves with "
                "its index (set volatility to 0)"
            )
        return self

    @model_validator(mode="after")
    def _cap_above_floor(self) -> CollateralAsset:
        if self.volatility_haircut is not None and self.volatility_haircut.cap < self.haircut:
            raise ValueError(
                f"volatility_haircut.cap ({self.volatility_haircut.cap:g}) is below the haircut "
                f"({self.haircut:g}) it is floored at"
            )
        return self
