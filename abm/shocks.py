"""Scenario events: shocks applied at the start of a step (step 1 of the step order).

Every shock type is a model registered in :data:`abm.config.shocks.SHOCK_TYPES` and a small handler
registered here in :data:`HANDLERS` with ``@handles(Model)``; ``docs/ODD.md`` has the reference of their
fields. Handlers act through an explicit :class:`ShockContext` (the markets, the ledger, the margin
checker, the population), never through the model.

When a shock starts: at its ``step``, or, with a ``when`` condition, at the first step from ``step``
on at the start of which the condition holds (it fires once). The condition reads the state left by
the previous step: its mark, the mark's fall from its running peak, the realised volatility.

How long it acts: one step (jumps, margin decrees, haircuts, outflows), ``over_steps`` steps (regimes,
TWAP programs, funding, index and venue faults, inflows), ``over_steps + recovery_steps`` steps (liquidity
withdrawal), or until done (a sell program at a share of volume).

Lasting effects are rebuilt every step: the schedule first puts the markets back to their configured
state (no regime, index live and right, makers at full depth and normal spreads) and then every
running shock lays its effect on top, so an effect lasts exactly as long as its shock and overlapping
shocks combine (withdrawn shares and spread factors multiply; index errors compound).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from abm.book import BUY, SELL
from abm.config.shocks import (
    SHOCK_TYPES,
    CollateralHaircut,
    CorrelationRegime,
    Depeg,
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
    VenueFault,
)
from abm.ledger import KIND_CODES
from abm.registry import Registry, literal_name

__all__ = ["HANDLERS", "ShockContext", "ShockSchedule", "StepEffects", "handles", "trigger_holds"]


@dataclass
class ShockContext:
    """What shocks may act on, passed to every handler explicitly.

    Attributes:
        markets: The markets, one per instrument.
        ledger: The ledger (collateral, positions, funding).
        checker: The margin checker (its policies take margin decrees).
        population: Groups and agents (makers' quoting settings, traders joining).
        recorder: The run recorder (last step's volume).
        rng: The run's generator.
        exogenous_account: The account of outside order programs (-1 when there is none).
        add_traders: ``add_traders(group, count)`` opens ``count`` traders of a leveraged group.
        correlated: The correlated draws of the fundamentals (a correlation regime overrides them).
        collateral: The collateral assets (:class:`~abm.collateral.CollateralBook`; None without any).
    """

    markets: Sequence[Any]
    ledger: Any
    checker: Any
    population: Any
    recorder: Any
    rng: np.random.Generator
    exogenous_account: int
    add_traders: Callable[[Any, int], np.ndarray]
    correlated: Any = None
    collateral: Any = None

    def market_of(self, shock: Any) -> Any:
        """The market a shock acts on: its ``instrument``, or the first."""
        name = getattr(shock, "instrument", None)
        if name is None:
            return self.markets[0]
        return next(market for market in self.markets if market.name == name)


class StepEffects:
    """What the running shocks ask of the market makers this step, by instrument (combined over shocks).

    Attributes:
        withdrawn: Share of the makers' depth withheld in each market (``1 - prod(1 - share_i)``).
        spread_factor: Factor on the makers' half spread and level spacing (product over shocks).
    """

    def __init__(self, names: Sequence[str]) -> None:
        self.withdrawn = dict.fromkeys(names, 0.0)
        self.spread_factor = dict.fromkeys(names, 1.0)


# --------------------------------------------------------------------------- handlers
# Each handler gets the context, the shock, ``k`` (steps since the shock started), the current step, the
# shock's own state dict and the step's combined effects; it returns True when the shock is done early.

HANDLERS: Registry[Callable[..., Any]] = Registry("shock handler")


def handles(model: type) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a function as the handler of a registered shock model."""
    name = literal_name(model, "type")
    SHOCK_TYPES[name]  # a handler for an unregistered shock is a mistake: fail at import

    def register(handler: Callable[..., Any]) -> Callable[..., Any]:
        HANDLERS.add(name, handler)
        return handler

    return register


@handles(FundamentalJump)
def _fundamental_jump(
    ctx: ShockContext, shock: FundamentalJump, k: int, step: int, state: dict, effects
) -> None:
    # A jump is a repricing: the index moves and so does the level a mean-reverting process returns to.
    ctx.market_of(shock).jump(shock.size)


@handles(FundamentalRegime)
def _regime(ctx: ShockContext, shock: FundamentalRegime, k: int, step: int, state: dict, effects) -> None:
    market = ctx.market_of(shock)
    if shock.drift is not None:
        market.regime_drift = shock.drift
    if shock.volatility is not None:
        market.regime_volatility = shock.volatility


def _previous_volume(ctx: ShockContext, market: Any, step: int) -> int:
    recorder = ctx.recorder
    return int(recorder.latest("volume", market.name)) if recorder.rows and step > 0 else 0


@handles(MarketOrderShock)
def _market_order(
    ctx: ShockContext, shock: MarketOrderShock, k: int, step: int, state: dict, effects
) -> bool:
    side = SELL if shock.side == "sell" else BUY
    market = ctx.market_of(shock)
    if shock.volume_share is None:
        # TWAP: even slices; the first steps take the remainder so the total is exact.
        base, extra = divmod(shock.quantity, shock.over_steps)
        quantity = base + (1 if k < extra else 0)
        if quantity > 0:
            market.submit_market(ctx.exogenous_account, side, quantity)
        return False
    done = state.get("filled", 0)
    wanted = max(shock.min_lots, int(round(shock.volume_share * _previous_volume(ctx, market, step))))
    quantity = min(wanted, shock.quantity - done)
    done += market.submit_market(ctx.exogenous_account, side, quantity)
    state["filled"] = done
    return done >= shock.quantity


@handles(LiquidityWithdrawal)
def _liquidity_withdrawal(
    ctx: ShockContext, shock: LiquidityWithdrawal, k: int, step: int, state: dict, effects
) -> None:
    # Full strength for over_steps steps, then a linear fade over recovery_steps (strength 0 after).
    if k < shock.over_steps:
        strength = 1.0
    else:
        strength = 1.0 - (k - shock.over_steps + 1) / (shock.recovery_steps + 1)
    name = ctx.market_of(shock).name
    effects.withdrawn[name] = 1.0 - (1.0 - effects.withdrawn[name]) * (1.0 - shock.share * strength)
    effects.spread_factor[name] *= 1.0 + (shock.spread_factor - 1.0) * strength


@handles(MarginChange)
def _margin_change(ctx: ShockContext, shock: MarginChange, k: int, step: int, state: dict, effects) -> None:
    policy = ctx.checker.policies[ctx.market_of(shock).column]
    if shock.factor is not None:
        initial = min(policy.imr * shock.factor, 1.0)
        maintenance = min(policy.mmr * shock.factor, initial)
    else:
        initial, maintenance = shock.initial, shock.maintenance
    policy.announce(step, initial, maintenance, shock.notice_steps)


@handles(CollateralHaircut)
def _collateral_haircut(
    ctx: ShockContext, shock: CollateralHaircut, k: int, step: int, state: dict, effects
) -> None:
    ledger = ctx.ledger
    codes = [KIND_CODES[kind] for kind in shock.kinds]
    accounts = np.flatnonzero(np.isin(ledger.kind, codes))
    state["lost"] = ledger.revalue_collateral(accounts, shock.size)


@handles(Depeg)
def _depeg(ctx: ShockContext, shock: Depeg, k: int, step: int, state: dict, effects) -> None:
    ctx.collateral.depeg(shock.asset, shock.fraction)


@handles(FundingSpike)
def _funding_spike(ctx: ShockContext, shock: FundingSpike, k: int, step: int, state: dict, effects) -> None:
    market = ctx.market_of(shock)
    state["paid"] = state.get("paid", 0.0) + market.pay_funding(shock.rate)


@handles(StaleIndex)
def _stale_index(ctx: ShockContext, shock: StaleIndex, k: int, step: int, state: dict, effects) -> None:
    ctx.market_of(shock).index_stale = True


@handles(IndexMisprint)
def _index_misprint(ctx: ShockContext, shock: IndexMisprint, k: int, step: int, state: dict, effects) -> None:
    market = ctx.market_of(shock)
    market.index_error = (1.0 + market.index_error) * (1.0 + shock.size) - 1.0


@handles(VenueFault)
def _venue_fault(ctx: ShockContext, shock: VenueFault, k: int, step: int, state: dict, effects) -> None:
    ctx.market_of(shock).venues.fault(shock.venue, shock.mode, shock.size)


@handles(TraderInflow)
def _trader_inflow(ctx: ShockContext, shock: TraderInflow, k: int, step: int, state: dict, effects) -> None:
    base, extra = divmod(shock.traders.count, shock.over_steps)
    count = base + (1 if k < extra else 0)
    if count > 0:
        ctx.add_traders(shock.traders, count)


@handles(CorrelationRegime)
def _correlation_regime(
    ctx: ShockContext, shock: CorrelationRegime, k: int, step: int, state: dict, effects
) -> None:
    ctx.correlated.override(shock.matrix(len(ctx.markets)))


@handles(TraderOutflow)
def _trader_outflow(ctx: ShockContext, shock: TraderOutflow, k: int, step: int, state: dict, effects) -> None:
    ledger = ctx.ledger
    market = ctx.markets[0]
    position = ledger.position[:, market.column]
    traders = np.flatnonzero((ledger.kind == KIND_CODES["leveraged_trader"]) & (position != 0))
    chosen = np.sort(ctx.rng.choice(traders, size=int(round(shock.share * len(traders))), replace=False))
    if len(chosen) == 0:
        return
    marks = np.array([m.mark for m in ctx.markets])
    notional = np.abs(position[chosen]) * market.mark * market.contract_size
    initial_requirement, _ = ctx.checker.requirements(market.column, notional)
    equity = ledger.equity(marks)[chosen]
    # An exchange lets a trader take out only what is above the initial requirement, and only cash.
    free = np.clip(np.minimum(equity - initial_requirement, ledger.collateral[chosen]), 0.0, None)
    amounts = shock.fraction * free
    for account, amount in zip(chosen.tolist(), amounts.tolist(), strict=True):
        if amount > 0.0:
            ledger.withdraw(account, amount)
    state["withdrawn"] = float(amounts.sum())


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
        self._peaks: dict[str, float] = {}  # the highest mark so far, by instrument
        # No shock acted in the last step, so every effect is at its reset value already.
        self._quiet = False

    @property
    def needs_exogenous_account(self) -> bool:
        """Whether some shock trades for an outside party (an exogenous account is needed)."""
        return any(shock.type == "market_order" for shock in self.shocks)

    def apply(self, ctx: ShockContext, step: int) -> int:
        """Start the shocks due at ``step`` and apply every running one, in file order.

        Args:
            ctx: What the shocks act on.
            step: The current step.

        Returns:
            How many shocks acted.
        """
        if self._quiet and not self._running and not self._armed and step not in self._by_step:
            # Nothing runs, starts or waits for a condition, and the last step's reset left every
            # effect at its configured value: only this step's funding count starts again. (The
            # peaks are read by conditions alone, and no condition is left to read them.)
            for market in ctx.markets:
                market.funding_paid = 0.0
            return 0
        for market in ctx.markets:
            self._peaks[market.name] = max(self._peaks.get(market.name, -np.inf), market.mark)
        starting = list(self._by_step.pop(step, ()))
        if self._armed:
            fired = []
            for index in self._armed:
                shock = self.shocks[index]
                market = ctx.market_of(shock)  # a condition reads the shock's own market
                if step >= shock.step and trigger_holds(
                    shock.when, market.mark, self._peaks[market.name], market.realised_vol
                ):
                    fired.append(index)
            if fired:
                self._armed = [index for index in self._armed if index not in fired]
                starting.extend(fired)
        for index in starting:
            self.started_at[index] = step
        self._running = sorted(set(self._running).union(starting))
        # Back to the configured market; the running shocks then lay their effects on top.
        for each in ctx.markets:
            each.reset_fundamental_effects()
        if ctx.correlated is not None:
            ctx.correlated.reset()
        if ctx.collateral is not None:
            ctx.collateral.reset()
        effects = StepEffects([market.name for market in ctx.markets])
        still_running = []
        for index in self._running:
            shock = self.shocks[index]
            k = step - self.started_at[index]
            done = HANDLERS[shock.type](ctx, shock, k, step, self.states[index], effects)
            length = shock.active_steps
            if not done and (length is None or k + 1 < length):
                still_running.append(index)
        acted = len(self._running)
        self._running = still_running
        self._quiet = acted == 0
        for each in ctx.markets:
            each.liquidity_withdrawal = effects.withdrawn[each.name]
            each.spread_factor = effects.spread_factor[each.name]
        return acted
