"""Validation cases with known answers: the analytic liquidation cascade, and the case scenarios.

The analytic cascade (validation case 3) runs the model's own exchange (:class:`abm.exchange.Exchange`:
the ledger, the book and the liquidator) on a market built so that the answer is
known in closed form:

* a book of uniform depth: ``depth`` lots on every tick below the start price, so ``x`` lots sold move
  the last-trade price (the mark here) down by ``ceil(x / depth)`` ticks, a fixed impact
  ``lambda = 1 / depth`` ticks per lot;
* long accounts of ``lots`` lots each whose liquidation prices lie at given distances (ticks) below
  the start price; an account breaches when the mark falls past its distance.

With liquidation prices ``spacing`` ticks apart (density ``rho = 1 / spacing``) every liquidation
moves the price ``lots / depth`` ticks and so crosses ``m = lambda x lots x rho`` further liquidation
prices on average: the branching ratio. An initial move ``D0`` grows to ``D0 / (1 - m)`` below
criticality (``m < 1``), and with liquidation prices scattered as a Poisson process the number of
liquidations one liquidation sets off is a Galton-Watson process with Poisson(``m``) offspring, whose
mean total size is ``1 / (1 - m)`` (docs/references.md, linear-impact cascades).

The scenario-based cases (stylized facts on ``calm_facts``; leverage and fat tails; the policy ranking)
are run by ``benchmarks/validation.py`` at full size and by ``tests/validation/`` at a reduced size; their
settings are fixed here so that both use the same ones. This module also provides ``abm facts``.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass

import numpy as np
import pandas as pd

from abm.book import BUY, SELL
from abm.config import Scenario, load_scenario, resolve_scenario, scenario_from_dict
from abm.exchange import Exchange

__all__ = [
    "CascadeOutcome",
    "LEVERAGE_LEVELS",
    "LEVERAGE_SCENARIO",
    "POLICY_BASE_VOLATILITY",
    "POLICY_LEVELS",
    "POLICY_RULES",
    "CORRELATION_MODES",
    "OVERLAP_DIVERSIFICATION",
    "OVERLAP_INSTRUMENTS",
    "OVERLAP_LEVERAGE",
    "branching_ratio",
    "correlation_case_scenario",
    "overlap_case_scenario",
    "overlap_outcome",
    "return_correlation",
    "evenly_spaced_distances",
    "expected_cascade_size",
    "facts_command",
    "fund_defaults",
    "leverage_case_scenario",
    "linear_cascade_move",
    "mean_cascade_size",
    "policy_case_scenario",
    "policy_margin",
    "poisson_distances",
    "truncated_cascade_size",
    "uniform_book_cascade",
]

_TICK = 0.01
_START_TICK = 100_000  # start price 1,000.00: far from the lowest tick for any cascade built here
_MAINTENANCE = 0.05
_LARGE = 1e15  # collateral of the accounts that must never be liquidated (maker, counterparty, seller)

LEVERAGE_SCENARIO = "validation_leverage"
LEVERAGE_LEVELS = (1.0, 2.0, 5.0, 10.0, 20.0)
"""Validation case 2: the scenario, and the funds' leverage caps swept (Thurner et al. 2012 use 1 to 20)."""

POLICY_RULES = ("fixed", "dynamic_leverage")
POLICY_LEVELS = (2.0, 5.0, 10.0, 20.0)
POLICY_BASE_VOLATILITY = 0.035
"""Validation case 4: the constant and the volatility-based (Basel-II-like) rule, the maximum leverages, and
the volatility (per step) below which the volatility-based rule allows the maximum leverage."""


def leverage_case_scenario(max_leverage: float, steps: int | None = None) -> Scenario:
    """The case-2 scenario with the value funds' leverage cap set to ``max_leverage``."""
    overrides = [f"agents.2.max_leverage={float(max_leverage)}"]
    if steps is not None:
        overrides.append(f"steps={int(steps)}")
    return load_scenario(resolve_scenario(LEVERAGE_SCENARIO), overrides)


