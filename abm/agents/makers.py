"""Market makers: a depth profile quoted around a reference price every step."""

from __future__ import annotations

from abm.agents.base import TraderAgent
from abm.config import MarketMakerGroup

__all__ = ["MarketMaker"]


class MarketMaker(TraderAgent):
    """Quotes a depth profile around a reference price every step.

    The reference is the mid (or last trade, or the fundamental when the book is empty), blended with
    the fundamental by ``anchor_weight`` and shifted against inventory by ``skew_ticks`` per lot. The
    half spread widens with realised volatility and a share of the depth is pulled when volatility
    exceeds ``vol_pull_ratio`` times the calm baseline (combined with any withdrawal a shock asks).
    No quotes that would grow inventory past the limit.
    """

    kind = "market_maker"

    def liquidity_pull(self, vol_ratio: float) -> float:
        """Share of the maker's depth withheld this step: its volatility pull combined with shocks'."""
        group: MarketMakerGroup = self.group
        pull = group.pull_fraction if vol_ratio > group.vol_pull_ratio else 0.0
        return 1.0 - (1.0 - pull) * (1.0 - self.market.liquidity_withdrawal)

    def step(self) -> None:
        """Cancel and requote."""
        market = self.market
        group: MarketMakerGroup = self.group
        inventory = self.position
        vol_ratio = market.realised_vol / group.vol_baseline if market.realised_vol > 0 else 1.0
        widen = max(1.0, 1.0 + group.vol_widen * (vol_ratio - 1.0))
        size_scale = 1.0 - self.liquidity_pull(vol_ratio)
        # One book call for the cancel and the ladder (makers send most of a run's orders; the
        # compiled book does it all in one kernel call). The reference is taken after the cancel, so it
        # is the mid without the maker's own quotes, shifted against its inventory.
        market.requote(
            self.account,
            group.anchor_weight,
            group.skew_ticks * inventory,
            group.half_spread_ticks * widen,
            group.level_spacing_ticks * widen,
            group.levels,
            group.level_size,
            group.size_growth,
            size_scale,
            inventory < group.inventory_limit,
            inventory > -group.inventory_limit,
        )
