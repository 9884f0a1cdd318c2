"""Mesa agents: leveraged traders, market makers, noise traders and fundamentalists.

Agents hold no money of their own: each indexes one account in the model's :class:`~abm.clearing.Clearing`
arrays and shares its group's configuration object. An agent's ``step`` is called only in the steps it
acts (drawn from its group's arrival rate, every step for market makers, or the step after a margin
call); a trader that only holds a position costs nothing per step beyond the vectorised marking.

All randomness comes from ``model.rng`` (one ``numpy.random.Generator`` per run).
"""

from __future__ import annotations

import math

import mesa
import numpy as np

from abm.book import BUY, SELL
from abm.config import (
    FundamentalistGroup,
    LeveragedTraderGroup,
    MarketMakerGroup,
    NoiseTraderGroup,
)
from abm.config.schema import AR1NoiseGroup, ValueFundGroup

__all__ = [
    "AR1NoiseTrader",
    "Fundamentalist",
    "LeveragedTrader",
    "MarketMaker",
    "NoiseTrader",
    "TraderAgent",
    "ValueFund",
]


class TraderAgent(mesa.Agent):
    """Base: an agent bound to one clearing account and its group's settings.

    Args:
        model: The owning :class:`abm.model.MarketModel`.
        account: The account id in the clearing arrays.
        group: The group's configuration (shared by all agents of the group).
        group_index: Position of the group in the scenario's ``agents`` list.
    """

    kind = "trader"

    def __init__(self, model, account: int, group, group_index: int) -> None:
        super().__init__(model)
        self.account = account
        self.group = group
        self.group_index = group_index

    @property
    def position(self) -> int:
        """Signed position in lots."""
        return int(self.model.clearing.position[self.account])

    def _trade_toward(self, target: int, market: bool = True) -> None:
        """Send an order moving the position toward ``target`` lots (capped by initial margin)."""
        model = self.model
        position = self.position
        cap = model.clearing.max_position(self.account, model.mark)
        if abs(target) > abs(position):
            target = int(math.copysign(min(abs(target), max(cap, abs(position))), target))
        delta = target - position
        if delta == 0:
            return
        side = BUY if delta > 0 else SELL
        if market:
            model.submit_market(self.account, side, abs(delta))
        else:
            model.submit_limit(self.account, side, model.passive_price(side), abs(delta))


class LeveragedTrader(TraderAgent):
    """A leveraged position taker: the accounts whose liquidation makes the spiral.

    Holds ``side x leverage x equity / price`` lots. Strategies: ``hold`` (keep the position,
    re-enter when flat with ``reentry_rate``), ``momentum`` (follow the sign of the return over
    ``lookback``), ``value`` (trade toward the fundamental), ``random`` (a fresh random side).
    After a margin call it tops up from reserves, cuts the position back to initial margin, or
    ignores the call, with the group's probabilities.
    """

    kind = "leveraged_trader"

    def __init__(
        self, model, account: int, group: LeveragedTraderGroup, group_index: int, side: int, leverage: float
    ):
        super().__init__(model, account, group, group_index)
        self.side = side
        self.leverage = leverage
        self.reserves = group.reserves

    def target_lots(self, side: int) -> int:
        """Position (lots) at the target leverage on ``side`` for the current equity and mark."""
        model = self.model
        equity = model.clearing.account_equity(self.account, model.mark)
        if equity <= 0.0:
            return 0
        return side * int(self.leverage * equity / (model.mark * model.contract_size))

    def step(self) -> None:
        """Act: answer a pending margin call first, else follow the strategy."""
        clearing = self.model.clearing
        if clearing.margin_called[self.account]:
            clearing.margin_called[self.account] = False
            self.answer_margin_call()
            return
        group = self.group
        rng = self.model.rng
        strategy = group.strategy
        if strategy == "hold":
            if self.position == 0 and group.reentry_rate > 0.0 and rng.random() < group.reentry_rate:
                self._trade_toward(self.target_lots(self.side))
            return
        if strategy == "random":
            side = BUY if rng.random() < 0.5 else SELL
        else:
            signal = (
                self.model.momentum(group.lookback) if strategy == "momentum" else self.model.mispricing()
            )
            if abs(signal) < group.threshold:
                return
            side = BUY if signal > 0 else SELL
        self._trade_toward(self.target_lots(side))

    def answer_margin_call(self) -> None:
        """Top up, reduce to initial margin, or ignore, drawn from the group's probabilities."""
        model = self.model
        reaction = self.group.margin_call
        draw = model.rng.random()
        clearing = model.clearing
        if draw < reaction.top_up:
            notional = np.array([abs(self.position) * model.mark * model.contract_size])
            initial_requirement = float(model.policy.requirements(notional)[0][0])
            shortfall = initial_requirement - clearing.account_equity(self.account, model.mark)
            amount = min(max(shortfall, 0.0), self.reserves)
            if amount > 0.0:
                self.reserves -= amount
                clearing.deposit(self.account, amount)
        elif draw < reaction.top_up + reaction.reduce:
            cap = clearing.max_position(self.account, model.mark)
            if abs(self.position) > cap:
                self._trade_toward(int(math.copysign(cap, self.position)))