def policy_margin(rule: str, max_leverage: float, base_volatility: float = POLICY_BASE_VOLATILITY) -> dict:
    """The ``margin:`` section of case 4: a constant or a volatility-based maximum leverage.

    Both rules ask an initial margin of ``1 / L`` and a maintenance margin of half of it. ``fixed``
    keeps ``L = max_leverage``; ``dynamic_leverage`` lowers it to ``max_leverage x base_volatility / sigma``
    when the EWMA volatility ``sigma`` exceeds ``base_volatility`` (Poledna et al. 2014's Basel-II rule).
    """
    if rule == "fixed":
        return {"rule": "fixed", "initial": 1.0 / max_leverage, "maintenance": 0.5 / max_leverage}
    if rule == "dynamic_leverage":
        return {
            "rule": "dynamic_leverage",
            "max_leverage": float(max_leverage),
            "min_leverage": 1.0,
            "base_volatility": base_volatility,
            "decay": 0.94,
            "maintenance_fraction": 0.5,
        }
    raise ValueError(f"unknown policy rule {rule!r}; use one of {', '.join(POLICY_RULES)}")


def policy_case_scenario(rule: str, max_leverage: float, steps: int | None = None) -> Scenario:
    """The case-4 scenario: case 2's market, funds capped at ``max_leverage``, under ``rule``."""
    data = leverage_case_scenario(max_leverage, steps).model_dump(mode="json")
    data["margin"] = {**policy_margin(rule, max_leverage), "call_buffer": data["margin"]["call_buffer"]}
    data["name"] = f"validation_policy_{rule}"
    return scenario_from_dict(data)


CORRELATION_MODES = ("cross", "isolated")
"""Validation case 5: the contagion crowd's margin modes, with and without holders shared by A and B."""


def correlation_case_scenario(margin_mode: str, steps: int | None = None) -> Scenario:
    """Validation case 5 (after Cont and Wagalath): the contagion scenario with the crowd in ``margin_mode``.

    Cross-margined, the crowd's accounts hold A and B together, so a liquidation sells both; isolated,
    each position is liquidated alone and only the crashing A is sold.
    """
    overrides = [f"agents.1.margin_mode={margin_mode}"]
    if steps is not None:
        overrides.append(f"steps={steps}")
    return load_scenario(resolve_scenario("contagion"), overrides)


def return_correlation(timeseries: pd.DataFrame, first: str, second: str, start: int, stop: int) -> float:
    """Pearson correlation of two instruments' one-step log mark returns ending in steps ``start..stop-1``.

    NaN when either series does not move in the window (a constant series co-moves with nothing).

    >>> frame = pd.DataFrame({"step": [0, 1, 2, 3] * 2, "instrument": ["A"] * 4 + ["B"] * 4,
    ...                       "mark": [100, 101, 100, 102, 50, 50.5, 50, 51]})
    >>> round(return_correlation(frame, "A", "B", 1, 4), 6)
    1.0
    """
    marks = timeseries.pivot(index="step", columns="instrument", values="mark")
    returns = np.diff(np.log(marks[[first, second]].to_numpy(dtype=float)), axis=0)
    window = returns[max(start - 1, 0) : max(stop - 1, 0)]
    if len(window) < 3 or (window.std(axis=0) == 0).any():
        return float("nan")
    return float(np.corrcoef(window[:, 0], window[:, 1])[0, 1])


OVERLAP_INSTRUMENTS = 6
OVERLAP_LEVERAGE = (8.0, 12.0, 16.0, 20.0, 22.0)
OVERLAP_DIVERSIFICATION = (1, 2, 3, 6)
"""Validation case 6 (after Caccioli et al. 2014): instruments, the traders' leverage and the number of
instruments each holds (diversification), swept."""


