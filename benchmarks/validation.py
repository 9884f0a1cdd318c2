"""Validation cases at full size: prints the tables of docs/validation.md (markdown).

Usage::

    python benchmarks/validation.py [stylized|leverage|cascade|policy|all] [--seeds N] [--steps N]
                                    [--workers N] [--first-seed N]

1. stylized: the calm_facts scenario over several seeds, each stylized fact beside its published range.
2. leverage: value funds against AR(1) noise demand, sweeping the funds' leverage cap.
3. cascade: the analytic cascade on a uniform book against its closed forms.
4. policy: fund defaults under a constant and a volatility-based maximum leverage (Poledna et al. 2014).
5. correlation: A and B's return correlation in the liquidation wave, with and without shared holders
   (Cont and Wagalath).
6. overlap: the share of traders liquidated after a shock to one of six instruments, by leverage and
   by the number of instruments each trader holds (Caccioli et al. 2014).

Runs are independent and deterministic (seeded); ``--workers`` spreads them over processes.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from scipy import stats

from abm.config import load_scenario, resolve_scenario
from abm.published_facts import PUBLISHED_FACTS, compare_with_published
from abm.runs import run_scenario
from abm.stylized import stylized_facts
from abm.validation import (
    CORRELATION_MODES,
    LEVERAGE_LEVELS,
    OVERLAP_DIVERSIFICATION,
    OVERLAP_INSTRUMENTS,
    OVERLAP_LEVERAGE,
    POLICY_LEVELS,
    POLICY_RULES,
    branching_ratio,
    correlation_case_scenario,
    evenly_spaced_distances,
    expected_cascade_size,
    fund_defaults,
    leverage_case_scenario,
    linear_cascade_move,
    mean_cascade_size,
    overlap_case_scenario,
    overlap_outcome,
    policy_case_scenario,
    return_correlation,
    truncated_cascade_size,
    uniform_book_cascade,
)

STYLIZED_STEPS = 20_000
STYLIZED_INTERVALS = (1, 5)
LEVERAGE_STEPS = 20_000
POLICY_STEPS = 20_000


def _map(function, items, workers):
    if workers <= 1:
        return [function(item) for item in items]
    with ProcessPoolExecutor(workers) as pool:
        return list(pool.map(function, items))


def _mean_sd(values) -> str:
    values = np.asarray(values, dtype=float)
    if len(values) == 1:
        return f"{values[0]:.3g}"
    return f"{np.mean(values):.3g} ± {np.std(values, ddof=1):.2g}"


# --------------------------------------------------------------------------- 1. stylized facts


def _stylized_run(seed_steps_and_scenario):
    seed, steps, name = seed_steps_and_scenario
    result = run_scenario(load_scenario(resolve_scenario(name), [f"steps={steps}"]), seed=seed)
    return {
        interval: stylized_facts(result.timeseries, interval) for interval in STYLIZED_INTERVALS
    }, result.summary["liquidated_accounts"]


def stylized(
    seeds: int, steps: int | None, workers: int, scenario: str = "calm_facts", first_seed: int = 1
) -> None:
    steps = steps or STYLIZED_STEPS
    chosen = range(first_seed, first_seed + seeds)
    runs = _map(_stylized_run, [(seed, steps, scenario) for seed in chosen], workers)
    print(f"### 1. Stylized facts: {scenario}, seeds {chosen.start}-{chosen.stop - 1} x {steps} steps\n")
    print(f"Liquidated accounts per run: {[liquidated for _, liquidated in runs]}\n")
    for interval in STYLIZED_INTERVALS:
        checks = [compare_with_published(facts[interval]) for facts, _ in runs]
        first = runs[0][0][interval]
        print(
            f"Returns over {interval} step(s): n = {first['observations']} per seed, "
            f"Hill k = {first['tail_index_k']}.\n"
        )
        print("| statistic | mean ± sd over seeds | seeds inside | published |")
        print("| --- | --- | --- | --- |")
        for index, fact in enumerate(PUBLISHED_FACTS):
            values = [run_checks[index].value for run_checks in checks]
            inside = sum(run_checks[index].inside for run_checks in checks)
            print(f"| {fact.label} | {_mean_sd(values)} | {inside}/{len(checks)} | {fact.published} |")
        extra = {
            "return sd": [facts[interval]["return_sd"] for facts, _ in runs],
            "ACF lag 1": [facts[interval]["acf_lag1"] for facts, _ in runs],
            "Ljung-Box p (lags 1-50)": [facts[interval]["ljung_box_pvalue"] for facts, _ in runs],
            "zero-return share": [facts[interval]["zero_return_share"] for facts, _ in runs],
            "R^2 of r on index returns, lags 0-3": [
                facts[interval]["index_explained_share"] for facts, _ in runs
            ],
        }
        for label, values in extra.items():
            print(f"| {label} | {_mean_sd(values)} | | |")
        print()


# --------------------------------------------------------------------------- 2. leverage and fat tails


def _leverage_run(job):
    level, seed, steps = job
    result = run_scenario(leverage_case_scenario(level, steps), seed=seed)
    facts = stylized_facts(result.timeseries, 1)
    return level, facts, fund_defaults(result.liquidations)


def leverage(seeds: int, steps: int | None, workers: int) -> None:
    steps = steps or LEVERAGE_STEPS
    jobs = [(level, seed, steps) for level in LEVERAGE_LEVELS for seed in range(1, seeds + 1)]
    runs = _map(_leverage_run, jobs, workers)
    print(f"### 2. Leverage and fat tails: validation_leverage, {seeds} seeds x {steps} steps\n")
    print(
        "| max leverage | excess kurtosis | tail index (Hill) | ACF abs r lag 1 | mean ACF abs r lags 1-10 "
        "| ARCH LM(5) | return sd | fund liquidations |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for level in LEVERAGE_LEVELS:
        rows = [(facts, defaults) for lev, facts, defaults in runs if lev == level]
        column = {
            "kurtosis": [f["excess_kurtosis"] for f, _ in rows],
            "tail": [f["tail_index"] for f, _ in rows],
            "abs1": [f["abs_acf_lag1"] for f, _ in rows],
            "abs10": [float(np.mean(f["abs_acf"][:10])) for f, _ in rows],
            "arch": [f["arch_lm"] for f, _ in rows],
            "sd": [f["return_sd"] for f, _ in rows],
            "defaults": [d for _, d in rows],
        }
        print(
            f"| {level:g} | {_mean_sd(column['kurtosis'])} | {_mean_sd(column['tail'])} | "
            f"{_mean_sd(column['abs1'])} | {_mean_sd(column['abs10'])} | {_mean_sd(column['arch'])} | "
            f"{_mean_sd(column['sd'])} | {_mean_sd(column['defaults'])} |"
        )
    print()


# --------------------------------------------------------------------------- 3. analytic cascade


def _discrete_fixed_point(distances, lots, depth, shock):
    sold = shock
    while True:
        fall = math.ceil(sold / depth)
        count = int(np.sum(distances < fall))
        if shock + lots * count == sold:
            return count, fall
        sold = shock + lots * count


def cascade(trials: int) -> None:
    print("### 3. Analytic cascade: uniform book, evenly spaced liquidation prices\n")
    print(
        "Depth 1 lot per tick, 10 lots per account, liquidation prices at (j - 1/2) x spacing ticks, "
        "200 accounts.\n"
    )
    print(
        "| spacing (ticks) | m | shock (lots) | liquidated (engine) | fixed point | continuum "
        "D0/(1-m)/spacing | price move (engine) | D0/(1-m) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    lots, depth = 10, 1
    for spacing in (50.0, 25.0, 12.5, 8.0):
        m = branching_ratio(lots, depth, spacing)
        distances = evenly_spaced_distances(200, spacing)
        for shock in (30, 100, 300):
            outcome = uniform_book_cascade(distances, lots, depth, shock)
            count, _ = _discrete_fixed_point(distances, lots, depth, shock)
            move = linear_cascade_move(shock / depth, m)
            continuum = math.floor(move / spacing + 0.5) if math.isfinite(move) else len(distances)
            print(
                f"| {spacing:g} | {m:.2f} | {shock} | {outcome.liquidated} | {count} | "
                f"{min(continuum, len(distances))} | {outcome.price_move_ticks} | {move:.4g} |"
            )
    print()
    print(
        f"Mean cascade size after one liquidation, liquidation prices a Poisson process, "
        f"{trials} trials each:\n"
    )
    print(
        "| m | mean size (engine) | sample s.e. | Borel s.e. | 1/(1-m) | Borel mean of min(T, 401) "
        "| (engine - Borel) / Borel s.e. |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    rng = np.random.default_rng(2026)
    for m in (0.2, 0.4, 0.6, 0.8, 0.9):
        mean, error = mean_cascade_size(m, trials, rng)
        expected = expected_cascade_size(m)
        truncated = truncated_cascade_size(m, 401)  # 400 accounts besides the first
        # The Borel law's variance m / (1 - m)^3: its long tail makes the sample s.e. too small.
        borel_error = math.sqrt(m / (1 - m) ** 3 / trials)
        print(
            f"| {m:.1f} | {mean:.3f} | {error:.3f} | {borel_error:.3f} | {expected:.3f} | {truncated:.3f} | "
            f"{(mean - truncated) / borel_error:+.2f} |"
        )
    print()


# --------------------------------------------------------------------------- 4. policy ranking


def _policy_run(job):
    rule, level, seed, steps = job
    result = run_scenario(policy_case_scenario(rule, level, steps), seed=seed)
    return rule, level, fund_defaults(result.liquidations), float(result.summary["bad_debt"])


def policy(seeds: int, steps: int | None, workers: int) -> None:
    steps = steps or POLICY_STEPS
    jobs = [
        (rule, level, seed, steps)
        for rule in POLICY_RULES
        for level in POLICY_LEVELS
        for seed in range(1, seeds + 1)
    ]
    runs = _map(_policy_run, jobs, workers)
    print(f"### 4. Policy ranking: fund defaults per run, {seeds} seeds x {steps} steps\n")
    header = " | ".join(f"{rule} defaults" for rule in POLICY_RULES)
    print(
        f"| max leverage | {header} | difference (dynamic - fixed) | s.e. of difference "
        "| bad debt fixed / dynamic |"
    )
    print("| --- | " + " | ".join("---" for _ in POLICY_RULES) + " | --- | --- | --- |")
    for level in POLICY_LEVELS:
        by_rule = {rule: [d for r, lev, d, _ in runs if r == rule and lev == level] for rule in POLICY_RULES}
        debt = {rule: [b for r, lev, _, b in runs if r == rule and lev == level] for rule in POLICY_RULES}
        # Common seeds: the difference is paired.
        difference = np.array(by_rule["dynamic_leverage"], dtype=float) - np.array(
            by_rule["fixed"], dtype=float
        )
        error = (
            np.std(difference, ddof=1) / math.sqrt(len(difference)) if len(difference) > 1 else float("nan")
        )
        cells = " | ".join(_mean_sd(by_rule[rule]) for rule in POLICY_RULES)
        print(
            f"| {level:g} | {cells} | {np.mean(difference):+.3g} | {error:.2g} | "
            f"{np.mean(debt['fixed']):.3g} / {np.mean(debt['dynamic_leverage']):.3g} |"
        )
    print()


# --------------------------------------------------------------------------- 5. correlation in a wave

CALM_WINDOW = (100, 300)  # steps of the calm before the contagion crash (its shocks hit at step 300)
WAVE_WINDOW = (300, 450)  # the crash and its liquidation wave (liquidations end by step 420 on seeds 1-10)


def _correlation_run(job):
    mode, seed = job
    result = run_scenario(correlation_case_scenario(mode), seed=seed)
    series = result.timeseries
    return (
        mode,
        seed,
        return_correlation(series, "A", "B", *CALM_WINDOW),
        return_correlation(series, "A", "B", *WAVE_WINDOW),
        int(result.summary["by_instrument"]["B"]["liquidations"]),
    )


def correlation(seeds: int, workers: int) -> None:
    jobs = [(mode, seed) for mode in CORRELATION_MODES for seed in range(1, seeds + 1)]
    runs = _map(_correlation_run, jobs, workers)
    print(f"### 5. Correlation in a liquidation wave: contagion, {seeds} seeds\n")
    print(
        "| crowd's margin mode | calm correlation (seeds where B moved) | wave correlation | "
        "95% interval | liquidations in B |"
    )
    print("| --- | --- | --- | --- | --- |")
    for mode in CORRELATION_MODES:
        rows = [run for run in runs if run[0] == mode]
        calm = np.array([run[2] for run in rows])
        wave = np.array([0.0 if math.isnan(run[3]) else run[3] for run in rows])  # B still: no co-movement
        count = len(wave)
        half = (
            stats.t.ppf(0.975, count - 1) * np.std(wave, ddof=1) / math.sqrt(count) if count > 1 else math.nan
        )
        moved = calm[~np.isnan(calm)]
        calm_text = f"{np.mean(moved):.3f} ({len(moved)} of {len(calm)})" if len(moved) else "n/a (0)"
        print(
            f"| {mode} | {calm_text} | {np.mean(wave):.3f} | [{np.mean(wave) - half:.3f}, "
            f"{np.mean(wave) + half:.3f}] | {np.mean([run[4] for run in rows]):.1f} |"
        )
    print()


# --------------------------------------------------------------------------- 6. overlapping portfolios


def _overlap_run(job):
    diversification, leverage, seed = job
    result = run_scenario(overlap_case_scenario(diversification, leverage), seed=seed)
    share, touched = overlap_outcome(result.summary)
    return diversification, leverage, share, touched


def overlap(seeds: int, workers: int) -> None:
    jobs = [
        (d, level, seed)
        for level in OVERLAP_LEVERAGE
        for d in OVERLAP_DIVERSIFICATION
        for seed in range(1, seeds + 1)
    ]
    runs = _map(_overlap_run, jobs, workers)
    print(f"### 6. Overlapping portfolios: share of traders liquidated, {seeds} seeds\n")
    print(
        "| leverage | "
        + " | ".join(f"{d} of {OVERLAP_INSTRUMENTS} held" for d in OVERLAP_DIVERSIFICATION)
        + " |"
    )
    print("| --- | " + " | ".join("---" for _ in OVERLAP_DIVERSIFICATION) + " |")
    for level in OVERLAP_LEVERAGE:
        cells = []
        for d in OVERLAP_DIVERSIFICATION:
            rows = [run for run in runs if run[0] == d and run[1] == level]
            share = np.mean([run[2] for run in rows])
            touched = np.mean([run[3] for run in rows])
            cells.append(f"{share:.3f} ({touched:.1f} books)")
        print(f"| {level:g} | " + " | ".join(cells) + " |")
    print()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "case",
        nargs="?",
        default="all",
        choices=["stylized", "leverage", "cascade", "policy", "correlation", "overlap", "all"],
    )
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--trials", type=int, default=1_000, help="cascades per branching ratio (case 3)")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--scenario", default="calm_facts", help="the calm scenario of case 1")
    parser.add_argument(
        "--first-seed", type=int, default=1, help="case 1's first seed (e.g. 11: out of sample)"
    )
    options = parser.parse_args(argv)
    started = time.perf_counter()
    if options.case in ("stylized", "all"):
        stylized(options.seeds, options.steps, options.workers, options.scenario, options.first_seed)
    if options.case in ("leverage", "all"):
        leverage(options.seeds, options.steps, options.workers)
    if options.case in ("cascade", "all"):
        cascade(options.trials)
    if options.case in ("policy", "all"):
        policy(options.seeds, options.steps, options.workers)
    if options.case in ("correlation", "all"):
        correlation(options.seeds, options.workers)
    if options.case in ("overlap", "all"):
        overlap(options.seeds, options.workers)
    print(f"_wall time {time.perf_counter() - started:.0f} s_", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
