"""MarketModel: the Mesa model that wires book, clearing, margin policy, agents and shocks.

One ``step()`` follows DESIGN.md: (1) shocks, (2) margin policy review, (3) the agents that act
this step act in a random order, (4) mark price, (5-7) margin check, liquidation cascade rounds and
waterfall, (8) recording. Build it from a scenario file, a :class:`~abm.config.Scenario`, or a dict,
with dotted-key overrides as keyword arguments, so that ``mesa.batch_run`` works::

    mesa.batch_run(MarketModel, parameters={"scenario": "scenarios/spiral.yaml",
                                            "margin.maintenance": [0.02, 0.03]}, rng=[1, 2])

Randomness: the single ``numpy.random.Generator`` Mesa makes from ``rng`` (``self.rng``) drives
everything; with ``rng=None`` the scenario's ``seed`` is used, so a scenario alone is reproducible.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import mesa
import numpy as np
import pandas as pd

from abm.agents import AGENT_CLASSES, LeveragedTrader
from abm.book import BUY, make_book
from abm.clearing import ENGINE, KIND_CODES, Clearing
from abm.config import LeveragedTraderGroup, MarketMakerGroup, Scenario
from abm.margin import build_margin_policy
from abm.metrics import summarise
from abm.network import (
    build_cascade_graph,
    build_exposure_graph,
    build_trade_graph,
    exposures_from_accounts,
    trade_network_summary,
)
from abm.recorder import RunRecorder
from abm.results import ACCOUNT_COLUMNS, LIQUIDATION_COLUMNS, TRADE_COLUMNS, RunResult
from abm.shocks import ShockSchedule

__all__ = ["MarketModel", "run_scenario"]

_KIND_NAMES = {code: name for name, code in KIND_CODES.items()}
# What np.sum and ndarray.sum call for a 1-d array (same pairwise sum, same bits), without their
# argument handling: the time series takes three such sums every step.
_total = np.add.reduce
# Column types of the liquidations table, so that an empty table is typed too.
_LIQUIDATION_DTYPES = {
    "liquidation_id": "int64",
    "step": "int64",
    "round": "int64",
    "account_id": "int64",
    "kind": "int64",
    "side": "int64",
    "quantity": "int64",
    "filled_quantity": "int64",
    "average_price": "float64",
    "mark_before": "float64",
    "notional": "float64",
    "equity_before": "float64",
    "equity_after": "float64",
    "bad_debt": "float64",
    "adl_quantity": "int64",
    "price_impact": "float64",
    "parents": "object",
    "full": "bool",
}


def _resolve(scenario: Any, overrides: Mapping[str, Any]) -> Scenario:
    from abm import config

    if isinstance(scenario, Scenario) and not overrides:
        return scenario
    strings = [f"{key}={json.dumps(value)}" for key, value in overrides.items()]
    if isinstance(scenario, Scenario):
        return config.scenario_from_dict(scenario.model_dump(mode="json"), strings)
    if isinstance(scenario, Mapping):
        return config.scenario_from_dict(scenario, strings)
    if isinstance(scenario, str | Path):
        return config.load_scenario(config.resolve_scenario(scenario), strings)
    raise TypeError(
        "scenario must be a path, a scenario name, a dict or an abm.config.Scenario "
        f"(got {type(scenario).__name__})"
    )


class MarketModel(mesa.Model):
    """Leveraged traders on one order book, marked and liquidated by one exchange.

    Args:
        scenario: Path or name of a scenario file, a mapping, or a validated Scenario.
        rng: Seed or Generator for the run (Mesa's convention); None uses the scenario's seed.
        check_invariants: Check zero-sum positions, conservation of money and an uncrossed book
            after every step; a breach raises :class:`abm.clearing.InvariantError`.
        liquidation_enabled: Override ``liquidation.enabled`` (False gives the counterfactual).
        **overrides: Dotted scenario keys and values, e.g. ``**{"margin.maintenance": 0.03}``.
    """

    def __init__(
        self,
        scenario: Any = "spiral",
        rng: Any = None,
        *,
        check_invariants: bool = False,
        liquidation_enabled: bool | None = None,
        **overrides: Any,
    ) -> None:
        config = _resolve(scenario, overrides)
        if rng is None:
            rng = config.seed
        super().__init__(rng=rng)
        self.config = config
        self.seed = int(rng) if isinstance(rng, int | np.integer) else None
        self.check_invariants = check_invariants
        self.liquidation_enabled = (
            config.liquidation.enabled if liquidation_enabled is None else liquidation_enabled
        )
        market = config.market
        self.tick_size = market.tick_size
        self.contract_size = market.contract_size
        self.horizon = config.steps

        self.book = make_book(self.config.market.book_engine)
        self.policy = build_margin_policy(config.margin)
        self.clearing = Clearing(
            self.book,
            self.policy,
            config.liquidation,
            contract_size=market.contract_size,
            tick_size=market.tick_size,
            call_buffer=config.margin.call_buffer,
        )
        self.shocks = ShockSchedule(config.shocks)
        fundamental = config.fundamental
        self.fundamental = float(fundamental.initial or market.initial_price)
        self.fundamental_level = float(fundamental.long_run or self.fundamental)
        # The exchange's oracle index: the fundamental, unless a shock holds it stale or misprints it.
        self.index = self.fundamental
        self.index_stale = False
        self.index_error = 0.0
        # Drift / volatility of the fundamental set by a regime shock (None: the configured values).
        self.regime_drift: float | None = None
        self.regime_volatility: float | None = None
        self.mark = float(market.initial_price)
        self._basis_ema = 0.0
        self._marks = np.full(self.horizon + 1, np.nan)
        self._marks[0] = self.mark
        # Their logs, taken once per mark (the realised volatility reads a window of them each step).
        self._log_marks = np.full(self.horizon + 1, np.nan)
        np.log(self._marks[:1], out=self._log_marks[:1])
        self.realised_vol = 0.0
        self.liquidity_withdrawal = 0.0  # share of maker depth withdrawn by shocks
        # Agent actions that reached the book (orders and cancel requests), for benchmarks/.
        self.agent_requests = 0
        self._trader_mask: np.ndarray | None = None  # leveraged-trader accounts, for the time series
        self._idle_holder_mask: np.ndarray | None = None  # see _idle_holders
        first_shock = min((shock.step for shock in config.shocks), default=0)
        self._snapshot_step = max(first_shock - 1, 0)  # accounts are snapshot just before the stress
        self.margin_calls_this_step = 0

        self.recorder = RunRecorder(self.horizon)
        self.datacollector = mesa.DataCollector(
            model_reporters={
                "mark": lambda m: m.mark,
                "index": lambda m: m.index,
                "liquidations": lambda m: m.clearing.step_liquidations,
                "insurance_fund": lambda m: float(m.clearing.collateral[ENGINE]),
                "mmr": lambda m: m.policy.mmr,
            }
        )
        self._build_agents()
        # Made now when checking, so that a breach in step 0 can name the accounts it changed.
        self._invariant_checker = None
        self.last_money_breakdown = None
        if check_invariants:
            from abm.invariants import InvariantChecker

            self._invariant_checker = InvariantChecker(self.clearing, self.book)
        self._started = time.perf_counter()
        self.start_time = datetime.now(UTC).isoformat(timespec="seconds")
        self.wall_seconds = 0.0

    # ------------------------------------------------------------------ set-up

    def _build_agents(self) -> None:
        clearing = self.clearing
        price = self.mark
        self._agent_by_account: list[Any] = [None]
        self._groups: list[tuple[Any, np.ndarray, float]] = []  # (config, account ids, arrival rate)
        self.group_configs: list[Any] = list(self.config.agents)  # plus groups joining mid-run
        self.group_of_account: list[int] = [-1]
        initial_positions: list[tuple[int, int]] = []
        makers = []
        for index, group in enumerate(self.config.agents):
            accounts = clearing.add_accounts(group.count, group.collateral, group.kind)
            agent_class = AGENT_CLASSES[group.kind]
            agents = []
            if isinstance(group, LeveragedTraderGroup):
                leverage = self._draw_leverage(group, group.count)
                sides = self._draw_sides(group, group.count)
                for account, side, lev in zip(
                    accounts.tolist(), sides.tolist(), leverage.tolist(), strict=True
                ):
                    agent = LeveragedTrader(self, account, group, index, side, lev)
                    agents.append(agent)
                    if group.initial_position:
                        lots = side * int(lev * group.collateral / (price * self.contract_size))
                        if lots:
                            initial_positions.append((account, lots))
            else:
                agents = [agent_class(self, account, group, index) for account in accounts.tolist()]
                if isinstance(group, MarketMakerGroup):
                    makers.extend(agents)
            self._agent_by_account.extend(agents)
            self.group_of_account.extend([index] * group.count)
            self._groups.append((group, accounts, group.arrival_rate))
        self.makers = makers
        self._maker_accounts = np.array([m.account for m in makers], dtype=np.int64)
        self.counterparty_account = -1
        if initial_positions:
            # The other side of the initial leveraged positions: one fully funded, unlevered
            # account (think of a basis trader short the future and long spot), never liquidated.
            gross = sum(abs(lots) for _, lots in initial_positions) * price * self.contract_size
            self.counterparty_account = int(clearing.add_accounts(1, gross + 1.0, "counterparty")[0])
            clearing.checked[self.counterparty_account] = False
            self._agent_by_account.append(None)
            self.group_of_account.append(-1)
            for account, lots in initial_positions:
                clearing.open_position(account, lots, price, self.counterparty_account)
        self.exogenous_account = -1
        if self.shocks.needs_exogenous_account:
            program = sum(s.quantity for s in self.shocks.shocks if s.type == "market_order")
            collateral = 10.0 * program * price * self.contract_size + 1.0
            self.exogenous_account = int(clearing.add_accounts(1, collateral, "exogenous")[0])
            clearing.checked[self.exogenous_account] = False
            self._agent_by_account.append(None)
            self.group_of_account.append(-1)
        # Makers quote once before the first step so the book is not empty at the open.
        for maker in makers:
            maker.step()

    def add_leveraged_traders(self, group: LeveragedTraderGroup, count: int) -> np.ndarray:
        """New traders of ``group`` join mid-run (a trader_inflow shock) and take their positions.

        With ``group.initial_position`` each position is booked at the mark against the counterparty
        (kept fully funded by a deposit); otherwise each newcomer sends a market order for it.

        Returns:
            The new account ids.
        """
        clearing = self.clearing
        index = next((i for i, known in enumerate(self.group_configs) if known is group), None)
        if index is None:
            index = len(self.group_configs)
            self.group_configs.append(group)
            self._groups.append((group, np.empty(0, dtype=np.int64), group.arrival_rate))
        accounts = clearing.add_accounts(count, group.collateral, group.kind)
        leverage = self._draw_leverage(group, count)
        sides = self._draw_sides(group, count)
        agents = [
            LeveragedTrader(self, account, group, index, side, lev)
            for account, side, lev in zip(accounts.tolist(), sides.tolist(), leverage.tolist(), strict=True)
        ]
        self._agent_by_account.extend(agents)
        self.group_of_account.extend([index] * count)
        _, known_accounts, rate = self._groups[index]
        self._groups[index] = (group, np.concatenate([known_accounts, accounts]), rate)
        for agent in agents:
            cap = clearing.max_position(agent.account, self.mark)
            lots = agent.side * min(abs(agent.target_lots(agent.side)), cap)
            if lots == 0:
                continue
            if group.initial_position:
                if self.counterparty_account < 0:
                    self.counterparty_account = int(clearing.add_accounts(1, 0.0, "counterparty")[0])
                    clearing.checked[self.counterparty_account] = False
                    self._agent_by_account.append(None)
                    self.group_of_account.append(-1)
                clearing.deposit(self.counterparty_account, abs(lots) * self.mark * self.contract_size)
                clearing.open_position(agent.account, lots, self.mark, self.counterparty_account)
            else:
                self.submit_market(agent.account, BUY if lots > 0 else -BUY, abs(lots))
        return accounts

    def _draw_leverage(self, group: LeveragedTraderGroup, count: int) -> np.ndarray:
        spec = group.leverage
        if spec.distribution == "fixed":
            return np.full(count, float(spec.value))
        if spec.distribution == "uniform":
            return self.rng.uniform(spec.low, spec.high, count)
        draws = spec.median * np.exp(spec.sigma * self.rng.standard_normal(count))
        return np.clip(draws, 1.0, spec.cap if spec.cap is not None else np.inf)

    def _draw_sides(self, group: LeveragedTraderGroup, count: int) -> np.ndarray:
        if group.side == "long":
            return np.ones(count, dtype=np.int64)
        if group.side == "short":
            return -np.ones(count, dtype=np.int64)
        return np.where(self.rng.random(count) < group.long_share, 1, -1).astype(np.int64)

    # ------------------------------------------------------------------ market helpers used by agents

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
        """Submit a market (IOC) order for an account; returns the lots filled."""
        self.agent_requests += 1
        return self._settle(self.book.submit_market(account, side, quantity))

    def _settle(self, fills) -> int:
        """Settle an agent order's fills (if any) in this step; return the lots filled."""
        if not fills:
            return 0
        lots, _ = self.clearing.settle(fills, self.steps - 1, -1, is_liquidation=False)
        return lots

    def quote_reference(self, anchor_weight: float = 0.0) -> float:
        """Reference price in ticks for quoting: mid, else last trade, else index; blended with the index."""
        return self.book.quote_reference(anchor_weight, self.fundamental / self.tick_size)

    def passive_price(self, side: int, offset: int = 0) -> int:
        """A limit price ``offset`` ticks behind the touch on ``side`` (negative: improve, never cross).

        With that side of the book empty: behind the last trade, or before any trade behind the
        index (see ``OrderBook.passive_price``).
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
        return self._settle(self.book.replace_with_market(account, side, quantity))

    def momentum(self, lookback: int) -> float:
        """Log return of the mark over the last ``lookback`` steps (0 before enough history)."""
        t = self.steps - 1
        if t - lookback < 0:
            return 0.0
        return math.log(self._marks[t] / self._marks[t - lookback])

    def mispricing(self) -> float:
        """Log of fundamental over the current price (positive: the future is cheap)."""
        mid = self.book.mid()
        price = mid * self.tick_size if mid is not None else self.mark
        return math.log(self.fundamental / price)

    def liquidity_pull(self, maker, group: MarketMakerGroup, vol_ratio: float) -> float:
        """Share of a maker's depth withheld this step: volatility pull combined with shocks."""
        pull = group.pull_fraction if vol_ratio > group.vol_pull_ratio else 0.0
        return 1.0 - (1.0 - pull) * (1.0 - self.liquidity_withdrawal)

    # ------------------------------------------------------------------ marking

    def compute_mark(self) -> float:
        """The mark price from the configured source (falls back to the last mark when undefined)."""
        source = self.config.market.mark_price.source
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
        alpha = 2.0 / (self.config.market.mark_price.ema_steps + 1.0)
        return self.index + (1.0 - alpha) * self._basis_ema + alpha * (price - self.index)

    # ------------------------------------------------------------------ the step

    def _evolve_fundamental(self) -> None:
        spec = self.config.fundamental
        regime = self.regime_drift is not None or self.regime_volatility is not None
        drift = spec.drift if self.regime_drift is None else self.regime_drift
        volatility = spec.volatility if self.regime_volatility is None else self.regime_volatility
        if spec.process == "constant" and not regime or volatility == 0.0 and drift == 0.0:
            return
        shock = volatility * self.rng.standard_normal()
        if spec.process == "ou":
            log_gap = math.log(self.fundamental_level / self.fundamental)
            self.fundamental *= math.exp(spec.mean_reversion * log_gap + drift + shock)
            if self.regime_drift is not None:
                # A drift regime reprices: the level moves too, so the process does not revert the fall.
                self.fundamental_level *= math.exp(self.regime_drift)
        else:
            self.fundamental *= math.exp(drift + shock)

    def _publish_index(self) -> None:
        if not self.index_stale:
            self.index = self.fundamental * (1.0 + self.index_error)

    def _idle_holders(self, n: int) -> np.ndarray:
        """Mask of the accounts whose arrival is a no-op unless margin-called (holders, no re-entry)."""
        mask = self._idle_holder_mask
        if mask is None or len(mask) != n:  # accounts only ever get added: rebuilt when they are
            mask = np.zeros(n, dtype=bool)
            for group, accounts, _ in self._groups:
                if isinstance(group, LeveragedTraderGroup) and group.strategy == "hold":
                    if group.reentry_rate <= 0.0:
                        mask[accounts] = True
            self._idle_holder_mask = mask
        return mask

    def _draw_actors(self) -> list:
        rng = self.rng
        chosen = [self._maker_accounts]
        for group, accounts, rate in self._groups:
            if isinstance(group, MarketMakerGroup) or rate <= 0.0 or len(accounts) == 0:
                continue
            k = int(rng.binomial(len(accounts), rate))
            if k:
                chosen.append(accounts[rng.choice(len(accounts), size=k, replace=False)])
        n = self.clearing.n_accounts
        margin_called = self.clearing.margin_called[:n]
        called = np.flatnonzero(margin_called)
        if len(called):
            chosen.append(called)
            accounts = np.unique(np.concatenate(chosen))
        else:
            # Groups hold disjoint accounts, so only a margin call can repeat one: a sort is enough.
            accounts = np.sort(np.concatenate(chosen))
        accounts = accounts[rng.permutation(len(accounts))]
        # Holders without a margin call are dropped after the draws, so the random stream is the one
        # every agent acting would give; such a holder neither trades nor draws a number in its step.
        idle = self._idle_holders(n)[accounts]
        if idle.any():
            accounts = accounts[~(idle & ~margin_called[accounts])]
        by_account = self._agent_by_account
        return [by_account[a] for a in accounts.tolist() if by_account[a] is not None]

    def step(self) -> None:
        """Advance the market by one step (see the module docstring for the order)."""
        t = self.steps - 1
        if t >= self.horizon:
            self.running = False
            return
        clearing = self.clearing
        clearing.reset_step_counters()
        # 1. events (shocks first: a regime or an index fault starting now acts on this step's index)
        self.shocks.apply(self, t)
        self._evolve_fundamental()
        self._publish_index()
        # 2. margin policy review on the marks known so far
        self.policy.review(t, self._marks[: t + 1])
        self._update_realised_vol(t)
        # 3. agents act
        for agent in self._draw_actors():
            agent.step()
        # 4-7. mark, margin check, liquidation rounds, waterfall
        check = clearing.run_liquidations(t, self.compute_mark, enabled=self.liquidation_enabled)
        self.mark = self.compute_mark()
        if self.config.market.mark_price.source == "index_ema_basis":
            mid = self.book.mid()
            if mid is not None:
                alpha = 2.0 / (self.config.market.mark_price.ema_steps + 1.0)
                basis = mid * self.tick_size - self.index
                self._basis_ema += alpha * (basis - self._basis_ema)
        self._marks[t + 1] = self.mark
        np.log(self._marks[t + 1 : t + 2], out=self._log_marks[t + 1 : t + 2])
        if self.check_invariants:
            self._check_invariants(t)
        # 8. data collection
        self._record(t, check)
        self.datacollector.collect(self)
        if t + 1 >= self.horizon:
            self.running = False
            self.wall_seconds = time.perf_counter() - self._started

    def _update_realised_vol(self, t: int) -> None:
        window = self.config.market.vol_window
        start = max(0, t - window)
        if t + 1 - start < 3:
            return
        # np.std(np.diff(np.log(marks)), ddof=1) written out in the same operations, so the same bits
        # (tested), without np.std's per-call overhead: this runs every step.
        log_marks = self._log_marks
        returns = log_marks[start + 1 : t + 1] - log_marks[start:t]
        deviation = returns - np.add.reduce(returns) / len(returns)
        np.multiply(deviation, deviation, out=deviation)
        self.realised_vol = math.sqrt(np.add.reduce(deviation) / (len(returns) - 1))

    def _check_invariants(self, t: int) -> None:
        # Ledger (zero sum, conservation, finite) and book (crossed, structure); see abm.invariants.
        if self._invariant_checker is None:
            from abm.invariants import InvariantChecker

            self._invariant_checker = InvariantChecker(self.clearing, self.book)
        self.last_money_breakdown = self._invariant_checker.check(t, self.mark)

    def _record(self, t: int, check) -> None:
        clearing = self.clearing
        book = self.book
        tick = self.tick_size
        bid, ask = book.best_bid(), book.best_ask()
        mid = book.mid()
        last = book.last_price
        n = clearing.n_accounts
        if self._trader_mask is None or len(self._trader_mask) != n:  # accounts only ever get added
            self._trader_mask = clearing.kind[:n] == KIND_CODES["leveraged_trader"]
        # The step's last margin check is current: nothing trades between it and the recording.
        # held: the checked accounts with a position (traders are always checked), as ids, so that
        # the sums below run over them alone (the same elements in the same order as boolean
        # indexing over all accounts, so the same bits).
        held = np.flatnonzero(check.exposed)
        held_equity = check.equity[held]
        held_notional = check.notional[held]
        # Mean leverage of the traders with a position and positive equity (NaN if there are none).
        solvent = held_equity > 0
        solvent &= self._trader_mask[held]
        count = int(np.count_nonzero(solvent))
        if count:
            mean_leverage = float(_total(held_notional[solvent] / held_equity[solvent])) / count
        else:
            mean_leverage = float("nan")
        band = max(1, int(round(0.01 * self.mark / tick)))
        self.margin_calls_this_step = int(np.count_nonzero(check.called))
        # Margin the rule asks of every checked account, and the cash its calls demand.
        margin_held = float(_total(check.initial_requirement[held]))
        gross_notional = float(_total(held_notional))
        margin_call_amount = 0.0
        if self.margin_calls_this_step:
            call_shortfall = check.initial_requirement[check.called] - check.equity[check.called]
            margin_call_amount = float(np.maximum(call_shortfall, 0.0).sum())
        state = self.policy.state()
        self.recorder.record(
            {
                "step": t,
                "price": last * tick if last is not None else self.mark,
                "mid": mid * tick if mid is not None else np.nan,
                "mark": self.mark,
                "index": self.index,
                "best_bid": bid * tick if bid is not None else np.nan,
                "best_ask": ask * tick if ask is not None else np.nan,
                "spread": (ask - bid) * tick if bid is not None and ask is not None else np.nan,
                "depth_bid": book.depth(BUY, band),
                "depth_ask": book.depth(-BUY, band),
                "volume": clearing.step_volume,
                "liquidations": clearing.step_liquidations,
                "liquidated_notional": clearing.step_liquidated_notional,
                "adl_volume": clearing.step_adl_volume,
                "open_interest": clearing.open_interest,
                "insurance_fund": float(clearing.collateral[ENGINE]),
                "bad_debt": clearing.total_bad_debt,
                "socialised_loss": clearing.total_socialised,
                "margin_calls": self.margin_calls_this_step,
                "margin_call_amount": margin_call_amount,
                "margin_held": margin_held,
                "gross_notional": gross_notional,
                "imr": state["imr"],  # the rates held now, as policy.imr and policy.mmr give them
                "mmr": state["mmr"],
                "realised_vol": self.realised_vol,
                "mean_leverage": mean_leverage,
                "cascade_rounds": clearing.step_rounds,
            },
            state,
        )
        # For the stress figures: the book around the mid, and every account before the first shock.
        self.recorder.record_depth(book, mid if mid is not None else self.mark / tick)
        if t == self._snapshot_step:
            kinds = [_KIND_NAMES[int(code)] for code in clearing.kind[:n]]
            position = clearing.position[:n]
            self.recorder.snapshot_accounts("before_stress", t, kinds, position, check.equity, check.notional)

    # ------------------------------------------------------------------ running and results

    def run(self, steps: int | None = None, progress: Callable[[int], None] | None = None) -> None:
        """Run to the horizon (or ``steps`` more steps), calling ``progress(k)`` every k steps done."""
        remaining = self.horizon - (self.steps) if steps is None else steps
        chunk = max(1, self.horizon // 200)
        done_since = 0
        for _ in range(remaining):
            if not self.running:
                break
            self.step()
            done_since += 1
            if progress is not None and done_since >= chunk:
                progress(done_since)
                done_since = 0
        if progress is not None and done_since:
            progress(done_since)

    def results(self) -> RunResult:
        """Collect the run's tables, cascade graph and summary into a :class:`RunResult`."""
        clearing = self.clearing
        timeseries = self.recorder.to_frame()
        trades = pd.DataFrame(
            {
                "step": np.array(clearing.trade_step, dtype=np.int64),
                "round": np.array(clearing.trade_round, dtype=np.int64),
                "price": np.array(clearing.trade_price, dtype=np.float64),
                "quantity": np.array(clearing.trade_quantity, dtype=np.int64),
                "taker": np.array(clearing.trade_taker, dtype=np.int64),
                "maker": np.array(clearing.trade_maker, dtype=np.int64),
                "taker_side": np.array(clearing.trade_side, dtype=np.int64),
                "is_liquidation": np.array(clearing.trade_is_liquidation, dtype=bool),
            },
            columns=list(TRADE_COLUMNS),
        )
        liquidations = pd.DataFrame(clearing.liquidations, columns=list(LIQUIDATION_COLUMNS))
        liquidations = liquidations.astype(_LIQUIDATION_DTYPES)
        liquidations["kind"] = liquidations["kind"].map(_KIND_NAMES).astype(object)
        accounts = self.accounts_table()
        cascade = build_cascade_graph(liquidations)
        summary = summarise(timeseries, liquidations, cascade, self.config, self.policy)
        n = clearing.n_accounts
        self.recorder.snapshot_accounts(
            "end",
            max(self.steps - 1, 0),
            accounts["kind"],
            clearing.position[:n],
            accounts["equity"].to_numpy(),
            np.abs(clearing.position[:n]) * self.mark * self.contract_size,
        )
        snapshots = self.recorder.snapshots_frame()
        trade_graph = build_trade_graph(trades, accounts, liquidations, self.contract_size)
        before = snapshots[snapshots["snapshot"] == "before_stress"]
        exposure_graph = build_exposure_graph(exposures_from_accounts(before))
        summary.update(trade_network_summary(trade_graph, exposure_graph))
        return RunResult(
            scenario=self.config,
            seed=self.seed if self.seed is not None else -1,
            timeseries=timeseries,
            trades=trades,
            liquidations=liquidations,
            accounts=accounts,
            cascade=cascade,
            summary=summary,
            wall_seconds=self.wall_seconds or (time.perf_counter() - self._started),
            invariant_checks=self.check_invariants,
            extra={
                "start_time": self.start_time,
                "seed_sequence": self._seed_sequence(),
                "end_time": datetime.now(UTC).isoformat(timespec="seconds"),
                "trade_graph": trade_graph,
                "depth_profile": self.recorder.depth_frame(),
                "account_snapshots": snapshots,
            },
        )

    def _seed_sequence(self) -> dict[str, Any] | None:
        """Entropy and spawn key of the SeedSequence behind ``self.rng`` (for the manifest)."""
        seed_seq = getattr(self.rng.bit_generator, "seed_seq", None)
        if not isinstance(seed_seq, np.random.SeedSequence):
            return None
        return {"entropy": int(seed_seq.entropy), "spawn_key": [int(k) for k in seed_seq.spawn_key]}

    def accounts_table(self) -> pd.DataFrame:
        """One row per account at the current mark (the engine's included when it holds inventory)."""
        clearing = self.clearing
        n = clearing.n_accounts
        equity = clearing.equity(self.mark)
        group_labels = []
        for account in range(n):
            index = self.group_of_account[account]
            if index < 0:
                group_labels.append(_KIND_NAMES[int(clearing.kind[account])])
            else:
                group = self.group_configs[index]
                group_labels.append(group.label or f"{index}:{group.kind}")
        leverage_target = np.full(n, np.nan)
        for agent in self._agent_by_account:
            if isinstance(agent, LeveragedTrader):
                leverage_target[agent.account] = agent.leverage
        table = pd.DataFrame(
            {
                "account_id": np.arange(n, dtype=np.int64),
                "kind": [_KIND_NAMES[int(k)] for k in clearing.kind[:n]],
                "group": group_labels,
                "collateral": clearing.collateral[:n].copy(),
                "position": clearing.position[:n].copy(),
                "entry_price": clearing.entry_price[:n].copy(),
                "equity": equity,
                "liquidated": clearing.liquidated[:n].copy(),
                "deposits": clearing.deposits[:n].copy(),
                "initial_collateral": clearing.initial_collateral[:n].copy(),
                "leverage_target": leverage_target,
            },
            columns=list(ACCOUNT_COLUMNS),
        )
        return table


def run_scenario(
    scenario: Scenario,
    seed: int | None = None,
    *,
    check_invariants: bool = False,
    progress: Callable[[int], None] | None = None,
    liquidation_enabled: bool | None = None,
) -> RunResult:
    """Run one scenario to its horizon and return its results.

    Args:
        scenario: A validated scenario.
        seed: Seed of the run's generator; None uses ``scenario.seed``.
        check_invariants: Check every invariant after every step.
        progress: Called with the number of steps just completed.
        liquidation_enabled: Override ``liquidation.enabled`` (False: counterfactual).

    Returns:
        The run's :class:`RunResult`.
    """
    model = MarketModel(
        scenario,
        rng=scenario.seed if seed is None else seed,
        check_invariants=check_invariants,
        liquidation_enabled=liquidation_enabled,
    )
    model.run(progress=progress)
    return model.results()
