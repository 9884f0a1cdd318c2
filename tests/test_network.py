"""Networks of a run (abm.network) on hand-built tables, every expected figure worked out by hand."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd
import pytest
from networkx.algorithms import bipartite

from abm.network import (
    ADL_NODE,
    ENGINE_NODE,
    absorption_by_kind,
    build_cascade_graph,
    build_exposure_graph,
    build_trade_graph,
    cascade_components,
    cascade_measures,
    cascade_size_distribution,
    cascade_sizes,
    crowding_measures,
    exposures_from_accounts,
    herfindahl,
    liquidation_absorption,
    maker_centrality,
    network_summary,
    trade_network_measures,
)
from abm.results import LIQUIDATION_COLUMNS, TRADE_COLUMNS

# --------------------------------------------------------------------------- the cascade DAG


def liquidation_rows(spec):
    """Liquidations table from (id, step, round, account, notional, parents) tuples."""
    rows = []
    for liquidation_id, step, round_index, account, notional, parents in spec:
        row = dict.fromkeys(LIQUIDATION_COLUMNS, 0)
        row.update(
            liquidation_id=liquidation_id,
            step=step,
            round=round_index,
            account_id=account,
            instrument="X",
            kind="leveraged_trader",
            side=-1,
            quantity=10,
            filled_quantity=10,
            mark_before=100.0,
            notional=notional,
            price_impact=-0.01,
            parents=list(parents),
            full=True,
        )
        rows.append(row)
    return pd.DataFrame(rows, columns=list(LIQUIDATION_COLUMNS))


# Step 10: two round-0 breaches (0, 1); in round 1 liquidation 2 is pushed under by both, 3 by 0 alone;
# in round 2 liquidation 4 by 2 and 3. Step 20: 5 triggers 6. Step 30: 7 alone.
HAND_CASCADE = [
    (0, 10, 0, 11, 100.0, []),
    (1, 10, 0, 12, 200.0, []),
    (2, 10, 1, 13, 300.0, [0, 1]),
    (3, 10, 1, 14, 400.0, [0]),
    (4, 10, 2, 15, 500.0, [2, 3]),
    (5, 20, 0, 16, 600.0, []),
    (6, 20, 1, 17, 700.0, [5]),
    (7, 30, 0, 18, 800.0, []),
]


def test_hand_built_cascade_dag_is_exact():
    graph = build_cascade_graph(liquidation_rows(HAND_CASCADE))
    assert sorted(graph.nodes) == list(range(8))
    assert sorted(graph.edges) == [(0, 2), (0, 3), (1, 2), (2, 4), (3, 4), (5, 6)]
    assert nx.is_directed_acyclic_graph(graph)
    assert graph.nodes[4] == {
        "account": 15,
        "instrument": "X",
        "step": 10,
        "round": 2,
        "notional": 500.0,
        "price_impact": -0.01,
        "side": -1,
    }


def test_hand_built_cascade_measures():
    graph = build_cascade_graph(liquidation_rows(HAND_CASCADE))
    measures = cascade_measures(graph)
    # Components {0..4}, {5, 6}, {7}; longest chain 0 -> 2 -> 4 (or 1 -> 2 -> 4, 0 -> 3 -> 4): 2 links.
    assert measures["cascades"] == 3
    assert measures["largest_cascade"] == 5
    assert measures["largest_cascade_depth"] == 2
    assert measures["cascade_depth"] == 2
    # Triggered (with a parent): 2, 3, 4, 6 -> 4 of 8 liquidations.
    assert measures["branching_ratio"] == pytest.approx(4 / 8)
    assert measures["mean_cascade_size"] == pytest.approx(8 / 3)
    assert cascade_sizes(graph) == [5, 2, 1]
    assert cascade_size_distribution(graph) == {1: 1, 2: 1, 5: 1}


def test_cascade_components_table():
    table = cascade_components(build_cascade_graph(liquidation_rows(HAND_CASCADE)))
    assert table["size"].tolist() == [5, 2, 1]
    assert table["depth"].tolist() == [2, 1, 0]
    assert table["roots"].tolist() == [2, 1, 1]
    assert table["step"].tolist() == [10, 20, 30]
    assert table["notional"].tolist() == [100.0 + 200 + 300 + 400 + 500, 600.0 + 700, 800.0]


def test_branching_ratio_in_a_forest_matches_mean_cascade_size():
    # A chain of 3 and two singles: m = 2 / 5; in a forest mean size = 1 / (1 - m) = 5 / 3.
    graph = build_cascade_graph(
        liquidation_rows(
            [(0, 1, 0, 1, 1.0, []), (1, 1, 1, 2, 1.0, [0]), (2, 1, 2, 3, 1.0, [1]), (3, 2, 0, 4, 1.0, [])]
            + [(4, 3, 0, 5, 1.0, [])]
        )
    )
    measures = cascade_measures(graph)
    assert measures["branching_ratio"] == pytest.approx(2 / 5)
    assert measures["mean_cascade_size"] == pytest.approx(1 / (1 - 2 / 5))
    assert measures["cascade_depth"] == 2


def test_empty_cascade():
    graph = build_cascade_graph(liquidation_rows([]))
    assert graph.number_of_nodes() == 0
    assert cascade_measures(graph)["cascades"] == 0
    assert cascade_size_distribution(graph) == {}
    assert cascade_components(graph).empty
    assert network_summary(graph) == {
        "largest_cascade_depth": 0,
        "mean_cascade_size": 0.0,
        "single_liquidation_cascades": 0,
        "cross_instrument_edge_share": 0.0,
    }


def test_network_summary_has_only_scalars():
    summary = network_summary(build_cascade_graph(liquidation_rows(HAND_CASCADE)))
    assert summary == {
        "largest_cascade_depth": 2,
        "mean_cascade_size": 8 / 3,
        "single_liquidation_cascades": 1,
        "cross_instrument_edge_share": 0.0,
    }


# --------------------------------------------------------------------------- the trade network

CONTRACT_SIZE = 0.5
ACCOUNTS = pd.DataFrame(
    {
        "account_id": [0, 1, 2, 3, 4, 5],
        "kind": [
            "liquidation_engine",
            "market_maker",
            "market_maker",
            "leveraged_trader",
            "leveraged_trader",
            "noise",
        ],
        "group": ["liquidation_engine", "makers", "makers", "longs", "longs", "noise"],
    }
)
# (step, instrument, round, price, lots, taker, maker, taker side, forced)
TRADES = pd.DataFrame(
    [
        (0, "X", -1, 100.0, 10, 5, 1, 1, False),  # noise buys from maker 1: 10 x 100 x 0.5 = 500
        (1, "X", 0, 99.0, 4, 3, 1, -1, True),  # liquidation of 3 into maker 1: 198
        (1, "X", 0, 98.0, 6, 3, 2, -1, True),  # ... and maker 2: 294
        (1, "X", 1, 97.0, 5, 4, 5, -1, True),  # liquidation of 4 into the noise trader's bid: 242.5
        (2, "X", 0, 96.0, 2, 0, 2, -1, True),  # the engine unwinds into maker 2: 96
    ],
    columns=list(TRADE_COLUMNS),
)


def trade_liquidations():
    # Account 4: 8 lots, 5 filled in the book, 1 auto-deleveraged, so the engine took 2 (mark 97.5):
    # engine edge 2 x 97.5 x 0.5 = 97.5, ADL edge 1 x 97.5 x 0.5 = 48.75.
    frame = liquidation_rows([(0, 1, 0, 3, 490.0, []), (1, 1, 1, 4, 390.0, [0])])
    frame["quantity"] = [10, 8]
    frame["filled_quantity"] = [10, 5]
    frame["adl_quantity"] = [0, 1]
    frame["mark_before"] = [99.0, 97.5]
    return frame


def hand_trade_graph():
    return build_trade_graph(TRADES, ACCOUNTS, trade_liquidations(), contract_size=CONTRACT_SIZE)


def test_trade_graph_nodes_edges_and_weights():
    graph = hand_trade_graph()
    assert sorted(graph.nodes) == [ADL_NODE, 0, 1, 2, 3, 4, 5]
    assert graph.nodes[1]["kind"] == "market_maker" and graph.nodes[3]["group"] == "longs"
    assert graph.nodes[ENGINE_NODE]["kind"] == "liquidation_engine"
    assert graph.nodes[ADL_NODE]["kind"] == "auto_deleveraging"
    assert sorted(graph.edges) == [(0, 2), (3, 1), (3, 2), (4, ADL_NODE), (4, 0), (4, 5), (5, 1)]
    assert graph[5][1] == {
        "notional": 500.0,
        "lots": 10,
        "trades": 1,
        "liquidation_notional": 0.0,
        "liquidation_lots": 0,
        "liquidation_trades": 0,
        "backstop_lots": 0,
    }
    assert graph[3][2]["liquidation_notional"] == pytest.approx(294.0)
    assert graph[4][0]["backstop_lots"] == 2 and graph[4][0]["notional"] == pytest.approx(97.5)
    assert graph[4][ADL_NODE]["liquidation_lots"] == 1 and graph[4][ADL_NODE]["notional"] == pytest.approx(
        48.75
    )


def test_repeated_pairs_are_aggregated():
    doubled = pd.concat([TRADES, TRADES], ignore_index=True)
    graph = build_trade_graph(doubled, ACCOUNTS, contract_size=CONTRACT_SIZE)
    assert graph[5][1]["trades"] == 2 and graph[5][1]["lots"] == 20
    assert graph[5][1]["notional"] == pytest.approx(1000.0)


def test_counterparties_of_last_resort_and_herfindahl():
    graph = hand_trade_graph()
    absorbed = {2: 294.0 + 96.0, 5: 242.5, 1: 198.0, 0: 97.5, ADL_NODE: 48.75}
    total = sum(absorbed.values())
    table = liquidation_absorption(graph)
    assert table["account"].tolist() == [2, 5, 1, 0, ADL_NODE]
    assert table["notional"].tolist() == pytest.approx(list(absorbed.values()))
    assert table["lots"].tolist() == [8, 5, 4, 2, 1]
    shares = np.array(list(absorbed.values())) / total
    assert table["share"].to_numpy() == pytest.approx(shares)
    assert absorption_by_kind(graph) == pytest.approx(
        {
            "auto_deleveraging": 48.75 / total,
            "liquidation_engine": 97.5 / total,
            "market_maker": (390.0 + 198.0) / total,
            "noise": 242.5 / total,
        }
    )
    measures = trade_network_measures(graph)
    assert measures["absorption_hhi"] == pytest.approx(float(np.sum(shares**2)))
    assert measures["absorption_top_account"] == 2
    assert measures["absorption_top_share"] == pytest.approx(390.0 / total)


def test_herfindahl_bounds():
    assert herfindahl([1.0]) == 1.0
    assert herfindahl([0.25] * 4) == pytest.approx(0.25)
    assert herfindahl([]) == 0.0


def test_maker_centrality_by_hand():
    graph = hand_trade_graph()
    table = maker_centrality(graph)
    assert table["account"].tolist() == [1, 2]
    # All traded notional, backstop transfers included: 500 + 198 + 294 + 242.5 + 96 + 97.5 + 48.75.
    total = 1476.75
    assert table["degree_share"].tolist() == pytest.approx([(500.0 + 198.0) / total, (294.0 + 96.0) / total])
    # Links form the 6-cycle 5-1-3-2-0-4-5 with the ADL pool hanging off 4. Shortest paths through
    # maker 1: (5,3) only path; (5,2), (4,3) and (ADL,3) one of two each: 1 + 3/2 = 2.5 of the
    # (7-1)(7-2)/2 = 15 pairs.
    assert table["betweenness"].iloc[0] == pytest.approx(2.5 / 15)
    # Maker 2 likewise: (3,0) only path; (1,0), (3,4) and (ADL,3) one of two each.
    assert table["betweenness"].iloc[1] == pytest.approx(2.5 / 15)
    assert "maker_betweenness_max" not in trade_network_measures(graph)  # off by default: costly
    assert trade_network_measures(graph, betweenness=True)["maker_betweenness_max"] == pytest.approx(2.5 / 15)
    assert maker_centrality(graph, betweenness=False)["betweenness"].isna().all()
    # Eigenvector centrality, independently: the principal eigenvector of the notional matrix.
    nodes = [ADL_NODE, 0, 1, 2, 3, 4, 5]
    links = {(5, 1): 500.0, (3, 1): 198.0, (3, 2): 294.0, (4, 5): 242.5, (0, 2): 96.0, (4, 0): 97.5}
    links[(4, ADL_NODE)] = 48.75
    matrix = np.zeros((7, 7))
    for (a, b), notional in links.items():
        matrix[nodes.index(a), nodes.index(b)] = matrix[nodes.index(b), nodes.index(a)] = notional
    values, vectors = np.linalg.eigh(matrix)
    principal = np.abs(vectors[:, np.argmax(values)])
    expected = [principal[nodes.index(1)], principal[nodes.index(2)]]
    assert table["eigenvector"].tolist() == pytest.approx(expected, abs=1e-6)
    measures = trade_network_measures(graph)
    assert measures["maker_notional_share"] == pytest.approx((500.0 + 198.0 + 294.0 + 96.0) / total)
    assert measures["trade_network_accounts"] == 7 and measures["trade_network_links"] == 7


@pytest.mark.parametrize("seed", range(12))
def test_maker_betweenness_is_networkx_betweenness(seed):
    # The makers' betweenness (all sources' searches at once, in arrays) against networkx's own
    # Brandes pass, on random trading links: sparse and dense, with components apart, self-trades and
    # zero-notional links (which are no link), and every node asked for, traded or not.
    rng = np.random.default_rng(seed)
    count = int(rng.integers(3, 60))
    links = nx.gnp_random_graph(count, float(rng.uniform(0.03, 0.4)), seed=seed, directed=True)
    graph = nx.DiGraph()
    graph.add_nodes_from(range(count + 3))  # the last three: never traded
    for taker, maker in links.edges:
        graph.add_edge(taker, maker, notional=float(rng.choice([0.0, 1.0, 250.0])))
    graph.add_edge(1, 1, notional=10.0)
    traded = nx.Graph()
    traded.add_edges_from((a, b) for a, b, value in graph.edges(data="notional") if a != b and value > 0)
    expected = nx.betweenness_centrality(traded, normalized=True)
    table = maker_centrality(graph, makers=list(graph))
    got = dict(zip(table["account"], table["betweenness"], strict=True))
    assert {node: got[node] for node in expected} == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert all(got[node] == 0.0 for node in got if node not in expected)


def test_maker_betweenness_is_left_out_above_its_size_limit():
    # One maker trading with BETWEENNESS_MAX_NODES others: one node too many for the arrays.
    from abm.network import BETWEENNESS_MAX_NODES

    graph = nx.DiGraph()
    graph.add_node(0, kind="market_maker")
    graph.add_edges_from(((taker, 0) for taker in range(1, BETWEENNESS_MAX_NODES + 1)), notional=1.0)
    assert maker_centrality(graph)["betweenness"].isna().all()
    graph.remove_node(BETWEENNESS_MAX_NODES)  # now at the limit: the hub is on every pair's path
    assert maker_centrality(graph)["betweenness"].tolist() == pytest.approx([1.0])


def test_a_trade_network_is_measured_once_and_again_when_it_changes(monkeypatch):
    import abm.trade_network

    made = []
    original = abm.trade_network._undirected_of
    monkeypatch.setattr(abm.trade_network, "_undirected_of", lambda graph: made.append(1) or original(graph))
    graph = hand_trade_graph()
    first = maker_centrality(graph)
    trade_network_measures(graph)  # the summary's measures, then the report's table: one undirected graph
    assert maker_centrality(graph).equals(first) and len(made) == 1
    table = liquidation_absorption(graph)
    table.loc[0, "notional"] = -1.0  # a caller's change to its copy does not reach the next caller
    assert liquidation_absorption(graph)["notional"].iloc[0] == pytest.approx(294.0 + 96.0)
    # A new link (maker 1 sells 10 lots to account 4 at 100: notional 1,000 more in the total of
    # 1,476.75 worked out above) is measured afresh.
    graph.add_edge(1, 4, notional=1000.0, lots=10, liquidation_notional=0.0, liquidation_lots=0)
    again = maker_centrality(graph)
    assert len(made) == 2
    assert again["degree_share"].iloc[0] == pytest.approx((500.0 + 198.0 + 1000.0) / 2476.75)


def test_trade_graph_without_liquidations_or_trades():
    graph = build_trade_graph(TRADES.iloc[:0], ACCOUNTS)
    assert sorted(graph.nodes) == [0, 1, 2, 3, 4, 5] and graph.number_of_edges() == 0
    measures = trade_network_measures(graph)
    assert measures["absorption_hhi"] == 0.0 and measures["absorption_top_account"] is None
    assert liquidation_absorption(graph).empty


# --------------------------------------------------------------------------- the exposure graph


def test_bipartite_exposure_graph_and_crowding():
    accounts = pd.DataFrame(
        {"account_id": [0, 1, 2, 3, 4], "kind": ["e", "t", "t", "t", "t"], "position": [0, 10, -4, 6, 0]}
    )
    exposures = exposures_from_accounts(accounts, mark=50.0, contract_size=2.0)
    assert exposures["account_id"].tolist() == [1, 2, 3]
    assert exposures["notional"].tolist() == [1000.0, 400.0, 600.0]
    graph = build_exposure_graph(exposures)
    assert bipartite.is_bipartite(graph)
    assert {n for n, part in graph.nodes(data="bipartite") if part == 1} == {"future"}
    assert graph[2]["future"] == {"position": -4, "side": -1, "notional": 400.0}
    crowding = crowding_measures(graph)["future"]
    # Long 16 lots against short 4: long share 0.8; the longs' shares 10/16 and 6/16.
    assert crowding["holders"] == 3
    assert crowding["long_share"] == pytest.approx(0.8)
    assert crowding["crowded_side"] == 1 and crowding["crowded_side_holders"] == 2
    assert crowding["crowded_side_hhi"] == pytest.approx((10 / 16) ** 2 + (6 / 16) ** 2)


def test_exposure_graph_holds_several_assets():
    exposures = pd.DataFrame(
        {
            "account_id": [1, 1, 2],
            "asset": ["BTC", "ETH", "ETH"],
            "position": [5, -3, -1],
            "notional": [10.0, 6.0, 2.0],
        }
    )
    graph = build_exposure_graph(exposures)
    crowding = crowding_measures(graph)
    assert sorted(crowding) == ["BTC", "ETH"]
    assert crowding["ETH"]["crowded_side"] == -1 and crowding["ETH"]["holders"] == 2
    assert crowding["ETH"]["crowded_side_hhi"] == pytest.approx(0.75**2 + 0.25**2)


def test_exposures_from_a_snapshot_use_its_notional():
    snapshot = pd.DataFrame(
        {"account_id": [1, 2], "kind": ["t", "t"], "position": [3, 0], "notional": [7.0, 0.0]}
    )
    assert exposures_from_accounts(snapshot)["notional"].tolist() == [7.0]
    with pytest.raises(ValueError, match="notional"):
        exposures_from_accounts(snapshot.drop(columns="notional"))


# --------------------------------------------------------------------------- a real run


@pytest.fixture(scope="module")
def spiral_run():
    from abm.config import load_scenario, resolve_scenario
    from abm.runs import run_scenario

    return run_scenario(load_scenario(resolve_scenario("spiral")), seed=7)


def test_real_cascade_follows_the_attribution_rule(spiral_run):
    graph = spiral_run.cascade
    assert graph.number_of_edges() > 0
    for parent, child in graph.edges:
        a, b = graph.nodes[parent], graph.nodes[child]
        # Same step, the round before, and the parent's order went the way that hurts the child.
        assert a["step"] == b["step"] and a["round"] == b["round"] - 1
        assert a["side"] == b["side"]
    triggered = sum(1 for n in graph if graph.in_degree(n) > 0)
    assert spiral_run.summary["branching_ratio"] == pytest.approx(triggered / graph.number_of_nodes())


def test_real_run_summary_and_trade_graph(spiral_run):
    summary = spiral_run.summary
    graph = spiral_run.extra["trade_graph"]
    liquidations = spiral_run.liquidations
    # Forced notional: the book fills of liquidation orders and engine unwinds, plus the backstop.
    forced = spiral_run.trades[spiral_run.trades["is_liquidation"]]
    contract_size = spiral_run.scenario.market.contract_size
    backstop = liquidations["quantity"] - liquidations["filled_quantity"]
    expected = (forced["price"] * forced["quantity"]).sum() * contract_size + (
        backstop * liquidations["mark_before"]
    ).sum() * contract_size
    assert liquidation_absorption(graph)["notional"].sum() == pytest.approx(expected)
    for key in ("absorption_hhi", "maker_notional_share", "largest_cascade_depth", "exposure_long_share"):
        assert key in summary
    # Scalars only, but for the list of instruments, by_group (per trader group) and by_instrument
    # (with several).
    assert summary["instruments"] == ["PERP"] and "by_instrument" not in summary
    nested = {"instruments", "by_group"}
    assert all(not isinstance(value, dict | list) for key, value in summary.items() if key not in nested)
    assert all(
        not isinstance(v, dict | list) for group in summary["by_group"].values() for v in group.values()
    )
    assert 0.0 < summary["absorption_hhi"] <= 1.0


def test_attribution_rule_on_a_hand_built_book():
    """Only same-step, previous-round orders that went against the account become its parents."""
    from abm.book import BUY, SELL
    from abm.exchange import Exchange

    exchange = Exchange.single(initial=0.10, maintenance=0.05, insurance_fund=0.0)
    book, ledger = exchange.book, exchange.ledger
    maker = int(ledger.add_accounts(1, 1e6, "market_maker")[0])
    counterparty = int(ledger.add_accounts(1, 1e6, "counterparty")[0])
    ledger.set_checked(counterparty, False)
    cash = np.array([40.0, 52.0, 20.0])
    long_a, long_b, short_s = ledger.add_accounts(3, cash, "leveraged_trader").tolist()
    ledger.open_position(long_a, 0, 10, 100.0, counterparty)
    ledger.open_position(long_b, 0, 10, 100.0, counterparty)
    ledger.open_position(short_s, 0, -5, 100.0, counterparty)
    for price in (99, 98, 97, 96):
        book.submit_limit(maker, BUY, price, 10)
    for price in (101, 102, 103):
        book.submit_limit(maker, SELL, price, 10)

    # Round 0 at mid 100: A (equity 40 < 50) and S (20 < 0.05 x 5 x 100 = 25) breach; B has 52 > 50.
    # A sells 10 @99, S buys 5 @101: mid (98 + 101) / 2 = 99.5, so B has 52 - 5 = 47 < 49.75 in round 1.
    # B's parent is A's sell; S's buy went B's way and is not a parent.
    exchange.liquidator.run(4, exchange.marks_from_books())
    records = {r["account_id"]: r for r in exchange.liquidator.liquidations}
    assert sorted(records) == sorted([long_a, long_b, short_s])
    assert records[long_a]["round"] == 0 and records[short_s]["round"] == 0
    assert records[long_b]["round"] == 1
    assert records[long_b]["parents"] == [records[long_a]["liquidation_id"]]
    records_frame = pd.DataFrame(exchange.liquidator.liquidations, columns=list(LIQUIDATION_COLUMNS))
    graph = build_cascade_graph(records_frame)
    assert sorted(graph.edges) == [(records[long_a]["liquidation_id"], records[long_b]["liquidation_id"])]
    assert cascade_sizes(graph) == [2, 1]
    assert cascade_measures(graph)["branching_ratio"] == pytest.approx(1 / 3)


def test_eigenvector_of_a_large_graph_uses_the_sparse_solver_and_agrees_with_a_dense_one():
    # 3 makers, 900 takers: above DENSE_EIGEN_MAX_NODES, so ARPACK answers; checked against numpy's
    # dense solver on the same matrix, and twice for identical digits (fixed start vector).
    from abm.trade_network import DENSE_EIGEN_MAX_NODES, _eigenvector

    rng = np.random.default_rng(3)
    graph = nx.Graph()
    for taker in range(3, 903):
        for maker in rng.choice(3, size=2, replace=False).tolist():
            graph.add_edge(taker, maker, notional=float(rng.uniform(1.0, 100.0)))
    assert graph.number_of_nodes() > DENSE_EIGEN_MAX_NODES
    nodes = list(graph)
    matrix = nx.to_numpy_array(graph, nodelist=nodes, weight="notional")
    values, vectors = np.linalg.eigh(matrix)
    expected = np.abs(vectors[:, np.argmax(values)])
    first, second = _eigenvector(graph), _eigenvector(graph)
    assert [first[node] for node in nodes] == pytest.approx(expected.tolist(), abs=1e-9)
    assert first == second


def test_eigenvector_solves_with_one_blas_thread(monkeypatch):
    # OpenBLAS's idle threads spin after a call and took the other sweep worker's core: the solver
    # must run with one BLAS thread, and the caller's setting must be back afterwards.
    from threadpoolctl import threadpool_info

    import abm.trade_network as network

    def blas_threads():
        return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]

    seen = []
    solver = np.linalg.eigh

    def recording_eigh(matrix):
        seen.append(blas_threads())
        return solver(matrix)

    monkeypatch.setattr(network.np.linalg, "eigh", recording_eigh)
    before = blas_threads()
    graph = nx.Graph()
    graph.add_edge(1, 2, notional=2.0)
    graph.add_edge(2, 3, notional=1.0)
    assert network._eigenvector(graph)[2] > network._eigenvector(graph)[1]
    assert seen and all(threads == [1] * len(before) for threads in seen)
    assert blas_threads() == before


def test_cascade_depth_equals_networkx_longest_path_on_random_dags():
    rng = np.random.default_rng(11)
    for _ in range(20):
        graph = nx.DiGraph()
        graph.add_nodes_from(range(40))
        for child in range(1, 40):
            for parent in rng.choice(child, size=min(child, int(rng.integers(0, 3))), replace=False).tolist():
                if rng.random() < 0.5:
                    graph.add_edge(parent, child)
        components = cascade_components(graph)
        for nodes in nx.weakly_connected_components(graph):
            row = components[components["first_node"] == min(nodes)].iloc[0]
            assert row["depth"] == nx.dag_longest_path_length(graph.subgraph(nodes))
        assert cascade_measures(graph)["cascade_depth"] == nx.dag_longest_path_length(graph)
