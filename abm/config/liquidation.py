"""Scenario schema of liquidation: how breaching accounts are closed and who pays for what is left."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from abm.config.common import Lots, Money, Strict

__all__ = ["LIQUIDATION_DESIGNS", "LiquidationConfig"]

# The liquidation designs, by name: the settings each one stands for (applied to the settings a
# scenario does not give itself) and what it models. The one registry of designs: the schema's
# choices, the docs' table and the conformance tests derive from it.
LIQUIDATION_DESIGNS: dict[str, tuple[str, dict[str, Any]]] = {
    "classic": (
        "This simulator's original waterfall: market orders sweep the book, the fund takes the rest at "
        "the bankruptcy price, then ADL ranked by PnL% x leverage; the trader keeps what is left.",
        {},
    ),
    "binance": (
        "Binance: the account's orders cancelled, one order limited at the bankruptcy price, the fund "
        "takes the rest there, then ADL ranked by profit over wallet times margin ratio; the fee and "
        "what is left go to the fund.",
        {"price_limit": "bankruptcy", "leftover": "fund", "adl_rank": "pnl_wallet"},
    ),
    "bitmex": (
        "BitMEX: as binance, with BitMEX's ADL ranking (PnL% x effective leverage).",
        {"price_limit": "bankruptcy", "leftover": "fund", "adl_rank": "pnl_leverage"},
    ),
    "dydx": (
        "dYdX v4: orders into the book, the fund, then deleveraging against offsetting positions taken "
        "in account order from a random start, with no ranking, at the bankruptcy price.",
        {"adl_rank": "random_start"},
    ),
    "hyperliquid": (
        "Hyperliquid: market orders into the book; positions above 100,000 of notional liquidated 20% at "
        "a time with a cooldown of 30 steps; a backstop vault (an account of its own, capital 2,000) "
        "takes an account over at the mark once its equity is below 2/3 of maintenance (and not "
        "negative), keeping what is left, and sells the inventory off as the engine does; ADL only for "
        "an account whose value turned negative.",
        {
            "chunk_above_notional": 100_000.0,
            "chunk_share": 0.2,
            "cooldown_steps": 30,
            "backstop_ratio": 2.0 / 3.0,
            "vault_capital": 2000.0,
            "adl_when": "negative_equity",
        },
    ),
    "ccp": (
        "A clearing house's default waterfall: members pay 10% of their collateral into a default fund "
        "at the start; a defaulter's portfolio is auctioned to the market makers at 2% off the mark; "
        "its deficit is met by its margin, its own contribution, the house's capital (1,000), the "
        "survivors' default fund, then assessments of up to one contribution each, then the "
        "insurance fund.",
        {
            "book_orders": False,
            "adl": False,
            "takeover": "auction",
            "default_fund_share": 0.1,
            "ccp_capital": 1000.0,
            "auction_discount": 0.02,
            "assessment_cap": 1.0,
        },
    ),
    "vega": (
        "Vega: the network takes every liquidated position over (no order into the book) and sells it "
        "off gradually: 10% of its inventory a step at most, using at most 10% of the depth within a 3% "
        "band of the touch; no ADL.",
        {
            "book_orders": False,
            "adl": False,
            "unwind_fraction": 0.1,
            "unwind_depth_share": 0.1,
            "unwind_band": 0.03,
        },
    ),
}


class LiquidationConfig(Strict):
    """How breaching accounts are closed and who pays for what is left."""

    design: Literal[tuple(LIQUIDATION_DESIGNS)] = Field(  # type: ignore[valid-type]
        default="classic",
        description="A named liquidation design: the settings it stands for apply where the scenario "
        "gives none (see docs/liquidation.md).",
    )
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
    adl_rank: Literal["pnl_leverage", "pnl_wallet", "random_start"] = Field(
        default="pnl_leverage",
        description="ADL order: PnL% x effective leverage (BitMEX), profit / wallet x margin ratio "
        "(Binance), or account order from a random start (dYdX).",
    )
    book_orders: bool = Field(
        default=True,
        description="false: no liquidation order goes into the book; the engine takes the positions over.",
    )
    unwind_fraction: float = Field(
        default=1.0, gt=0.0, le=1.0, description="Share of its inventory the engine offers per unwind."
    )
    unwind_interval: int = Field(
        default=1, ge=1, le=100_000, description="Steps between the engine's unwinds."
    )
    unwind_depth_share: float = Field(
        default=1.0,
        gt=0.0,
        le=1.0,
        description="Largest share of the resting depth within the band an unwind may take (1: no limit).",
    )
    unwind_band: float = Field(
        default=0.01, gt=0.0, le=0.5, description="How far through the touch the engine unwinds (share)."
    )
    chunk_above_notional: Money | None = Field(
        default=None,
        description="Positions above this notional are liquidated chunk_share at a time (null: all at once).",
    )
    chunk_share: float = Field(
        default=0.2, gt=0.0, le=1.0, description="Share of a large position per chunk."
    )
    cooldown_steps: int = Field(
        default=0, ge=0, le=100_000, description="Steps an account liquidated in chunks waits for the next."
    )
    backstop_ratio: float | None = Field(
        default=None,
        gt=0.0,
        lt=1.0,
        description="Below this equity / maintenance the backstop vault takes the positions over at the "
        "mark, with what is left of the collateral (null: never).",
    )
    vault_capital: Money = Field(
        default=0.0,
        description="The backstop vault's capital (its own account; with backstop_ratio). 0: the insurance "
        "fund's account is the vault.",
    )
    adl_when: Literal["fund_empty", "negative_equity"] = Field(
        default="fund_empty",
        description="ADL when the fund is empty, or only for an account whose equity at the mark is "
        "negative.",
    )
    takeover: Literal["engine", "auction"] = Field(
        default="engine",
        description="What the book does not take: the engine takes it over, or it is auctioned to the "
        "market makers (pro rata to their default-fund contributions) at auction_discount off the mark.",
    )
    auction_discount: float = Field(default=0.02, ge=0.0, le=0.5, description="Auction price discount.")
    default_fund_share: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="Share of its collateral every member pays into a default fund at the start (0: none).",
    )
    ccp_capital: Money = Field(
        default=0.0, description="The clearing house's own capital in the waterfall (skin in the game)."
    )
    assessment_cap: float = Field(
        default=0.0,
        ge=0.0,
        le=100.0,
        description="Assessments on surviving members, at most this many times their contribution.",
    )
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

    @model_validator(mode="after")
    def _apply_design(self) -> LiquidationConfig:
        # The design's settings, where the scenario does not give its own.
        for name, value in LIQUIDATION_DESIGNS[self.design][1].items():
            if name not in self.model_fields_set:
                setattr(self, name, value)
        return self
