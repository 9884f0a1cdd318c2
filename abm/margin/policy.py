"""The margin policy: a rule plus its review schedule, APC tools, notice period and exchange decrees.

The model calls :meth:`MarginPolicy.review` once every step and asks :meth:`MarginPolicy.requirements`
for the absolute requirements of every account; see ``docs/margin-rules.md`` for the semantics.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from pydantic import TypeAdapter

from abm.margin.apc import ApcOutcome, apply_speed_limit, target_rates
from abm.margin.base import RULE_FIGURES, MarginRule, MarginRuleError, bracket_notional, bracket_requirement
from abm.margin.plugins import build_custom_rule
from abm.margin.rules import BUILTIN_RULE_CLASSES
from abm.margin.settings import CustomMargin, MarginConfig

__all__ = ["POLICY_FIGURES", "MarginPolicy", "build_margin_policy"]

_NAN = float("nan")

# Keys of MarginPolicy.state() for every built-in rule, in column order.
POLICY_FIGURES: tuple[str, ...] = (
    "imr",
    "mmr",
    "announced_imr",
    "announced_mmr",
    "pending_effective_step",
    "opening_imr",
    "raw_imr",
    "raw_mmr",
    "stressed_mmr",
    "floor_mmr",
    "buffer_level",
    "vol_ratio",
    *RULE_FIGURES,
)

_Pair = tuple[float, float]


class MarginPolicy:
    """A margin rule under its review schedule, anti-procyclicality tools and notice period.

    Args:
        config: The validated ``margin:`` settings.
        rule: The rule built from them.

    Raises:
        MarginRuleError: The APC settings are inconsistent.
    """

    def __init__(self, config: Any, rule: MarginRule) -> None:
        self.config = config
        self.rule = rule
        self._apc = config.apc
        if (
            self._apc is not None
            and self._apc.stressed_weight is not None
            and self._apc.stressed_volatility is None
        ):
            raise MarginRuleError(
                "margin.apc.stressed_weight needs margin.apc.stressed_volatility (a per-step sigma)"
            )
        self._notice = self._apc.notice_steps if self._apc is not None else 0
        self._speed_limit = self._apc.speed_limit if self._apc is not None else None
        brackets = rule.brackets()
        if brackets is None:
            brackets = (np.zeros(1), np.ones(1), np.ones(1))
        self._floors, self._tier_imr, self._tier_mmr = (np.asarray(b, dtype=np.float64) for b in brackets)
        self._tier_ratio = self._tier_mmr / self._tier_imr
        # The largest position notional any account held at the end of a step (kept for tiered rules
        # only: it says which brackets the run ever reached).
        self.largest_notional = 0.0
        # Bracket schedules of the latest base rates asked for (held and opening rates can differ):
        # rates change at reviews, margin checks read them every step (and every trader order).
        self._bracket_cache: dict[_Pair, tuple[np.ndarray, np.ndarray]] = {}
        self._figure_nans = dict.fromkeys((*RULE_FIGURES, *rule.figure_names), _NAN)
        self._held_base = rule.held_rates()
        self._held_decree: _Pair | None = None
        # Pending changes: heap of (effective_step, sequence, imr, mmr, is_decree).
        self._pending: list[tuple[int, int, float, float, bool]] = []
        self._sequence = 0
        self._catching_up = False
        self._raw: _Pair = (_NAN, _NAN)
        self._outcome = ApcOutcome(_NAN, _NAN)
        self._last_release_step: int | None = None  # last review that saw a stress (buffer hysteresis)
        start = rule.initial_rates()
        self._in_force: _Pair | None = None
        self._target: _Pair | None = None
        if start is not None:
            self._check(start, "initial_rates()")
            outcome = target_rates(rule, self._apc, start, np.empty(0, dtype=np.float64))
            self._in_force = self._target = (outcome.imr, outcome.mmr)

    # ------------------------------------------------------------------ brackets reached

    @property
    def tiered(self) -> bool:
        """True when the rule has brackets above the first."""
        return self._floors.size > 1

    def observe_notional(self, notional: np.ndarray) -> None:
        """Take in the position notionals at the end of a step (the model calls it for tiered rules)."""
        if notional.size:
            self.largest_notional = max(self.largest_notional, float(notional.max()))

    def unreached_floors(self) -> list[float]:
        """The notional floors of the brackets above the first that no position has reached.

        A tiered rule none of whose upper brackets is reached acts as its first bracket alone.
        """
        return [float(floor) for floor in self._floors[1:] if floor > self.largest_notional]

    # ------------------------------------------------------------------ reading the rates

    @property
    def review_every(self) -> int:
        """Steps between two reviews of the rule."""
        return self.config.review_every

    def _rates_in_force(self) -> _Pair:
        if self._in_force is None:
            raise MarginRuleError(
                f"margin rule {self.config.rule!r} has no rates before its first review: call "
                "review(0, prices) first, or give the rule an initial_rates() method"
            )
        return self._in_force

    def _held(self) -> _Pair:
        in_force = self._rates_in_force()
        if self._held_base is None:
            return in_force
        return self._held_decree if self._held_decree is not None else self._held_base

    @property
    def imr(self) -> float:
        """Base-bracket initial-margin rate in force for positions held now."""
        return self._held()[0]

    @property
    def mmr(self) -> float:
        """Base-bracket maintenance-margin rate in force for positions held now."""
        return self._held()[1]

    def _newest_pending(self) -> tuple[int, int, float, float, bool] | None:
        return max(self._pending, key=lambda item: item[1]) if self._pending else None

    def _announced(self) -> _Pair:
        newest = self._newest_pending()
        return (newest[2], newest[3]) if newest is not None else self._rates_in_force()

    def _bracket_rates(self, rates: _Pair) -> tuple[np.ndarray, np.ndarray]:
        cached = self._bracket_cache.get(rates)
        if cached is not None:
            return cached
        imr, mmr = rates
        initial = np.minimum(self._tier_imr * (imr / self._tier_imr[0]), 1.0)
        # The cap keeps every bracket's maintenance rate below its initial rate after any rescaling,
        # and leaves the configured schedule untouched when the base rates are the configured ones.
        cap = initial * np.maximum(self._tier_ratio, mmr / imr)
        maintenance = np.minimum(self._tier_mmr * (mmr / self._tier_mmr[0]), cap)
        # Read-only, as they are shared by every caller until the rates change.
        initial.flags.writeable = False
        maintenance.flags.writeable = False
        if len(self._bracket_cache) >= 8:  # rules that move every review: keep only recent pairs
            self._bracket_cache.clear()
        self._bracket_cache[rates] = (initial, maintenance)
        return initial, maintenance

    def requirements(self, notional: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Absolute initial and maintenance requirements of positions with these notionals.

        ``requirement = notional * rate[bracket] - amount[bracket]`` (continuous at the bracket
        boundaries, see :func:`~abm.margin.base.bracket_requirement`), with the bracket rates scaled
        by the base-bracket rates in force.

        Args:
            notional: Position notionals ``|position| * mark`` (>= 0), one per account.

        Returns:
            ``(initial_requirement, maintenance_requirement)``, arrays shaped like ``notional``.
        """
        initial, maintenance = self._bracket_rates(self._held())
        return (
            bracket_requirement(notional, self._floors, initial),
            bracket_requirement(notional, self._floors, maintenance),
        )

    def linear_rates(self) -> tuple[float, float] | None:
        """The held ``(initial, maintenance)`` rates when the requirement is linear, else None.

        Linear: one bracket, so ``requirements(n) == (n * initial, n * maintenance)``, the same bits.
        """
        if self._floors.size != 1:
            return None
        initial, maintenance = self._bracket_rates(self._held())
        return float(initial[0]), float(maintenance[0])

    def opening_initial_rate(self, notional: np.ndarray) -> np.ndarray:
        """Initial-margin rate (initial requirement / notional) for new exposure of these notionals.

        Equals the held rate except under ``dynamic_leverage`` with ``apply_to="new"``, where new exposure
        meets the rule's current ``1/max_leverage``. A zero notional gets the base-bracket rate.

        Args:
            notional: Notionals after the trade (>= 0).

        Returns:
            The rate per notional.
        """
        notional = np.asarray(notional, dtype=np.float64)
        initial, _ = self._bracket_rates(self._rates_in_force())
        requirement = bracket_requirement(notional, self._floors, initial)
        rate = np.full(notional.shape, initial[0])
        np.divide(requirement, notional, out=rate, where=notional > 0)
        return rate

    def max_opening_notional(self, budget: float) -> float:
        """The largest notional whose opening initial requirement is at most ``budget``.

        The inverse of the opening requirement, bracket by bracket (at the opening rates in force).

        Args:
            budget: Equity available for the position's initial margin.

        Returns:
            The notional (0 for a budget of 0 or less).
        """
        initial, _ = self._bracket_rates(self._rates_in_force())
        return bracket_notional(budget, self._floors, initial)

    def state(self) -> dict[str, float]:
        """The policy's figures now: rates, announcements and the rule's own figures.

        Keys are :data:`POLICY_FIGURES` plus a custom rule's ``figure_names``; the same at every step,
        NaN where a figure does not apply; ``pending_effective_step`` is -1 when nothing is pending.
        """
        in_force = self._in_force if self._in_force is not None else (_NAN, _NAN)
        held = self._held() if self._in_force is not None else in_force
        announced = self._announced() if self._in_force is not None else in_force
        outcome = self._outcome
        newest = self._newest_pending()
        state = {
            "imr": held[0],
            "mmr": held[1],
            "announced_imr": announced[0],
            "announced_mmr": announced[1],
            "pending_effective_step": float(newest[0]) if newest is not None else -1.0,
            "opening_imr": in_force[0],
            "raw_imr": self._raw[0],
            "raw_mmr": self._raw[1],
            "stressed_mmr": outcome.stressed_mmr,
            "floor_mmr": outcome.floor_mmr,
            "buffer_level": outcome.buffer_level,
            "vol_ratio": outcome.vol_ratio,
        }
        # Every rule figure, NaN unless the rule reports it (the recorder needs the same keys each step).
        state.update(self._figure_nans)
        for name, value in self.rule.figures().items():
            state[name] = float(value)
        return state

    # ------------------------------------------------------------------ changing the rates

    def review(self, step: int, prices: np.ndarray) -> None:
        """Apply the changes that come due at ``step``, then review the rule if ``step % review_every == 0``.

        A review computes the target rates (rule, then stressed weight, floor, buffer). When the target
        differs from the previous review's target (or a speed limit held the last change back), the
        speed-limited rates are announced, effective ``apc.notice_steps`` later (at once with 0).

        Args:
            step: The current step (called once every step, in order).
            prices: Mark-price history ``prices[0..step]``, float64, length ``step + 1``.

        Raises:
            ValueError: ``prices`` is not ``step + 1`` long.
            MarginRuleError: The rule returned rates outside ``0 < mmr <= imr <= 1``.
        """
        prices = np.asarray(prices, dtype=np.float64)
        if prices.shape != (step + 1,):
            raise ValueError(
                f"review(step={step}) needs prices[0..{step}] ({step + 1} values), got {prices.shape}"
            )
        self._apply_due(step)
        if step % self.review_every != 0:
            return
        raw = self.rule.rates(step, prices)
        self._check(raw, f"rates() at step {step}")
        self._raw = (float(raw[0]), float(raw[1]))
        apc = self._apc
        hold_release = (
            apc is not None
            and self._last_release_step is not None
            and step - self._last_release_step <= apc.rebuild_after
        )
        self._outcome = target_rates(self.rule, apc, self._raw, prices, hold_release)
        if apc is not None and apc.buffer is not None and self._outcome.vol_ratio > apc.release_ratio:
            self._last_release_step = step
        target = (self._outcome.imr, self._outcome.mmr)
        if self._in_force is None:
            self._in_force = target  # the first rates of a rule without initial_rates() start at once
        elif target != self._target or self._catching_up:
            limited = apply_speed_limit(target, self._announced(), self._speed_limit)
            self._catching_up = limited != target
            if limited != self._announced():
                self._schedule(step, step + self._notice, limited, decree=False)
        self._target = target

    def announce(self, step: int, imr: float, mmr: float, notice_steps: int) -> None:
        """Decree new base-bracket rates (an exchange's margin hike), effective at ``step + notice_steps``.

        The decree cancels the rule's announcements still pending, and stays in force until the rule's
        own target next changes at a review (then the rule moves on from the decreed level, under the
        speed limit if any). Under a constant rule (fixed, tiered) it lasts until the next decree. It
        applies to held positions too, also under ``apply_to="new"``.

        Args:
            step: The current step.
            imr: New base-bracket initial rate.
            mmr: New base-bracket maintenance rate (``0 < mmr <= imr <= 1``).
            notice_steps: Steps until it takes effect (0: now).

        Raises:
            MarginRuleError: Invalid rates or notice.
        """
        self._check((imr, mmr), "announce()")
        if notice_steps < 0:
            raise MarginRuleError(f"announce(): notice_steps must be >= 0, got {notice_steps}")
        self._rates_in_force()
        self._pending = [item for item in self._pending if item[4]]
        heapq.heapify(self._pending)
        self._catching_up = False
        self._schedule(step, step + notice_steps, (float(imr), float(mmr)), decree=True)

    def _schedule(self, step: int, effective_step: int, rates: _Pair, decree: bool) -> None:
        self._sequence += 1
        heapq.heappush(self._pending, (effective_step, self._sequence, rates[0], rates[1], decree))
        self._apply_due(step)

    def _apply_due(self, step: int) -> None:
        while self._pending and self._pending[0][0] <= step:
            _, _, imr, mmr, decree = heapq.heappop(self._pending)
            self._in_force = (imr, mmr)
            if decree:
                self._held_decree = (imr, mmr)

    def _check(self, rates: Any, where: str) -> None:
        try:
            imr, mmr = (float(value) for value in rates)
        except (TypeError, ValueError) as error:
            raise MarginRuleError(
                f"margin rule {self.config.rule!r}: {where} must return a pair (imr, mmr) of floats, "
                f"got {rates!r}"
            ) from error
        if not (math.isfinite(imr) and math.isfinite(mmr) and 0.0 < mmr <= imr <= 1.0):
            raise MarginRuleError(
                f"margin rule {self.config.rule!r}: {where} gave imr={imr!r}, mmr={mmr!r}; "
                "rates must satisfy 0 < mmr <= imr <= 1"
            )


def build_margin_policy(config: Any) -> MarginPolicy:
    """Build the margin policy of a ``margin:`` section.

    Args:
        config: One of the :data:`~abm.margin.settings.MarginConfig` models (a plain mapping is
            validated first).

    Returns:
        The policy, with its rule built but not yet reviewed.

    Raises:
        MarginRuleError: A custom rule cannot be loaded or built, or the APC settings are inconsistent.
    """
    if isinstance(config, Mapping):
        config = TypeAdapter(MarginConfig).validate_python(dict(config))
    if isinstance(config, CustomMargin):
        rule = build_custom_rule(config)
    else:
        rule = BUILTIN_RULE_CLASSES[config.rule](config)
    return MarginPolicy(config, rule)
