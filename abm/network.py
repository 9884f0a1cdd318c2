"""Networks of a run: the liquidation cascade DAG, the trade network and the exposure graph.

Everything is a :mod:`networkx` graph and every measure is computed with networkx on it. A run's
summary and report take the cascade's measures from :class:`abm.cascades.TableCascade` instead, the
same figures from the liquidations table in arrays (checked against these in ``tests/test_cascades.py``).

**Cascade DAG** (:func:`build_cascade_graph`). Nodes are liquidations (by ``liquidation_id``) with
attributes ``account``, ``step``, ``round``, ``notional``, ``price_impact`` and ``side``. An edge
``a -> b`` means liquidation ``a`` (round ``r-1`` of a step) moved the price against the account of
``b``, which first breached in round ``r > 0`` of the same step: ``a``'s order went the way that hurts
``b`` (a sell for a long, a buy for a short) and filled something in the book. Round-0 breaches have no
parent (they are roots); so do breaches of a step's later rounds that no order of the round before
went against (attribution rule of :mod:`abm.liquidation`). Measures (all exact on the graph):

* ``cascades``: number of weakly connected components (a lone liquidation is a cascade of size 1);
* ``largest_cascade``: nodes in the largest component (ties: the one with the smallest node id);
  ``largest_cascade_depth``: longest path inside it, in edges;
* ``cascade_depth``: longest path over the whole graph, in edges (a lone liquidation has depth 0);
* ``branching_ratio``: the mean number of liquidations each liquidation triggers, where a triggered
  liquidation with ``k`` parents counts ``1/k`` for each parent. Summed over all nodes this credit
  is the number of nodes with a parent, so ``m = triggered / liquidations = 1 - roots / liquidations``.
  In a forest (one parent each) roots equal cascades and the mean cascade size is ``1 / (1 - m)``,
  the Galton-Watson relation of a subcritical branching process; ``m >= 1`` would mean supercritical;
* the cascade size distribution: :func:`cascade_sizes` (sizes, largest first) and
  :func:`cascade_size_distribution` (how many cascades have each size);
* ``cross_instrument_edge_share``: the share of edges whose parent closed a position in another
  instrument than the child's (:func:`cross_instrument_edge_share`): contagion across markets.

The trade network (accounts, who traded with whom) is built and measured in :mod:`abm.trade_network`,
the exposure graph (accounts x assets) in :mod:`abm.exposure_network`; every function of the three
is exported from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd

from abm.cascades import COMPONENT_COLUMNS, empty_components, measures_of
from abm.exposure_network import build_exposure_graph, crowding_measures, exposures_from_accounts
from abm.trade_network import (
    ADL_NODE,
    BETWEENNESS_MAX_NODES,
    ENGINE_NODE,
    absorption_by_kind,
    build_trade_graph,
    herfindahl,
    liquidation_absorption,
    maker_centrality,
    trade_network_measures,
)

__all__ = [
    "ADL_NODE",
    "ENGINE_NODE",
    "BETWEENNESS_MAX_NODES",
    "build_cascade_graph",
    "cascade_measures",
    "cascade_sizes",
    "cascade_size_distribution",
    "cascade_components",
    "build_trade_graph",
    "liquidation_absorption",
    "absorption_by_kind",
    "herfindahl",
    "maker_centrality",
    "trade_network_measures",
    "build_exposure_graph",
    "exposures_from_accounts",
    "crowding_measures",
    "cross_instrument_edge_share",
    "network_summary",
    "trade_network_summary",
]

# --------------------------------------------------------------------------- the cascade DAG


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
            instrument=str(getattr(row, "instrument", "")),
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


def cascade_size_distribution(graph: nx.DiGraph) -> dict[int, int]:
    """How many cascades have each size.

    Args:
        graph: A cascade DAG.

    Returns:
        ``{size: number of cascades of that size}``, sizes ascending (empty for an empty graph).
    """
    sizes, counts = np.unique(np.asarray(cascade_sizes(graph), dtype=np.int64), return_counts=True)
    return {int(size): int(count) for size, count in zip(sizes, counts, strict=True)}


def cascade_components(graph: nx.DiGraph) -> pd.DataFrame:
    """One row per cascade (weakly connected component), largest first.

    Args:
        graph: A cascade DAG as built by :func:`build_cascade_graph`.

    Returns:
        Columns ``cascade`` (rank, 0 = largest), ``size``, ``depth`` (longest path in edges), ``roots``
        (nodes without a parent), ``first_node`` (smallest liquidation id), ``step`` (of the first
        node) and ``notional`` (sum over its nodes, 0 where the attribute is missing).
    """
    rows = []
    depth = _longest_path_ending_at(graph)
    in_degree = graph.in_degree
    attributes = graph.nodes
    for nodes in nx.weakly_connected_components(graph):
        first = min(nodes)
        rows.append(
            {
                "size": len(nodes),
                # The longest path of a component ends at one of its nodes.
                "depth": max(depth[node] for node in nodes),
                "roots": sum(1 for node in nodes if in_degree(node) == 0),
                "first_node": first,
                "step": attributes[first].get("step", -1),
                "notional": float(sum(attributes[node].get("notional", 0.0) for node in nodes)),
            }
        )
    if not rows:
        return empty_components()
    table = pd.DataFrame(rows).sort_values(["size", "first_node"], ascending=[False, True])
    table.insert(0, "cascade", np.arange(len(table), dtype=np.int64))
    return table.reset_index(drop=True)[COMPONENT_COLUMNS]


def _longest_path_ending_at(graph: nx.DiGraph) -> dict[int, int]:
    # One pass in topological order, O(nodes + edges): nx.dag_longest_path_length on every
    # component's subgraph cost about 60 us per component, 12 s for 100,000 lone liquidations.
    depth: dict[int, int] = {}
    for node in nx.topological_sort(graph):
        depth[node] = max((depth[parent] + 1 for parent in graph.predecessors(node)), default=0)
    return depth


def cascade_measures(graph: nx.DiGraph) -> dict[str, float]:
    """Headline measures of a cascade DAG (see the module docstring for definitions).

    Args:
        graph: A cascade DAG.

    Returns:
        ``cascades``, ``largest_cascade``, ``largest_cascade_depth``, ``cascade_depth``,
        ``branching_ratio``, ``mean_cascade_size`` (all 0 for an empty graph).
    """
    n = graph.number_of_nodes()
    components = cascade_components(graph) if n else empty_components()
    triggered = sum(1 for node in graph.nodes if graph.in_degree(node) > 0)
    return measures_of(components, n, triggered)


# --------------------------------------------------------------------------- run summary


def cross_instrument_edge_share(graph: nx.DiGraph) -> float:
    """Share of the cascade's edges that cross instruments (parent and child in different ones).

    Returns:
        The share (0 for a graph without edges).
    """
    edges = graph.number_of_edges()
    if edges == 0:
        return 0.0
    instrument = nx.get_node_attributes(graph, "instrument")
    crossing = sum(1 for parent, child in graph.edges if instrument.get(parent) != instrument.get(child))
    return crossing / edges


def network_summary(cascade: nx.DiGraph) -> dict[str, Any]:
    """Cascade figures for ``summary.json`` beyond the headline ones of :func:`cascade_measures`.

    Args:
        cascade: The run's cascade DAG.

    Returns:
        ``largest_cascade_depth``, ``mean_cascade_size``, ``single_liquidation_cascades`` (cascades
        of size 1) and ``cross_instrument_edge_share``; scalars only: the full size distribution comes
        from the cascade itself (:func:`cascade_size_distribution`).
    """
    measures = cascade_measures(cascade)
    return {
        "largest_cascade_depth": int(measures["largest_cascade_depth"]),
        "mean_cascade_size": float(measures["mean_cascade_size"]),
        "single_liquidation_cascades": int(cascade_size_distribution(cascade).get(1, 0)),
        "cross_instrument_edge_share": cross_instrument_edge_share(cascade),
    }


def trade_network_summary(
    trade_graph: nx.DiGraph, exposure_graph: nx.Graph | None = None, asset: str = "future"
) -> dict[str, Any]:
    """Trade-network (and, when given, exposure) figures for ``summary.json``.

    Args:
        trade_graph: From :func:`build_trade_graph`.
        exposure_graph: From :func:`build_exposure_graph` (e.g. of the positions before the stress).
        asset: The asset whose crowding goes into the summary.

    Returns:
        :func:`trade_network_measures`, plus ``exposure_long_share``, ``exposure_crowded_side_holders``
        and ``exposure_crowded_side_hhi`` of ``asset`` when the exposure graph holds it.
    """
    summary = trade_network_measures(trade_graph)
    if exposure_graph is not None:
        crowding: Mapping[str, float] | None = crowding_measures(exposure_graph).get(asset)
        if crowding is not None:
            summary["exposure_long_share"] = crowding["long_share"]
            summary["exposure_crowded_side_holders"] = crowding["crowded_side_holders"]
            summary["exposure_crowded_side_hhi"] = crowding["crowded_side_hhi"]
    return summary
