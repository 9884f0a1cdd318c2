"""Scenario schema: the strict pydantic (v2) models of a scenario file's sections.

Every section rejects unknown keys and numbers written as text, and ``.inf`` / ``.nan``. The sections
live in their own modules (:mod:`~abm.config.market`, :mod:`~abm.config.agents`,
:mod:`~abm.config.shocks`, :mod:`~abm.config.liquidation`; the margin section in
:mod:`abm.margin.settings`); this module holds the top-level :class:`Scenario` and its cross-section
checks (those of a SPAN rule in :mod:`abm.config.portfolio_checks`), and re-exports every section
model. Reading files and turning validation errors into messages
is done by :mod:`abm.config.reading` and :mod:`abm.config.loading`.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field, model_validator

from abm.config.agents import (
    AGENT_KINDS,
    AgentGroup,
    AR1NoiseGroup,
    FundamentalistGroup,
    LeverageDistribution,
    LeveragedTraderGroup,
    MarginCallReaction,
    MarketMakerGroup,
    NoiseTraderGroup,
    TradingTime,
    ValueFundGroup,
)
from abm.config.collateral import CollateralAsset
from abm.config.common import (
    MAX_AGENTS,
    MAX_LEVERAGE,
    MAX_ORDER_LOTS,
    Fraction,
    PositiveFloat,
    Seed,
    StepCount,
    Strict,
)
from abm.config.liquidation import LIQUIDATION_DESIGNS, LiquidationConfig
from abm.config.market import (
    DEFAULT_INSTRUMENT,
    FundamentalConfig,
    InstrumentConfig,
    MarketConfig,
    MarkPriceConfig,
)
from abm.config.portfolio_checks import check_span
from abm.config.portfolio_checks import cross_check_error as _fail
from abm.config.shocks import (
    SHOCK_TYPES,
    TRIGGER_CONDITIONS,
    CollateralHaircut,
    CorrelationRegime,
    FundamentalJump,
    FundamentalRegime,
    FundingSpike,
    IndexMisprint,
    LiquidityWithdrawal,
    MarginChange,
    MarketOrderShock,
    Shock,
    ShockTrigger,
    StaleIndex,
    TraderInflow,
    TraderOutflow,
    VenueFault,
    correlation_problem,
)
from abm.margin.portfolio_settings import PortfolioMarginConfig
from abm.margin.settings import FixedMargin, MarginConfig, max_initial_rate

__all__ = [
    "AGENT_KINDS",
    "LIQUIDATION_DESIGNS",
    "SHOCK_TYPES",
    "TRIGGER_CONDITIONS",
    "AR1NoiseGroup",
    "AgentGroup",
    "CollateralHaircut",
    "CorrelationRegime",
    "DEFAULT_INSTRUMENT",
    "Fraction",
    "FundamentalConfig",
    "FundamentalJump",
    "FundamentalRegime",
    "FundingSpike",
    "IndexMisprint",
    "InstrumentConfig",
    "LiquidityWithdrawal",
    "MarginChange",
    "ShockTrigger",
    "StaleIndex",
    "TraderInflow",
    "TraderOutflow",
    "VenueFault",
    "FundamentalistGroup",
    "LeverageDistribution",
    "LeveragedTraderGroup",
    "LiquidationConfig",
    "MarginCallReaction",
    "MarginConfig",
    "MarkPriceConfig",
    "MarketConfig",
    "MarketMakerGroup",
    "MarketOrderShock",
    "NoiseTraderGroup",
    "TradingTime",
    "ValueFundGroup",
    "PositiveFloat",
    "Scenario",
    "Shock",
    "Strict",
]


def _unique_names(items, section: str, what: str) -> dict[str, int]:
    """Each item's ``name`` -> its index; a name given twice is bad input at the second one."""
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        if item.name in seen:
            raise _fail(
                f"{section}.{i}.name",
                "duplicate {what} '{name}' (also {section}.{first}.name)",
                what=what,
                name=item.name,
                section=section,
                first=seen[item.name],
            )
        seen[item.name] = i
    return seen


