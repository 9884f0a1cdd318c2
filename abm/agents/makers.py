"""Market makers: a depth profile quoted around a reference price every step."""

from __future__ import annotations

from abm.agents.base import TraderAgent
from abm.book import MAX_PRICE_TICKS
from abm.config import MarketMakerGroup

__all__ = ["MarketMaker"]

# The widest a ladder may become by volatility widening: a quarter of the books' price range (the
# schema keeps start prices below an eighth of it), so that a violent volatility spike makes the maker
# quote far away rather than send a ladder no book can hold.
MAX_LADDER_SPAN_TICKS = MAX_PRICE_TICKS // 4


class MarketMaker(TraderAgent):
    """Quotes a depth profile around a reference price every step.

    The reference is the mid (or last trade, or the fundamental when the book is empty), blended with
    the fundamental by ``anchor_weight`` and shifted against inventory by ``skew_ticks`` per lot. The
    half spread widens with realised volatility and a share of the depth is pulled when volatility
    exceeds ``vol_pull_ratio`` times the calm baseline (combined with any withdrawal a shock asks, and
    any widening: both are the market's, set by its shocks each step). The widening stops where the
    ladder would span a quarter of the books' price range (``MAX_LADDER_SPAN_TICKS``).
    No quotes that would grow inventory past the limit. A maker of several instruments quotes each book
    from the same account, its inventory in each instrument apart.
    """

    kind = "market_maker"

    def liquidity_pull(self, vol_ratio: float, market=None) -> float:
        """Share of the maker's depth withheld this step: its volatility pull combined with shocks'."""
        group: MarketMakerGroup = self.group
        market = self.market if market is None else market
        pull = group.pull_fraction if vol_ratio > group.vol_pull_ratio else 0.0
        return 1.0 - (1.0 - pull) * (1.0 - market.liquidity_withdrawal)

    def step(self) -> None:
        """Cancel and requote, in every market the maker quotes."""
        for market in self.markets:
            self._requote(market)

    def _requote(self, market) -> None:
        group: MarketMakerGroup = self.group
        inventory = self.model.ledger.position_of(self.account, market.column)
        vol_ratio = market.realised_vol / group.vol_baseline if market.realised_vol > 0 else 1.0
        widen = max(1.0, 1.0 + group.vol_widen * (vol_ratio - 1.0))
        size_scale = 1.0 - self.liquidity_pull(vol_ratio, market)
        half_spread, spacing = group.half_spread_ticks, group.level_spacing_ticks
        factor = market.spread_factor  # a liquidity shock widens the quotes, in whole ticks
        if factor != 1.0:
            half_spread, spacing = max(1, round(half_spread * factor)), max(1, round(spacing * factor))
        span = half_spread + max(group.levels - 1, 0) * spacing
        if not span * widen <= MAX_LADDER_SPAN_TICKS:  # also an infinite widening (a baseline of ~0)
            widen = MAX_LADDER_SPAN_TICKS / max(span, 1)
        # One book call for the cancel and the ladder (makers send most of a run's orders; the
        # compiled book does it all in one kernel call). The reference is taken after the cancel, so it
        # is the mid without the maker's own quotes, shifted against its inventory.
        market.requote(
            group.keep_queue_priority,
            self.account,
            group.anchor_weight,
            group.skew_ticks * inventory,
            half_spread * widen,
            spacing * widen,
            group.levels,
            group.level_size,
            group.size_growth,
            size_scale,
            inventory < group.inventory_limit,
            inventory > -group.inventory_limit,
        )
