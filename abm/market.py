"""Market: one traded instrument - its book, its fundamental value and index, its mark price and history.

A market owns:

* the **order book** of the instrument and the **order entry** agents use (every fill is settled in the
  ledger at once, under the instrument's column);
* the **fundamental value** (the spot price the future tracks: a GBM, an OU process or a constant, with
  drift and volatility a regime shock may replace) and the **index** the exchange publishes from it,
  directly or as a composite of spot venues (:mod:`abm.venues`; a shock may hold it stale or misprint
  it, or fault one venue);
* the **mark price** from the configured source (last trade, mid, index, or index plus an EMA of the
  book's basis, the EMA kept here and nowhere else), the **mark history** and the **realised
  volatility** of the mark;
* the **funding** of the perpetual (:mod:`abm.funding`): the premium index sampled from the book each
  step and the payment at the end of each interval.

Randomness: a market draws nothing itself; the model hands :meth:`Market.evolve_fundamental` a
standard normal draw from the run's generator (correlated across markets when there are several), and
:meth:`Market.publish_index` the generator for the venues' noise (drawn only when it is on).

Example:
    >>> from abm.book import OrderBook
    >>> from abm.config import FundamentalConfig, MarketConfig
    >>> from abm.ledger import Instrument, Ledger
    >>> instrument = Instrument("X", tick_size=0.5, contract_size=1.0)
    >>> ledger = Ledger([instrument])
    >>> market = Market(0, instrument, MarketConfig(tick_size=0.5), FundamentalConfig(process="constant"),
    ...                 OrderBook(), ledger, horizon=10)
    >>> maker, taker = ledger.add_accounts(2, 1e6, "noise").tolist()
    >>> market.submit_limit(maker, -1, 202, 5)   # 5 lots offered at 202 ticks = 101.0
    1
    >>> market.submit_market(taker, 1, 2)         # 2 lots bought, settled in the ledger
    2
    >>> ledger.position_of(taker), market.compute_mark()
    (2, 101.0)
"""

from __future__ import annotations

import math

import numpy as np

from abm.book import BUY, Book
from abm.book.protocol import MAX_PRICE_TICKS
from abm.config import FundamentalConfig, MarketConfig
from abm.funding import PerpetualFunding
from abm.ledger import Instrument, Ledger
from abm.venues import SpotVenues

__all__ = ["CorrelatedDraws", "Market"]


class CorrelatedDraws:
    """Standard normal draws for the fundamentals of several instruments, correlated by a matrix.

    ``draws(rng)`` takes one standard normal per instrument from the run's generator and returns
    ``L z`` with ``L L' = C`` (a Cholesky factor, or the symmetric square root when ``C`` is only
    semi-definite). A correlation regime replaces ``C`` while it runs (:meth:`override`), and the shock
    schedule puts it back every step (:meth:`reset`).

    Example:
        >>> draws = CorrelatedDraws(np.array([[1.0, 0.9], [0.9, 1.0]]))
        >>> sample = np.array([draws.draws(np.random.default_rng(seed)) for seed in range(4000)])
        >>> round(float(np.corrcoef(sample.T)[0, 1]), 1)
        0.9
    """

    def __init__(self, correlation: np.ndarray) -> None:
        self.base = np.asarray(correlation, dtype=np.float64)
        self._base_factor = self._factor(self.base)
        self._factor_now = self._base_factor
        self._overrides: dict[bytes, np.ndarray] = {}

    @staticmethod
    def _factor(matrix: np.ndarray) -> np.ndarray:
        try:
            return np.linalg.cholesky(matrix)
        except np.linalg.LinAlgError:  # semi-definite (e.g. every correlation 1): the square root
            values, vectors = np.linalg.eigh(matrix)
            return vectors * np.sqrt(np.clip(values, 0.0, None))

    def reset(self) -> None:
        """Back to the configured correlation."""
        self._factor_now = self._base_factor

    def override(self, matrix: np.ndarray) -> None:
        """Use ``matrix`` until the next :meth:`reset` (its factor is kept for the regime's next steps)."""
        key = np.ascontiguousarray(matrix, dtype=np.float64).tobytes()
        factor = self._overrides.get(key)
        if factor is None:
            factor = self._overrides[key] = self._factor(np.asarray(matrix, dtype=np.float64))
        self._factor_now = factor

    def draws(self, rng: np.random.Generator) -> np.ndarray:
        """One correlated standard normal per instrument."""
        return self._factor_now @ rng.standard_normal(len(self.base))


