"""The liquidation cascade read straight from the liquidations table, in arrays.

What a run's summary and report need of the cascade (its components, their sizes and depths, the
branching ratio, the cross-instrument share of its edges) without building the networkx DAG of
:func:`abm.network.build_cascade_graph`: at 100,000 liquidations building that graph and measuring it
took several seconds; here it is a sparse-graph component labelling (:mod:`scipy.sparse.csgraph`) and
one pass over the edges. Every function gives what its graph counterpart in :mod:`abm.network` gives
on the graph of the same table (``tests/test_cascades.py`` checks them against each other), so the
graph remains the reference and the place to go for anything else.

>>> import pandas as pd
>>> table = pd.DataFrame({"liquidation_id": [1, 2, 3, 4], "account_id": [7, 8, 9, 7],
...     "instrument": "A", "step": [5, 5, 5, 9], "round": [0, 1, 2, 0],
...     "notional": [10.0, 20.0, 30.0, 5.0], "price_impact": 0.0, "side": 1,
...     "parents": [[], [1], [2], []]})
>>> cascade = TableCascade(table)
>>> cascade.measures()["cascades"], cascade.measures()["cascade_depth"]
(2, 2)
>>> components = cascade.components()
>>> components["size"].tolist(), components["depth"].tolist(), components["notional"].tolist()
([3, 1], [2, 0], [60.0, 5.0])
"""

from __future__ import annotations

from itertools import chain
from typing import Any

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

__all__ = ["COMPONENT_COLUMNS", "TableCascade", "empty_components", "measures_of"]

COMPONENT_COLUMNS = ["cascade", "size", "depth", "roots", "first_node", "step", "notional"]


def empty_components() -> pd.DataFrame:
    """The components table of a cascade without liquidations (its columns and dtypes)."""
    frame = pd.DataFrame({column: pd.Series(dtype="int64") for column in COMPONENT_COLUMNS})
    return frame.astype({"notional": "float64"})


def measures_of(components: pd.DataFrame, nodes: int, triggered: int) -> dict[str, float]:
    """The headline cascade measures, from the components table and two counts.

    ``nodes`` is the number of liquidations, ``triggered`` those with a parent; all 0 without nodes.
    What :func:`abm.network.cascade_measures` and :meth:`TableCascade.measures` both return.
    """
    if nodes == 0:
        return {
            "cascades": 0,
            "largest_cascade": 0,
            "largest_cascade_depth": 0,
            "cascade_depth": 0,
            "branching_ratio": 0.0,
            "mean_cascade_size": 0.0,
        }
    return {
        "cascades": len(components),
        "largest_cascade": int(components["size"].iloc[0]),
        "largest_cascade_depth": int(components["depth"].iloc[0]),
        "cascade_depth": int(components["depth"].max()),
        "branching_ratio": triggered / nodes,
        "mean_cascade_size": nodes / len(components),
    }