class Scenario(Strict):
    """A complete, validated scenario.

    One instrument: ``market``, ``fundamental`` and ``margin`` at the top level. Several: an
    ``instruments:`` list, each with its own three, and optionally the ``correlation`` of their
    fundamentals' shocks and the ``portfolio_margin`` rule of portfolio-margined accounts.
    :meth:`instrument_configs` gives the instruments in both cases.
    """

    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    steps: StepCount = 1_000
    seed: Seed = 0
    market: MarketConfig = Field(default_factory=MarketConfig)
    fundamental: FundamentalConfig = Field(default_factory=FundamentalConfig)
    instruments: list[InstrumentConfig] | None = Field(
        default=None, min_length=1, max_length=64, description="Several instruments (instead of market)."
    )
    correlation: list[list[float]] | None = Field(
        default=None, description="Correlation of the instruments' fundamental shocks (default: none)."
    )
    agents: list[AgentGroup] = Field(default_factory=list)
    margin: MarginConfig = Field(default_factory=lambda: FixedMargin(rule="fixed"))
    portfolio_margin: PortfolioMarginConfig | None = Field(  # type: ignore[valid-type]
        default=None, description="Rule of margin_mode: portfolio accounts (default: correlation_offset)."
    )
    liquidation: LiquidationConfig = Field(default_factory=LiquidationConfig)
    collateral_assets: list[CollateralAsset] = Field(
        default_factory=list, max_length=16, description="Assets traders may post as collateral."
    )
    shocks: list[Shock] = Field(default_factory=list)
    trading_time: TradingTime | None = Field(
        default=None, description="A multifractal clock on the arrival rates (default: none)."
    )

    # ------------------------------------------------------------------ the instruments

    def instrument_configs(self) -> list[InstrumentConfig]:
        """Every instrument's settings, in order (a single-instrument scenario's one, named PERP)."""
        if self.instruments is not None:
            return list(self.instruments)
        return [
            InstrumentConfig(
                name=DEFAULT_INSTRUMENT,
                **self.market.model_dump(),
                fundamental=self.fundamental,
                margin=self.margin,
            )
        ]

    def user_code(self) -> list[tuple[str, str]]:
        """The user rules the scenario names by import path: ``(field path, rule)``, in file order.

        Such a rule is code that runs when the model imports it (``abm validate`` does not import it);
        ``--no-user-code`` refuses a scenario that has one.
        """
        from abm.margin.plugins import available_rules  # the margin package imports config
        from abm.margin.settings import CustomMargin

        registered = available_rules()  # built-ins and installed entry points: names, not paths
        found = []
        if self.instruments is not None:
            margins = [(f"instruments.{i}.margin", item.margin) for i, item in enumerate(self.instruments)]
        else:
            margins = [("margin", self.margin)]
        for path, margin in margins:
            if isinstance(margin, CustomMargin) and margin.rule not in registered:
                found.append((f"{path}.rule", margin.rule))
        return found

    def instrument_names(self) -> list[str]:
        """The instruments' names, in order."""
        if self.instruments is not None:
            return [instrument.name for instrument in self.instruments]
        return [DEFAULT_INSTRUMENT]

    def correlation_matrix(self) -> np.ndarray:
        """The correlation of the fundamentals' shocks (identity without ``correlation``)."""
        size = len(self.instrument_names())
        if self.correlation is None:
            return np.eye(size)
        return np.asarray(self.correlation, dtype=np.float64)

    def shocked_instruments(self) -> list[str]:
        """The instruments some shock acts on (a correlation regime acts on all)."""
        names = self.instrument_names()
        touched = set()
        for shock in self.shocks:
            if isinstance(shock, CorrelationRegime):
                touched.update(names)
            elif hasattr(shock, "instrument"):  # a market shock (None: the first instrument)
                touched.add(shock.instrument or names[0])
        return [name for name in names if name in touched]

    # ------------------------------------------------------------------ checks across sections

    @model_validator(mode="after")
    def _cross_checks(self) -> Scenario:
        for i, shock in enumerate(self.shocks):
            if shock.step >= self.steps:
                raise _fail(
                    f"shocks.{i}.step",
                    "step {step} is beyond the horizon: steps is {steps}, so shocks must fall in 0..{last}",
                    step=shock.step,
                    steps=self.steps,
                    last=self.steps - 1,
                )
        self._check_instruments()
        if getattr(self.portfolio_margin, "scan_ranges", None) is not None:
            check_span(self.portfolio_margin, self.instrument_names())
        self._check_groups()
        self._check_collateral()
        self._check_shocks()
        self._check_leverage()
        self._check_position_sizes()
        self._check_agent_total()
        return self

    def _check_agent_total(self) -> None:
        total = 0
        for where, group in self._groups():
            total += group.count
            if total > MAX_AGENTS:
                raise _fail(
                    f"{where}.count",
                    "the scenario's groups hold {total} agents up to here, above the {limit} a run can "
                    "hold in memory (about 7 KB each)",
                    total=f"{total:,}",
                    limit=f"{MAX_AGENTS:,}",
                )

    def _check_instruments(self) -> None:
        if self.instruments is None:
            if self.correlation is not None:
                raise _fail("correlation", "a correlation needs an instruments: list of several instruments")
            return
        for section in ("market", "fundamental", "margin"):
            if section in self.model_fields_set:
                raise _fail(
                    section,
                    "with instruments:, every instrument has its own market, fundamental and margin "
                    "settings: move this section's fields under instruments.N",
                )
        _unique_names(self.instruments, "instruments", "instrument name")
        if self.correlation is not None:
            size = len(self.instruments)
            if len(self.correlation) != size or any(len(row) != size for row in self.correlation):
                raise _fail(
                    "correlation",
                    "must be {size} x {size}: one row and one column per instrument, in instruments order",
                    size=size,
                )
            problem = correlation_problem(self.correlation)
            if problem is not None:
                raise _fail("correlation", problem)
        rule = self.portfolio_margin
        if rule is not None and getattr(rule, "correlation", None) is not None:
            size = len(self.instruments)
            matrix = rule.correlation
            if len(matrix) != size or any(len(row) != size for row in matrix):
                raise _fail("portfolio_margin.correlation", "must be {size} x {size}", size=size)
            problem = correlation_problem(matrix)
            if problem is not None:
                raise _fail("portfolio_margin.correlation", problem)

    def _groups(self) -> list[tuple[str, object]]:
        # Traders joining through a trader_inflow shock are a group like the others.
        groups = [(f"agents.{i}", group) for i, group in enumerate(self.agents)]
        groups += [
            (f"shocks.{i}.traders", shock.traders)
            for i, shock in enumerate(self.shocks)
            if isinstance(shock, TraderInflow)
        ]
        return groups

    def _check_groups(self) -> None:
        names = self.instrument_names()
        known = ", ".join(names)
        for where, group in self._groups():
            listed = group.instruments or []
            for j, name in enumerate(listed):
                if name not in names:
                    raise _fail(
                        f"{where}.instruments.{j}",
                        "unknown instrument '{name}' (the scenario has: {known})",
                        name=name,
                        known=known,
                    )
            if type(group).single_instrument and len(listed) > 1:
                raise _fail(f"{where}.instruments", "a {kind} group trades one instrument", kind=group.kind)
            if isinstance(group, LeveragedTraderGroup) and group.portfolio is not None:
                if group.instruments is not None:
                    raise _fail(f"{where}.portfolio", "give portfolio or instruments, not both")
                for j, holding in enumerate(group.portfolio):
                    if holding.instrument not in names:
                        raise _fail(
                            f"{where}.portfolio.{j}.instrument",
                            "unknown instrument '{name}' (the scenario has: {known})",
                            name=holding.instrument,
                            known=known,
                        )

    def _check_collateral(self) -> None:
        # Asset names are unique; a group or a depeg names one of them; an asset tracks an instrument.
        seen = _unique_names(self.collateral_assets, "collateral_assets", "collateral asset")
        known = ", ".join(seen) or "none: add a collateral_assets: list"
        instruments = self.instrument_names()
        for i, asset in enumerate(self.collateral_assets):
            if asset.tracks is not None and asset.tracks not in instruments:
                raise _fail(
                    f"collateral_assets.{i}.tracks",
                    "unknown instrument '{name}' (the scenario has: {known})",
                    name=asset.tracks,
                    known=", ".join(instruments),
                )
        for where, group in self._groups():
            name = getattr(group, "collateral_asset", None)
            if name is not None and name not in seen:
                raise _fail(
                    f"{where}.collateral_asset",
                    "unknown collateral asset '{name}' (the scenario has: {known})",
                    name=name,
                    known=known,
                )
        for i, shock in enumerate(self.shocks):
            if getattr(shock, "type", None) == "depeg" and shock.asset not in seen:
                raise _fail(
                    f"shocks.{i}.asset",
                    "unknown collateral asset '{name}' (the scenario has: {known})",
                    name=shock.asset,
                    known=known,
                )

    def _check_shocks(self) -> None:
        names = self.instrument_names()
        known = ", ".join(names)
        for i, shock in enumerate(self.shocks):
            name = getattr(shock, "instrument", None)
            if name is not None and name not in names:
                raise _fail(
                    f"shocks.{i}.instrument",
                    "unknown instrument '{name}' (the scenario has: {known})",
                    name=name,
                    known=known,
                )
            if isinstance(shock, CorrelationRegime):
                size = len(names)
                if size < 2:
                    raise _fail(f"shocks.{i}.type", "a correlation regime needs several instruments")
                if shock.correlation is not None and len(shock.correlation) != size:
                    raise _fail(f"shocks.{i}.correlation", "must be {size} x {size}", size=size)
                problem = correlation_problem(shock.matrix(size).tolist())
                if problem is not None:
                    raise _fail(
                        f"shocks.{i}.common" if shock.common is not None else f"shocks.{i}.correlation",
                        problem,
                    )
            if isinstance(shock, VenueFault):
                configs = self.instrument_configs()
                index = configs[names.index(name) if name is not None else 0].index
                if shock.venue >= index.venues:
                    raise _fail(
                        f"shocks.{i}.venue",
                        "venue {venue} does not exist: the index has {count} venue(s), numbered from 0 "
                        "(set market.index.venues)",
                        venue=shock.venue,
                        count=index.venues,
                    )
            if isinstance(shock, CollateralHaircut):
                present = {group.kind for group in self.agents}
                missing = [kind for kind in shock.kinds if kind not in present]
                if missing:
                    raise _fail(
                        f"shocks.{i}.kinds",
                        "no agent group of kind {missing} in the scenario, so the haircut would do nothing "
                        "(kinds present: {present})",
                        missing=", ".join(missing),
                        present=", ".join(sorted(present)) or "none",
                    )

    def _check_position_sizes(self) -> None:
        # A target position is leverage x collateral x share / (price x contract size) lots: it must
        # fit an order (and int64 far more so), or the run fails where validation said ok.
        configs = {instrument.name: instrument for instrument in self.instrument_configs()}
        first = self.instrument_names()[0]
        for where, group in self._groups():
            if not isinstance(group, LeveragedTraderGroup):
                continue
            top = group.leverage.upper_bound
            if top == float("inf"):
                top = MAX_LEVERAGE
            holdings = group.holdings(first)
            total = sum(holding.weight for holding in holdings)
            for holding in holdings:
                market = configs[holding.instrument]
                lots = top * group.collateral * holding.weight / total
                lots /= market.initial_price * market.contract_size
                if lots > MAX_ORDER_LOTS:
                    raise _fail(
                        f"{where}.collateral",
                        "a trader's position in {name} can reach {lots} lots (leverage x collateral / "
                        "(initial_price x contract_size)): at most {limit}; lower the collateral or raise "
                        "the contract size",
                        name=holding.instrument,
                        lots=f"{lots:.3g}",
                        limit=f"{MAX_ORDER_LOTS:,}",
                    )

    def leverage_limit(self, group: LeveragedTraderGroup) -> float | None:
        """The most leverage a group's traders may open with: 1 / their holdings' initial margin rate.

        None where it is not known before the run: portfolio accounts (their requirement depends on
        their offsets) and rules whose rates move (the exchange's cap applies at run time).
        """
        if group.margin_mode == "portfolio":
            return None
        configs = {instrument.name: instrument for instrument in self.instrument_configs()}
        holdings = group.holdings(self.instrument_names()[0])
        rates = [max_initial_rate(configs[holding.instrument].margin) for holding in holdings]
        if any(rate is None for rate in rates):
            return None
        total = sum(holding.weight for holding in holdings)
        initial = sum(rate * holding.weight / total for rate, holding in zip(rates, holdings, strict=True))
        return 1.0 / initial

    def _check_leverage(self) -> None:
        for where, group in self._groups():
            if not isinstance(group, LeveragedTraderGroup):
                continue
            bound = self.leverage_limit(group)
            if bound is None:
                continue
            top = group.leverage.upper_bound
            if top > bound + 1e-9:
                limit = f"{bound:g}"
                if top == float("inf"):
                    message = (
                        "lognormal leverage without a cap: set cap to at most {limit}x (1 / initial margin)"
                    )
                else:
                    message = (
                        "leverage can reach {top}x, above 1 / initial margin = {limit}x "
                        "(lower the leverage or the initial margin rate)"
                    )
                raise _fail(f"{where}.leverage", message, top=f"{top:g}", limit=limit)
