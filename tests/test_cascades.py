"""The cascade from the table (abm.cascades) against the cascade DAG (abm.network), the reference.

Every figure of :class:`TableCascade` must equal its networkx counterpart on the graph built from the
same table: on the hand-built cascade of ``tests/test_network.py``, on random tables (repeated
parents, parents without a row of their own, ids out of cause order, several instruments), and in a
run, where the summary is made from the table and the graph is built only when asked for.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from abm import config
from abm.cascades import TableCascade
from abm.network import (
    build_cascade_graph,
    cascade_components,
    cascade_measures,
    network_summary,
)
from abm.runs import run_scenario
from tests.test_network import HAND_CASCADE, liquidation_rows


def _same_as_the_graph(table: pd.DataFrame) -> None:
    graph = build_cascade_graph(table)
    cascade = TableCascade(table)
    pd.testing.assert_frame_equal(cascade.components(), cascade_components(graph))
    assert cascade.measures() == cascade_measures(graph)
    assert cascade.summary() == network_summary(graph)


def test_the_hand_built_cascade_gives_the_graphs_figures():
    # tests/test_network.py works these out by hand: 3 cascades of 5, 2 and 1, depth 2, 4 of 8
    # liquidations triggered (branching ratio 0.5).
    table = liquidation_rows(HAND_CASCADE)
    _same_as_the_graph(table)
    measures = TableCascade(table).measures()
    assert (measures["cascades"], measures["largest_cascade"], measures["cascade_depth"]) == (3, 5, 2)
    assert measures["branching_ratio"] == 0.5


def test_an_empty_table_gives_the_empty_graphs_figures():
    _same_as_the_graph(liquidation_rows([]))


def test_ids_out_of_cause_order_take_the_topological_path():
    # Liquidation 9 is the parent of 3 (a hand-made table; a run numbers causes first): 9 -> 3 -> 4.
    table = liquidation_rows([(9, 1, 0, 1, 10.0, []), (3, 1, 1, 2, 20.0, [9]), (4, 1, 2, 3, 30.0, [3])])
    _same_as_the_graph(table)
    assert TableCascade(table).measures()["cascade_depth"] == 2


@st.composite
def _tables(draw):
    size = draw(st.integers(min_value=1, max_value=40))
    ids = draw(st.permutations(range(100, 100 + size)))
    rows = []
    for position, liquidation_id in enumerate(ids):
        earlier = list(ids[:position]) + [5, 6]  # 5 and 6: parents without a row
        parents = draw(st.lists(st.sampled_from(earlier), max_size=3)) if draw(st.booleans()) else []
        row = (liquidation_id, position // 4, position % 4, position, float(position + 1), parents)
        rows.append(row)
    table = liquidation_rows(rows)
    table["instrument"] = draw(st.lists(st.sampled_from(["A", "B"]), min_size=size, max_size=size))
    return table


@settings(max_examples=60, deadline=None)
@given(_tables())
def test_random_tables_give_the_graphs_figures(table):
    _same_as_the_graph(table)


def test_a_run_summarises_from_the_table_and_builds_the_graph_when_asked():
    scenario = config.scenario_from_dict(
        {**config.load_scenario(config.resolve_scenario("spiral")).model_dump(mode="json"), "steps": 400}
    )
    result = run_scenario(scenario)
    assert result.summary["liquidations"] > 0
    assert "_cascade_graph" in vars(result) and vars(result)["_cascade_graph"] is None
    graph = result.cascade  # built now, from the liquidations table, and kept
    reference = build_cascade_graph(result.liquidations)
    assert list(graph.nodes(data="step")) == list(reference.nodes(data="step"))
    assert list(graph.edges) == list(reference.edges) and graph.number_of_edges() > 0
    assert result.cascade is graph
    measures = cascade_measures(graph)
    for name in ("cascades", "largest_cascade", "cascade_depth", "branching_ratio"):
        assert result.summary[name] == pytest.approx(measures[name], rel=0, abs=0)


def test_a_large_forest_of_cascades_gives_the_graphs_figures():
    # 3,000 liquidations, each after the first ten with probability 0.7 a child of one or two of the
    # 200 before it: long chains and wide components, as a crash makes.
    rng = np.random.default_rng(7)
    rows = []
    for liquidation_id in range(3_000):
        parents = []
        if liquidation_id >= 10 and rng.random() < 0.7:
            low = max(0, liquidation_id - 200)
            parents = rng.integers(low, liquidation_id, size=rng.integers(1, 3)).tolist()
        rows.append((liquidation_id, liquidation_id // 30, 0, liquidation_id, 1.0, parents))
    _same_as_the_graph(liquidation_rows(rows))


def test_the_cascade_figures_from_the_table_are_those_from_the_graph(tmp_path):
    from matplotlib.image import imread

    from abm.plots import plot_cascade, plot_cascade_sizes

    table = liquidation_rows(HAND_CASCADE)
    graph = build_cascade_graph(table)
    for draw in (plot_cascade, plot_cascade_sizes):
        from_graph = draw(graph, tmp_path / f"{draw.__name__}_graph.png")
        from_table = draw(table, tmp_path / f"{draw.__name__}_table.png")
        assert from_graph.axes[0].get_title() == from_table.axes[0].get_title()
        # The same pixels but where two grey links cross: drawn in another order, their blend can
        # round to a level apart (3 pixels of the cascade figure here).
        difference = np.abs(
            imread(tmp_path / f"{draw.__name__}_table.png") - imread(tmp_path / f"{draw.__name__}_graph.png")
        )
        assert difference.max() <= 1.01 / 255 and (difference > 0).any(axis=2).sum() <= 20
    # The hand cascade: 8 liquidations, 6 links; 5 columns (step/round 10/0, 10/1, 10/2, 20/0, 20/1,
    # 30/0: six stages) and 8 accounts.
    axes = plot_cascade(table).axes[0]
    assert axes.get_title() == "Liquidation cascade: 8 liquidations, 6 links"
    assert [label.get_text() for label in axes.get_xticklabels()] == [
        "10/0",
        "10/1",
        "10/2",
        "20/0",
        "20/1",
        "30/0",
    ]