class Market:
    """One instrument's market.

    Args:
        column: The instrument's column in the ledger.
        instrument: Its name, tick and contract size.
        market: The scenario's market settings (mark source, volatility window, initial price).
        fundamental: The fundamental value process.
        book: The instrument's order book.
        ledger: The ledger fills are settled in.
        horizon: Steps of the run (the length of the mark history).

    Attributes:
        fundamental: The fundamental value now.
        fundamental_level: The level an OU process reverts to.
        index: The published index (the fundamental, or the spot venues' composite; a shock may hold
            it stale or misprint it).
        venues: The spot venues of the index (None when the index is the fundamental itself).
        mark: The mark price at the end of the last step (the initial price before the first).
        realised_vol: Sample sd of one-step log mark returns over the volatility window.
        liquidity_withdrawal: Share of maker depth withdrawn by shocks this step.
        spread_factor: Factor on the makers' half spread and level spacing set by shocks this step.
        agent_requests: Agent actions that reached the book (orders and cancel requests).
        funding: The perpetual's funding (None when ``market.funding.enabled`` is false).
        funding_paid: Funding the paying side paid in this instrument this step (scheduled payments and
            funding_spike shocks).
    """

    def __init__(
        self,
        column: int,
        instrument: Instrument,
        market: MarketConfig,
        fundamental: FundamentalConfig,
        book: Book,
        ledger: Ledger,
        horizon: int,
    ) -> None:
        self.column = column
        self.instrument = instrument
        self.name = instrument.name
        self.settings = market
        self.process = fundamental
        self.book = book
        self.ledger = ledger
        self.tick_size = float(instrument.tick_size)
        self.contract_size = float(instrument.contract_size)
        self.fundamental = float(fundamental.initial or market.initial_price)
        self.fundamental_level = float(fundamental.long_run or self.fundamental)
        self.index = self.fundamental
        self.index_stale = False
        self.index_error = 0.0
        # Drift / volatility of the fundamental set by a regime shock (None: the configured values).
        self.regime_drift: float | None = None
        self.regime_volatility: float | None = None
        self.mark = float(market.initial_price)
        self._basis_ema = 0.0
        self._source = market.mark_price.source
        self._alpha = 2.0 / (market.mark_price.ema_steps + 1.0)
        self._marks = np.full(horizon + 1, np.nan)
        self._marks[0] = self.mark
        # Their logs, taken once per mark (the realised volatility reads a window of them each step).
        self._log_marks = np.full(horizon + 1, np.nan)
        np.log(self._marks[:1], out=self._log_marks[:1])
        self.realised_vol = 0.0
        self.liquidity_withdrawal = 0.0
        self.spread_factor = 1.0
        self.agent_requests = 0
        self.funding = (
            PerpetualFunding(market.funding, self.tick_size, self.contract_size)
            if market.funding.enabled
            else None
        )
        self.funding_paid = 0.0
        self.venues = SpotVenues(market.index, self.fundamental) if market.index.composite else None
        self._protection = market.market_order_protection  # None: market orders sweep without a limit

    # ------------------------------------------------------------------ fundamental and index

    def reset_fundamental_effects(self) -> None:
        """Back to the configured process and a live, correct index (before shocks lay theirs on top)."""
        self.regime_drift = None
        self.regime_volatility = None
        self.index_stale = False
        self.index_error = 0.0
        self.funding_paid = 0.0  # this step's, counted from here (the shocks come next)
        if self.venues is not None:
            self.venues.reset_faults()

    def fundamental_moves(self) -> bool:
        """Whether the fundamental moves this step (and so needs a random draw)."""
        spec = self.process
        regime = self.regime_drift is not None or self.regime_volatility is not None
        drift = spec.drift if self.regime_drift is None else self.regime_drift
        volatility = spec.volatility if self.regime_volatility is None else self.regime_volatility
        return not (spec.process == "constant" and not regime or volatility == 0.0 and drift == 0.0)

    def evolve_fundamental(self, draw: float) -> None:
        """One step of the fundamental process, given a standard normal ``draw``.

        GBM: ``F *= exp(drift + sigma z)``; OU in logs: ``F *= exp(kappa ln(L / F) + drift + sigma z)``,
        and a drift regime moves the level ``L`` with it (a repricing, not a gap to revert from).
        """
        spec = self.process
        drift = spec.drift if self.regime_drift is None else self.regime_drift
        volatility = spec.volatility if self.regime_volatility is None else self.regime_volatility
        shock = volatility * draw
        if spec.process == "ou":
            log_gap = math.log(self.fundamental_level / self.fundamental)
            self.fundamental *= math.exp(spec.mean_reversion * log_gap + drift + shock)
            if self.regime_drift is not None:
                self.fundamental_level *= math.exp(self.regime_drift)
        else:
            self.fundamental *= math.exp(drift + shock)

    def jump(self, size: float) -> None:
        """The fundamental jumps by ``size`` (a fraction; -0.1 is a 10% fall), its level too."""
        self.fundamental *= 1.0 + size
        self.fundamental_level *= 1.0 + size

    def publish_index(self, rng: np.random.Generator | None = None) -> None:
        """Publish the index: the fundamental, or the venues' composite (unless a shock holds it stale).

        The venues print every step, stale or not (their own faults are theirs); ``stale_index`` and
        ``index_misprint`` act on the published composite, as a fault of the exchange's own feed.
        """
        spot = self.fundamental if self.venues is None else self.venues.publish(self.fundamental, rng)
        if not self.index_stale:
            self.index = spot * (1.0 + self.index_error)

    @property
    def index_sources(self) -> int:
        """Spot venues in the last composite (1 when the index is the fundamental itself)."""
        return 1 if self.venues is None else self.venues.sources

    # ------------------------------------------------------------------ the mark

    def compute_mark(self) -> float:
        """The mark price from the configured source (falls back to the last mark when undefined)."""
        source = self._source
        book = self.book
        if source == "index":
            return self.index
        if source == "last":
            last = book.last_price
            return last * self.tick_size if last is not None else self.mark
        mid = book.mid()
        if mid is None:
            last = book.last_price
            price = last * self.tick_size if last is not None else self.mark
        else:
            price = mid * self.tick_size
        if source == "mid":
            return price
        alpha = self._alpha
        return self.index + (1.0 - alpha) * self._basis_ema + alpha * (price - self.index)

    def close_step(self, step: int) -> None:
        """End of a step: the mark from the book left by the liquidations, the basis EMA, the history."""
        self.mark = self.compute_mark()
        if self._source == "index_ema_basis":
            mid = self.book.mid()
            if mid is not None:
                basis = mid * self.tick_size - self.index
                self._basis_ema += self._alpha * (basis - self._basis_ema)
        self._marks[step + 1] = self.mark
        np.log(self._marks[step + 1 : step + 2], out=self._log_marks[step + 1 : step + 2])

    def pay_funding(self, rate: float) -> float:
        """Every position in this instrument pays ``rate x position x mark x contract_size`` now."""
        paid = self.ledger.pay_funding(self.column, rate, self.mark)
        self.funding_paid += paid
        return paid

    def accrue_funding(self, step: int) -> None:
        """End of a step, after the mark: sample the premium index; at the end of an interval, pay."""
        funding = self.funding
        if funding is None:
            return
        funding.sample(self.book, self.index, self.mark)
        if funding.due(step):
            self.funding_paid += funding.settle(self.ledger, self.column, self.mark)

    def mark_history(self, step: int) -> np.ndarray:
        """Marks ``0..step`` (the mark before the first step first)."""
        return self._marks[: step + 1]

    @property
    def marks(self) -> np.ndarray:
        """The whole mark history array (NaN beyond the steps run)."""
        return self._marks

    def update_realised_vol(self, step: int) -> None:
        """Sample sd (ddof 1) of the one-step log mark returns over the volatility window."""
        window = self.settings.vol_window
        start = max(0, step - window)
        if step + 1 - start < 3:
            return
        # np.std(np.diff(np.log(marks)), ddof=1) written out in the same operations, so the same bits
        # (tested), without np.std's per-call overhead: this runs every step.
        log_marks = self._log_marks
        returns = log_marks[start + 1 : step + 1] - log_marks[start:step]
        deviation = returns - np.add.reduce(returns) / len(returns)
        np.multiply(deviation, deviation, out=deviation)
        self.realised_vol = math.sqrt(np.add.reduce(deviation) / (len(returns) - 1))

    def momentum(self, lookback: int, step: int) -> float:
        """Log return of the mark over the last ``lookback`` steps (0 before enough history)."""
        if step - lookback < 0:
            return 0.0
        return math.log(self._marks[step] / self._marks[step - lookback])

    def mispricing(self) -> float:
        """Log of fundamental over the current price (positive: the future is cheap)."""
        mid = self.book.mid()
        price = mid * self.tick_size if mid is not None else self.mark
        return math.log(self.fundamental / price)

    # ------------------------------------------------------------------ order entry

    def _settle(self, fills) -> int:
        """Settle an agent order's fills (if any) in this step; return the lots filled."""
        if not fills:
            return 0
        lots, _ = self.ledger.settle(fills, self.column, -1, is_liquidation=False)
        return lots

    def cancel_orders(self, account: int) -> int:
        """Withdraw every resting order of an account (an agent's cancel request); returns lots removed."""
        self.agent_requests += 1
        return self.book.cancel_all(account)

    def submit_limit(self, account: int, side: int, price_ticks: int, quantity: int) -> int:
        """Submit a limit order for an account; fills are settled at once. Returns the order id."""
        self.agent_requests += 1
        order_id, fills = self.book.submit_limit(account, side, max(1, price_ticks), quantity)
        self._settle(fills)
        return order_id

    def submit_market(self, account: int, side: int, quantity: int) -> int:
        """Submit a market (IOC) order for an account; returns the lots filled.

        With ``market_order_protection`` it fills only up to its protection limit
        (:meth:`protection_limit`); what is left is cancelled or rests there as a limit order.
        """
        self.agent_requests += 1
        if self._protection is not None:
            return self._protected_market(account, side, quantity)
        return self._settle(self.book.submit_market(account, side, quantity))

    def protection_limit(self, side: int) -> int | None:
        """The worst price in ticks a market order on ``side`` may fill at now (None: no protection).

        A buy's is ``floor(reference x (1 + band))``, a sell's ``ceil(reference x (1 - band))`` (at least
        one tick). The reference is the best opposite price (``reference: touch``; the mark when that
        side of the book is empty) or the mark at the end of the last step (``reference: mark``).
        """
        protection = self._protection
        if protection is None:
            return None
        best = None
        if protection.reference == "touch":
            best = self.book.best_ask() if side == BUY else self.book.best_bid()
        reference = best if best is not None else self.mark / self.tick_size
        # The small margins keep a limit that is a whole number of ticks from rounding one tick away.
        if side == BUY:
            return min(MAX_PRICE_TICKS - 1, math.floor(reference * (1.0 + protection.band) + 1e-9))
        return max(1, math.ceil(reference * (1.0 - protection.band) - 1e-9))

    def _protected_market(self, account: int, side: int, quantity: int) -> int:
        limit = self.protection_limit(side)
        filled = self._settle(self.book.submit_market(account, side, quantity, limit_price=limit))
        if filled < quantity and self._protection.remainder == "rest":
            # CME's rule: the rest stays in the book at the protection limit (it cannot cross there).
            _, fills = self.book.submit_limit(account, side, limit, quantity - filled)
            self._settle(fills)
        return filled

    def quote_reference(self, anchor_weight: float = 0.0) -> float:
        """Reference price in ticks for quoting: mid, else last trade, else fundamental; blended with it."""
        return self.book.quote_reference(anchor_weight, self.fundamental / self.tick_size)

    def passive_price(self, side: int, offset: int = 0) -> int:
        """A limit price ``offset`` ticks behind the touch on ``side`` (negative: improve, never cross).

        With that side of the book empty: behind the last trade, or before any trade behind the
        fundamental (see ``Book.passive_price``).
        """
        return self.book.passive_price(side, offset, self.fundamental / self.tick_size)

    def replace_with_passive(self, account: int, side: int, offset: int, quantity: int) -> int:
        """Withdraw an account's orders and rest one at :meth:`passive_price` (two requests, one call).

        Returns:
            The new order's id.
        """
        self.agent_requests += 2
        order_id, fills = self.book.replace_with_passive(
            account, side, offset, quantity, self.fundamental / self.tick_size
        )
        self._settle(fills)
        return order_id

    def replace_with_market(self, account: int, side: int, quantity: int) -> int:
        """Withdraw an account's orders and send a market order (two requests, one call).

        Returns:
            The lots filled.
        """
        self.agent_requests += 2
        if self._protection is not None:
            self.book.cancel_all(account)
            return self._protected_market(account, side, quantity)
        return self._settle(self.book.replace_with_market(account, side, quantity))

    def requote(
        self,
        keep_queue_priority: bool,
        account: int,
        anchor_weight: float,
        shift: float,
        half_spread: float,
        spacing: float,
        levels: int,
        level_size: int,
        size_growth: float,
        size_scale: float,
        quote_bid: bool,
        quote_ask: bool,
    ) -> int:
        """A market maker's requote: cancel, then a ladder around the reference left.

        See ``Book.requote_ladder``; with ``keep_queue_priority``, ``Book.amend_ladder`` (the levels
        that did not move keep their orders).

        Returns:
            The orders sent.
        """
        requote = self.book.amend_ladder if keep_queue_priority else self.book.requote_ladder
        sent, crossed = requote(
            account,
            anchor_weight,
            self.fundamental / self.tick_size,
            shift,
            half_spread,
            spacing,
            levels,
            level_size,
            size_growth,
            size_scale,
            quote_bid,
            quote_ask,
        )
        for fills in crossed:
            self.ledger.settle(fills, self.column, -1, is_liquidation=False)
        self.agent_requests += 1 + sent  # the cancel request and the orders
        return sent
