"""The exposure graph of a run: accounts x assets, and how crowded each asset is.

**Exposure graph** (:func:`build_exposure_graph`): a bipartite accounts-assets graph with networkx's
bipartite convention (node attribute ``bipartite`` 0 for accounts, 1 for assets): one asset node per
instrument, and the measures (:func:`crowding_measures`) per asset.
"""

from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd
from networkx.algorithms import bipartite

from abm.trade_network import herfindahl

__all__ = ["build_exposure_graph", "crowding_measures", "exposures_from_accounts"]

# --------------------------------------------------------------------------- the exposure graph


def exposures_from_accounts(
    accounts: pd.DataFrame, mark: float | None = None, contract_size: float = 1.0, asset: str = "future"
) -> pd.DataFrame:
    """The exposures table from an accounts table (or a snapshot of it).

    Args:
        accounts: Rows with ``account_id``, ``position`` and optionally ``kind``, ``notional`` and
            ``instrument`` (the asset of the row; without it, every row is ``asset``).
        mark: The asset's mark price; None takes the table's own ``notional`` column (as in an
            account snapshot).
        contract_size: Units of underlying per lot.
        asset: The asset's name when the table has no ``instrument`` column.

    Returns:
        Columns ``account_id``, ``kind``, ``asset``, ``position`` (signed lots) and ``notional``
        (``|position| x mark x contract size``), one row per account with a position.

    Raises:
        ValueError: ``mark`` is None and the table has no ``notional`` column.
    """
    held = accounts[accounts["position"].to_numpy() != 0]
    kinds = held["kind"].astype(str).to_numpy() if "kind" in held else np.full(len(held), "unknown")
    position = held["position"].to_numpy(dtype=np.int64)
    if mark is None:
        if "notional" not in held:
            raise ValueError("exposures_from_accounts: no mark given and no 'notional' column")
        notional = np.abs(held["notional"].to_numpy(dtype=float))
    else:
        notional = np.abs(position) * float(mark) * contract_size
    return pd.DataFrame(
        {
            "account_id": held["account_id"].to_numpy(dtype=np.int64),
            "kind": kinds,
            "asset": held["instrument"].astype(str).to_numpy(dtype=object)
            if "instrument" in held
            else np.full(len(held), asset, dtype=object),
            "position": position,
            "notional": notional,
        }
    )


def build_exposure_graph(exposures: pd.DataFrame) -> nx.Graph:
    """Bipartite accounts-assets graph (networkx ``bipartite`` attribute: 0 accounts, 1 assets).

    Account nodes are the integer account ids (attribute ``kind``); asset nodes are the asset names
    (strings, so they never clash with account ids). An edge carries ``position`` (signed lots),
    ``side`` (+1 long, -1 short) and ``notional``.

    Args:
        exposures: Columns ``account_id``, ``asset``, ``position``, ``notional`` and optionally
            ``kind`` (see :func:`exposures_from_accounts`).

    Returns:
        The bipartite graph.
    """
    graph = nx.Graph()
    # Column lists, not itertuples: the rows are added in order, as one call per row would.
    accounts = exposures["account_id"].astype(np.int64).tolist()
    assets = exposures["asset"].astype(str).tolist()
    kinds = exposures["kind"].astype(str).tolist() if "kind" in exposures else ["unknown"] * len(accounts)
    positions = exposures["position"].astype(np.int64).to_numpy()
    sides = np.sign(positions).tolist()
    notionals = exposures["notional"].astype(float).tolist()
    for account, asset, kind, position, side, notional in zip(
        accounts, assets, kinds, positions.tolist(), sides, notionals, strict=True
    ):
        graph.add_node(account, bipartite=0, kind=kind)
        graph.add_node(asset, bipartite=1)
        graph.add_edge(account, asset, position=position, side=side, notional=notional)
    return graph


def crowding_measures(graph: nx.Graph) -> dict[str, dict[str, float]]:
    """How crowded each asset is, from a bipartite exposure graph.

    Args:
        graph: From :func:`build_exposure_graph`.

    Returns:
        Per asset: ``holders`` (accounts exposed), ``long_share`` (long notional over gross notional),
        ``crowded_side`` (+1 when longs hold at least half, else -1), ``crowded_side_holders`` and
        ``crowded_side_hhi`` (Herfindahl index of the holders' shares of the crowded side's notional).
    """
    assets = sorted(node for node, part in graph.nodes(data="bipartite") if part == 1)
    accounts = {node for node, part in graph.nodes(data="bipartite") if part == 0}
    measures: dict[str, dict[str, float]] = {}
    # Each asset's degree in the bipartite graph is its number of holders (networkx bipartite helper).
    holders, _ = bipartite.degrees(graph, accounts) if accounts else ({}, {})
    holders = dict(holders)
    for asset in assets:
        edges = list(graph.edges(asset, data=True))
        notional = np.array([data["notional"] for _, _, data in edges], dtype=float)
        side = np.array([data["side"] for _, _, data in edges], dtype=np.int64)
        gross = float(notional.sum())
        long_share = float(notional[side > 0].sum() / gross) if gross > 0 else 0.0
        crowded = 1 if long_share >= 0.5 else -1
        crowd = notional[side == crowded]
        crowd_total = float(crowd.sum())
        measures[asset] = {
            "holders": int(holders.get(asset, len(edges))),
            "long_share": long_share,
            "crowded_side": crowded,
            "crowded_side_holders": int(len(crowd)),
            "crowded_side_hhi": herfindahl(crowd / crowd_total) if crowd_total > 0 else 0.0,
        }
    return measures
