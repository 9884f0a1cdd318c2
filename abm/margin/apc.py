"""Anti-procyclicality (APC) tools, composable around any margin rule.

At each review the rule's raw rates pass through the tools in this fixed order (each acts on both the
initial and the maintenance rate, element-wise, which keeps ``mmr <= imr``):

1. ``stressed_weight`` w: ``rate = (1 - w) * raw + w * stressed`` (EMIR Art. 28(1)(b)).
2. ``floor_lookback`` L: ``rate = max(rate, rule rate on the last L steps)`` (Art. 28(1)(c)).
3. ``buffer`` b: ``rate * (1 + b)`` in calm; ``rate`` once short/long volatility > ``release_ratio``
   (Art. 28(1)(a)); added to both rates, or with ``buffer_on: initial`` to the initial rate only, so
   that the liquidation line does not move; with ``rebuild_after`` n the buffer stays released until n
   steps after the last review that saw the ratio above ``release_ratio``.
4. ``speed_limit`` s: ``clip(rate, ref * (1 - s), ref * (1 + s))`` with ``ref`` the latest announced rate.
5. ``notice_steps``: the result is announced now and takes effect that many steps later.

Steps 1-3 give the *target*; 4-5 are applied by the policy, which knows the rates in force.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from abm.margin.base import MarginRule, log_returns
from abm.margin.settings import ApcConfig

__all__ = ["ApcOutcome", "apply_speed_limit", "buffer_windows", "target_rates", "volatility_ratio"]

_NAN = float("nan")
# Volatility windows of the buffer release when no floor_lookback sets the long window.
_DEFAULT_SHORT_WINDOW = 20
_LONG_TO_SHORT = 10


@dataclass(frozen=True, slots=True)
class ApcOutcome:
    """Target rates of one review and the APC figures behind them (NaN where a tool is off)."""

    imr: float
    mmr: float
    stressed_mmr: float = _NAN
    floor_mmr: float = _NAN
    buffer_level: float = _NAN
    vol_ratio: float = _NAN


def buffer_windows(apc: ApcConfig) -> tuple[int, int]:
    """Short and long volatility windows (in returns) for the buffer release test.

    Short = 10% of ``floor_lookback`` (at least 2), long = ``floor_lookback``; without a
    ``floor_lookback``: short = 20, long = 200.

    Args:
        apc: The APC settings.

    Returns:
        ``(short_window, long_window)``.
    """
    if apc.floor_lookback is None:
        return _DEFAULT_SHORT_WINDOW, _DEFAULT_SHORT_WINDOW * _LONG_TO_SHORT
    return max(2, apc.floor_lookback // _LONG_TO_SHORT), apc.floor_lookback


def volatility_ratio(prices: np.ndarray, short_window: int, long_window: int) -> float:
    """Ratio of short-window to long-window sample sd of one-step log returns.

    ``ratio = sd(r over the last short_window) / sd(r over the last min(long_window, available))``,
    ddof=1. NaN until ``2 * short_window`` returns exist (too little history to call a stress) or when
    the long-window sd is 0.

    Args:
        prices: Mark-price history, oldest first.
        short_window: Returns in the short window.
        long_window: Returns in the long window.

    Returns:
        The ratio, or NaN.
    """
    returns = log_returns(prices[-(long_window + 1) :])
    if returns.size < 2 * short_window:
        return _NAN
    long_sd = float(np.std(returns, ddof=1))
    if long_sd == 0.0:
        return _NAN
    return float(np.std(returns[-short_window:], ddof=1)) / long_sd


def target_rates(
    rule: MarginRule,
    apc: ApcConfig | None,
    raw: tuple[float, float],
    prices: np.ndarray,
    hold_release: bool = False,
) -> ApcOutcome:
    """Apply the stressed weight, the floor and the buffer (in that order) to a rule's raw rates.

    Args:
        rule: The rule (asked for its stressed and long-window rates).
        apc: The APC settings, or None for no tools.
        raw: The rule's raw ``(imr, mmr)`` at this review.
        prices: Mark-price history ``prices[0..step]``.
        hold_release: Keep the buffer released although the volatility ratio is back below the release
            ratio (the policy's ``rebuild_after`` hysteresis).

    Returns:
        The target rates (before the speed limit and notice) with the figures of each tool.
    """
    imr, mmr = raw
    if apc is None:
        return ApcOutcome(imr, mmr)
    stressed_mmr = floor_mmr = buffer_level = ratio = _NAN
    if apc.stressed_weight is not None and apc.stressed_volatility is not None:
        stressed = rule.stressed_rates(apc.stressed_volatility)
        if stressed is not None:
            weight = apc.stressed_weight
            imr = (1 - weight) * imr + weight * stressed[0]
            mmr = (1 - weight) * mmr + weight * stressed[1]
            stressed_mmr = stressed[1]
    if apc.floor_lookback is not None:
        floor = rule.window_rates(prices[-(apc.floor_lookback + 1) :])
        if floor is not None:
            imr, mmr = max(imr, floor[0]), max(mmr, floor[1])
            floor_mmr = floor[1]
    if apc.buffer is not None:
        ratio = volatility_ratio(prices, *buffer_windows(apc))
        released = hold_release or (not math.isnan(ratio) and ratio > apc.release_ratio)
        buffer_level = 0.0 if released else apc.buffer
        imr = min(imr * (1 + buffer_level), 1.0)
        if apc.buffer_on == "both":
            mmr = min(mmr * (1 + buffer_level), imr)
    return ApcOutcome(imr, mmr, stressed_mmr, floor_mmr, buffer_level, ratio)


def apply_speed_limit(
    target: tuple[float, float], reference: tuple[float, float], speed_limit: float | None
) -> tuple[float, float]:
    """Limit the change of each rate to ``+-speed_limit`` relative to the reference rates.

    ``rate = clip(target, ref * (1 - s), ref * (1 + s))``, element-wise; the clip is monotone, so
    ``mmr <= imr`` is kept.

    Args:
        target: Target ``(imr, mmr)``.
        reference: The latest announced ``(imr, mmr)``.
        speed_limit: ``s``, or None for no limit.

    Returns:
        The limited ``(imr, mmr)``.
    """
    if speed_limit is None:
        return target
    limited = tuple(
        min(max(rate, ref * (1 - speed_limit)), ref * (1 + speed_limit))
        for rate, ref in zip(target, reference, strict=True)
    )
    return limited[0], limited[1]
