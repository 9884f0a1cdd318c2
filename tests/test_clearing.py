"""Hand-built clearing cases: settlement, the liquidation waterfall and cascade attribution.

Every expected figure below is worked out by hand in the comments (contract size 1, tick 1.0, so
book prices in ticks are prices).
"""

import numpy as np
import pytest
from clearing_helpers import make_clearing

from abm.book import BUY, SELL
from abm.clearing import ENGINE
from abm.network import build_cascade_graph, cascade_measures


def mid_mark(book, clearing, fallback=100.0):
    def mark():
        mid = book.mid()
        if mid is not None:
            return mid
        return float(book.last_price) if book.last_price is not None else fallback

    return mark


def test_settlement_realises_pnl_and_keeps_entry():
    book, clearing = make_clearing()
    a, b = clearing.add_accounts(2, 1000.0, "noise").tolist()
    clearing._trade(a, b, 10, 100.0)  # a long 10 @100, b short 10 @100
    clearing._trade(b, a, 4, 110.0)  # a sells 4 @110: realises 4 x 10 = 40; b loses 40
    assert clearing.position[a] == 6 and clearing.position[b] == -6
    assert clearing.entry_price[a] == 100.0
    assert clearing.collateral[a] == pytest.approx(1040.0)
    assert clearing.collateral[b] == pytest.approx(960.0)
    clearing._trade(b, a, 10, 90.0)  # a sells 10 @90: closes 6 (-60), opens short 4 @90
    assert clearing.position[a] == -4 and clearing.entry_price[a] == 90.0
    assert clearing.collateral[a] == pytest.approx(980.0)
    clearing.check_invariants(0, 95.0)


def test_bankruptcy_price_of_a_long_and_a_short():
    _, clearing = make_clearing()
    a, b = clearing.add_accounts(2, 50.0, "noise").tolist()
    clearing._trade(a, b, 10, 100.0)
    assert clearing.bankruptcy_price(a) == pytest.approx(95.0)  # 100 - 50 / 10
    assert clearing.bankruptcy_price(b) == pytest.approx(105.0)  # 100 - 50 / -10


def build_cascade_case():
    """Three longs whose liquidation prices sit one bid level apart; one safe long."""
    book, clearing = make_clearing(fee=0.005)
    maker = int(clearing.add_accounts(1, 1e6, "market_maker")[0])
    counterparty = int(clearing.add_accounts(1, 1e6, "counterparty")[0])
    clearing.checked[counterparty] = False
    a = int(clearing.add_accounts(1, 40.0, "leveraged_trader")[0])
    b = int(clearing.add_accounts(1, 52.0, "leveraged_trader")[0])
    c = int(clearing.add_accounts(1, 57.0, "leveraged_trader")[0])
    d = int(clearing.add_accounts(1, 100.0, "leveraged_trader")[0])
    for account in (a, b, c, d):
        clearing.open_position(account, 10, 100.0, counterparty)
    for price in (99, 98, 97, 96, 95):
        book.submit_limit(maker, BUY, price, 10)
    book.submit_limit(maker, SELL, 101, 10)
    return book, clearing, maker, (a, b, c, d)


def test_cascade_rounds_parents_and_waterfall():
    book, clearing, maker, (a, b, c, d) = build_cascade_case()
    # Mid 100: A's equity 40 < maintenance 0.05*10*100 = 50, so A goes in round 0 and sells 10 @99.
    # Mid (98+101)/2 = 99.5: B's equity 52 - 5 = 47 < 49.75 -> round 1, sells 10 @98.
    # Mid 99: C's equity 57 - 10 = 47 < 49.5 -> round 2, sells 10 @97. Mid 98.5: D has 85 > 49.25.
    clearing.run_liquidations(step=3, mark_fn=mid_mark(book, clearing))
    records = clearing.liquidations
    assert [(r["account_id"], r["round"], r["parents"]) for r in records] == [
        (a, 0, []),
        (b, 1, [0]),
        (c, 2, [1]),
    ]
    assert [r["average_price"] for r in records] == [99.0, 98.0, 97.0]
    # Fees 0.5% of the filled notional: 4.95 + 4.90 + 4.85 = 14.70 go to the fund.
    assert clearing.collateral[ENGINE] == pytest.approx(14.70)
    # A: 40 - 10 (loss) - 4.95 = 25.05; B: 52 - 20 - 4.90 = 27.10; C: 57 - 30 - 4.85 = 22.15.
    assert clearing.collateral[[a, b, c]] == pytest.approx([25.05, 27.10, 22.15])
    assert clearing.position[maker] == 30 and clearing.entry_price[maker] == pytest.approx(98.0)
    assert clearing.position[d] == 10
    assert clearing.step_rounds == 3
    clearing.check_invariants(3, book.mid())
    graph = build_cascade_graph(_frame(records))
    assert sorted(graph.edges) == [(0, 1), (1, 2)]
    measures = cascade_measures(graph)
    assert (measures["cascades"], measures["largest_cascade"], measures["cascade_depth"]) == (1, 3, 2)
    assert measures["branching_ratio"] == pytest.approx(2 / 3)


