"""The cascade of a large spiral written out: from the table in arrays, against the networkx graph.

Issue 20 sets the target: the cascade of 100,000 liquidations written in at most 2 s. The spiral
with ``--traders`` leveraged traders (arrival rate 100 / traders) over ``--steps`` steps liquidates
every trader at 100,000 (the shock at step 300 takes them all); this times, ``--repeat`` times:

* ``table``: the cascade's summary figures and components from the liquidations table
  (:class:`abm.cascades.TableCascade`, what a run's summary and report use);
* ``parquet``: writing ``liquidations.parquet``, whose ``parents`` column is the edge list;
* ``graph``: building the networkx DAG and measuring it (what the summary did before), for
  comparison; checked to give the same figures.

At 100,000 traders the spiral's liquidations are all lone (every trader breaches in round 0 of the
shock's step), so ``--synthetic N`` times a made-up table of ``N`` liquidations instead, with links:
after the first ten, each with probability 0.7 a child of one (80%) or two of the 500 before it.

Usage::

    python benchmarks/bench_cascade.py [--traders 100000] [--steps 600] [--repeat 3] [--synthetic N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from abm import config, network  # noqa: E402
from abm.cascades import TableCascade  # noqa: E402
from abm.model import MarketModel  # noqa: E402
from abm.outputs import _LIST_COLUMNS, _write_table  # noqa: E402
from abm.tables import LIQUIDATIONS  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traders", type=int, default=100_000)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--synthetic", type=int, default=0, help="time a made-up table of N instead")
    options = parser.parse_args()
    if options.synthetic:
        liquidations, title = synthetic_table(options.synthetic), "made-up table"
    else:
        liquidations, title = spiral_table(options.traders, options.steps)
    edges = int(liquidations["parents"].map(len).sum())
    print(f"{title}: {len(liquidations):,} liquidations, {edges:,} parent links;")
    print("seconds per pass (target: table + parquet at most 2 s)")
    print(f"{'pass':>6}{'table':>10}{'parquet':>10}{'graph':>10}")
    with tempfile.TemporaryDirectory() as directory:
        for index in range(options.repeat):
            start = time.perf_counter()
            cascade = TableCascade(liquidations)
            components = cascade.components()
            figures = {**cascade.measures(components), **cascade.summary(components)}
            table_seconds = time.perf_counter() - start
            start = time.perf_counter()
            path = Path(directory) / f"liquidations_{index}.parquet"
            _write_table(liquidations, path, _LIST_COLUMNS["liquidations"], "parquet")
            parquet_seconds = time.perf_counter() - start
            start = time.perf_counter()
            graph = network.build_cascade_graph(liquidations)
            reference = {**network.cascade_measures(graph), **network.network_summary(graph)}
            graph_seconds = time.perf_counter() - start
            if figures != reference:
                raise SystemExit(f"the table's figures differ from the graph's: {figures} != {reference}")
            print(f"{index + 1:>6}{table_seconds:>10.3f}{parquet_seconds:>10.3f}{graph_seconds:>10.2f}")


def spiral_table(traders: int, steps: int) -> tuple[pd.DataFrame, str]:
    """The liquidations of the spiral at ``traders`` (arrival rate 100 / traders) over ``steps``."""
    data = config.load_scenario(config.resolve_scenario("spiral")).model_dump(mode="json", exclude_unset=True)
    data["agents"][1]["count"] = traders
    data["agents"][1]["arrival_rate"] = 100 / traders
    data["steps"] = steps
    model = MarketModel(config.scenario_from_dict(data), rng=7)
    while model.running:
        model.step()
    return model.results().liquidations, f"spiral, {traders:,} traders x {steps:,} steps"


def synthetic_table(size: int) -> pd.DataFrame:
    """``size`` liquidations in cascades: each after the tenth a child of 1-2 of the 500 before it."""
    rng = np.random.default_rng(1)
    parents: list[list[int]] = []
    for liquidation_id in range(size):
        if liquidation_id < 10 or rng.random() < 0.3:
            parents.append([])
        else:
            count = 1 if rng.random() < 0.8 else 2
            drawn = rng.integers(max(0, liquidation_id - 500), liquidation_id, size=count)
            parents.append(sorted({int(parent) for parent in drawn}))
    ids = np.arange(size)
    table = {name: np.zeros(size, dtype=np.int64) for name in LIQUIDATIONS.names()}
    table.update(
        liquidation_id=ids,
        account_id=rng.integers(1, size + 1, size=size),
        instrument="A",
        step=ids // 50,
        notional=rng.random(size) * 1000.0,
        price_impact=rng.random(size) * 1e-3,
        side=-1,
        parents=parents,
    )
    frame = pd.DataFrame(table)[list(LIQUIDATIONS.names())]
    frame["kind"], frame["full"] = "leveraged_trader", True
    return frame


if __name__ == "__main__":
    main()