class MarketMaker(TraderAgent):
    """Quotes a depth profile around a reference price every step.

    The reference is the mid (or last trade, or index when the book is empty), blended with the
    index by ``anchor_weight`` and shifted against inventory by ``skew_ticks`` per lot. The half
    spread widens with realised volatility and a share of the depth is pulled when volatility exceeds
    ``vol_pull_ratio`` times the calm baseline. No quotes that would grow inventory past the limit.
    """

    kind = "market_maker"

    def step(self) -> None:
        """Cancel and requote."""
        model = self.model
        group: MarketMakerGroup = self.group
        inventory = self.position
        vol_ratio = model.realised_vol / group.vol_baseline if model.realised_vol > 0 else 1.0
        widen = max(1.0, 1.0 + group.vol_widen * (vol_ratio - 1.0))
        size_scale = 1.0 - model.liquidity_pull(self, group, vol_ratio)
        # One book call for the cancel and the ladder (makers send most of a run's orders; the
        # compiled book does it all in one kernel call). The reference is taken after the cancel, so it
        # is the mid without the maker's own quotes, shifted against its inventory.
        sent, crossed = model.book.requote_ladder(
            self.account,
            group.anchor_weight,
            model.fundamental / model.tick_size,
            group.skew_ticks * inventory,
            group.half_spread_ticks * widen,
            group.level_spacing_ticks * widen,
            group.levels,
            group.level_size,
            group.size_growth,
            size_scale,
            inventory < group.inventory_limit,
            inventory > -group.inventory_limit,
        )
        step = model.steps - 1
        for fills in crossed:
            model.clearing.settle(fills, step, -1, is_liquidation=False)
        model.agent_requests += 1 + sent  # the cancel request and the orders


class NoiseTrader(TraderAgent):
    """Random side; a market order, or a limit order a random number of ticks behind the touch."""

    kind = "noise"

    def step(self) -> None:
        """Replace the previous order with one random order within the position limit."""
        model = self.model
        group: NoiseTraderGroup = self.group
        rng = model.rng
        side = BUY if rng.random() < 0.5 else SELL
        position = self.position
        if abs(position + side) > group.max_position and (position > 0) == (side > 0):
            side = -side
        size = int(rng.integers(group.min_size, group.max_size + 1))
        # An order lives until its owner acts again: the new one replaces it, in one book call (the
        # draws above do not depend on the book, so they may come before the cancel).
        if rng.random() < group.market_order_share:
            model.replace_with_market(self.account, side, size)
        else:
            offset = int(rng.integers(0, group.max_offset_ticks + 1))
            model.replace_with_passive(self.account, side, offset, size)


class Fundamentalist(TraderAgent):
    """Buys below and sells above the fundamental value, in proportion to the mispricing."""

    kind = "fundamentalist"

    def step(self) -> None:
        """Trade toward the fundamental when the mispricing exceeds the threshold."""
        model = self.model
        group: FundamentalistGroup = self.group
        model.cancel_orders(self.account)  # stale quotes are withdrawn each time it acts
        mispricing = model.mispricing()
        if abs(mispricing) < group.threshold:
            return
        side = BUY if mispricing > 0 else SELL
        size = min(group.max_order, max(1, int(group.aggression * abs(mispricing))))
        position = self.position
        room = group.max_position - side * position
        size = min(size, room)
        if size <= 0:
            return
        if model.rng.random() < group.market_order_share:
            model.submit_market(self.account, side, size)
        else:
            model.submit_limit(self.account, side, model.passive_price(side, -1), size)


