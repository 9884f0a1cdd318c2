"""Perpetual funding: the premium index sampled from the book, a rate every interval, paid through the ledger.

The form is the one Binance publishes for its USD-M perpetuals (docs/references.md):

* every step, the **premium index** ``p = (max(0, impact_bid - index) - max(0, index - impact_ask)) /
  index``: the impact bid (ask) is the average price a market sell (buy) of the impact notional would
  get in the book now, so ``p`` is zero while the index lies between them and measures how far the book
  as a whole trades above or below the index otherwise (:func:`premium_index`);
* at the end of every ``interval`` steps the **funding rate** ``F = P + clamp(interest - P, -clamp,
  +clamp)``, limited to ``+-cap``, where ``P`` is the time-weighted average of the interval's samples
  (the k-th sample weighted k, so the recent ones count more: :func:`funding_rate`);
* every position then pays ``F x position x mark x contract_size`` (longs pay shorts when ``F > 0``),
  journalled as ``funding`` (:meth:`abm.ledger.Ledger.pay_funding`; zero-sum because positions net to
  zero).

A side whose book cannot fill the impact notional is priced over the lots it has (an empty side
contributes nothing): the premium then understates a one-sided book rather than inventing a price.

Example:
    >>> premium_index(impact_bid=101.0, impact_ask=101.4, index=100.0)   # the book 1% above the index
    0.01
    >>> premium_index(impact_bid=99.9, impact_ask=100.1, index=100.0)    # the index inside: no premium
    0.0
    >>> funding_rate(0.0, interest=0.0001, clamp=0.0005, cap=0.0075)     # calm: the interest term alone
    0.0001
    >>> funding_rate(-0.02, interest=0.0001, clamp=0.0005, cap=0.0075)   # far below the index: the cap
    -0.0075
"""

from __future__ import annotations

import math

from abm.book import BUY, SELL
from abm.config.market import FundingConfig

__all__ = ["DEFAULT_IMPACT_LOTS", "PerpetualFunding", "funding_rate", "premium_index"]

# The impact size when the scenario gives no impact_notional: a scale-free stand-in for Binance's
# impact margin notional (200 USDT over the initial margin rate at the highest leverage).
DEFAULT_IMPACT_LOTS = 10


def premium_index(impact_bid: float | None, impact_ask: float | None, index: float) -> float:
    """``(max(0, impact_bid - index) - max(0, index - impact_ask)) / index``; a missing side counts 0."""
    above = max(0.0, impact_bid - index) if impact_bid is not None else 0.0
    below = max(0.0, index - impact_ask) if impact_ask is not None else 0.0
    return (above - below) / index


def funding_rate(average_premium: float, interest: float, clamp: float, cap: float) -> float:
    """``P + clamp(interest - P, -clamp, +clamp)``, then limited to ``[-cap, +cap]``."""
    rate = average_premium + min(max(interest - average_premium, -clamp), clamp)
    return min(max(rate, -cap), cap)


class PerpetualFunding:
    """One instrument's funding: the premium samples of the current interval and the payments.

    Args:
        settings: The instrument's ``funding`` settings.
        tick_size: Price of one tick (the book holds prices in ticks).
        contract_size: Units of underlying per lot.

    Attributes:
        premium: The premium index sampled this step.
        rate: The funding rate the interval's samples give so far (the estimate a venue shows); on a
            payment step, the rate paid.
        payments: Payments made so far.
    """

    def __init__(self, settings: FundingConfig, tick_size: float, contract_size: float) -> None:
        self.settings = settings
        self.tick_size = float(tick_size)
        self.contract_size = float(contract_size)
        self.premium = 0.0
        self.rate = 0.0
        self.payments = 0
        self._weighted_sum = 0.0  # sum of k x premium_k over the interval's samples
        self._weights = 0  # sum of k
        self._samples = 0

    def impact_lots(self, mark: float) -> int:
        """Lots of the impact order: the impact notional at the mark (default 10 lots)."""
        notional = self.settings.impact_notional
        if notional is None:
            return DEFAULT_IMPACT_LOTS
        return max(1, math.ceil(notional / (mark * self.contract_size)))

    def impact_price(self, book, side: int, lots: int) -> float | None:
        """Average price of a hypothetical market order of ``lots`` on ``side`` (None: that side is empty)."""
        filled, cost = book.market_order_cost(side, lots)
        if filled == 0:
            return None
        return cost / filled * self.tick_size

    def sample(self, book, index: float, mark: float) -> float:
        """Sample this step's premium index and update the interval's estimate of the rate."""
        lots = self.impact_lots(mark)
        impact_bid = self.impact_price(book, SELL, lots)  # a sell walks the bids
        impact_ask = self.impact_price(book, BUY, lots)
        self.premium = premium_index(impact_bid, impact_ask, index)
        self._samples += 1
        self._weighted_sum += self._samples * self.premium
        self._weights += self._samples
        settings = self.settings
        self.rate = funding_rate(
            self._weighted_sum / self._weights, settings.interest_rate, settings.clamp, settings.cap
        )
        return self.premium

    def due(self, step: int) -> bool:
        """Whether step ``step`` ends a funding interval."""
        return (step + 1) % self.settings.interval == 0

    def settle(self, ledger, column: int, mark: float) -> float:
        """Pay the interval's rate on every position at ``mark`` and start the next interval.

        Returns:
            The gross amount the paying side paid.
        """
        paid = ledger.pay_funding(column, self.rate, mark)
        self.payments += 1
        self._weighted_sum = 0.0
        self._weights = 0
        self._samples = 0
        return paid