def overlap_case_scenario(
    diversification: int, leverage: float, steps: int = 400, instruments: int = OVERLAP_INSTRUMENTS
) -> Scenario:
    """Overlapping portfolios: ``instruments`` perpetuals, six groups of 40 longs holding ``diversification``.

    The contagion market's books and agents on ``instruments`` uncorrelated perpetuals A, B, ...; group
    ``k`` holds the ``diversification`` instruments from the ``k``-th on (wrapping round: every instrument
    is held by as many groups), equal weights, cross-margined, at leverage uniform in 0.9-1.1 x
    ``leverage``, with no reserves and no answer to margin calls (so an account loses its positions by
    liquidation only, as the banks of Caccioli et al. do by default). At step 200 A's index drops 5% and
    800 lots are sold into A over 5 steps.
    """
    data = load_scenario(resolve_scenario("contagion")).model_dump(mode="json", exclude_unset=True)
    names = [chr(ord("A") + i) for i in range(instruments)]
    template = data["instruments"][0]
    data["instruments"] = [{**template, "name": name} for name in names]
    data.pop("correlation", None)
    maker, crowd, _b_longs, noise, fundamentalist = data["agents"]
    groups = [
        {
            **crowd,
            "label": f"holds_{names[k]}",
            "count": 40,
            "side": "long",
            "portfolio": [{"instrument": names[(k + j) % instruments]} for j in range(diversification)],
            "leverage": {"distribution": "uniform", "low": 0.9 * leverage, "high": 1.1 * leverage},
            "margin_mode": "cross",
            "reserves": 0.0,
            "margin_call": {"top_up": 0.0, "reduce": 0.0, "ignore": 1.0},
        }
        for k in range(instruments)
    ]
    data["agents"] = [maker, *groups, noise, fundamentalist]
    data["shocks"] = [
        {"type": "fundamental_jump", "step": 200, "size": -0.05, "instrument": "A"},
        {
            "type": "market_order",
            "step": 200,
            "side": "sell",
            "quantity": 800,
            "over_steps": 5,
            "instrument": "A",
        },
    ]
    data.update(name=f"validation_overlap_d{diversification}", steps=int(steps))
    return scenario_from_dict(data)


def overlap_outcome(summary: dict) -> tuple[float, int]:
    """The share of the traders liquidated and the number of instruments with a liquidation."""
    groups = [figures for name, figures in summary["by_group"].items() if name.startswith("holds_")]
    accounts = sum(group["accounts"] for group in groups)
    liquidated = sum(group["liquidated_share"] * group["accounts"] for group in groups)
    touched = sum(1 for figures in summary["by_instrument"].values() if figures["liquidations"] > 0)
    return liquidated / accounts, touched


def fund_defaults(liquidations: pd.DataFrame) -> int:
    """Exchange liquidations of value funds in a run's liquidations table (the defaults of case 4)."""
    if len(liquidations) == 0:
        return 0
    return int((liquidations["kind"] == "value_fund").sum())


@dataclass(frozen=True, slots=True)
class CascadeOutcome:
    """What the liquidator did after the initial shock.

    Attributes:
        liquidated: Accounts liquidated (the initial ones included).
        rounds: Liquidation rounds of the step.
        price_move_ticks: Fall of the mark from the start, in ticks.
        lots_sold: Lots sold into the book (shock and liquidations).
    """

    liquidated: int
    rounds: int
    price_move_ticks: int
    lots_sold: int


def branching_ratio(lots: int, depth: int, spacing: float) -> float:
    """``m = lambda x lots x rho``: liquidation prices crossed per liquidation (``lambda = 1 / depth``)."""
    return lots / (depth * spacing)


def linear_cascade_move(initial_move: float, m: float) -> float:
    """Total price move ``initial_move / (1 - m)`` of a linear-impact cascade (inf at or above ``m = 1``)."""
    return initial_move / (1.0 - m) if m < 1.0 else float("inf")


def expected_cascade_size(m: float) -> float:
    """Mean total size ``1 / (1 - m)`` of a Galton-Watson cascade with mean offspring ``m`` (inf: m >= 1)."""
    return 1.0 / (1.0 - m) if m < 1.0 else float("inf")