class ValueFund(TraderAgent):
    """A leveraged value investor with a leverage cap, after Thurner, Farmer and Geanakoplos (2012).

    Wants leverage ``aggression x max(log(V / p), 0)`` capped at ``max_leverage``, on its current equity,
    and closes ``adjustment`` of the gap to it with a market order whenever it acts; a position above the
    cap (its own, or the exchange's initial margin, whichever is lower) is cut to the cap at once. A fall
    in price cuts its equity faster than its position when it is levered, so at the cap it must sell into
    the fall: the deleveraging that makes the tails fat. After an exchange liquidation, fresh capital
    restores its initial collateral ``reentry_steps`` later (when set), as TFG's funds are replaced after
    a default; equity above
    ``payout_above`` is paid out to its investors, which keeps the funds' size stationary.
    """

    kind = "value_fund"

    def __init__(self, model, account: int, group: ValueFundGroup, group_index: int) -> None:
        super().__init__(model, account, group, group_index)
        # Funds of a group are created one after another: the rank spreads their aggression evenly.
        rank = sum(1 for agent in model.agents_by_type.get(ValueFund, []) if agent.group_index == group_index)
        rank -= 1  # the agent itself is already registered
        high = group.aggression_high
        if high is None or group.count <= 1:
            self.aggression = group.aggression
        else:
            self.aggression = group.aggression + (high - group.aggression) * rank / (group.count - 1)
        self._liquidations_seen = 0
        self._liquidated_at: int | None = None

    def _recapitalise(self) -> None:
        """Count new liquidations; restore the initial collateral ``reentry_steps`` after the last one."""
        clearing = self.model.clearing
        step = self.model.steps - 1
        count = int(clearing.liquidated[self.account])
        if count > self._liquidations_seen:
            self._liquidations_seen = count
            self._liquidated_at = step
        reentry = self.group.reentry_steps
        if reentry is None or self._liquidated_at is None or self.position != 0:
            return
        if step - self._liquidated_at >= reentry:
            shortfall = self.group.collateral - clearing.account_equity(self.account, self.model.mark)
            if shortfall > 0.0:
                clearing.deposit(self.account, shortfall)
            self._liquidated_at = None

    def step(self) -> None:
        """Rebalance toward the capped value position."""
        model = self.model
        group: ValueFundGroup = self.group
        model.clearing.margin_called[self.account] = False  # it re-levers every time it acts
        self._recapitalise()
        if group.payout_above is not None:
            excess = model.clearing.account_equity(self.account, model.mark) - group.payout_above
            if excess > 0.0:
                model.clearing.deposit(self.account, -excess)  # paid out: a negative deposit
        leverage = min(self.aggression * max(model.mispricing(), 0.0), group.max_leverage)
        equity = max(model.clearing.account_equity(self.account, model.mark), 0.0)
        lots_per_leverage = equity / (model.mark * model.contract_size)
        position = self.position
        # Its own cap, and the exchange's: the initial margin of the margin rule in force.
        cap = min(
            int(group.max_leverage * lots_per_leverage), model.clearing.max_position(self.account, model.mark)
        )
        if position > cap:
            target = cap  # above a leverage cap: forced to sell back to it at once
        else:
            gap = int(leverage * lots_per_leverage) - position
            # Rounded away from zero so that a small gap still closes.
            target = position + int(math.copysign(math.ceil(abs(gap) * group.adjustment), gap))
        if abs(target - position) >= group.min_trade:
            self._trade_toward(target)


class AR1NoiseTrader(TraderAgent):
    """Noise demand with an AR(1) log, after Thurner, Farmer and Geanakoplos (2012).

    The log demand ``x`` follows ``x_t = rho x_{t-1} + sigma eps_t`` in every step (advanced exactly
    over the steps the agent did not act); the target position is ``scale x (exp(x) - 1)`` lots and is
    reached with a market order.
    """

    kind = "ar1_noise"

    def __init__(self, model, account: int, group: AR1NoiseGroup, group_index: int) -> None:
        super().__init__(model, account, group, group_index)
        self.log_demand = 0.0
        self._updated_step = 0

    def _advance(self, step: int) -> None:
        """Advance the AR(1) by the steps since the last update (the k-step transition law)."""
        group: AR1NoiseGroup = self.group
        elapsed = step + 1 - self._updated_step
        if elapsed <= 0:
            return
        decay = group.rho**elapsed
        # Variance of sum_{j<k} rho^j eps: sigma^2 (1 - rho^2k) / (1 - rho^2).
        spread = group.sigma * math.sqrt((1.0 - decay * decay) / (1.0 - group.rho * group.rho))
        self.log_demand = decay * self.log_demand + spread * self.model.rng.standard_normal()
        self._updated_step = step + 1

    def step(self) -> None:
        """Advance the demand and trade to the target position."""
        model = self.model
        group: AR1NoiseGroup = self.group
        self._advance(model.steps - 1)
        target = int(round(group.scale * (math.exp(self.log_demand) - 1.0)))
        delta = target - self.position
        if delta:
            model.submit_market(self.account, BUY if delta > 0 else SELL, abs(delta))


AGENT_CLASSES = {
    "leveraged_trader": LeveragedTrader,
    "market_maker": MarketMaker,
    "noise": NoiseTrader,
    "fundamentalist": Fundamentalist,
    "value_fund": ValueFund,
    "ar1_noise": AR1NoiseTrader,
}
