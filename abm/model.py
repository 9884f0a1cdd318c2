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

from abm.agents import AGENT_CLASSES, LeveragedTrader
from abm.assembly import accounts_table, assemble_result
from abm.book import BUY
from abm.config import LeveragedTraderGroup, Scenario
from abm.exchange import Exchange
from abm.ledger import ENGINE, KIND_NAMES, Instrument
from abm.market import Market
from abm.population import Group, Population
from abm.recorder import RunRecorder
from abm.results import RunResult
from abm.shocks import ShockContext, ShockSchedule

__all__ = ["DEFAULT_INSTRUMENT", "MarketModel"]

# The name of a single-instrument scenario's instrument (the `instrument` column of its tables).
DEFAULT_INSTRUMENT = "PERP"


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
        self.horizon = config.steps
        settings = config.market
        instrument = Instrument(DEFAULT_INSTRUMENT, settings.tick_size, settings.contract_size)
        exchange = Exchange.build([instrument], [config.margin], config.liquidation, [settings.book_engine])
        self.ledger = exchange.ledger
        self.checker = exchange.checker
        self.liquidator = exchange.liquidator
        self.markets = [
            Market(0, instrument, settings, config.fundamental, exchange.books[0], self.ledger, self.horizon)
        ]
        self.marks = np.array([market.mark for market in self.markets])
        self.population = Population(self.ledger)
        self.population.idle_holders = _is_idle_holder
        self.shocks = ShockSchedule(config.shocks)
        first_shock = min((shock.step for shock in config.shocks), default=0)
        self._snapshot_step = max(first_shock - 1, 0)  # accounts are snapshot just before the stress
        self.recorder = RunRecorder(self.horizon)
        self.datacollector = mesa.DataCollector(
            model_reporters={
                "mark": lambda m: m.markets[0].mark,
                "index": lambda m: m.markets[0].index,
                "liquidations": lambda m: m.liquidator.totals.liquidations,
                "insurance_fund": lambda m: m.ledger.collateral_of(ENGINE),
                "mmr": lambda m: m.checker.policies[0].mmr,
            }
        )
        self.counterparty_account = -1
        self.exogenous_account = -1
        self._build_agents()
        self.shock_context = ShockContext(
            markets=self.markets,
            ledger=self.ledger,
            checker=self.checker,
            population=self.population,
            recorder=self.recorder,
            rng=self.rng,
            exogenous_account=self.exogenous_account,
            add_traders=self.add_leveraged_traders,
        )
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

    @property
    def agent_requests(self) -> int:
        """Agent actions that reached the books (orders and cancel requests), for benchmarks/."""
        return sum(market.agent_requests for market in self.markets)

    def _build_agents(self) -> None:
        market = self.markets[0]
        price = market.mark
        initial_positions: list[tuple[int, int]] = []
        for index, config in enumerate(self.config.agents):
            if isinstance(config, LeveragedTraderGroup):
                self.population.open_group(
                    config,
                    config.count,
                    config.collateral,
                    config.kind,
                    lambda accounts, config=config, index=index: self._make_traders(config, index, accounts),
                )
                if config.initial_position:
                    for agent in self.population.groups[-1].agents:
                        lots = agent.side * int(
                            agent.leverage * config.collateral / (price * market.contract_size)
                        )
                        if lots:
                            initial_positions.append((agent.account, lots))
            else:
                agent_class = AGENT_CLASSES[config.kind]
                self.population.open_group(
                    config,
                    config.count,
                    config.collateral,
                    config.kind,
                    lambda accounts, config=config, index=index, cls=agent_class: [
                        cls(self, account, config, index) for account in accounts.tolist()
                    ],
                    maker=config.kind == "market_maker",
                )
        if initial_positions:
            # The other side of the initial leveraged positions: one fully funded, unlevered
            # account (think of a basis trader short the future and long spot), never liquidated.
            gross = sum(abs(lots) for _, lots in initial_positions) * price * market.contract_size
            self.counterparty_account = self.population.open_system_account("counterparty", gross + 1.0)
            for account, lots in initial_positions:
                self.ledger.open_position(account, market.column, lots, price, self.counterparty_account)
        if self.shocks.needs_exogenous_account:
            program = sum(s.quantity for s in self.shocks.shocks if s.type == "market_order")
            collateral = 10.0 * program * price * market.contract_size + 1.0
            self.exogenous_account = self.population.open_system_account("exogenous", collateral)
        # Makers quote once before the first step so the book is not empty at the open.
        for maker in self.population.makers:
            maker.step()

    def _make_traders(self, config: LeveragedTraderGroup, index: int, accounts: np.ndarray) -> list:
        leverage = self._draw_leverage(config, len(accounts))
        sides = self._draw_sides(config, len(accounts))
        return [
            LeveragedTrader(self, account, config, index, side, lev)
            for account, side, lev in zip(accounts.tolist(), sides.tolist(), leverage.tolist(), strict=True)
        ]

    def add_leveraged_traders(self, config: LeveragedTraderGroup, count: int) -> np.ndarray:
        """New traders of a group join mid-run (a trader_inflow shock) and take their positions.

        With ``config.initial_position`` each position is booked at the mark against the counterparty
        (kept fully funded by a deposit); otherwise each newcomer sends a market order for it.

        Returns:
            The new account ids.
        """
        population = self.population
        market = self.markets[0]
        group = population.group_like(config) or population.add_group(config)
        accounts = population.extend_group(
            group,
            count,
            config.collateral,
            config.kind,
            lambda new: self._make_traders(config, group.index, new),
        )
        for agent in group.agents[-count:]:
            cap = self.checker.max_position(agent.account, market.column, self.marks)
            lots = agent.side * min(abs(agent.target_lots(agent.side)), cap)
            if lots == 0:
                continue
            if config.initial_position:
                if self.counterparty_account < 0:
                    self.counterparty_account = self.population.open_system_account("counterparty", 0.0)
                self.ledger.deposit(self.counterparty_account, abs(lots) * market.mark * market.contract_size)
                self.ledger.open_position(
                    agent.account, market.column, lots, market.mark, self.counterparty_account
                )
            else:
                market.submit_market(agent.account, BUY if lots > 0 else -BUY, abs(lots))
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

    # ------------------------------------------------------------------ the step

    def _current_marks(self) -> np.ndarray:
        """The marks now, from the books and indexes (the liquidator calls it after every round)."""
        return np.array([market.compute_mark() for market in self.markets])

    def _move_fundamentals(self) -> None:
        for market in self.markets:
            if market.fundamental_moves():
                market.evolve_fundamental(self.rng.standard_normal())
            market.publish_index()

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
        # 2. margin policy review on the marks known so far
        for market, policy in zip(self.markets, self.checker.policies, strict=True):
            policy.review(t, market.mark_history(t))
            market.update_realised_vol(t)
        # 3. agents act
        for agent in self.population.draw_actors(self.rng, self.ledger.margin_called):
            agent.step()
        # 4-7. margin check, liquidation rounds and waterfall; then the marks
        check = self.liquidator.run(t, self._current_marks, enabled=self.liquidation_enabled)
        for market in self.markets:
            market.close_step(t)
        self.marks = np.array([market.mark for market in self.markets])
        if self.check_invariants:
            self._check_invariants(t)
        # 8. data collection
        self._record(t, check)
        self.datacollector.collect(self)
        if t + 1 >= self.horizon:
            self.running = False
            self.wall_seconds = time.perf_counter() - self._started

    def _check_invariants(self, t: int) -> None:
        # Ledger (zero sum, conservation, finite) and books (crossed, structure); see abm.invariants.
        if self._invariant_checker is None:
            from abm.invariants import InvariantChecker

            self._invariant_checker = InvariantChecker(self.ledger, [market.book for market in self.markets])
        self.last_money_breakdown = self._invariant_checker.check(t, self.marks)

    def _record(self, t: int, check) -> None:
        market = self.markets[0]
        self.recorder.record_step(
            t, market, self.ledger, check, self.liquidator.totals, self.checker.policies[0]
        )
        if t == self._snapshot_step:  # every account just before the stress, for the stress figures
            kinds = [KIND_NAMES[int(code)] for code in self.ledger.kind]
            self.recorder.snapshot_accounts(
                "before_stress", t, kinds, self.ledger.position[:, 0], check.equity, check.notional
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
            wall_seconds=self.wall_seconds or (time.perf_counter() - self._started),
            invariant_checks=self.check_invariants,
            extra={
                "start_time": self.start_time,
                "seed_sequence": self._seed_sequence(),
                "end_time": datetime.now(UTC).isoformat(timespec="seconds"),
            },
        )

    def _seed_sequence(self) -> dict[str, Any] | None:
        """Entropy and spawn key of the SeedSequence behind ``self.rng`` (for the manifest)."""
        seed_seq = getattr(self.rng.bit_generator, "seed_seq", None)
        if not isinstance(seed_seq, np.random.SeedSequence):
            return None
        return {"entropy": int(seed_seq.entropy), "spawn_key": [int(k) for k in seed_seq.spawn_key]}

    def accounts_table(self):
        """One row per account at the current marks (the engine's included)."""
        return accounts_table(self.ledger, self.population, self.marks)
