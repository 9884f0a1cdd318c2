"""Scenario events: shocks applied at the start of a step (DESIGN.md step 1).

Every shock type is a small handler registered in ``HANDLERS`` under the scenario's ``type`` name
(the models are in :mod:`abm.config.schema`; ``docs/scenarios.md`` has the reference of their fields).

When a shock starts: at its ``step``, or, with a ``when`` condition, at the first step from ``step``
on at the start of which the condition holds (it fires once). The condition reads the state left by
the previous step: its mark, the mark's fall from its running peak, the realised volatility.

How long it acts: one step (jumps, margin decrees, haircuts, outflows), ``over_steps`` steps (regimes,
TWAP programs, funding, index faults, inflows), ``over_steps + recovery_steps`` steps (liquidity
withdrawal), or until done (a sell program at a share of volume).

Lasting effects are rebuilt every step: the schedule first puts the model back to its configured
state (no regime, index live and right, makers at full depth and normal spreads) and then every
running shock lays its effect on top, so an effect lasts exactly as long as its shock and overlapping
shocks combine (withdrawn shares and spread factors multiply; index errors compound).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from abm.book import BUY, SELL
from abm.clearing import KIND_CODES
from abm.config.schema import (
    CollateralHaircut,
    FundamentalJump,
    FundamentalRegime,
    FundingSpike,
    IndexMisprint,
    LiquidityWithdrawal,
    MarginChange,
    MarketOrderShock,
    StaleIndex,
    TraderInflow,
    TraderOutflow,
)

__all__ = ["HANDLERS", "ShockSchedule", "StepEffects", "trigger_holds"]


class StepEffects:
    """What the running shocks ask of the market makers this step (combined over shocks).

    Attributes:
        withdrawn: Share of every maker's depth withheld (``1 - prod(1 - share_i)``).
        spread_factor: Factor on the makers' half spread and level spacing (product over shocks).
    """

    def __init__(self) -> None:
        self.withdrawn = 0.0
        self.spread_factor = 1.0


# --------------------------------------------------------------------------- handlers
# Each handler gets the model, the shock, ``k`` (steps since the shock started), the current step, the
# shock's own state dict and the step's combined effects; it returns True when the shock is done early.


def _fundamental_jump(model, shock: FundamentalJump, k: int, step: int, state: dict, effects) -> None:
    # A jump is a repricing: the index moves and so does the level a mean-reverting process returns to.
    model.fundamental *= 1.0 + shock.size
    model.fundamental_level *= 1.0 + shock.size


def _regime(model, shock: FundamentalRegime, k: int, step: int, state: dict, effects) -> None:
    if shock.drift is not None:
        model.regime_drift = shock.drift
    if shock.volatility is not None:
        model.regime_volatility = shock.volatility


def _previous_volume(model, step: int) -> int:
    recorder = model.recorder
    return int(recorder.latest("volume")) if recorder.rows and step > 0 else 0


def _market_order(model, shock: MarketOrderShock, k: int, step: int, state: dict, effects) -> bool:
    side = SELL if shock.side == "sell" else BUY
    if shock.volume_share is None:
        # TWAP: even slices; the first steps take the remainder so the total is exact.
        base, extra = divmod(shock.quantity, shock.over_steps)
        quantity = base + (1 if k < extra else 0)
        if quantity > 0:
            model.submit_market(model.exogenous_account, side, quantity)
        return False
    done = state.get("filled", 0)
    wanted = max(shock.min_lots, int(round(shock.volume_share * _previous_volume(model, step))))
    quantity = min(wanted, shock.quantity - done)
    done += model.submit_market(model.exogenous_account, side, quantity)
    state["filled"] = done
    return done >= shock.quantity


def _liquidity_withdrawal(model, shock: LiquidityWithdrawal, k: int, step: int, state: dict, effects) -> None:
    # Full strength for over_steps steps, then a linear fade over recovery_steps (strength 0 after).
    if k < shock.over_steps:
        strength = 1.0
    else:
        strength = 1.0 - (k - shock.over_steps + 1) / (shock.recovery_steps + 1)
    effects.withdrawn = 1.0 - (1.0 - effects.withdrawn) * (1.0 - shock.share * strength)
    effects.spread_factor *= 1.0 + (shock.spread_factor - 1.0) * strength


def _margin_change(model, shock: MarginChange, k: int, step: int, state: dict, effects) -> None:
    policy = model.policy
    if shock.factor is not None:
        initial = min(policy.imr * shock.factor, 1.0)
        maintenance = min(policy.mmr * shock.factor, initial)
    else:
        initial, maintenance = shock.initial, shock.maintenance
    policy.announce(step, initial, maintenance, shock.notice_steps)


def _collateral_haircut(model, shock: CollateralHaircut, k: int, step: int, state: dict, effects) -> None:
    clearing = model.clearing
    codes = [KIND_CODES[kind] for kind in shock.kinds]
    accounts = np.flatnonzero(np.isin(clearing.kind[: clearing.n_accounts], codes))
    state["lost"] = clearing.revalue_collateral(accounts, shock.size)


def _funding_spike(model, shock: FundingSpike, k: int, step: int, state: dict, effects) -> None:
    state["paid"] = state.get("paid", 0.0) + model.clearing.pay_funding(shock.rate, model.mark)


def _stale_index(model, shock: StaleIndex, k: int, step: int, state: dict, effects) -> None:
    model.index_stale = True


def _index_misprint(model, shock: IndexMisprint, k: int, step: int, state: dict, effects) -> None:
    model.index_error = (1.0 + model.index_error) * (1.0 + shock.size) - 1.0


def _trader_inflow(model, shock: TraderInflow, k: int, step: int, state: dict, effects) -> None:
    base, extra = divmod(shock.traders.count, shock.over_steps)
    count = base + (1 if k < extra else 0)
    if count > 0:
        model.add_leveraged_traders(shock.traders, count)


def _trader_outflow(model, shock: TraderOutflow, k: int, step: int, state: dict, effects) -> None:
    clearing = model.clearing
    n = clearing.n_accounts
    position = clearing.position[:n]
    traders = np.flatnonzero((clearing.kind[:n] == KIND_CODES["leveraged_trader"]) & (position != 0))
    chosen = np.sort(model.rng.choice(traders, size=int(round(shock.share * len(traders))), replace=False))
    if len(chosen) == 0:
        return
    mark = model.mark
    notional = np.abs(position[chosen]) * mark * clearing.contract_size
    initial_requirement, _ = model.policy.requirements(notional)
    equity = clearing.equity(mark)[chosen]
    # An exchange lets a trader take out only what is above the initial requirement, and only cash.
    free = np.clip(np.minimum(equity - initial_requirement, clearing.collateral[chosen]), 0.0, None)
    amounts = shock.fraction * free
    for account, amount in zip(chosen.tolist(), amounts.tolist(), strict=True):
        if amount > 0.0:
            clearing.withdraw(account, amount)
    state["withdrawn"] = float(amounts.sum())


HANDLERS: dict[str, Callable[..., Any]] = {
    "fundamental_jump": _fundamental_jump,
    "regime": _regime,
    "market_order": _market_order,
    "liquidity_withdrawal": _liquidity_withdrawal,
    "margin_change": _margin_change,
    "collateral_haircut": _collateral_haircut,
    "funding_spike": _funding_spike,
    "stale_index": _stale_index,
    "index_misprint": _index_misprint,
    "trader_inflow": _trader_inflow,
    "trader_outflow": _trader_outflow,
}


# --------------------------------------------------------------------------- triggers


def trigger_holds(trigger, mark: float, peak: float, volatility: float) -> bool:
    """Whether a shock's ``when`` condition holds for the previous step's market state.

    Args:
        trigger: A validated :class:`~abm.config.schema.ShockTrigger`.
        mark: Mark price at the end of the previous step.
        peak: Highest mark so far.
        volatility: Realised per-step volatility of the mark.
    """
    name, threshold = trigger.condition
    if name == "mark_below":
        return mark < threshold
    if name == "mark_above":
        return mark > threshold
    if name == "drawdown_above":
        return peak > 0.0 and 1.0 - mark / peak > threshold
    return volatility > threshold


# --------------------------------------------------------------------------- the schedule


class ShockSchedule:
    """The scenario's shocks: when each starts, and the effects of those running, step by step.

    Args:
        shocks: The scenario's validated shock list.

    Attributes:
        shocks: The shocks, in file order.
        started_at: Step at which each shock started (None: not yet, or its condition never held).
        states: Per-shock working figures (lots filled, funding paid, collateral lost, ...).
    """

    def __init__(self, shocks) -> None:
        self.shocks = list(shocks)
        self.started_at: list[int | None] = [None] * len(self.shocks)
        self.states: list[dict[str, Any]] = [{} for _ in self.shocks]
        self._by_step: dict[int, list[int]] = {}
        self._armed: list[int] = []  # conditional shocks still waiting for their condition
        for index, shock in enumerate(self.shocks):
            if shock.when is None:
                self._by_step.setdefault(shock.step, []).append(index)
            else:
                self._armed.append(index)
        self._running: list[int] = []
        self._peak = -np.inf
        self._maker_groups: dict[int, Any] = {}  # maker account -> its configured group
        self._widened: dict[tuple[int, float], Any] = {}  # (group id, factor) -> widened copy

    @property
    def needs_exogenous_account(self) -> bool:
        """Whether some shock trades for an outside party (an exogenous account is needed)."""
        return any(shock.type == "market_order" for shock in self.shocks)

    def apply(self, model, step: int) -> int:
        """Start the shocks due at ``step`` and apply every running one, in file order.

        Args:
            model: The :class:`~abm.model.MarketModel`.
            step: The current step.

        Returns:
            How many shocks acted.
        """
        self._peak = max(self._peak, model.mark)
        starting = list(self._by_step.pop(step, ()))
        if self._armed:
            fired = [
                index
                for index in self._armed
                if step >= self.shocks[index].step
                and trigger_holds(self.shocks[index].when, model.mark, self._peak, model.realised_vol)
            ]
            if fired:
                self._armed = [index for index in self._armed if index not in fired]
                starting.extend(fired)
        for index in starting:
            self.started_at[index] = step
        self._running = sorted(set(self._running).union(starting))
        # Back to the configured market; the running shocks then lay their effects on top.
        model.regime_drift = None
        model.regime_volatility = None
        model.index_stale = False
        model.index_error = 0.0
        effects = StepEffects()
        still_running = []
        for index in self._running:
            shock = self.shocks[index]
            k = step - self.started_at[index]
            done = HANDLERS[shock.type](model, shock, k, step, self.states[index], effects)
            length = shock.active_steps
            if not done and (length is None or k + 1 < length):
                still_running.append(index)
        acted = len(self._running)
        self._running = still_running
        model.liquidity_withdrawal = effects.withdrawn
        self._set_spreads(model, effects.spread_factor)
        return acted

    def _set_spreads(self, model, factor: float) -> None:
        # Makers read their quoting settings from their group; a widened copy stands in while it lasts.
        if factor == 1.0 and not self._maker_groups:
            return
        for maker in model.makers:
            group = self._maker_groups.setdefault(maker.account, maker.group)
            if factor == 1.0:
                maker.group = group
                continue
            key = (id(group), factor)
            widened = self._widened.get(key)
            if widened is None:
                widened = group.model_copy(
                    update={
                        "half_spread_ticks": max(1, round(group.half_spread_ticks * factor)),
                        "level_spacing_ticks": max(1, round(group.level_spacing_ticks * factor)),
                    }
                )
                self._widened[key] = widened
            maker.group = widened