def test_disabled_liquidation_only_flags():
    book, clearing, _, (a, *_rest) = build_cascade_case()
    check = clearing.run_liquidations(step=0, mark_fn=mid_mark(book, clearing), enabled=False)
    assert clearing.liquidations == []
    assert a in check.breached.tolist()


def test_bad_debt_paid_by_fund_then_socialised():
    book, clearing = make_clearing(fund=50.0, fee=0.005)
    maker = int(clearing.add_accounts(1, 1e6, "market_maker")[0])
    short = int(clearing.add_accounts(1, 1000.0, "noise")[0])
    victim = int(clearing.add_accounts(1, 6.0, "leveraged_trader")[0])
    clearing.open_position(victim, 10, 100.0, short)
    book.submit_limit(maker, BUY, 90, 10)
    # The victim sells 10 @90: collateral 6 - 100 = -94, no fee (nothing left), bad debt 94.
    # The fund pays its 50; the remaining 44 is charged to the only account in profit, the short
    # (profit 10 x (100 - 90) = 100 at the last price 90).
    clearing.run_liquidations(step=0, mark_fn=mid_mark(book, clearing))
    record = clearing.liquidations[0]
    assert record["bad_debt"] == pytest.approx(94.0)
    assert clearing.collateral[victim] == 0.0
    assert clearing.collateral[ENGINE] == pytest.approx(0.0)
    assert clearing.total_socialised == pytest.approx(44.0)
    assert clearing.collateral[short] == pytest.approx(1000.0 - 44.0)
    clearing.check_invariants(0, 90.0)


def test_auto_deleveraging_ranks_by_profit_times_leverage():
    book, clearing = make_clearing(fund=0.0)
    victim = int(clearing.add_accounts(1, 20.0, "leveraged_trader")[0])
    short_big = int(clearing.add_accounts(1, 100.0, "noise")[0])
    short_small = int(clearing.add_accounts(1, 100.0, "noise")[0])
    long_other = int(clearing.add_accounts(1, 1000.0, "noise")[0])
    clearing._trade(victim, short_big, 10, 100.0)
    clearing._trade(long_other, short_small, 5, 110.0)
    # No bids and an empty fund: the victim (equity 20 < 50) is auto-deleveraged at its bankruptcy price
    # 100 - 20/10 = 98. Ranks there (PnL% x leverage):
    #   short_big:   pnl 10 x 2 = 20, pnl% 20/1000, equity 120, leverage 980/120 -> 0.1633
    #   short_small: pnl 5 x 12 = 60, pnl% 60/550, equity 160, leverage 490/160 -> 0.3341 (first)
    clearing.run_liquidations(step=0, mark_fn=lambda: 100.0)
    record = clearing.liquidations[0]
    assert record["adl_quantity"] == 10 and record["filled_quantity"] == 0
    assert clearing.position[short_small] == 0
    assert clearing.position[short_big] == -5
    assert clearing.position[victim] == 0
    assert clearing.collateral[victim] == pytest.approx(0.0, abs=1e-9)
    assert clearing.collateral[short_small] == pytest.approx(160.0)  # 100 + 5 x (110 - 98)
    assert clearing.collateral[short_big] == pytest.approx(110.0)  # 100 + 5 x (100 - 98)
    assert len(book) == 0
    clearing.check_invariants(0, 100.0)


