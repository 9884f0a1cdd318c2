"""The liquidation cascade as a networkx directed acyclic graph, and its measures.

Nodes are liquidations (by ``liquidation_id``) with attributes ``account``, ``step``, ``round``,
``notional``, ``price_impact`` and ``side``. An edge ``a -> b`` means liquidation ``a`` (round
``r-1`` of a step) moved the price against the account of ``b``, which first breached in round ``r``
of the same step (the attribution rule of :mod:`abm.clearing`).

Measures (all exact on the graph):

* ``cascades``: number of weakly connected components (a lone liquidation is a cascade of size 1);
* ``largest_cascade``: nodes in the largest component;
* ``cascade_depth``: longest path, in edges (links), over the whole graph;
* ``branching_ratio``: triggered liquidations (those with a parent) / all liquidations, the mean
  number of liquidations each one triggers when every triggered one is counted once.
"""

from __future__ import annotations

import networkx as nx
import pandas as pd

__all__ = ["build_cascade_graph", "cascade_measures", "cascade_sizes"]


def build_cascade_graph(liquidations: pd.DataFrame) -> nx.DiGraph:
    """Build the cascade DAG from a liquidations table (columns of ``LIQUIDATION_COLUMNS``).

    Args:
        liquidations: One row per liquidation, with a ``parents`` column of id lists.

    Returns:
        The DAG; edges go from cause to effect.
    """
    graph = nx.DiGraph()
    if liquidations.empty:
        return graph
    for row in liquidations.itertuples(index=False):
        graph.add_node(
            int(row.liquidation_id),
            account=int(row.account_id),
            step=int(row.step),
            round=int(row.round),
            notional=float(row.notional),
            price_impact=float(row.price_impact),
            side=int(row.side),
        )
    for row in liquidations.itertuples(index=False):
        for parent in row.parents:
            graph.add_edge(int(parent), int(row.liquidation_id))
    return graph


def cascade_sizes(graph: nx.DiGraph) -> list[int]:
    """Sizes of the cascades (weakly connected components), largest first."""
    return sorted((len(c) for c in nx.weakly_connected_components(graph)), reverse=True)


def cascade_measures(graph: nx.DiGraph) -> dict[str, float]:
    """Headline measures of a cascade DAG (see the module docstring for definitions)."""
    n = graph.number_of_nodes()
    if n == 0:
        return {"cascades": 0, "largest_cascade": 0, "cascade_depth": 0, "branching_ratio": 0.0}
    sizes = cascade_sizes(graph)
    triggered = sum(1 for node in graph.nodes if graph.in_degree(node) > 0)
    return {
        "cascades": len(sizes),
        "largest_cascade": sizes[0],
        "cascade_depth": int(nx.dag_longest_path_length(graph)),
        "branching_ratio": triggered / n,
    }
