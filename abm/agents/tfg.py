"""The agents of Thurner, Farmer and Geanakoplos (2012): leveraged value funds and AR(1) noise demand."""

from __future__ import annotations

import math

from abm.agents.base import TraderAgent
from abm.book import BUY, SELL
from abm.config.schema import AR1NoiseGroup, ValueFundGroup

__all__ = ["AR1NoiseTrader", "ValueFund"]


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
        ledger = self.model.ledger
        step = self.model.steps - 1
        count = int(ledger.liquidated[self.account])
        if count > self._liquidations_seen:
            self._liquidations_seen = count
            self._liquidated_at = step
        reentry = self.group.reentry_steps
        if reentry is None or self._liquidated_at is None or self.position != 0:
            return
        if step - self._liquidated_at >= reentry:
            shortfall = self.group.collateral - ledger.account_equity(self.account, self.model.marks)
            if shortfall > 0.0:
                ledger.deposit(self.account, shortfall)
            self._liquidated_at = None

    def step(self) -> None:
        """Rebalance toward the capped value position."""
        model = self.model
        group: ValueFundGroup = self.group
        ledger = model.ledger
        market = self.market
        ledger.clear_margin_call(self.account)  # it re-levers every time it acts
        self._recapitalise()
        if group.payout_above is not None:
            excess = ledger.account_equity(self.account, model.marks) - group.payout_above
            if excess > 0.0:
                ledger.withdraw(self.account, excess)  # paid out to the fund's investors
        leverage = min(self.aggression * max(market.mispricing(), 0.0), group.max_leverage)
        equity = max(ledger.account_equity(self.account, model.marks), 0.0)
        lots_per_leverage = equity / (market.mark * market.contract_size)
        position = self.position
        # Its own cap, and the exchange's: the initial margin of the margin rule in force.
        cap = min(
            int(group.max_leverage * lots_per_leverage),
            model.checker.max_position(self.account, market.column, model.marks),
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
            self.market.submit_market(self.account, BUY if delta > 0 else SELL, abs(delta))
