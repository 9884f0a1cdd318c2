"""An index made from several spot venues: each venue's price, its faults, and the exchange's pricing rule.

With ``market.index.venues > 1`` an instrument's index is not the fundamental itself but a composite of
``venues`` spot prices, each the fundamental times ``exp(d_k)`` where the venue's own deviation follows
``d_k <- persistence x d_k + noise x z_k`` (one standard normal per venue and step from the run's
generator, drawn only when ``noise > 0``). A ``venue_fault`` shock makes one venue go **stale** (it keeps
printing the price it had when the fault began), **misprint** (its price times ``1 + size``) or **drop**
out (no price) while it runs.

The exchange's rule (:class:`abm.config.market.IndexConfig`) forms the index from the venues that have a
price: those that have not updated for ``stale_after`` steps or more are left out; then, with
``outlier_band`` and at least three venues left, those whose log distance from their median is above
the band; the index is the ``median`` or the (weighted) ``mean`` of the rest. With no venue left the
index holds its last value, as a stale feed does. This is the shape of the index rules large perpetual
venues publish (a weighted composite of spot venues that drops stale and outlying ones; BitMEX's, in
docs/references.md).

Example:
    >>> import numpy as np
    >>> from abm.config.market import IndexConfig
    >>> venues = SpotVenues(IndexConfig(venues=3, method="mean"), 100.0)
    >>> venues.fault(2, "misprint", -0.30)           # one venue prints 30% low
    >>> round(venues.publish(100.0, None), 4)         # the mean follows it: (100 + 100 + 70) / 3
    90.0
    >>> venues = SpotVenues(IndexConfig(venues=3, method="median"), 100.0)
    >>> venues.fault(2, "misprint", -0.30)
    >>> venues.publish(100.0, None), venues.sources   # the median does not
    (100.0, 3)
"""

from __future__ import annotations

import math

import numpy as np

from abm.config.market import IndexConfig

__all__ = ["FAULT_MODES", "SpotVenues"]

FAULT_MODES = ("stale", "misprint", "drop")


class SpotVenues:
    """The spot venues of one instrument's index and the rule that combines them.

    Args:
        settings: The instrument's ``index`` settings.
        initial: The fundamental at the start (every venue's first price).

    Attributes:
        prices: Each venue's last printed price (a dropped venue's is left out of the composite).
        sources: Venues in the last composite.
        index: The last composite.
    """

    def __init__(self, settings: IndexConfig, initial: float) -> None:
        self.settings = settings
        n = settings.venues
        self.deviation = np.zeros(n)
        self.prices = np.full(n, float(initial))
        self.weights = np.asarray(settings.weights if settings.weights is not None else np.ones(n), float)
        self._unchanged = np.zeros(n, dtype=np.int64)  # steps each venue's price has not changed
        self.index = float(initial)
        self.sources = n
        self.reset_faults()

    def reset_faults(self) -> None:
        """Every venue live and correct (before the running shocks lay their faults on top)."""
        n = self.settings.venues
        self._stale = np.zeros(n, dtype=bool)
        self._dropped = np.zeros(n, dtype=bool)
        self._misprint = np.zeros(n)

    def fault(self, venue: int, mode: str, size: float = 0.0) -> None:
        """One venue is faulty this step: ``stale``, ``misprint`` (by ``size``) or ``drop``."""
        if mode == "stale":
            self._stale[venue] = True
        elif mode == "drop":
            self._dropped[venue] = True
        elif mode == "misprint":
            self._misprint[venue] = size
        else:
            raise ValueError(f"unknown venue fault {mode!r} (one of {', '.join(FAULT_MODES)})")

    def publish(self, fundamental: float, rng: np.random.Generator | None) -> float:
        """Move the venues, print their prices, and return the composite index."""
        settings = self.settings
        if settings.noise > 0.0:
            self.deviation *= settings.persistence
            self.deviation += settings.noise * rng.standard_normal(settings.venues)
        fresh = fundamental * np.exp(self.deviation) * (1.0 + self._misprint)
        live = ~self._stale
        self.prices = np.where(live, fresh, self.prices)
        # Steps since each venue's last update (a feed's timestamp, not its price: a quiet live venue
        # is not stale).
        self._unchanged = np.where(live, 0, self._unchanged + 1)
        usable = ~self._dropped
        if settings.stale_after is not None:
            usable &= self._unchanged < settings.stale_after
        prices, weights = self.prices[usable], self.weights[usable]
        if settings.outlier_band is not None and len(prices) > 2:
            median = float(np.median(prices))
            near = np.abs(np.log(prices / median)) <= settings.outlier_band
            prices, weights = prices[near], weights[near]
        self.sources = len(prices)
        if not len(prices):
            return self.index  # no venue to price from: the index holds, as a stale feed does
        if settings.method == "median":
            self.index = float(np.median(prices))
        else:
            total = float(weights.sum())
            self.index = float(prices @ weights / total) if total > 0 else float(np.mean(prices))
        if not math.isfinite(self.index):
            raise FloatingPointError(f"the composite index is not finite (venue prices {self.prices})")
        return self.index
