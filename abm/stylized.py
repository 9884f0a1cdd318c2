"""Stylized facts of returns: the statistics (their published ranges in :mod:`abm.published_facts`).

Every statistic takes plain arrays (numpy only; no scipy) and states its definition here:

* returns are log returns of the mark, ``r_t = log(p_{t+k} / p_t)`` over non-overlapping intervals of
  ``k`` steps (:func:`log_returns`); the sampling interval is always reported with the figures;
* :func:`skewness` and :func:`excess_kurtosis` are the moment estimators ``m3 / m2^1.5`` and
  ``m4 / m2^2 - 3`` (central moments with divisor ``n``);
* :func:`hill_tail_index`: Hill's estimator of the tail index of ``|r|`` from the ``k`` largest
  order statistics, ``alpha = 1 / mean_{i<=k} log(X_(i) / X_(k+1))``; ``k`` is always returned;
* :func:`autocorrelation`: the sample ACF ``sum (x_t - m)(x_{t+l} - m) / sum (x_t - m)^2``;
* :func:`autocorrelation_standard_error`: its standard error robust to volatility clustering,
  ``sqrt(sum d_t^2 d_{t+l}^2) / sum d_t^2`` with ``d = x - m`` (``1 / sqrt(n)`` for iid returns;
  larger where large returns cluster, after Diebold 1986 and Romano and Thombs 1996);
* :func:`ljung_box`: ``Q = n (n + 2) sum_{l<=h} rho_l^2 / (n - l)``, chi-squared with ``h`` degrees of
  freedom under no autocorrelation;
* :func:`power_law_decay_exponent`: ``beta`` of ``acf(l) ~ A l^-beta`` from a least-squares line through
  ``(log l, log acf(l))`` over the lags where the ACF is positive;
* :func:`arch_lm_test`: Engle's LM test, ``T R^2`` of the regression of ``r_t^2`` on a constant and
  ``r_{t-1}^2 .. r_{t-q}^2``, chi-squared with ``q`` degrees of freedom under no ARCH effect;
* :func:`leverage_correlation`: ``corr(r_t, r_{t+l}^2)`` (Pearson) for ``l = 1..L``; negative values are
  the leverage effect;
* :func:`aggregational_kurtosis`: excess kurtosis of returns over growing intervals;
* :func:`volume_volatility_correlation`: ``corr(|r_t|, volume over the same interval)`` (Pearson);
* :func:`index_explained_share`: the ``R^2`` of the least-squares regression of the mark's returns on a
  constant and the index's returns at lags ``0..L`` (how much of the market's motion the exogenous index
  explains; not a published fact, a measure of how much the agents add).

:func:`stylized_facts` computes all of them from a run's time series, and
:func:`abm.published_facts.compare_with_published` puts each beside its published range (Cont 2001,
Quantitative Finance 1:223-236).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "DEFAULT_AGGREGATION_INTERVALS",
    "DEFAULT_ARCH_LAGS",
    "DEFAULT_HILL_FRACTION",
    "DEFAULT_LEVERAGE_LAGS",
    "DEFAULT_MAX_LAG",
    "HillEstimate",
    "TestResult",
    "aggregational_kurtosis",
    "arch_lm_test",
    "autocorrelation",
    "autocorrelation_standard_error",
    "chi2_survival",
    "excess_kurtosis",
    "hill_tail_index",
    "leverage_correlation",
    "ljung_box",
    "log_returns",
    "index_explained_share",
    "power_law_decay_exponent",
    "skewness",
    "stylized_facts",
    "volume_volatility_correlation",
]

DEFAULT_MAX_LAG = 50
DEFAULT_HILL_FRACTION = 0.05
DEFAULT_AGGREGATION_INTERVALS = (1, 4, 16, 64)
DEFAULT_ARCH_LAGS = 5
DEFAULT_LEVERAGE_LAGS = 10
# |acf| above this many standard errors (1/sqrt(n)) counts as significant at about 5%.
_SIGNIFICANCE_Z = 1.96


# --------------------------------------------------------------------------- returns and moments


def log_returns(prices: Sequence[float] | np.ndarray, interval: int = 1) -> np.ndarray:
    """Log returns over non-overlapping intervals of ``interval`` steps.

    Args:
        prices: Price series (one value per step); non-positive or non-finite prices are dropped first.
        interval: Steps per return (1: one-step returns).

    Returns:
        ``log(p[k] / p[0]), log(p[2k] / p[k]), ...``.
    """
    if interval < 1:
        raise ValueError(f"interval must be at least 1 (got {interval})")
    values = np.asarray(prices, dtype=float)
    values = values[np.isfinite(values) & (values > 0.0)]
    sampled = values[::interval]
    return np.diff(np.log(sampled))


def _central_moments(x: np.ndarray) -> tuple[float, float, float]:
    x = np.asarray(x, dtype=float)
    deviation = x - x.mean()
    return (
        float(np.mean(deviation**2)),
        float(np.mean(deviation**3)),
        float(np.mean(deviation**4)),
    )


def skewness(x: Sequence[float] | np.ndarray) -> float:
    """Moment skewness ``m3 / m2^1.5`` (nan for fewer than 3 values or zero variance)."""
    x = np.asarray(x, dtype=float)
    if len(x) < 3:
        return float("nan")
    m2, m3, _ = _central_moments(x)
    return m3 / m2**1.5 if m2 > 0.0 else float("nan")


def excess_kurtosis(x: Sequence[float] | np.ndarray) -> float:
    """Moment excess kurtosis ``m4 / m2^2 - 3`` (0 for a normal law; nan when undefined)."""
    x = np.asarray(x, dtype=float)
    if len(x) < 4:
        return float("nan")
    m2, _, m4 = _central_moments(x)
    return m4 / m2**2 - 3.0 if m2 > 0.0 else float("nan")


# --------------------------------------------------------------------------- tails


@dataclass(frozen=True, slots=True)
class HillEstimate:
    """Hill tail index and the number of order statistics it used.

    Attributes:
        alpha: Tail index estimate (nan when undefined).
        k: Number of largest order statistics used.
        threshold: The ``(k+1)``-th largest value, where the tail starts.
    """

    alpha: float
    k: int
    threshold: float


def hill_tail_index(
    x: Sequence[float] | np.ndarray, k: int | None = None, tail_fraction: float = DEFAULT_HILL_FRACTION
) -> HillEstimate:
    """Hill estimator of the tail index of ``|x|``.

    Args:
        x: Sample (returns); absolute values are used, zeros and non-finite values dropped.
        k: Number of largest order statistics; default ``max(10, tail_fraction * n)``.
        tail_fraction: Share of the sample in the tail when ``k`` is not given.

    Returns:
        The estimate, with ``k`` and the threshold.
    """
    values = np.abs(np.asarray(x, dtype=float))
    values = np.sort(values[np.isfinite(values) & (values > 0.0)])[::-1]
    n = len(values)
    if k is None:
        k = max(10, int(tail_fraction * n))
    if k < 1 or k >= n:
        return HillEstimate(float("nan"), int(k), float("nan"))
    threshold = float(values[k])
    mean_log_excess = float(np.mean(np.log(values[:k] / threshold)))
    alpha = 1.0 / mean_log_excess if mean_log_excess > 0.0 else float("nan")
    return HillEstimate(alpha, int(k), threshold)


# --------------------------------------------------------------------------- dependence


def autocorrelation(x: Sequence[float] | np.ndarray, max_lag: int = DEFAULT_MAX_LAG) -> np.ndarray:
    """Sample autocorrelation at lags ``1..max_lag`` (nan beyond the sample or for a constant series)."""
    x = np.asarray(x, dtype=float)
    n = len(x)
    result = np.full(max_lag, np.nan)
    if n < 2:
        return result
    deviation = x - x.mean()
    denominator = float(np.dot(deviation, deviation))
    if denominator <= 0.0:
        return result
    for lag in range(1, min(max_lag, n - 1) + 1):
        result[lag - 1] = float(np.dot(deviation[:-lag], deviation[lag:])) / denominator
    return result


def autocorrelation_standard_error(
    x: Sequence[float] | np.ndarray, max_lag: int = DEFAULT_MAX_LAG
) -> np.ndarray:
    """Standard error of the sample ACF at lags ``1..max_lag``, robust to conditional heteroskedasticity.

    ``sqrt(sum_t d_t^2 d_{t+l}^2) / sum_t d_t^2`` with ``d = x - mean(x)``: the white-noise band
    ``1 / sqrt(n)`` assumes independent returns, and where large returns cluster the sample
    autocorrelations of uncorrelated returns spread wider than it (nan where the ACF is).

    Example (two large returns side by side; the squares are 1 x 4, 16, 16, 1 x 4, summing to 40):
        >>> errors = autocorrelation_standard_error([1, -1, 1, -1, 4, -4, 1, -1, 1, -1], max_lag=2)
        >>> [round(float(e), 3) for e in errors]  # sqrt(294) / 40, sqrt(68) / 40; 1 / sqrt(10) = 0.316
        [0.429, 0.206]

    At lag 1 the products of neighbouring squares are six 1s, 16, 256 and 16 (294); at lag 2, four 1s
    and four 16s (68): the pair of large returns widens the lag-1 error beyond the iid band.
    """
    x = np.asarray(x, dtype=float)
    n = len(x)
    result = np.full(max_lag, np.nan)
    if n < 2:
        return result
    squares = (x - x.mean()) ** 2
    denominator = float(squares.sum())
    if denominator <= 0.0:
        return result
    for lag in range(1, min(max_lag, n - 1) + 1):
        result[lag - 1] = math.sqrt(float(np.dot(squares[:-lag], squares[lag:]))) / denominator
    return result


def chi2_survival(statistic: float, dof: int) -> float:
    """``P(X > statistic)`` for ``X`` chi-squared with an integer number of degrees of freedom.

    Closed forms (no scipy): for even ``dof = 2m``, ``exp(-x/2) sum_{i<m} (x/2)^i / i!``; for odd
    ``dof = 2m + 1``, ``erfc(sqrt(x/2)) + exp(-x/2) sum_{i<m} (x/2)^(i+1/2) / Gamma(i + 3/2)``; the
    terms are summed in log space so large statistics do not overflow.
    """
    if dof < 1 or int(dof) != dof:
        raise ValueError(f"dof must be a positive integer (got {dof})")
    if not math.isfinite(statistic):
        return 0.0 if statistic > 0 else float("nan")
    if statistic <= 0.0:
        return 1.0
    half = statistic / 2.0
    log_half = math.log(half)
    if dof % 2 == 0:
        total = sum(math.exp(-half + i * log_half - math.lgamma(i + 1.0)) for i in range(dof // 2))
    else:
        total = math.erfc(math.sqrt(half)) + sum(
            math.exp(-half + (i + 0.5) * log_half - math.lgamma(i + 1.5)) for i in range(dof // 2)
        )
    return min(1.0, max(0.0, total))


@dataclass(frozen=True, slots=True)
class TestResult:
    """A test statistic with its degrees of freedom and p-value (chi-squared law)."""

    __test__ = False  # not a pytest test class

    statistic: float
    dof: int
    pvalue: float


def ljung_box(x: Sequence[float] | np.ndarray, lags: int = DEFAULT_MAX_LAG) -> TestResult:
    """Ljung-Box portmanteau test of no autocorrelation at lags ``1..lags``."""
    x = np.asarray(x, dtype=float)
    n = len(x)
    rho = autocorrelation(x, lags)
    if n <= lags or not np.all(np.isfinite(rho)):
        return TestResult(float("nan"), lags, float("nan"))
    statistic = float(n * (n + 2) * np.sum(rho**2 / (n - np.arange(1, lags + 1))))
    return TestResult(statistic, lags, chi2_survival(statistic, lags))


def power_law_decay_exponent(acf: Sequence[float] | np.ndarray, lags: Sequence[int] | None = None) -> float:
    """Exponent ``beta`` of ``acf(l) ~ A l^-beta`` from a log-log least-squares fit.

    Args:
        acf: Autocorrelations, at lags ``1..len(acf)`` unless ``lags`` is given.
        lags: The lags of the values in ``acf``.

    Returns:
        ``beta`` (positive for a decaying ACF); nan with fewer than 3 positive values.
    """
    values = np.asarray(acf, dtype=float)
    lag_values = np.arange(1, len(values) + 1) if lags is None else np.asarray(lags, dtype=float)
    usable = np.isfinite(values) & (values > 0.0)
    if usable.sum() < 3:
        return float("nan")
    slope, _ = np.polyfit(np.log(lag_values[usable]), np.log(values[usable]), 1)
    return float(-slope)


def arch_lm_test(x: Sequence[float] | np.ndarray, lags: int = DEFAULT_ARCH_LAGS) -> TestResult:
    """Engle's ARCH LM test: ``T R^2`` of ``e_t^2`` on a constant and ``q`` own lags.

    The residuals ``e`` are the demeaned returns; ``T = n - q`` observations enter the regression.
    """
    x = np.asarray(x, dtype=float)
    squared = (x - x.mean()) ** 2
    observations = len(squared) - lags
    if observations <= lags + 1:
        return TestResult(float("nan"), lags, float("nan"))
    target = squared[lags:]
    design = np.column_stack(
        [np.ones(observations)] + [squared[lags - lag : len(squared) - lag] for lag in range(1, lags + 1)]
    )
    coefficients, *_ = np.linalg.lstsq(design, target, rcond=None)
    residual = target - design @ coefficients
    total = float(np.sum((target - target.mean()) ** 2))
    if total <= 0.0:
        return TestResult(float("nan"), lags, float("nan"))
    r_squared = 1.0 - float(np.sum(residual**2)) / total
    statistic = observations * r_squared
    return TestResult(statistic, lags, chi2_survival(statistic, lags))


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    denominator = math.sqrt(float(np.dot(a, a)) * float(np.dot(b, b)))
    return float(np.dot(a, b)) / denominator if denominator > 0.0 else float("nan")


def leverage_correlation(x: Sequence[float] | np.ndarray, lags: int = DEFAULT_LEVERAGE_LAGS) -> np.ndarray:
    """``corr(r_t, r_{t+l}^2)`` for ``l = 1..lags`` (negative: falls are followed by higher volatility)."""
    x = np.asarray(x, dtype=float)
    result = np.full(lags, np.nan)
    squared = x**2
    for lag in range(1, lags + 1):
        if len(x) - lag >= 3:
            result[lag - 1] = _pearson(x[:-lag], squared[lag:])
    return result


def aggregational_kurtosis(
    prices: Sequence[float] | np.ndarray, intervals: Sequence[int] = DEFAULT_AGGREGATION_INTERVALS
) -> dict[int, float]:
    """Excess kurtosis of non-overlapping log returns over each interval (steps)."""
    return {int(k): excess_kurtosis(log_returns(prices, int(k))) for k in intervals}


DEFAULT_INDEX_LAGS = 3


def index_explained_share(
    mark: Sequence[float] | np.ndarray,
    index: Sequence[float] | np.ndarray,
    interval: int = 1,
    lags: int = DEFAULT_INDEX_LAGS,
) -> float:
    """R^2 of the mark's log returns regressed on a constant and the index's at lags ``0..lags``.

    Both series are sampled every ``interval`` steps over the steps where both are positive; NaN when
    there are too few returns or the mark never moves.

    Example:
        >>> index = np.exp(np.cumsum(np.random.default_rng(1).normal(0, 0.01, 500)))
        >>> round(index_explained_share(index, index), 6)       # the mark is the index: all of it
        1.0
        >>> mark = np.r_[index[:1], index[:-1]]                  # the index one step late: lag 1
        >>> round(index_explained_share(mark, index), 6)
        1.0
    """
    mark = np.asarray(mark, dtype=float)
    index = np.asarray(index, dtype=float)
    both = np.isfinite(mark) & np.isfinite(index) & (mark > 0) & (index > 0)
    mark_returns = log_returns(mark[both], interval)
    index_returns = log_returns(index[both], interval)
    n = len(mark_returns) - lags
    if n < lags + 3:
        return float("nan")
    target = mark_returns[lags:]
    spread = target - target.mean()
    total = float(spread @ spread)
    if total == 0.0:
        return float("nan")
    design = np.column_stack(
        [np.ones(n)] + [index_returns[lags - lag : len(index_returns) - lag] for lag in range(lags + 1)]
    )
    coefficients, *_ = np.linalg.lstsq(design, target, rcond=None)
    residual = target - design @ coefficients
    return float(1.0 - (residual @ residual) / total)


def volume_volatility_correlation(
    returns: Sequence[float] | np.ndarray, volume: Sequence[float] | np.ndarray
) -> float:
    """Pearson correlation of ``|r_t|`` with the volume traded over the same interval."""
    returns = np.asarray(returns, dtype=float)
    volume = np.asarray(volume, dtype=float)
    if len(returns) != len(volume):
        raise ValueError(f"returns ({len(returns)}) and volume ({len(volume)}) differ in length")
    if len(returns) < 3:
        return float("nan")
    return _pearson(np.abs(returns), volume)


def _interval_sums(values: np.ndarray, interval: int, count: int) -> np.ndarray:
    """Sums of ``values`` over the ``count`` intervals that make the returns of :func:`log_returns`."""
    usable = values[: count * interval]
    return usable.reshape(count, interval).sum(axis=1)


# --------------------------------------------------------------------------- all facts of a run


def stylized_facts(
    timeseries: pd.DataFrame,
    interval: int = 1,
    *,
    max_lag: int = DEFAULT_MAX_LAG,
    hill_fraction: float = DEFAULT_HILL_FRACTION,
    arch_lags: int = DEFAULT_ARCH_LAGS,
    leverage_lags: int = DEFAULT_LEVERAGE_LAGS,
    aggregation: Sequence[int] = DEFAULT_AGGREGATION_INTERVALS,
    short_lags: int = 1,
    price_column: str = "mark",
) -> dict[str, Any]:
    """Every stylized-fact statistic of one run's time series.

    Args:
        timeseries: A run's time series (needs ``price_column`` and ``volume``).
        interval: Steps per return (the stated sampling interval).
        max_lag: Largest ACF lag (Ljung-Box over ``1..max_lag``).
        hill_fraction: Share of the returns in the Hill tail.
        arch_lags: Lags of the ARCH LM regression.
        leverage_lags: Lags of the leverage correlation (its mean is reported).
        aggregation: Intervals, in multiples of ``interval``, for aggregational Gaussianity.
        short_lags: Lags ``1..short_lags`` are the "shortest lags" excused from the no-linear-ACF check.
        price_column: Which price to take returns of.

    Returns:
        A flat dict of JSON-ready figures; lists for the ACFs and the kurtosis by interval.
    """
    prices = timeseries[price_column].to_numpy(dtype=float)
    returns = log_returns(prices, interval)
    n = len(returns)
    acf = autocorrelation(returns, max_lag)
    abs_acf = autocorrelation(np.abs(returns), max_lag)
    band = _SIGNIFICANCE_Z / math.sqrt(n) if n > 0 else float("nan")
    robust_band = _SIGNIFICANCE_Z * autocorrelation_standard_error(returns, max_lag)
    beyond = acf[short_lags:]
    known = np.isfinite(beyond)
    robust_beyond = robust_band[short_lags:][known]
    beyond = beyond[known]
    hill = hill_tail_index(returns, tail_fraction=hill_fraction)
    box = ljung_box(returns, max_lag)
    arch = arch_lm_test(returns, arch_lags)
    leverage = leverage_correlation(returns, leverage_lags)
    kurtosis_by_interval = aggregational_kurtosis(prices, [interval * k for k in aggregation])
    if "volume" in timeseries and n > 0:
        # Step volume is recorded per step; the volume of return t covers steps (t*k, (t+1)*k].
        volume = timeseries["volume"].to_numpy(dtype=float)[1:]
        volume_corr = volume_volatility_correlation(returns, _interval_sums(volume, interval, n))
    else:
        volume_corr = float("nan")
    if "index" in timeseries:
        explained = index_explained_share(prices, timeseries["index"].to_numpy(dtype=float), interval)
    else:
        explained = float("nan")
    return {
        "interval": int(interval),
        "observations": int(n),
        "return_sd": float(np.std(returns)) if n else float("nan"),
        "zero_return_share": float(np.mean(returns == 0.0)) if n else float("nan"),
        "excess_kurtosis": excess_kurtosis(returns),
        "skewness": skewness(returns),
        "tail_index": hill.alpha,
        "tail_index_k": hill.k,
        "acf": acf.tolist(),
        "acf_lag1": float(acf[0]),
        "acf_band": band,
        "acf_significant_share": float(np.mean(np.abs(beyond) > band)) if len(beyond) else float("nan"),
        # The same count against a band that allows for volatility clustering (not a published range).
        "acf_robust_band": robust_band.tolist(),
        "acf_robust_significant_share": (
            float(np.mean(np.abs(beyond) > robust_beyond)) if len(beyond) else float("nan")
        ),
        "short_lags": int(short_lags),
        "ljung_box_q": box.statistic,
        "ljung_box_pvalue": box.pvalue,
        "abs_acf": abs_acf.tolist(),
        "abs_acf_lag1": float(abs_acf[0]),
        "abs_acf_decay_exponent": power_law_decay_exponent(abs_acf),
        "arch_lm": arch.statistic,
        "arch_lm_pvalue": arch.pvalue,
        "arch_lags": int(arch_lags),
        "leverage_correlation": leverage.tolist(),
        "leverage_effect": float(np.nanmean(leverage)) if np.isfinite(leverage).any() else float("nan"),
        "kurtosis_by_interval": {str(k): v for k, v in kurtosis_by_interval.items()},
        "volume_volatility_correlation": volume_corr,
        "index_explained_share": explained,
    }
