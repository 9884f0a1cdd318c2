"""The built-in margin rules: fixed, tiered, EWMA volatility, historical VaR and ES, dynamic leverage.

Each rule computes its raw ``(imr, mmr)`` from the mark-price history; the formulas, and the exchange
or clearing-house practice each one mirrors, are in ``docs/margin-rules.md``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from statistics import NormalDist

import numpy as np

from abm.margin.base import MarginRule, log_returns
from abm.margin.settings import (
    RULE_SETTINGS,
    DynamicLeverageMargin,
    EwmaVolMargin,
    ExpectedShortfallMargin,
    FixedMargin,
    HistoricalVarMargin,
    TieredMargin,
)
from abm.registry import Registry, literal_name

__all__ = [
    "BUILTIN_RULE_CLASSES",
    "RULE_CLASSES",
    "implements",
    "DynamicLeverageRule",
    "EwmaVolRule",
    "ExpectedShortfallRule",
    "FixedRule",
    "HistoricalVarRule",
    "TieredRule",
    "two_sided_tail_loss",
]

_NAN = float("nan")

# The built-in rule classes by rule name (their settings are in abm.margin.settings.RULE_SETTINGS).
RULE_CLASSES: Registry[type[MarginRule]] = Registry("margin rule class")


def implements(settings: type) -> Callable[[type[MarginRule]], type[MarginRule]]:
    """Register a rule class as the implementation of a registered settings model."""
    name = literal_name(settings, "rule")
    RULE_SETTINGS[name]  # a class for a rule without settings is a mistake: fail at import

    def register(cls: type[MarginRule]) -> type[MarginRule]:
        RULE_CLASSES.add(name, cls)
        return cls

    return register


@implements(FixedMargin)
class FixedRule(MarginRule):
    """Constant rates: ``imr = initial``, ``mmr = maintenance``."""

    config: FixedMargin

    def rates(self, step: int, prices: np.ndarray) -> tuple[float, float]:
        """Return the configured ``(initial, maintenance)``."""
        return self.config.initial, self.config.maintenance

    def initial_rates(self) -> tuple[float, float]:
        """Return the configured ``(initial, maintenance)``."""
        return self.config.initial, self.config.maintenance

    def window_rates(self, prices: np.ndarray) -> tuple[float, float]:
        """Return the configured rates: a constant rule is its own floor."""
        return self.config.initial, self.config.maintenance


@implements(TieredMargin)
class TieredRule(MarginRule):
    """Rates by notional bracket; the base bracket's rates are the policy's ``imr``/``mmr``."""

    config: TieredMargin

    def rates(self, step: int, prices: np.ndarray) -> tuple[float, float]:
        """Return the first bracket's ``(initial, maintenance)``."""
        first = self.config.tiers[0]
        return first.initial, first.maintenance

    def initial_rates(self) -> tuple[float, float]:
        """Return the first bracket's ``(initial, maintenance)``."""
        return self.rates(0, np.empty(0))

    def window_rates(self, prices: np.ndarray) -> tuple[float, float]:
        """Return the first bracket's rates: a constant rule is its own floor."""
        return self.rates(0, prices)

    def brackets(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return ``(notional_floors, initial_rates, maintenance_rates)`` of the configured tiers."""
        tiers = self.config.tiers
        return (
            np.array([t.notional_floor for t in tiers], dtype=np.float64),
            np.array([t.initial for t in tiers], dtype=np.float64),
            np.array([t.maintenance for t in tiers], dtype=np.float64),
        )


class _EwmaVariance:
    """Running EWMA variance of one-step log returns, caught up incrementally at each call.

    ``sigma^2_t = decay * sigma^2_{t-1} + (1 - decay) * r_t^2``. With no starting variance it waits for
    ``warmup`` returns and starts from their sample variance (ddof=1).
    """

    def __init__(self, decay: float, initial_variance: float | None, warmup: int) -> None:
        self.decay = decay
        self.variance = initial_variance
        self.warmup = warmup
        self.consumed = 0  # returns r_1..r_consumed are already in `variance`

    def update(self, prices: np.ndarray) -> None:
        n_returns = prices.size - 1
        if n_returns <= self.consumed:
            return
        if self.variance is None:
            if n_returns < self.warmup:
                return
            self.variance = float(np.var(log_returns(prices[: self.warmup + 1]), ddof=1))
            self.consumed = self.warmup
            if n_returns == self.consumed:
                return
        new_returns = log_returns(prices[self.consumed :])
        # Closed form of k recursive updates: decay^k * var + (1-decay) * sum decay^(k-1-j) r_j^2.
        k = new_returns.size
        weights = (1.0 - self.decay) * self.decay ** np.arange(k - 1, -1, -1, dtype=np.float64)
        self.variance = float(self.decay**k * self.variance + weights @ (new_returns * new_returns))
        self.consumed = n_returns

    @property
    def sigma(self) -> float:
        return _NAN if self.variance is None else math.sqrt(self.variance)


def _sample_sigma(prices: np.ndarray) -> float:
    """Sample standard deviation (ddof=1) of the one-step log returns of ``prices`` (NaN if < 2)."""
    returns = log_returns(prices)
    return float(np.std(returns, ddof=1)) if returns.size >= 2 else _NAN


class _RiskBasedRule(MarginRule):
    """Shared clipping of the risk-based rules: ``mmr = clip(x, floor, cap)``, ``imr = min(m * mmr, 1)``."""

    config: EwmaVolMargin | HistoricalVarMargin | ExpectedShortfallMargin

    def _pair(self, maintenance_figure: float) -> tuple[float, float]:
        mmr = float(np.clip(maintenance_figure, self.config.floor, self.config.cap))
        return min(self.config.initial_multiple * mmr, 1.0), mmr

    @property
    def _z(self) -> float:
        return NormalDist().inv_cdf(self.config.confidence)


@implements(EwmaVolMargin)
class EwmaVolRule(_RiskBasedRule):
    """``mmr = clip(z(confidence) * sigma_ewma * sqrt(horizon), floor, cap)``, ``imr = multiple * mmr``."""

    config: EwmaVolMargin

    def __init__(self, config: EwmaVolMargin) -> None:
        super().__init__(config)
        self._ewma: _EwmaVariance | None = None

    def _gaussian_mmr(self, sigma: float) -> float:
        return self._z * sigma * math.sqrt(self.config.horizon)

    def _tracker(self) -> _EwmaVariance:
        if self._ewma is None:
            start = self.config.initial_sigma
            self._ewma = _EwmaVariance(
                self.config.decay, None if start is None else start**2, self.config.min_observations
            )
        return self._ewma

    def rates(self, step: int, prices: np.ndarray) -> tuple[float, float]:
        """Update the EWMA with the new returns and return the clipped Gaussian rates."""
        tracker = self._tracker()
        tracker.update(prices)
        if tracker.variance is None:
            return self._pair(self.config.floor)
        return self._pair(self._gaussian_mmr(tracker.sigma))

    def initial_rates(self) -> tuple[float, float]:
        """Rates from ``initial_sigma``, or the floor when it is not set."""
        start = self.config.initial_sigma
        return self._pair(self.config.floor if start is None else self._gaussian_mmr(start))

    def figures(self) -> dict[str, float]:
        """Return ``sigma``, the EWMA per-step volatility (NaN during warm-up)."""
        sigma = self._ewma.sigma if self._ewma is not None else (self.config.initial_sigma or _NAN)
        return {"sigma": sigma}

    def stressed_rates(self, stressed_volatility: float) -> tuple[float, float]:
        """Rates with ``sigma = stressed_volatility``."""
        return self._pair(self._gaussian_mmr(stressed_volatility))

    def window_rates(self, prices: np.ndarray) -> tuple[float, float] | None:
        """Rates with sigma = sample sd of the window's one-step log returns (a long-window volatility)."""
        if prices.size - 1 < self.config.min_observations:
            return None
        return self._pair(self._gaussian_mmr(_sample_sigma(prices)))


def _horizon_returns(prices: np.ndarray, horizon: int, count: int) -> np.ndarray:
    """The last ``count`` overlapping horizon log returns ``ln(p_t / p_{t-horizon})``."""
    window = prices[-(count + horizon) :]
    if window.size <= horizon:
        return np.empty(0, dtype=np.float64)
    return np.log(window[horizon:] / window[:-horizon])


def two_sided_tail_loss(horizon_returns: np.ndarray, confidence: float) -> tuple[float, float]:
    """Historical VaR and Expected Shortfall, as price-move fractions, for the worse of long and short.

    With ``q_lo = quantile(R, 1 - c)`` and ``q_hi = quantile(R, c)`` (numpy's linear interpolation)::

        VaR = max(1 - exp(q_lo), exp(q_hi) - 1, 0)
        ES  = max(mean(1 - exp(R) | R <= q_lo), mean(exp(R) - 1 | R >= q_hi), 0)

    ``1 - exp(R)`` is the fraction of notional a long loses and ``exp(R) - 1`` what a short loses.

    Args:
        horizon_returns: Horizon log returns.
        confidence: Confidence level ``c`` in (0.5, 1).

    Returns:
        ``(var, es)``.
    """
    lower = float(np.quantile(horizon_returns, 1.0 - confidence))
    upper = float(np.quantile(horizon_returns, confidence))
    long_var = -math.expm1(lower)
    short_var = math.expm1(upper)
    long_es = float(np.mean(-np.expm1(horizon_returns[horizon_returns <= lower])))
    short_es = float(np.mean(np.expm1(horizon_returns[horizon_returns >= upper])))
    return max(long_var, short_var, 0.0), max(long_es, short_es, 0.0)


@implements(HistoricalVarMargin)
class HistoricalVarRule(_RiskBasedRule):
    """``mmr = clip(two-sided historical VaR of horizon returns over lookback, floor, cap)``."""

    config: HistoricalVarMargin

    def __init__(self, config: HistoricalVarMargin | ExpectedShortfallMargin) -> None:
        super().__init__(config)
        self._var = _NAN
        self._es = _NAN

    def _measure(self, horizon_returns: np.ndarray) -> tuple[float, float] | None:
        if horizon_returns.size < self.config.min_observations:
            return None
        return two_sided_tail_loss(horizon_returns, self.config.confidence)

    def _chosen(self, var: float, es: float) -> float:
        return var

    def rates(self, step: int, prices: np.ndarray) -> tuple[float, float]:
        """Rates from the last ``lookback`` horizon returns; the floor until ``min_observations`` exist."""
        measured = self._measure(_horizon_returns(prices, self.config.horizon, self.config.lookback))
        if measured is None:
            self._var = self._es = _NAN
            return self._pair(self.config.floor)
        self._var, self._es = measured
        return self._pair(self._chosen(*measured))

    def initial_rates(self) -> tuple[float, float]:
        """The floor: no returns exist yet."""
        return self._pair(self.config.floor)

    def figures(self) -> dict[str, float]:
        """Return ``var`` and ``es`` of the last review (NaN until ``min_observations`` returns exist)."""
        return {"var": self._var, "es": self._es}

    def _gaussian_figure(self, stressed_volatility: float) -> float:
        return self._z * stressed_volatility * math.sqrt(self.config.horizon)

    def stressed_rates(self, stressed_volatility: float) -> tuple[float, float]:
        """Gaussian VaR at the same confidence: ``exp(z * sigma_s * sqrt(h)) - 1`` (the short side)."""
        return self._pair(math.expm1(self._gaussian_figure(stressed_volatility)))

    def window_rates(self, prices: np.ndarray) -> tuple[float, float] | None:
        """The same figure over every horizon return of the window (no ``lookback`` cut)."""
        measured = self._measure(_horizon_returns(prices, self.config.horizon, prices.size))
        return None if measured is None else self._pair(self._chosen(*measured))


@implements(ExpectedShortfallMargin)
class ExpectedShortfallRule(HistoricalVarRule):
    """``mmr = clip(two-sided historical ES of horizon returns over lookback, floor, cap)``."""

    config: ExpectedShortfallMargin

    def _chosen(self, var: float, es: float) -> float:
        return es

    def _gaussian_figure(self, stressed_volatility: float) -> float:
        # Gaussian ES of a log return: sigma * phi(z) / (1 - c).
        z = self._z
        return (
            stressed_volatility
            * math.sqrt(self.config.horizon)
            * NormalDist().pdf(z)
            / (1 - self.config.confidence)
        )


@implements(DynamicLeverageMargin)
class DynamicLeverageRule(MarginRule):
    """Max leverage ``L = clip(L_max * base_vol / sigma_ewma, L_min, L_max)``; ``imr = 1/L``.

    ``mmr = maintenance_fraction * imr``. The EWMA starts at ``base_volatility``, so ``L`` starts at
    ``L_max``. With ``apply_to="new"`` positions already held keep the base rates (``1/L_max``).
    """

    config: DynamicLeverageMargin

    def __init__(self, config: DynamicLeverageMargin) -> None:
        super().__init__(config)
        self._ewma: _EwmaVariance | None = None
        self._max_leverage = config.max_leverage

    def _pair(self, sigma: float) -> tuple[float, float]:
        cfg = self.config
        leverage = float(
            np.clip(cfg.max_leverage * cfg.base_volatility / sigma, cfg.min_leverage, cfg.max_leverage)
        )
        return 1.0 / leverage, cfg.maintenance_fraction / leverage

    def rates(self, step: int, prices: np.ndarray) -> tuple[float, float]:
        """Update the EWMA and return the rates of the current maximum leverage."""
        if self._ewma is None:
            self._ewma = _EwmaVariance(self.config.decay, self.config.base_volatility**2, 1)
        self._ewma.update(prices)
        imr, mmr = self._pair(self._ewma.sigma)
        self._max_leverage = 1.0 / imr
        return imr, mmr

    def initial_rates(self) -> tuple[float, float]:
        """Rates at the maximum leverage (sigma = base_volatility)."""
        return self._pair(self.config.base_volatility)

    def figures(self) -> dict[str, float]:
        """Return ``sigma`` (EWMA) and ``max_leverage`` of the last review."""
        sigma = self._ewma.sigma if self._ewma is not None else self.config.base_volatility
        return {"sigma": sigma, "max_leverage": self._max_leverage}

    def stressed_rates(self, stressed_volatility: float) -> tuple[float, float]:
        """Rates with ``sigma = stressed_volatility``."""
        return self._pair(stressed_volatility)

    def window_rates(self, prices: np.ndarray) -> tuple[float, float] | None:
        """Rates with sigma = sample sd of the window's one-step log returns."""
        sigma = _sample_sigma(prices)
        return None if not sigma > 0 else self._pair(sigma)

    def held_rates(self) -> tuple[float, float] | None:
        """Base rates ``(1/L_max, fraction/L_max)`` for held positions under ``apply_to="new"``."""
        if self.config.apply_to == "all":
            return None
        return self.initial_rates()


BUILTIN_RULE_CLASSES = RULE_CLASSES
