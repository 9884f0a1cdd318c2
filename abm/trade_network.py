"""The trade network of a run: who traded with whom, and who took the forced flow.

**Trade network** (:func:`build_trade_graph`). Nodes are accounts (attributes ``kind`` and ``group``
from the accounts table; the liquidation engine is account 0, and :data:`ADL_NODE` stands for the
pool of auto-deleveraged positions, whose individual accounts the tables do not record). An edge
``taker -> maker`` aggregates the fills in which ``taker`` hit ``maker``'s resting order: ``notional``
(price x lots x contract size), ``lots`` and ``trades``, and the same three for the forced flow only
(``liquidation_notional``, ...: fills of liquidation orders and of the engine unwinding its
inventory). The part of a liquidation the book could not take is an edge ``account -> 0`` (taken by
the engine at the bankruptcy price) or ``account -> ADL_NODE``, valued at the mark before the
liquidation, with ``backstop_lots`` recording those lots.

Measures: the counterparties of last resort (:func:`liquidation_absorption`: who received the forced
flow, by account and by kind, as shares of its notional), its Herfindahl index
(:func:`herfindahl`, the sum of squared account shares: 1 when one account took everything, ``1/n``
when ``n`` took equal parts), and the centrality of the market makers (:func:`maker_centrality`:
share of all traded notional a maker was a party to, eigenvector centrality on notional, and
betweenness centrality on trading links, each link one hop: who stands between the other accounts).
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

__all__ = [
    "ADL_NODE",
    "BETWEENNESS_MAX_NODES",
    "ENGINE_NODE",
    "absorption_by_kind",
    "build_trade_graph",
    "herfindahl",
    "liquidation_absorption",
    "maker_centrality",
    "trade_network_measures",
]

ENGINE_NODE = 0
ADL_NODE = -1
DENSE_EIGEN_MAX_NODES = 500  # above this, a sparse solver for the eigenvector centrality
EIGENVECTOR_DECIMALS = 9  # eigenvector centralities are rounded to this many decimals
# The makers' betweenness holds a few nodes x nodes arrays (18 MB each at this size); above this many
# traded accounts it is left out (None).
BETWEENNESS_MAX_NODES = 1500

# What the measures derive from one trade network (its undirected traded graph, the absorption table),
# kept per graph object so that the run summary and the report compute them once (0.5 s of a
# 100,000-account run's report). A graph whose nodes or links were added or removed since is measured again;
# a trade network is not otherwise changed once built.
_DERIVED: weakref.WeakKeyDictionary[nx.DiGraph, dict[str, Any]] = weakref.WeakKeyDictionary()


def _derived(graph: nx.DiGraph, name: str, compute: Callable[[nx.DiGraph], Any]) -> Any:
    size = (graph.number_of_nodes(), graph.number_of_edges())
    kept = _DERIVED.get(graph)
    if kept is None or kept["size"] != size:
        kept = _DERIVED[graph] = {"size": size}
    if name not in kept:
        kept[name] = compute(graph)
    return kept[name]


_FLOW_ATTRIBUTES = (
    "notional",
    "lots",
    "trades",
    "liquidation_notional",
    "liquidation_lots",
    "liquidation_trades",
    "backstop_lots",
)


# --------------------------------------------------------------------------- the trade network


def _contract_sizes(frame: pd.DataFrame, contract_size: float | Mapping[str, float]) -> np.ndarray | float:
    """Each row's contract size: one for every row, or by the row's ``instrument``."""
    if not isinstance(contract_size, Mapping):
        return float(contract_size)
    if "instrument" not in frame:
        return float(next(iter(contract_size.values())))
    return frame["instrument"].map(contract_size).to_numpy(dtype=float)


def build_trade_graph(
    trades: pd.DataFrame,
    accounts: pd.DataFrame | None = None,
    liquidations: pd.DataFrame | None = None,
    contract_size: float | Mapping[str, float] = 1.0,
) -> nx.DiGraph:
    """Build the trade network: who traded with whom, weighted by notional (see the module docstring).

    Args:
        trades: The trades table (``TRADE_COLUMNS``: ``price``, ``quantity``, ``taker``, ``maker``,
            ``is_liquidation``).
        accounts: The accounts table; every account becomes a node with its ``kind`` and ``group``
            (accounts that never traded are isolated nodes). Without it, nodes are the accounts in
            the trades and their kind is ``"unknown"`` (the engine's is always known).
        liquidations: The liquidations table; adds the engine backstop and ADL edges for the lots the
            book did not take.
        contract_size: Units of underlying per lot (notional = price x lots x contract size), or one
            per instrument name (rows are matched by their ``instrument``).

    Returns:
        A ``networkx.DiGraph`` with edges ``taker -> maker`` carrying ``notional``, ``lots``,
        ``trades``, ``liquidation_notional``, ``liquidation_lots``, ``liquidation_trades`` and
        ``backstop_lots`` (summed over instruments).
    """
    if isinstance(contract_size, Mapping):
        graph = nx.DiGraph(contract_size=json.dumps(dict(contract_size), sort_keys=True))
    else:
        graph = nx.DiGraph(contract_size=float(contract_size))
    if accounts is not None and len(accounts):
        # One node per account (the accounts table has a row per account and instrument).
        unique = accounts.drop_duplicates("account_id")
        kinds = unique["kind"].astype(str).tolist()
        groups = unique["group"].astype(str).tolist() if "group" in unique else kinds
        graph.add_nodes_from(
            (account, {"kind": kind, "group": group})
            for account, kind, group in zip(
                unique["account_id"].astype(np.int64).tolist(), kinds, groups, strict=True
            )
        )
    flows = _trade_flows(trades, contract_size)
    if liquidations is not None and len(liquidations):
        flows = pd.concat([flows, _backstop_flows(liquidations, contract_size)], ignore_index=True)
    if len(flows):
        totals = flows.groupby(["source", "target"], sort=True)[list(_FLOW_ATTRIBUTES)].sum()
        # Column by column as Python floats (notionals) and ints (counts), then one edge per pair.
        columns = [
            totals[name].astype(float if name.endswith("notional") else np.int64).tolist()
            for name in _FLOW_ATTRIBUTES
        ]
        sources = totals.index.get_level_values("source").astype(np.int64).tolist()
        targets = totals.index.get_level_values("target").astype(np.int64).tolist()
        graph.add_edges_from(
            (source, target, dict(zip(_FLOW_ATTRIBUTES, values, strict=True)))
            for source, target, *values in zip(sources, targets, *columns, strict=True)
        )
    for node, data in graph.nodes(data=True):
        if node == ENGINE_NODE:
            data["kind"] = data.get("kind", "liquidation_engine")
        elif node == ADL_NODE:
            data["kind"] = "auto_deleveraging"
        data.setdefault("kind", "unknown")
        data.setdefault("group", data["kind"])
    return graph


def _trade_flows(trades: pd.DataFrame, contract_size: float | Mapping[str, float]) -> pd.DataFrame:
    if trades is None or len(trades) == 0:
        return pd.DataFrame(columns=["source", "target", *_FLOW_ATTRIBUTES])
    lots = trades["quantity"].to_numpy(dtype=np.int64)
    notional = trades["price"].to_numpy(dtype=float) * lots * _contract_sizes(trades, contract_size)
    forced = trades["is_liquidation"].to_numpy(dtype=bool)
    return pd.DataFrame(
        {
            "source": trades["taker"].to_numpy(dtype=np.int64),
            "target": trades["maker"].to_numpy(dtype=np.int64),
            "notional": notional,
            "lots": lots,
            "trades": np.ones(len(trades), dtype=np.int64),
            "liquidation_notional": np.where(forced, notional, 0.0),
            "liquidation_lots": np.where(forced, lots, 0),
            "liquidation_trades": forced.astype(np.int64),
            "backstop_lots": np.zeros(len(trades), dtype=np.int64),
        }
    )


def _backstop_flows(liquidations: pd.DataFrame, contract_size: float | Mapping[str, float]) -> pd.DataFrame:
    sizes = np.broadcast_to(_contract_sizes(liquidations, contract_size), (len(liquidations),))
    quantity = liquidations["quantity"].to_numpy(dtype=np.int64)
    filled = liquidations["filled_quantity"].to_numpy(dtype=np.int64)
    adl = liquidations["adl_quantity"].to_numpy(dtype=np.int64)
    engine = quantity - filled - adl
    mark = liquidations["mark_before"].to_numpy(dtype=float)
    source = liquidations["account_id"].to_numpy(dtype=np.int64)
    parts = []
    for target, lots in ((ENGINE_NODE, engine), (ADL_NODE, adl)):
        taken = lots > 0
        lots = lots[taken]
        # The bankruptcy price of each transfer is not in the table: the mark before is the best proxy.
        notional = mark[taken] * lots * sizes[taken]
        parts.append(
            pd.DataFrame(
                {
                    "source": source[taken],
                    "target": np.full(int(taken.sum()), target, dtype=np.int64),
                    "notional": notional,
                    "lots": lots,
                    "trades": np.ones(len(lots), dtype=np.int64),
                    "liquidation_notional": notional,
                    "liquidation_lots": lots,
                    "liquidation_trades": np.ones(len(lots), dtype=np.int64),
                    "backstop_lots": lots,
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def liquidation_absorption(graph: nx.DiGraph) -> pd.DataFrame:
    """The counterparties of last resort: who received the forced (liquidation) flow.

    Args:
        graph: A trade network from :func:`build_trade_graph`.

    Returns:
        One row per account that absorbed forced flow, largest first (ties by account id): ``account``,
        ``kind``, ``notional``, ``lots`` and ``share`` (of all forced notional).
    """
    return _derived(graph, "absorption", _absorption).copy()  # a copy: the caller may change it


def _absorption(graph: nx.DiGraph) -> pd.DataFrame:
    absorbed = dict(graph.in_degree(weight="liquidation_notional"))
    lots = dict(graph.in_degree(weight="liquidation_lots"))
    rows = [
        {
            "account": node,
            "kind": graph.nodes[node]["kind"],
            "notional": float(value),
            "lots": int(lots[node]),
        }
        for node, value in absorbed.items()
        if value > 0
    ]
    columns = ["account", "kind", "notional", "lots", "share"]
    if not rows:
        return pd.DataFrame(
            {
                "account": pd.Series(dtype="int64"),
                "kind": pd.Series(dtype=object),
                "notional": pd.Series(dtype="float64"),
                "lots": pd.Series(dtype="int64"),
                "share": pd.Series(dtype="float64"),
            }
        )
    table = pd.DataFrame(rows).sort_values(["notional", "account"], ascending=[False, True])
    table["share"] = table["notional"] / table["notional"].sum()
    return table.reset_index(drop=True)[columns]


def absorption_by_kind(graph: nx.DiGraph, absorption: pd.DataFrame | None = None) -> dict[str, float]:
    """Share of the forced notional each kind of account absorbed (kinds sorted by name).

    ``absorption`` is the graph's :func:`liquidation_absorption`, when the caller has it.
    """
    table = liquidation_absorption(graph) if absorption is None else absorption
    if table.empty:
        return {}
    shares = table.groupby("kind", sort=True)["share"].sum()
    return {str(kind): float(share) for kind, share in shares.items()}


def herfindahl(shares: Iterable[float]) -> float:
    """Herfindahl-Hirschman index of shares: the sum of their squares (0 for no shares).

    Args:
        shares: Shares that sum to 1 (not renormalised).

    Returns:
        A number in ``(0, 1]`` for proper shares.
    """
    values = np.asarray(list(shares), dtype=float)
    return float(np.sum(values**2))


def maker_centrality(
    graph: nx.DiGraph,
    makers: Iterable[int] | None = None,
    betweenness: bool = True,
    *,
    undirected: nx.Graph | None = None,
) -> pd.DataFrame:
    """Centrality of the market makers in the trade network (undirected, weighted by notional).

    Args:
        graph: A trade network from :func:`build_trade_graph`.
        makers: Account ids to report; by default the nodes of kind ``market_maker``.
        betweenness: Compute betweenness (the costly measure: O(nodes x links)); NaN when False.
        undirected: The graph's traded accounts as an undirected graph, when the caller has it.

    Returns:
        One row per maker (sorted by account): ``account``, ``degree_share`` (its notional-weighted
        degree over the total traded notional: the share of all notional it was a party to),
        ``eigenvector`` (eigenvector centrality on notional, unit Euclidean norm, rounded to 9 decimals)
        and ``betweenness`` (normalised, one hop per trading link; NaN above ``BETWEENNESS_MAX_NODES``
        traded nodes).
    """
    if makers is None:
        makers = [node for node, kind in graph.nodes(data="kind") if kind == "market_maker"]
    makers = sorted(int(m) for m in makers if m in graph)
    columns = ["account", "degree_share", "eigenvector", "betweenness"]
    undirected = _traded_undirected(graph) if undirected is None else undirected
    if not makers or nx.is_empty(undirected):
        frame = pd.DataFrame({"account": pd.Series(makers, dtype="int64")})
        for column in columns[1:]:
            frame[column] = 0.0
        return frame
    # Weighted degrees of the makers alone: each is its own sum over its links, as over all nodes.
    degree = dict(undirected.degree([maker for maker in makers if maker in undirected], weight="notional"))
    total = _traded_notional(undirected)
    eigenvector = _eigenvector(undirected)
    between = _betweenness(undirected, makers) if betweenness else None
    rows = [
        {
            "account": maker,
            "degree_share": degree.get(maker, 0.0) / total,
            "eigenvector": eigenvector.get(maker, 0.0),
            "betweenness": between.get(maker, 0.0) if between is not None else float("nan"),
        }
        for maker in makers
    ]
    return pd.DataFrame(rows, columns=columns)


def _traded_undirected(graph: nx.DiGraph) -> nx.Graph:
    """Accounts that traded, one undirected edge per pair with the notional of both directions.

    Made once per trade network (its readers only read it; see ``_derived``).
    """
    return _derived(graph, "traded_undirected", _undirected_of)


def _undirected_of(graph: nx.DiGraph) -> nx.Graph:
    undirected = nx.Graph()
    for source, target, notional in graph.edges(data="notional", default=0.0):
        if source == target or notional <= 0:
            continue
        if undirected.has_edge(source, target):
            undirected[source][target]["notional"] += notional
        else:
            undirected.add_edge(source, target, notional=notional)
    return undirected


def _traded_notional(undirected: nx.Graph) -> float:
    # The notional of every link: a pass over all of them, so kept on the graph for its next reader.
    total = undirected.graph.get("_traded_notional")
    if total is None:
        total = undirected.graph["_traded_notional"] = undirected.size(weight="notional")
    return total


def _eigenvector(undirected: nx.Graph) -> dict[int, float]:
    # The principal eigenvector of the notional matrix, by a symmetric eigen-solver: networkx's
    # pure-Python power iteration needs thousands of sweeps on near-bipartite taker-maker graphs
    # (280 s for 100,000 liquidated accounts). ARPACK starts from a fixed all-ones vector, not a random
    # one, so two runs of the same seed give the same digits. Bipartite graphs have eigenvalues
    # +l and -l: "largest algebraic" picks +l.
    kept = undirected.graph.get("_eigenvector")  # kept like _traded_notional, for the next reader
    if kept is not None:
        return kept
    if nx.is_empty(undirected):
        return {}
    nodes, matrix = _notional_matrix(undirected)
    matrix = matrix / matrix.max()  # the centrality does not depend on the scale
    # One BLAS thread: these matrices are small, and OpenBLAS's extra threads keep spinning after the
    # call; in a sweep with a worker per core they took the other worker's core (2 workers ran 1.2x
    # one worker's runs instead of 1.9x with the compiled book; see docs/performance.md).
    with threadpool_limits(1, user_api="blas"):
        if len(nodes) <= DENSE_EIGEN_MAX_NODES:
            _, vectors = np.linalg.eigh(matrix.toarray())
            vector = vectors[:, -1]
        else:
            from scipy.sparse.linalg import eigsh

            _, vectors = eigsh(matrix, k=1, which="LA", v0=np.ones(len(nodes)), tol=1e-12)
            vector = vectors[:, 0]
    vector = np.abs(vector) / np.linalg.norm(vector)  # Perron vector: one sign; unit Euclidean norm
    # Rounded to 1e-9: LAPACK's last digits can differ between processes (BLAS threads, the alignment of
    # the array in memory; seen between a sweep's workers), and a run must give the same table wherever
    # it runs.
    vector = np.round(vector, EIGENVECTOR_DECIMALS)
    kept = undirected.graph["_eigenvector"] = dict(zip(nodes, vector.tolist(), strict=True))
    return kept


def _notional_matrix(undirected: nx.Graph) -> tuple[list[int], Any]:
    # The nodes and the symmetric CSR matrix of the notional on each link, kept for the next reader.
    kept = undirected.graph.get("_notional_matrix")
    if kept is None:
        nodes = list(undirected)
        matrix = nx.to_scipy_sparse_array(undirected, nodelist=nodes, weight="notional", format="csr")
        kept = undirected.graph["_notional_matrix"] = (nodes, matrix)
    return kept


def _betweenness(undirected: nx.Graph, wanted: Iterable[int]) -> dict[int, float] | None:
    """Normalised betweenness of the ``wanted`` nodes, as ``nx.betweenness_centrality`` gives it.

    Hops, not 1/notional distances: who links whom matters more for intermediation than how much each
    link carried. Every source's breadth-first search at once, a level a step: ``paths[s, t]``
    counts the shortest paths from s to t, and a node v lies on ``paths[s, v] * paths[v, t]`` of
    them when ``dist[s, v] + dist[v, t] == dist[s, t]``; its betweenness sums those shares over the
    ordered pairs of other nodes, over ``(n - 1)(n - 2)``: Brandes's accumulation, every source at
    once. networkx's pass over one source at a time in Python took 0.25 s for a 600-step spiral's 277
    traded accounts and 3.3 s for 1,077; this takes 8 ms and 0.1 s (the same figures to 1e-12,
    tested).

    >>> path = nx.path_graph(4)  # 0 - 1 - 2 - 3: node 1 is on the paths 0-2 and 0-3, both ways
    >>> _betweenness(path, [1]) == {1: 4 / (3 * 2)}
    True
    """
    n = undirected.number_of_nodes()
    if n > BETWEENNESS_MAX_NODES:
        return None
    if n <= 2 or nx.is_empty(undirected):  # no pair of other nodes: networkx leaves these unscaled, at 0
        return {node: 0.0 for node in wanted if node in undirected}
    nodes, notional = _notional_matrix(undirected)
    position = {node: i for i, node in enumerate(nodes)}
    wanted = [node for node in wanted if node in position]
    adjacency = (notional != 0).astype(np.float64)  # one hop a link (every kept link has notional > 0)
    dist = np.full((n, n), -1, dtype=np.int32)
    np.fill_diagonal(dist, 0)
    paths = np.eye(n)
    frontier = np.eye(n)  # the path counts of the nodes at the current distance from each source
    level = 0
    while True:
        level += 1
        reached = np.asarray(adjacency @ frontier.T).T  # paths one hop on, by (source, node); symmetric
        new = (reached > 0) & (dist < 0)
        if not new.any():
            break
        dist[new] = level
        frontier = np.where(new, reached, 0.0)
        paths += frontier
    # Brandes's dependencies, every source at once, from the farthest level in:
    # depends[s, v] = sum over the next nodes w of v on paths from s of paths[s, v] / paths[s, w] x
    # (1 + depends[s, w]); a node's betweenness is its dependencies summed over the sources.
    depends = np.zeros((n, n))
    for hop in range(level - 2, 0, -1):
        onward = np.divide(1.0 + depends, paths, out=np.zeros((n, n)), where=dist == hop + 1)
        back = np.asarray(adjacency @ onward.T).T  # back[s, v]: the sum over v's neighbours w
        depends += np.where(dist == hop, paths * back, 0.0)
    scale = 1.0 / ((n - 1) * (n - 2))
    totals = depends.sum(axis=0)
    return {node: float(totals[position[node]]) * scale for node in wanted}


def trade_network_measures(graph: nx.DiGraph, betweenness: bool = False) -> dict[str, Any]:
    """Scalar measures of a trade network (all keys prefixed for the run summary).

    Args:
        graph: A trade network from :func:`build_trade_graph`.
        betweenness: Add ``maker_betweenness_max``. Off by default: it needs a few (traded accounts)^2
            arrays (0.1 s and 9 MB each at 1,077 accounts), so it is left out of the run summary, whose
            measures stay linear in the accounts; the report shows it per maker.

    Returns:
        ``trade_network_accounts`` (nodes that traded), ``trade_network_links`` (account pairs that
        traded), ``absorption_hhi``, ``absorption_top_account`` and ``absorption_top_share`` (None /
        0 without forced flow), ``absorption_share_<kind>`` for every kind that absorbed something,
        ``maker_notional_share`` (share of all traded notional with a maker on at least one side),
        ``maker_eigenvector_max`` and, when asked for, ``maker_betweenness_max`` (None above
        ``BETWEENNESS_MAX_NODES``).
    """
    undirected = _traded_undirected(graph)
    absorption = liquidation_absorption(graph)
    measures: dict[str, Any] = {
        "trade_network_accounts": undirected.number_of_nodes(),
        "trade_network_links": undirected.number_of_edges(),
        "absorption_hhi": herfindahl(absorption["share"]),
        "absorption_top_account": int(absorption["account"].iloc[0]) if len(absorption) else None,
        "absorption_top_share": float(absorption["share"].iloc[0]) if len(absorption) else 0.0,
    }
    for kind, share in absorption_by_kind(graph, absorption).items():
        measures[f"absorption_share_{kind}"] = share
    makers = maker_centrality(graph, betweenness=betweenness, undirected=undirected)
    has_makers = len(makers) > 0
    maker_set = set(makers["account"].tolist())
    total = _traded_notional(undirected)
    with_maker = sum(
        notional for a, b, notional in undirected.edges(data="notional") if a in maker_set or b in maker_set
    )
    measures["maker_notional_share"] = float(with_maker / total) if total > 0 else 0.0
    measures["maker_eigenvector_max"] = float(makers["eigenvector"].max()) if has_makers else None
    if betweenness:
        largest = makers["betweenness"].max() if has_makers else float("nan")
        measures["maker_betweenness_max"] = float(largest) if np.isfinite(largest) else None
    return measures