def test_engine_takes_over_what_an_empty_book_cannot_absorb():
    book, clearing = make_clearing(fund=100.0)
    victim = int(clearing.add_accounts(1, 20.0, "leveraged_trader")[0])
    short = int(clearing.add_accounts(1, 1000.0, "noise")[0])
    clearing.open_position(victim, 10, 100.0, short)
    clearing.run_liquidations(step=0, mark_fn=lambda: 100.0)
    assert clearing.position[ENGINE] == 10
    assert clearing.entry_price[ENGINE] == pytest.approx(98.0)  # the bankruptcy price
    assert clearing.collateral[victim] == pytest.approx(0.0, abs=1e-9)
    clearing.check_invariants(0, 100.0)


def test_partial_liquidation_restores_target_ratio():
    book, clearing = make_clearing(fund=0.0, mode="partial", target_ratio=1.5, fee=0.0, adl=False)
    maker = int(clearing.add_accounts(1, 1e6, "market_maker")[0])
    victim = int(clearing.add_accounts(1, 400.0, "leveraged_trader")[0])
    counterparty = int(clearing.add_accounts(1, 1e6, "counterparty")[0])
    clearing.checked[counterparty] = False
    clearing.open_position(victim, 100, 100.0, counterparty)
    book.submit_limit(maker, BUY, 100, 1000)
    book.submit_limit(maker, SELL, 100 + 1, 1000)
    # Mark 100.5; equity 450 < 0.05 x 100 x 100.5 = 502.5. Keep int(450 / (1.5 x 0.05 x 100.5)) = 59
    # lots, so 41 are sold.
    clearing.run_liquidations(step=0, mark_fn=mid_mark(book, clearing))
    assert clearing.liquidations[0]["quantity"] == 41
    assert clearing.position[victim] == 59


def test_speed_limit_caps_lots_per_round():
    book, clearing, _, (a, b, c, d) = build_cascade_case()
    clearing.liquidation = clearing.liquidation.model_copy(update={"max_lots_per_round": 5})
    clearing.run_liquidations(step=0, mark_fn=mid_mark(book, clearing))
    per_round = [r["quantity"] for r in clearing.liquidations]
    assert max(per_round) <= 5
    assert clearing.liquidations[0]["account_id"] == a


def _frame(records):
    import pandas as pd

    return pd.DataFrame(records)


def test_margin_check_is_vectorised_and_orders_worst_first():
    _, clearing = make_clearing()
    counterparty = int(clearing.add_accounts(1, 1e9, "counterparty")[0])
    accounts = clearing.add_accounts(5, np.array([60.0, 30.0, 45.0, 200.0, 55.0]), "leveraged_trader")
    for account in accounts.tolist():
        clearing.open_position(account, 10, 100.0, counterparty)
    check = clearing.margin_check(100.0)  # maintenance 50 each; call buffer 20% -> calls below 60
    assert check.breached.tolist() == [accounts[1], accounts[2]]  # 30 then 45
    assert check.called[accounts].tolist() == [False, False, False, False, True]
    # exposed: checked accounts with a position (the counterparty is not margin-checked here)
    clearing.checked[counterparty] = False
    check = clearing.margin_check(100.0)
    assert np.flatnonzero(check.exposed).tolist() == accounts.tolist()


def test_no_call_buffer_means_no_margin_calls():
    _, clearing = make_clearing()
    clearing.call_buffer = 0.0
    counterparty = int(clearing.add_accounts(1, 1e9, "counterparty")[0])
    accounts = clearing.add_accounts(3, np.array([30.0, 50.0, 55.0]), "leveraged_trader")
    for account in accounts.tolist():
        clearing.open_position(account, 10, 100.0, counterparty)
    check = clearing.margin_check(100.0)  # maintenance 50: 30 breaches, 50 is exactly at it
    assert check.breached.tolist() == [accounts[0]]
    assert not check.called.any()


def test_open_interest_follows_every_booking():
    _, clearing = make_clearing()
    a, b, c = clearing.add_accounts(3, 1e6, "noise").tolist()
    steps = [(a, b, 5), (c, a, 8), (b, c, 2), (a, c, 1), (c, b, 3)]  # (buyer, seller, lots)
    # positions (a, b, c) after each trade, by hand: (5,-5,0) (-3,-5,8) (-3,-3,6) (-2,-3,5) (-2,0,8)
    expected = [5, 8, 6, 5, 8]
    for (buyer, seller, lots), open_interest in zip(steps, expected, strict=True):
        clearing._trade(buyer, seller, lots, 100.0)
        assert clearing.open_interest == open_interest
        assert clearing.open_interest == int(clearing.position[clearing.position > 0].sum())