class TableCascade:
    """The cascade DAG of a liquidations table as arrays: nodes, edges, components and depths.

    Nodes are the liquidation ids (and any parent id the table names without a row of its own, as
    the graph would add it); an edge goes from each id in a row's ``parents`` to the row's
    ``liquidation_id``, a repeated edge counted once.
    """

    def __init__(self, liquidations: pd.DataFrame) -> None:
        ids = liquidations["liquidation_id"].to_numpy(dtype=np.int64)
        parent_lists = liquidations["parents"].tolist() if len(liquidations) else []
        counts = np.fromiter((len(parents) for parents in parent_lists), dtype=np.int64, count=len(ids))
        parent_ids = np.fromiter(chain.from_iterable(parent_lists), dtype=np.int64, count=int(counts.sum()))
        child_ids = np.repeat(ids, counts)
        self.nodes = np.union1d(ids, parent_ids)
        n = len(self.nodes)
        parent = np.searchsorted(self.nodes, parent_ids)
        child = np.searchsorted(self.nodes, child_ids)
        if len(parent):  # a repeated edge is one edge of the DAG
            unique = np.unique(child * n + parent)
            child, parent = unique // n, unique % n
        self.parent, self.child = parent, child
        self.edges = len(parent)
        self.in_degree = np.bincount(child, minlength=n)
        # The rows' attributes per node (a node without a row: step -1, notional 0, no instrument).
        row = np.full(n, -1, dtype=np.int64)
        row[np.searchsorted(self.nodes, ids)] = np.arange(len(ids))
        has_row = row >= 0
        self.has_row = has_row
        self.step = np.full(n, -1, dtype=np.int64)
        self.round = np.zeros(n, dtype=np.int64)
        self.account = self.nodes.copy()  # a node without a row: its own id, as the figure shows it
        self.notional = np.zeros(n)
        self.instrument = np.full(n, None, dtype=object)
        if len(ids):
            self.step[has_row] = liquidations["step"].to_numpy(dtype=np.int64)[row[has_row]]
            self.round[has_row] = liquidations["round"].to_numpy(dtype=np.int64)[row[has_row]]
            self.account[has_row] = liquidations["account_id"].to_numpy(dtype=np.int64)[row[has_row]]
            self.notional[has_row] = liquidations["notional"].to_numpy(dtype=np.float64)[row[has_row]]
            if "instrument" in liquidations:
                instruments = liquidations["instrument"].astype(str).to_numpy(dtype=object)
            else:
                instruments = np.full(len(ids), "", dtype=object)
            self.instrument[has_row] = instruments[row[has_row]]
        self.depth = self._depths()
        if n:
            adjacency = coo_matrix((np.ones(self.edges, dtype=np.int8), (parent, child)), shape=(n, n))
            self.count, self.label = connected_components(adjacency, directed=True, connection="weak")
        else:
            self.count, self.label = 0, np.zeros(0, dtype=np.int32)

    def _depths(self) -> np.ndarray:
        # The longest path ending at each node, in edges. A parent is always an earlier liquidation
        # (a smaller id), so with the edges in child order one pass finds every node's final depth
        # before any edge leaves it.
        depth = [0] * len(self.nodes)
        if not self.edges:
            return np.asarray(depth, dtype=np.int64)
        if not (self.parent < self.child).all():
            return self._depths_in_topological_order()
        for parent, child in zip(self.parent.tolist(), self.child.tolist(), strict=True):
            reach = depth[parent] + 1
            if reach > depth[child]:
                depth[child] = reach
        return np.asarray(depth, dtype=np.int64)

    def _depths_in_topological_order(self) -> np.ndarray:
        # A table whose ids are not in cause order (hand-made): networkx's topological sort.
        import networkx as nx

        graph = nx.DiGraph()
        graph.add_nodes_from(range(len(self.nodes)))
        graph.add_edges_from(zip(self.parent.tolist(), self.child.tolist(), strict=True))
        depth = np.zeros(len(self.nodes), dtype=np.int64)
        for node in nx.topological_sort(graph):
            for parent in graph.predecessors(node):
                depth[node] = max(depth[node], depth[parent] + 1)
        return depth

    def components(self) -> pd.DataFrame:
        """One row per cascade, largest first: :func:`abm.network.cascade_components` of the graph."""
        if self.count == 0:
            return empty_components()
        label = self.label
        size = np.bincount(label, minlength=self.count)
        depth = np.zeros(self.count, dtype=np.int64)
        np.maximum.at(depth, label, self.depth)
        roots = np.bincount(label, weights=self.in_degree == 0, minlength=self.count).astype(np.int64)
        # The nodes are sorted, so each component's first node is where its label first appears.
        _, first = np.unique(label, return_index=True)
        notional = np.zeros(self.count)
        np.add.at(notional, label, self.notional)
        table = pd.DataFrame(
            {
                "size": size.astype(np.int64),
                "depth": depth,
                "roots": roots,
                "first_node": self.nodes[first],
                "step": self.step[first],
                "notional": notional,
            }
        )
        table = table.sort_values(["size", "first_node"], ascending=[False, True], kind="stable")
        table.insert(0, "cascade", np.arange(len(table), dtype=np.int64))
        return table.reset_index(drop=True)[COMPONENT_COLUMNS]

    def measures(self, components: pd.DataFrame | None = None) -> dict[str, float]:
        """:func:`abm.network.cascade_measures` of the graph (``components`` when already made)."""
        components = self.components() if components is None else components
        return measures_of(components, len(self.nodes), int((self.in_degree > 0).sum()))

    def summary(self, components: pd.DataFrame | None = None) -> dict[str, Any]:
        """:func:`abm.network.network_summary` of the graph."""
        components = self.components() if components is None else components
        measures = self.measures(components)
        crossing = self.instrument[self.parent] != self.instrument[self.child]
        return {
            "largest_cascade_depth": int(measures["largest_cascade_depth"]),
            "mean_cascade_size": float(measures["mean_cascade_size"]),
            "single_liquidation_cascades": int((components["size"] == 1).sum()),
            "cross_instrument_edge_share": float(crossing.sum()) / self.edges if self.edges else 0.0,
        }