def truncated_cascade_size(m: float, limit: int) -> float:
    """Mean of ``min(T, limit)`` for ``T`` the total size of a Poisson(``m``) Galton-Watson cascade.

    ``T`` follows the Borel law ``P(T = n) = exp(-m n) (m n)^(n-1) / n!``; a market with ``limit``
    accounts cannot liquidate more, so this is the mean a finite run should find (``1 / (1 - m)`` as
    ``limit`` grows, for ``m < 1``).
    """
    sizes = np.arange(1, limit, dtype=float)
    log_pmf = -m * sizes + (sizes - 1) * np.log(m * sizes) - np.array([math.lgamma(n + 1) for n in sizes])
    pmf = np.exp(log_pmf)
    return float(np.sum(sizes * pmf) + limit * max(0.0, 1.0 - float(np.sum(pmf))))


def evenly_spaced_distances(count: int, spacing: float, offset: float = 0.5) -> np.ndarray:
    """Distances ``(j - 1 + offset) x spacing`` ticks, ``j = 1..count``: evenly spaced liquidation prices."""
    return (np.arange(count) + offset) * spacing


def poisson_distances(count: int, spacing: float, rng: np.random.Generator) -> np.ndarray:
    """Distances of a Poisson process with mean gap ``spacing`` ticks (cumulative exponential gaps)."""
    return np.cumsum(rng.exponential(spacing, count))


def uniform_book_cascade(
    distances: np.ndarray | list[float],
    lots: int,
    depth: int,
    shock_lots: int,
    *,
    max_rounds: int = 10_000,
) -> CascadeOutcome:
    """Run the liquidator's rounds on a uniform-depth book.

    Args:
        distances: Distance of each account's liquidation price below the start price, in ticks
            (negative: above it, so the account is liquidated before any shock). Keep them off whole
            ticks: a mark exactly at a liquidation price does not breach.
        lots: Long position of every account (lots; the contract size is 1).
        depth: Lots resting on every tick of the bid side.
        shock_lots: Lots an outside seller sells at market before the margin check (the initial shock).
        max_rounds: Round cap of the liquidation engine.

    Returns:
        What happened in the step.
    """
    distances = np.asarray(distances, dtype=float)
    start_price = _START_TICK * _TICK
    total_lots = shock_lots + lots * len(distances)
    levels = total_lots // depth + 2
    if levels >= _START_TICK:
        raise ValueError("the cascade would run the price below zero: use fewer or smaller accounts")
    exchange = Exchange.single(
        tick_size=_TICK,
        initial=2 * _MAINTENANCE,
        maintenance=_MAINTENANCE,
        call_buffer=0.0,
        fee=0.0,
        insurance_fund=_LARGE,
        max_rounds=max_rounds,
        adl=False,
        mode="full",
    )
    ledger, book, liquidator = exchange.ledger, exchange.book, exchange.liquidator
    maker, counterparty, seller = (
        int(ledger.add_accounts(1, _LARGE, kind)[0]) for kind in ("market_maker", "counterparty", "exogenous")
    )
    ledger.set_checked([maker, counterparty, seller], False)
    for level in reversed(range(levels)):  # lowest price first: each new level goes to the end of the side
        book.submit_limit(maker, BUY, _START_TICK - 1 - level, depth)
    book.submit_limit(maker, SELL, _START_TICK + 1, depth)
    # Collateral that puts the liquidation price (equity = maintenance) at start - distance.
    liquidation_prices = (_START_TICK - distances) * _TICK
    collateral = lots * (start_price - liquidation_prices * (1.0 - _MAINTENANCE))
    accounts = ledger.add_accounts(len(distances), collateral, "leveraged_trader")
    for account in accounts.tolist():
        ledger.open_position(account, 0, lots, start_price, counterparty)
    ledger.begin_step(0)
    if shock_lots > 0:
        ledger.settle(book.submit_market(seller, SELL, shock_lots), 0, -1, is_liquidation=False)

    def marks() -> np.ndarray:
        last = book.last_price
        return np.array([last * _TICK if last is not None else start_price])

    liquidator.run(0, marks)
    last = book.last_price if book.last_price is not None else _START_TICK
    trades = ledger.trades
    sold = int(
        sum(q for q, taker_side in zip(trades.quantity, trades.side, strict=True) if taker_side == SELL)
    )
    return CascadeOutcome(
        liquidated=len(liquidator.liquidations),
        rounds=int(liquidator.totals.rounds),
        price_move_ticks=int(_START_TICK - last),
        lots_sold=sold,
    )


