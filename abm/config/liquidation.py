"""Scenario schema of liquidation: how breaching accounts are closed and who pays for what is left."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from abm.config.common import Lots, Money, Strict

__all__ = ["LiquidationConfig"]


class LiquidationConfig(Strict):
    """How breaching accounts are closed and who pays for what is left."""

    enabled: bool = True
    mode: Literal["full", "partial"] = "full"
    target_ratio: float = Field(
        default=1.5, gt=1.0, description="Partial: equity / maintenance after the cut."
    )
    fee: float = Field(default=0.005, ge=0.0, le=0.1, description="Share of liquidated notional.")
    max_rounds: int = Field(default=50, ge=1, le=10_000)
    max_parents: int = Field(
        default=32,
        ge=1,
        le=100_000,
        description="Cascade attribution: at most this many parents per liquidation, the largest by "
        "filled notional (keeps the DAG linear in liquidations when rounds are large).",
    )
    max_lots_per_round: Lots | None = Field(default=None, description="Speed limit.")
    insurance_fund: Money = Field(default=0.0, description="Initial insurance fund.")
    price_limit: Literal["none", "bankruptcy"] = Field(
        default="none", description="bankruptcy: liquidation orders stop at the bankruptcy price."
    )
    adl: bool = Field(default=True, description="Auto-deleverage when the fund is empty.")
    adl_price: Literal["bankruptcy", "mark"] = Field(
        default="bankruptcy",
        description="ADL closes at the bankrupt account's bankruptcy price (BitMEX, Binance) or at the mark.",
    )
    leftover: Literal["trader", "fund"] = Field(
        default="trader",
        description="Where a fully liquidated account's remaining collateral goes: kept by the trader, or "
        "to the insurance fund (as Binance and BitMEX do).",
    )
    socialise: Literal["all", "traders", "none"] = Field(
        default="all",
        description="Who covers a fund below zero, pro rata to profit: every account in profit, the same "
        "without market makers, or nobody (the fund stays negative).",
    )
    order: Literal["largest_loss", "largest_maintenance", "pro_rata"] = Field(
        default="largest_loss",
        description="Account-wide liquidation of several positions: the largest loss first, the largest "
        "maintenance first, or every position by the same share (partial mode).",
    )
