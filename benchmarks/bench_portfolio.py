"""Portfolio margin rules at scale: one review and one margin pass over many accounts and instruments.

Issue 17 sets the target: a review of every method over 10,000 accounts x 10 instruments under 5 ms
(vectorised over accounts and scenarios). For each registered portfolio rule this times, on random
positions and a random correlated mark history of ``--history`` steps:

* ``review``: one review step (the rule takes in the marks of one more step; rules that rebuild
  their scenarios do so), the median over ``--repeat`` consecutive steps;
* ``requirements``: the initial and maintenance requirements of every account (what the margin check
  asks of the rule every step), the median of ``--repeat`` calls;
* their sum, against the 5 ms target;
* ``state``: the rule's recorded state right after (what the recorder asks every step, for the
  positions and marks just margined), the median of ``--repeat`` calls; not in the total.

``span_combined`` is SPAN with the instruments paired into combined commodities (an intra-commodity
spread charge each) and credits between consecutive commodities; ``span_tiered`` makes the
instruments two combined commodities of five, each with a front tier of two members, a back tier of
three and a tier spread between them.

Usage::

    python benchmarks/bench_portfolio.py [--accounts 10000] [--instruments 10] [--history 600]
"""

from __future__ import annotations

import argparse
import statistics
import time
from types import SimpleNamespace

import numpy as np

from abm.margin.portfolio import PORTFOLIO_RULE_CLASSES, build_portfolio_rule
from abm.margin.portfolio_settings import PORTFOLIO_RULE_SETTINGS

TARGET_MS = 5.0


def settings_for(name: str, names: list[str]) -> dict:
    """The settings each rule is timed with (the comparison's, scaled to the instruments)."""
    ranges = dict.fromkeys(names, 0.02)
    pairs = [{"pair": [names[i], names[i + 1]], "rate": 0.5} for i in range(0, len(names) - 1, 2)]
    return {
        "sum_of_positions": {},
        "correlation_offset": {},
        "span": {"scan_ranges": ranges, "spread_credits": pairs, "volatility_scaling": {}},
        "portfolio_var": {"window": 250, "minimum_rate": 0.005},
        "portfolio_es": {"window": 250, "filtered": True, "minimum_rate": 0.005},
        "parametric_var": {"minimum_rate": 0.005},
        "unified_account": {},
    }.get(name, {})


def variants(names: list[str]) -> list[tuple[str, str, dict]]:
    """(label, rule, settings) for every registered rule, and SPAN with combined commodities."""
    rows = [(name, name, settings_for(name, names)) for name in PORTFOLIO_RULE_CLASSES]
    commodities = [
        {"name": f"C{i // 2}", "instruments": names[i : i + 2], "intra_spread_rate": 0.25}
        for i in range(0, len(names) - 1, 2)
    ]
    pairs = [
        {"pair": [commodities[i]["name"], commodities[i + 1]["name"]], "rate": 0.5}
        for i in range(0, len(commodities) - 1, 2)
    ]
    combined = {**settings_for("span", names), "combined_commodities": commodities, "spread_credits": pairs}
    half = len(names) // 2
    tiered = [
        {
            "name": f"T{j}",
            "instruments": members,
            "intra_spread_rate": 0.5,
            "tiers": [
                {"name": f"T{j}front", "instruments": members[:2], "intra_spread_rate": 0.1},
                {"name": f"T{j}back", "instruments": members[2:], "intra_spread_rate": 0.2},
            ],
            "tier_spreads": [{"tiers": [f"T{j}front", f"T{j}back"], "rate": 0.3}],
        }
        for j, members in enumerate((names[:half], names[half:]))
    ]
    tiers = {**settings_for("span", names), "combined_commodities": tiered, "spread_credits": []}
    return [*rows, ("span_combined", "span", combined), ("span_tiered", "span", tiers)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--instruments", type=int, default=10)
    parser.add_argument("--history", type=int, default=600, help="steps of marks before the timing")
    parser.add_argument("--repeat", type=int, default=20)
    options = parser.parse_args()
    rng = np.random.default_rng(2026)
    k, n = options.instruments, options.accounts
    names = [f"I{i}" for i in range(k)]
    instruments = [SimpleNamespace(name=name, contract_size=0.1) for name in names]
    correlation = np.full((k, k), 0.6) + 0.4 * np.eye(k)
    steps = options.history + options.repeat
    returns = rng.multivariate_normal(np.zeros(k), 1e-6 * correlation, size=steps)
    histories = [100.0 * np.exp(np.cumsum(np.r_[0.0, returns[:, i]])) for i in range(k)]
    positions = rng.integers(-50, 51, size=(n, k))
    marks = np.array([history[-1] for history in histories])
    notional = np.abs(positions) * marks * 0.1
    standalone = (notional * 0.04, notional * 0.02)
    print(f"{n:,} accounts x {k} instruments, {options.history} steps of history; milliseconds (median)")
    print(f"{'rule':<20}{'review':>10}{'requirements':>14}{'total':>10}  target {TARGET_MS:g} ms{'state':>9}")
    for label, name, settings in variants(names):
        config = PORTFOLIO_RULE_SETTINGS[name].model_validate({"rule": name, **settings})
        rule = build_portfolio_rule(config, correlation, instruments)
        for step in range(options.history):  # the history, reviewed step by step as the model does
            rule.review(step, [history[: step + 1] for history in histories])
        review_times, requirement_times, state_times = [], [], []
        for step in range(options.history, steps):
            views = [history[: step + 1] for history in histories]
            # The step's own marks: the rules give their last answer again for unchanged inputs.
            marks = np.array([history[step] for history in histories])
            start = time.perf_counter()
            rule.review(step, views)
            review_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            rule.requirements(positions, marks, *standalone)
            requirement_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            rule.state(positions, marks)
            state_times.append(time.perf_counter() - start)
        review_ms = 1e3 * statistics.median(review_times)
        requirement_ms = 1e3 * statistics.median(requirement_times)
        total = review_ms + requirement_ms
        verdict = "ok" if total <= TARGET_MS else "over"
        state_ms = 1e3 * statistics.median(state_times)
        figures = f"{review_ms:>10.3f}{requirement_ms:>14.3f}{total:>10.3f}"
        print(f"{label:<20}{figures}  {verdict:<13}{state_ms:>7.3f}")


if __name__ == "__main__":
    main()
