"""Measures of margin rules: procyclicality, liquidity demand, cost in calm, and backtesting coverage.

Pure functions of numpy arrays (or anything array-like, e.g. pandas Series). The backtests follow the
formulas cited in ``docs/references.md`` (Kupiec proportion of failures, Christoffersen independence,
Basel traffic light); the p-values use the chi-square(1) survival function ``erfc(sqrt(LR / 2))``.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "basel_traffic_light",
    "calm_cost",
    "christoffersen_independence",
    "coverage_exception_flags",
    "coverage_exceptions",
    "kupiec_pof",
    "largest_increase",
    "margin_call_liquidity",
    "peak_to_trough",
]


def _array(values: object) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)


def peak_to_trough(series: object) -> float:
    """Peak-to-trough ratio of a margin series (the EMIR / CPMI-IOSCO procyclicality measure).

    ``max_t max(series[:t+1]) / min(series[:t+1])``, which equals ``max(series) / min(series)``
    because the running maximum only rises and the running minimum only falls. NaNs are ignored.

    Args:
        series: Margin rates or amounts over time (positive).

    Returns:
        The ratio (>= 1), NaN for an empty series, inf if the minimum is 0.
    """
    values = _array(series)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return math.nan
    trough = float(values.min())
    return math.inf if trough == 0.0 else float(values.max()) / trough


def largest_increase(series: object, window: int) -> float:
    """Largest relative increase over ``window`` steps: ``max_t series[t] / series[t - window] - 1``.

    Args:
        series: Margin rates or amounts over time (positive).
        window: Steps between the compared values (>= 1).

    Returns:
        The largest increase (negative if the series only fell), NaN if the series is not longer
        than ``window``.
    """
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    values = _array(series)
    if values.size <= window:
        return math.nan
    return float(np.nanmax(values[window:] / values[:-window]) - 1.0)


def margin_call_liquidity(call_counts: object, call_amounts: object) -> dict[str, float]:
    """Liquidity demanded by margin calls: totals, peaks, and the peak over the mean step.

    With ``c_t`` calls and ``a_t`` amount called at step ``t``: ``total_calls = sum c``,
    ``peak_calls = max c``, ``total_amount = sum a``, ``peak_amount = max a``, ``peak_step = argmax a``
    and ``peak_to_mean = max a / mean a`` (March 2020: about $140bn against a $25bn average, 5.6).

    Args:
        call_counts: Number of margin calls per step.
        call_amounts: Total amount called per step.

    Returns:
        The figures as floats (``peak_to_mean`` NaN when nothing was called).
    """
    counts = _array(call_counts)
    amounts = _array(call_amounts)
    if counts.shape != amounts.shape:
        raise ValueError(f"call_counts {counts.shape} and call_amounts {amounts.shape} differ in shape")
    if amounts.size == 0:
        nan = math.nan
        return dict.fromkeys(
            ("total_calls", "peak_calls", "total_amount", "peak_amount", "peak_step", "peak_to_mean"), nan
        )
    mean_amount = float(amounts.mean())
    return {
        "total_calls": float(counts.sum()),
        "peak_calls": float(counts.max()),
        "total_amount": float(amounts.sum()),
        "peak_amount": float(amounts.max()),
        "peak_step": float(np.argmax(amounts)),
        "peak_to_mean": float(amounts.max()) / mean_amount if mean_amount > 0 else math.nan,
    }


def calm_cost(margin_held: object, open_interest_notional: object, calm_mask: object) -> float:
    """Cost of a rule in normal times: mean margin held per unit of open interest in calm steps.

    ``mean_{t calm, OI_t > 0} margin_held_t / OI_t``.

    Args:
        margin_held: Total margin held (required) per step.
        open_interest_notional: Open-interest notional per step.
        calm_mask: True on the steps counted as calm.

    Returns:
        The mean ratio, NaN if no calm step has open interest.
    """
    held = _array(margin_held)
    interest = _array(open_interest_notional)
    mask = np.asarray(calm_mask, dtype=bool) & (interest > 0)
    if not mask.any():
        return math.nan
    return float(np.mean(held[mask] / interest[mask]))


def _adverse_moves(prices: object, horizon: int) -> np.ndarray:
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    values = _array(prices)
    if values.size <= horizon:
        return np.empty(0)
    return values[horizon:] / values[:-horizon] - 1.0


def coverage_exception_flags(prices: object, mmr_series: object, horizon: int) -> np.ndarray:
    """Per-step exception flags: the price move over the next ``horizon`` steps beat the mmr in force.

    With ``m_t = p_{t+h} / p_t - 1``, step ``t`` (for ``t = 0 .. T-h-1``) is flagged when
    ``-m_t > mmr_t`` (a long lost more than its margin) or ``m_t > mmr_t`` (a short did).

    Args:
        prices: Mark prices ``p_0..p_{T-1}``.
        mmr_series: Maintenance rate in force at each step (same length).
        horizon: Margin period of risk in steps.

    Returns:
        Boolean flags of length ``max(T - horizon, 0)``.
    """
    moves = _adverse_moves(prices, horizon)
    mmr = _array(mmr_series)[: moves.size]
    return (-moves > mmr) | (moves > mmr)


def coverage_exceptions(prices: object, mmr_series: object, horizon: int) -> tuple[int, int]:
    """Count coverage exceptions of a maintenance-rate series, long and short as two observations.

    For each ``t`` with a price ``horizon`` steps later, ``m_t = p_{t+h} / p_t - 1``; the long side
    is an exception when ``-m_t > mmr_t`` and the short side when ``m_t > mmr_t``. Each step gives two
    observations (one per side), so ``observations = 2 * (T - h)``; the two sides of one step are not
    independent, and overlapping horizons make neighbouring steps dependent (use
    :func:`christoffersen_independence` on :func:`coverage_exception_flags` to see clustering).

    Args:
        prices: Mark prices ``p_0..p_{T-1}``.
        mmr_series: Maintenance rate in force at each step (same length).
        horizon: Margin period of risk in steps.

    Returns:
        ``(exceptions, observations)``.
    """
    moves = _adverse_moves(prices, horizon)
    mmr = _array(mmr_series)
    if mmr.size != _array(prices).size:
        raise ValueError(f"prices and mmr_series differ in length ({_array(prices).size} vs {mmr.size})")
    mmr = mmr[: moves.size]
    exceptions = int(np.count_nonzero(-moves > mmr) + np.count_nonzero(moves > mmr))
    return exceptions, 2 * moves.size


def _x_log_y(x: float, y: float) -> float:
    # 0 * log(0) = 0, the limit, so the edge cases x = 0 and x = T are defined.
    return 0.0 if x == 0 else x * math.log(y)


def _chi2_1_pvalue(statistic: float) -> float:
    return math.erfc(math.sqrt(max(statistic, 0.0) / 2.0))


def kupiec_pof(exceptions: int, observations: int, coverage_probability: float) -> tuple[float, float]:
    """Kupiec proportion-of-failures test of an exception count.

    ``LR = -2 ln[(1-p)^(T-x) p^x / ((1-x/T)^(T-x) (x/T)^x)]``, chi-square(1) under the null that the
    exception probability is ``p``; p-value ``erfc(sqrt(LR / 2))``; reject at 5% above 3.84.

    Args:
        exceptions: ``x``, the number of exceptions.
        observations: ``T``, the number of observations (> 0).
        coverage_probability: ``p``, the expected exception probability (e.g. 0.01 for 99% coverage).

    Returns:
        ``(LR, p_value)``.
    """
    x, total, p = exceptions, observations, coverage_probability
    if total <= 0 or not 0 <= x <= total:
        raise ValueError(f"need 0 <= exceptions <= observations and observations > 0, got {x}, {total}")
    if not 0 < p < 1:
        raise ValueError(f"coverage_probability must be in (0, 1), got {p}")
    observed = x / total
    log_null = _x_log_y(total - x, 1 - p) + _x_log_y(x, p)
    log_observed = _x_log_y(total - x, 1 - observed) + _x_log_y(x, observed)
    statistic = max(-2.0 * (log_null - log_observed), 0.0)
    return statistic, _chi2_1_pvalue(statistic)


def christoffersen_independence(exception_flags: object) -> tuple[float, float]:
    """Christoffersen test of independence of exceptions (first-order Markov against independence).

    With ``n_ij`` the number of steps in state ``i`` followed by state ``j`` (1 = exception),
    ``pi_01 = n_01 / (n_00 + n_01)``, ``pi_11 = n_11 / (n_10 + n_11)``, ``pi = (n_01 + n_11) / n``::

        LR = -2 [ (n_00 + n_10) ln(1 - pi) + (n_01 + n_11) ln(pi)
                  - n_00 ln(1 - pi_01) - n_01 ln(pi_01) - n_10 ln(1 - pi_11) - n_11 ln(pi_11) ]

    chi-square(1), p-value ``erfc(sqrt(LR / 2))``; ``0 ln 0 = 0``.

    Args:
        exception_flags: Exception indicator per step, in time order.

    Returns:
        ``(LR, p_value)``; ``(0, 1)`` with fewer than two flags.
    """
    flags = np.asarray(exception_flags, dtype=bool)
    if flags.size < 2:
        return 0.0, 1.0
    previous, current = flags[:-1], flags[1:]
    n00 = int(np.count_nonzero(~previous & ~current))
    n01 = int(np.count_nonzero(~previous & current))
    n10 = int(np.count_nonzero(previous & ~current))
    n11 = int(np.count_nonzero(previous & current))
    pi01 = n01 / (n00 + n01) if n00 + n01 else 0.0
    pi11 = n11 / (n10 + n11) if n10 + n11 else 0.0
    pi = (n01 + n11) / (n00 + n01 + n10 + n11)
    log_independent = _x_log_y(n00 + n10, 1 - pi) + _x_log_y(n01 + n11, pi)
    log_markov = _x_log_y(n00, 1 - pi01) + _x_log_y(n01, pi01) + _x_log_y(n10, 1 - pi11) + _x_log_y(n11, pi11)
    statistic = max(-2.0 * (log_independent - log_markov), 0.0)
    return statistic, _chi2_1_pvalue(statistic)


def _binomial_cdf(k: int, n: int, p: float) -> float:
    return math.fsum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k + 1))


def basel_traffic_light(exceptions: int, n: int = 250, coverage_probability: float = 0.01) -> str:
    """Basel traffic-light zone of an exception count.

    Zones by the binomial cumulative probability ``P(X <= x)`` of ``x`` exceptions in ``n`` trials at
    ``coverage_probability``: green below 95%, red from 99.99%, yellow between. At ``n = 250`` and 1%
    this gives the Basel bands 0-4 green, 5-9 yellow, 10+ red.

    Args:
        exceptions: Number of exceptions ``x`` (>= 0).
        n: Number of observations.
        coverage_probability: Expected exception probability.

    Returns:
        ``"green"``, ``"yellow"`` or ``"red"``.
    """
    if exceptions < 0 or n <= 0:
        raise ValueError(f"need exceptions >= 0 and n > 0, got {exceptions}, {n}")
    cumulative = _binomial_cdf(min(exceptions, n), n, coverage_probability)
    if cumulative < 0.95:
        return "green"
    return "red" if cumulative >= 0.9999 else "yellow"
