"""MarketModel: the Mesa model that orchestrates the markets, the ledger, the risk engine and the agents.

The parts (see ``docs/architecture.md``): one :class:`~abm.market.Market` per instrument, the
:class:`~abm.ledger.Ledger`, the :class:`~abm.margin.check.MarginChecker` with one margin policy per
instrument, the :class:`~abm.liquidation.Liquidator`, the :class:`~abm.population.Population`, the
:class:`~abm.shocks.ShockSchedule` and the :class:`~abm.recorder.RunRecorder`. One ``step()`` is the
step order: (1) shocks, then the fundamentals move and the index is published; (2) margin policy
review; (3) the agents that act this step act in a random order; (4-7) margin check, liquidation
rounds and waterfall, then the marks; (8) recording.

Build it from a scenario file or name, a :class:`~abm.config.Scenario`, or a dict, with dotted-key
overrides as keyword arguments, so that ``mesa.batch_run`` works::

    mesa.batch_run(MarketModel, parameters={"scenario": "scenarios/spiral.yaml",
                                            "margin.maintenance": [0.02, 0.03]}, rng=[1, 2])

Randomness: the single ``numpy.random.Generator`` Mesa makes from ``rng`` (``self.rng``) drives
everything; with ``rng=None`` the scenario's ``seed`` is used, so a scenario alone is reproducible.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import mesa
import numpy as np

from abm.activity import ActivityFeedback
from abm.agents import AGENT_CLASSES, LeveragedTrader
from abm.assembly import accounts_table, assemble_result
from abm.book import BUY
from abm.collateral import CollateralBook
from abm.comeback import Comebacks
from abm.config import LeveragedTraderGroup, Scenario
from abm.config.market import DEFAULT_INSTRUMENT
from abm.exchange import Exchange
from abm.ledger import KIND_NAMES, MARGIN_MODES, Instrument
from abm.margin.portfolio import build_portfolio_rule
from abm.market import CorrelatedDraws, Market
from abm.population import Group, Population
from abm.recorder import RunRecorder
from abm.reporters import AGENT_REPORTERS, HeadlineCollector, HeadlineSoFar, model_reporters
from abm.results import RunResult
from abm.shocks import ShockContext, ShockSchedule
from abm.trading_time import TradingClock

__all__ = ["DEFAULT_INSTRUMENT", "MarketModel"]

_PORTFOLIO_MODE = MARGIN_MODES.index("portfolio")


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


def _is_idle_holder(group: Group) -> bool:
    # A holder that never re-enters does nothing when it arrives unless it has a margin call.
    config = group.config
    return group.kind == "leveraged_trader" and config.strategy == "hold" and config.reentry_rate <= 0.0


class MarketModel(mesa.Model):
    """Leveraged traders on order books, marked and liquidated by one exchange.

    Args:
        scenario: Path or name of a scenario file, a mapping, or a validated Scenario.
        rng: Seed or Generator for the run (Mesa's convention); None uses the scenario's seed.
        check_invariants: Check zero-sum positions, conservation of money and uncrossed books
            after every step; a breach raises :class:`abm.errors.InvariantError`.
        liquidation_enabled: Override ``liquidation.enabled`` (False gives the counterfactual).
        agent_reporting: Also collect each trader's equity, leverage and position every step in
            ``datacollector`` (a Python call per agent and step; off by default, see :mod:`abm.reporters`).
        **overrides: Dotted scenario keys and values, e.g. ``**{"margin.maintenance": 0.03}``.
    """

    def __init__(
        self,
        scenario: Any = "spiral",
        rng: Any = None,
        *,
        check_invariants: bool = False,
        liquidation_enabled: bool | None = None,
        agent_reporting: bool = False,
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
        self.horizon = config.steps
        settings = config.instrument_configs()
        instruments = [Instrument(item.name, item.tick_size, item.contract_size) for item in settings]
        correlation = config.correlation_matrix()
        exchange = Exchange.build(
            instruments,
            [item.margin for item in settings],
            config.liquidation,
            [item.book_engine for item in settings],
            portfolio_rule=build_portfolio_rule(config.portfolio_margin, correlation, instruments),
            rng=self.rng,
        )
        self.ledger = exchange.ledger
        self.checker = exchange.checker
        self.checker.verify_reuse = check_invariants  # a reused margin check is checked against a fresh one
        self.liquidator = exchange.liquidator
        self.markets = [
            Market(
                column, instrument, item, item.fundamental, exchange.books[column], self.ledger, self.horizon
            )
            for column, (instrument, item) in enumerate(zip(instruments, settings, strict=True))
        ]
        self._market_by_name = {market.name: market for market in self.markets}
        self._group_markets: dict[int, list[Market]] = {}  # markets_of, by the group config's id
        self.correlated = CorrelatedDraws(correlation)
        self.marks = np.array([market.mark for market in self.markets])
        self.population = Population(self.ledger)
        self.population.idle_holders = _is_idle_holder
        # Arrival rates in trading time (abm.trading_time); None without `trading_time:`.
        self.trading_clock = TradingClock(config.trading_time, self.rng) if config.trading_time else None
        self.population.trading_clock = self.trading_clock
        self.shocks = ShockSchedule(config.shocks)
        # Collateral posted in assets whose price moves (abm.collateral); None without any.
        self.collateral = (
            CollateralBook(config.collateral_assets, {market.name: market for market in self.markets})
            if config.collateral_assets
            else None
        )
        first_shock = min((shock.step for shock in config.shocks), default=0)
        self._snapshot_step = max(first_shock - 1, 0)  # accounts are snapshot just before the stress
        self.recorder = RunRecorder(self.horizon, [market.name for market in self.markets])
        self._tiered_columns = [i for i, policy in enumerate(self.checker.policies) if policy.tiered]
        # Mesa's DataCollector (abm.reporters): the headline measures so far, for mesa.batch_run.
        self.headline = HeadlineSoFar(config.liquidation.insurance_fund)
        self.datacollector = HeadlineCollector(
            model_reporters=model_reporters(self.headline),
            agent_reporters=AGENT_REPORTERS if agent_reporting else None,
        )
        self.counterparty_account = -1
        self.exogenous_account = -1
        # Groups whose arrival rate follows volatility (abm.activity), a scenario's or a newcomers'.
        self._activity = any(group.activity is not None for group in config.agents) or any(
            shock.type == "trader_inflow" and shock.traders.activity is not None for shock in config.shocks
        )
        self._build_agents()
        # Liquidated traders of groups with `comeback:` return after a delay (abm.comeback).
        self.comebacks = Comebacks(self.population.groups)
        self.liquidator.open_system_accounts(self.population.open_system_account)
        self.shock_context = ShockContext(
            markets=self.markets,
            ledger=self.ledger,
            checker=self.checker,
            population=self.population,
            recorder=self.recorder,
            rng=self.rng,
            exogenous_account=self.exogenous_account,
            add_traders=self.add_leveraged_traders,
            correlated=self.correlated,
            collateral=self.collateral,
        )
        self._portfolio_backtest = None  # made at the first step with portfolio accounts
        # Made now when checking, so that a breach in step 0 can name the accounts it changed.
        self._invariant_checker = None
        self.last_money_breakdown = None
        if check_invariants:
            from abm.invariants import InvariantChecker

            self._invariant_checker = InvariantChecker(self.ledger, [market.book for market in self.markets])
        self._started = time.perf_counter()
        self.start_time = datetime.now(UTC).isoformat(timespec="seconds")
        self.wall_seconds = 0.0

    # ------------------------------------------------------------------ set-up

    @property
    def market(self) -> Market:
        """The first (in a single-instrument scenario, the only) market."""
        return self.markets[0]

    def market_named(self, name: str) -> Market:
        """The market of one instrument, by name."""
        return self._market_by_name[name]

    def markets_of(self, group) -> list[Market]:
        """The markets a group's agents trade: its ``instruments`` (a leveraged group's portfolio), else all.

        Kinds that trade one instrument take the first of them.
        """
        # Once per group (every agent asks as it is made: 100,000 traders asked 100,000 times).
        known = self._group_markets.get(id(group))
        if known is None:
            if isinstance(group, LeveragedTraderGroup):
                names = [holding.instrument for holding in group.holdings(self.markets[0].name)]
            else:
                names = group.instruments or [market.name for market in self.markets]
            if type(group).single_instrument:
                names = names[:1]
            known = self._group_markets[id(group)] = [self._market_by_name[name] for name in names]
        return list(known)

    @property
    def agent_requests(self) -> int:
        """Agent actions that reached the books (orders and cancel requests), for benchmarks/."""
        return sum(market.agent_requests for market in self.markets)

    def _build_agents(self) -> None:
        initial_positions: list[tuple[int, int, int]] = []  # (account, instrument, lots)
        for index, config in enumerate(self.config.agents):
            if isinstance(config, LeveragedTraderGroup):
                group = self._open_traders(config)
                if config.initial_position:
                    for agent in group.agents:
                        for position in agent.positions:
                            lots = agent.target_lots(position.side, position)
                            if lots:
                                initial_positions.append((position.account, position.market.column, lots))
            else:
                agent_class = AGENT_CLASSES[config.kind]
                group = self.population.open_group(
                    config,
                    config.count,
                    config.collateral,
                    config.kind,
                    lambda accounts, config=config, index=index, cls=agent_class: [
                        cls(self, account, config, index) for account in accounts.tolist()
                    ],
                    maker=config.kind == "market_maker",
                )
                asset = getattr(config, "collateral_asset", None)
                if asset is not None:  # a basis arbitrageur's margin in an asset
                    self.collateral.hold(group.accounts, asset, self.ledger.collateral[group.accounts])
        if initial_positions:
            # The other side of the initial leveraged positions: one fully funded, unlevered
            # account (think of a basis trader short the future and long spot), never liquidated.
            gross = 0.0
            for column, market in enumerate(self.markets):
                lots = sum(abs(held) for _, where, held in initial_positions if where == column)
                gross += lots * market.mark * market.contract_size
            self.counterparty_account = self.population.open_system_account("counterparty", gross + 1.0)
            for account, column, lots in initial_positions:
                self.ledger.open_position(
                    account, column, lots, self.markets[column].mark, self.counterparty_account
                )
        if self.shocks.needs_exogenous_account:
            # Ten times every program's notional at the start: the outside party never runs short.
            collateral = 0.0
            for market in self.markets:
                program = sum(
                    shock.quantity
                    for shock in self.shocks.shocks
                    if shock.type == "market_order"
                    and (shock.instrument or self.markets[0].name) == market.name
                )
                if program:
                    collateral += 10.0 * program * market.mark * market.contract_size
            self.exogenous_account = self.population.open_system_account("exogenous", collateral + 1.0)
        # Makers quote once before the first step so the books are not empty at the open.
        for maker in self.population.makers:
            maker.step()

    def _open_traders(self, config: LeveragedTraderGroup, count: int | None = None) -> Group:
        """Open the accounts of a leveraged group (one per trader; one per position when isolated)."""
        population = self.population
        count = config.count if count is None else count
        holdings = config.holdings(self.markets[0].name)
        per_trader = 1
        collateral: float | list[float] = config.collateral
        if config.margin_mode == "isolated" and len(holdings) > 1:
            total = sum(holding.weight for holding in holdings)
            collateral = [config.collateral * holding.weight / total for holding in holdings]
            per_trader = len(holdings)
        group = population.group_like(config) or population.add_group(config)
        population.extend_group(
            group,
            count,
            collateral,
            config.kind,
            lambda owned: self._make_traders(config, group.index, owned),
        )
        if config.collateral_asset is not None:  # their collateral is held in that asset
            opened = group.accounts[-count * per_trader :]
            self.collateral.hold(opened, config.collateral_asset, self.ledger.collateral[opened])
        if config.margin_mode != "cross":
            self.ledger.set_margin_mode(group.accounts[-count * per_trader :], config.margin_mode)
            if config.margin_mode == "portfolio":
                self.checker.uses_portfolio()
        return group

    def _make_traders(self, config: LeveragedTraderGroup, index: int, accounts: np.ndarray) -> list:
        count = len(accounts)
        leverage = self._draw_leverage(config, count)
        sides = self._draw_sides(config, count)
        if accounts.ndim == 1:
            owned = [[account] for account in accounts.tolist()]
        else:
            owned = accounts.tolist()
        holdings = config.holdings(self.markets[0].name)  # the group's, read once for all its traders
        return [
            LeveragedTrader(self, mine[0], config, index, side, lev, accounts=mine, holdings=holdings)
            for mine, side, lev in zip(owned, sides.tolist(), leverage.tolist(), strict=True)
        ]

    def add_leveraged_traders(self, config: LeveragedTraderGroup, count: int) -> np.ndarray:
        """New traders of a group join mid-run (a trader_inflow shock) and take their positions.

        With ``config.initial_position`` each position is booked at the mark against the counterparty
        (kept fully funded by a deposit); otherwise each newcomer sends a market order for it.

        Returns:
            The new traders' primary account ids.
        """
        group = self._open_traders(config, count)
        for agent in group.agents[-count:]:
            for position in agent.positions:
                market = position.market
                cap = self.checker.max_position(position.account, market.column, self.marks)
                lots = position.side * min(abs(agent.target_lots(position.side, position)), cap)
                if lots == 0:
                    continue
                if config.initial_position:
                    if self.counterparty_account < 0:
                        self.counterparty_account = self.population.open_system_account("counterparty", 0.0)
                    self.ledger.deposit(
                        self.counterparty_account, abs(lots) * market.mark * market.contract_size
                    )
                    self.ledger.open_position(
                        position.account, market.column, lots, market.mark, self.counterparty_account
                    )
                else:
                    market.submit_market(position.account, BUY if lots > 0 else -BUY, abs(lots))
        return np.array([agent.account for agent in group.agents[-count:]], dtype=np.int64)

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

    # ------------------------------------------------------------------ the step

    def _current_marks(self) -> np.ndarray:
        """The marks now, from the books and indexes (the liquidator calls it after every round)."""
        return np.array([market.compute_mark() for market in self.markets])

    def _move_fundamentals(self) -> None:
        if len(self.markets) == 1:
            market = self.markets[0]
            if market.fundamental_moves():
                market.evolve_fundamental(self.rng.standard_normal())
            market.publish_index(self.rng)
            return
        # Several instruments: one correlated draw each, every step (so the stream does not depend on
        # which of them moves).
        draws = self.correlated.draws(self.rng)
        for market, draw in zip(self.markets, draws.tolist(), strict=True):
            if market.fundamental_moves():
                market.evolve_fundamental(draw)
            market.publish_index(self.rng)

    def step(self) -> None:
        """Advance the market by one step (see the module docstring for the order)."""
        t = self.steps - 1
        if t >= self.horizon:
            self.running = False
            return
        self.ledger.begin_step(t)
        self.liquidator.begin_step()
        # 1. events (shocks first: a regime or an index fault starting now acts on this step's index)
        self.shocks.apply(self.shock_context, t)
        self._move_fundamentals()
        if self.collateral is not None:  # collateral assets re-priced, holdings revalued
            self.collateral.step(self.rng, self.ledger)
        # 2. margin policy review on the marks known so far
        for market, policy in zip(self.markets, self.checker.policies, strict=True):
            policy.review(t, market.mark_history(t))
            market.update_realised_vol(t)
        if self.checker.has_portfolio_accounts:  # and the portfolio rule's, on the same marks
            self.checker.portfolio_rule.review(t, [market.mark_history(t) for market in self.markets])
        # 3. agents act (liquidated traders due back first: topped up, they re-open their positions)
        if self.comebacks:
            self._bring_back(t)
        if self._activity:  # arrival rates that follow the marks so far
            self._observe_activity()
        if self.trading_clock is not None:  # and the trading clock's factor for this step
            self.trading_clock.advance()
        for agent in self.population.draw_actors(self.rng, self.ledger.margin_called):
            agent.step()
        # 4-7. margin check, liquidation rounds and waterfall; then the marks
        check = self.liquidator.run(t, self._current_marks, enabled=self.liquidation_enabled)
        if self.comebacks:  # the accounts liquidated now come back after their delay
            self.comebacks.observe(t, self.ledger, self.rng)
        for market in self.markets:
            market.close_step(t)
            market.accrue_funding(t)  # the premium sampled; funding paid at the end of an interval
        self.marks = np.array([market.mark for market in self.markets])
        if self.check_invariants:
            self._check_invariants(t)
        # 8. data collection
        self._record(t, check)
        self.headline.update(self)
        self.datacollector.collect(self)
        if t + 1 >= self.horizon:
            self.running = False
            self.wall_seconds = time.perf_counter() - self._started

    def _observe_activity(self) -> None:
        for group in self.population.groups:
            settings = group.config.activity
            if settings is None:
                continue
            if group.activity is None:  # its averages start at its first step
                group.activity = ActivityFeedback(settings, self.markets_of(group.config)[0])
            group.activity.observe()

    def _bring_back(self, t: int) -> None:
        for account, amount, order in self.comebacks.due(t, self.ledger, self.marks):
            if amount > 0.0:
                self.ledger.deposit(account, amount)
            self.population.agent_of(account).come_back(account, market_order=order == "market")

    def _check_invariants(self, t: int) -> None:
        # Ledger (zero sum, conservation, finite) and books (crossed, structure); see abm.invariants.
        if self._invariant_checker is None:
            from abm.invariants import InvariantChecker

            self._invariant_checker = InvariantChecker(self.ledger, [market.book for market in self.markets])
        self.last_money_breakdown = self._invariant_checker.check(t, self.marks)

    def _extra_state(self) -> dict[str, float] | None:
        # Account-wide figures beside the margin rule's (time-series columns margin_<name>).
        state = self.collateral.state() if self.collateral is not None else None
        if self.trading_clock is not None:
            state = {**(state or {}), "trading_time": self.trading_clock.multiplier}
        return state

    def _record(self, t: int, check) -> None:
        portfolio_rule = self.checker.portfolio_rule if self.checker.has_portfolio_accounts else None
        self.recorder.record_step(
            t,
            self.markets,
            self.ledger,
            check,
            self.liquidator.totals,
            self.checker.policies,
            portfolio_rule,
            self._extra_state(),
        )
        for column in self._tiered_columns:  # which brackets a tiered rule ever reached
            # Only margined accounts: the system's (counterparty, liquidation engine) pay no margin.
            notional = check.position_notional.reshape(self.ledger.n_accounts, -1)[check.exposed, column]
            self.checker.policies[column].observe_notional(notional)
        if self.checker.has_portfolio_accounts:  # the portfolio rule's coverage, account by account
            self._portfolio_backtest_observe(check)
        if t == self._snapshot_step:  # every account just before the stress, for the stress figures
            kinds = [KIND_NAMES[int(code)] for code in self.ledger.kind]
            self.recorder.snapshot_accounts(
                "before_stress",
                t,
                kinds,
                self.ledger.position,
                check.equity,
                check.position_notional,
                self.sensitivity(check.marks),  # the marks the snapshot's equity is taken at
            )

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
        return assemble_result(
            scenario=self.config,
            seed=self.seed if self.seed is not None else -1,
            ledger=self.ledger,
            population=self.population,
            liquidations=self.liquidator.liquidations,
            recorder=self.recorder,
            policies=self.checker.policies,
            marks=self.marks,
            last_step=max(self.steps - 1, 0),
            end_sensitivity=self.sensitivity(),
            portfolio_backtest=self._portfolio_backtest,
            wall_seconds=self.wall_seconds or (time.perf_counter() - self._started),
            invariant_checks=self.check_invariants,
            extra={
                "start_time": self.start_time,
                "seed_sequence": self._seed_sequence(),
                "end_time": datetime.now(UTC).isoformat(timespec="seconds"),
            },
        )

    def _portfolio_backtest_observe(self, check) -> None:
        if self._portfolio_backtest is None:
            from abm.margin.backtest import PortfolioBacktest

            config = self.checker.portfolio_rule.config
            scaling = getattr(config, "volatility_scaling", None)
            horizon = getattr(config, "liquidation_steps", None) or getattr(scaling, "liquidation_steps", 10)
            confidence = getattr(config, "confidence", 0.99)
            self._portfolio_backtest = PortfolioBacktest(horizon, confidence, self.ledger.contract_sizes)
        accounts = np.flatnonzero(self.ledger.margin_mode == _PORTFOLIO_MODE)
        self._portfolio_backtest.observe(
            self.ledger.position[accounts], check.maintenance_requirement[accounts], check.marks
        )

    def sensitivity(self, marks=None):
        """Utilisation, buffer and distances to liquidation of every margin-checked account now."""
        from abm.margin.sensitivity import account_sensitivity

        marks = self.marks if marks is None else marks
        return account_sensitivity(self.checker, marks, np.flatnonzero(self.ledger.checked))

    def _seed_sequence(self) -> dict[str, Any] | None:
        """Entropy and spawn key of the SeedSequence behind ``self.rng`` (for the manifest)."""
        seed_seq = getattr(self.rng.bit_generator, "seed_seq", None)
        if not isinstance(seed_seq, np.random.SeedSequence):
            return None
        return {"entropy": int(seed_seq.entropy), "spawn_key": [int(k) for k in seed_seq.spawn_key]}

    def accounts_table(self):
        """One row per account at the current marks (the engine's included)."""
        return accounts_table(self.ledger, self.population, self.marks)