def mean_cascade_size(
    m: float, trials: int, rng: np.random.Generator, *, lots: int = 10, accounts: int = 400
) -> tuple[float, float]:
    """Mean and standard error of the cascade size one liquidation sets off, liquidation prices Poisson.

    One account starts below maintenance (its liquidation price half a tick above the start); the
    others' liquidation prices are a Poisson process of density ``m / lots`` per tick below the start,
    on a book of one lot per tick, so every liquidation moves the price ``lots`` ticks and sets off
    Poisson(``m``) more on average.

    Args:
        m: Branching ratio (below 1 for a finite mean).
        trials: Independent cascades.
        rng: The generator for the liquidation prices.
        lots: Lots per account (the price move per liquidation, in ticks).
        accounts: Accounts per trial besides the first (the cascade cannot exceed ``accounts + 1``).

    Returns:
        ``(mean size, standard error)``, the first liquidation included.
    """
    spacing = lots / m  # depth 1: m = lots / spacing
    sizes = np.empty(trials)
    for trial in range(trials):
        distances = np.concatenate([[-0.5], poisson_distances(accounts, spacing, rng)])
        sizes[trial] = uniform_book_cascade(distances, lots, depth=1, shock_lots=0).liquidated
    error = float(np.std(sizes, ddof=1) / math.sqrt(trials)) if trials > 1 else float("nan")
    return float(np.mean(sizes)), error


# --------------------------------------------------------------------------- `abm facts RUN_DIR`


def facts_command(options: argparse.Namespace) -> int:
    """Carry out ``abm facts`` (registered in :mod:`abm.cli`): the options' checks, then the fact table.

    Returns:
        The exit status: 0, or 2 for a bad option or run directory.
    """
    from abm.outputs import read_run_tables
    from abm.published_facts import format_fact_table
    from abm.stylized import DEFAULT_HILL_FRACTION, DEFAULT_MAX_LAG, stylized_facts

    if options.max_lag is None:
        options.max_lag = DEFAULT_MAX_LAG
    if options.hill_fraction is None:
        options.hill_fraction = DEFAULT_HILL_FRACTION
    problems = []
    if options.interval < 1:
        problems.append(f"--interval must be at least 1 (got {options.interval})")
    if options.max_lag < 1:
        problems.append(f"--max-lag must be at least 1 (got {options.max_lag})")
    if not 0.0 < options.hill_fraction < 1.0:
        problems.append(f"--hill-fraction must be between 0 and 1 (got {options.hill_fraction})")
    if problems:
        for line in problems:
            print(f"error: {line}", file=sys.stderr)
        return 2
    try:
        run = read_run_tables(options.run_dir)
    except (FileNotFoundError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    timeseries = run["timeseries"]
    if options.price not in timeseries.columns:
        print(f"error: the time series has no column {options.price!r}", file=sys.stderr)
        return 2
    returns = len(timeseries) // options.interval - 1
    if returns < 2 * options.max_lag:
        print(
            f"error: {returns} returns at interval {options.interval} are too few for ACF lags up to "
            f"{options.max_lag} (need at least {2 * options.max_lag}): "
            "use a longer run or a smaller --max-lag",
            file=sys.stderr,
        )
        return 2
    facts = stylized_facts(
        timeseries,
        options.interval,
        max_lag=options.max_lag,
        hill_fraction=options.hill_fraction,
        price_column=options.price,
    )
    print(f"run: {run['path']}")
    print(format_fact_table(facts))
    return 0
