"""Hand-built exchange cases: settlement, the liquidation waterfall and cascade attribution.

Every expected figure below is worked out by hand in the comments (contract size 1, tick 1.0, so
book prices in ticks are prices).
"""

import numpy as np
import pytest
from exchange_helpers import check, constant, make_exchange

from abm.book import BUY, SELL
from abm.ledger import ENGINE, KIND_CODES
from abm.network import build_cascade_graph, cascade_measures


def test_settlement_realises_pnl_and_keeps_entry():
    exchange = make_exchange()
    ledger = exchange.ledger
    a, b = ledger.add_accounts(2, 1000.0, "noise").tolist()
    ledger.trade(a, b, 0, 10, 100.0)  # a long 10 @100, b short 10 @100
    ledger.trade(b, a, 0, 4, 110.0)  # a sells 4 @110: realises 4 x 10 = 40; b loses 40
    assert ledger.position[a, 0] == 6 and ledger.position[b, 0] == -6
    assert ledger.entry_price[a, 0] == 100.0
    assert ledger.collateral[a] == pytest.approx(1040.0)
    assert ledger.collateral[b] == pytest.approx(960.0)
    ledger.trade(b, a, 0, 10, 90.0)  # a sells 10 @90: closes 6 (-60), opens short 4 @90
    assert ledger.position[a, 0] == -4 and ledger.entry_price[a, 0] == 90.0
    assert ledger.collateral[a] == pytest.approx(980.0)
    check(exchange, 0, 95.0)


def test_bankruptcy_price_of_a_long_and_a_short():
    exchange = make_exchange()
    ledger = exchange.ledger
    a, b = ledger.add_accounts(2, 50.0, "noise").tolist()
    ledger.trade(a, b, 0, 10, 100.0)
    assert ledger.bankruptcy_price(a, 0, [100.0]) == pytest.approx(95.0)  # 100 - 50 / 10
    assert ledger.bankruptcy_price(b, 0, [100.0]) == pytest.approx(105.0)  # 100 - 50 / -10


def build_cascade_case():
    """Three longs whose liquidation prices sit one bid level apart; one safe long."""
    exchange = make_exchange(fee=0.005)
    book, ledger = exchange.book, exchange.ledger
    maker = int(ledger.add_accounts(1, 1e6, "market_maker")[0])
    counterparty = int(ledger.add_accounts(1, 1e6, "counterparty")[0])
    ledger.set_checked(counterparty, False)
    a = int(ledger.add_accounts(1, 40.0, "leveraged_trader")[0])
    b = int(ledger.add_accounts(1, 52.0, "leveraged_trader")[0])
    c = int(ledger.add_accounts(1, 57.0, "leveraged_trader")[0])
    d = int(ledger.add_accounts(1, 100.0, "leveraged_trader")[0])
    for account in (a, b, c, d):
        ledger.open_position(account, 0, 10, 100.0, counterparty)
    for price in (99, 98, 97, 96, 95):
        book.submit_limit(maker, BUY, price, 10)
    book.submit_limit(maker, SELL, 101, 10)
    return exchange, maker, (a, b, c, d)


def test_cascade_rounds_parents_and_waterfall():
    exchange, maker, (a, b, c, d) = build_cascade_case()
    book, ledger, liquidator = exchange.book, exchange.ledger, exchange.liquidator
    # Mid 100: A's equity 40 < maintenance 0.05*10*100 = 50, so A goes in round 0 and sells 10 @99.
    # Mid (98+101)/2 = 99.5: B's equity 52 - 5 = 47 < 49.75 -> round 1, sells 10 @98.
    # Mid 99: C's equity 57 - 10 = 47 < 49.5 -> round 2, sells 10 @97. Mid 98.5: D has 85 > 49.25.
    liquidator.run(3, exchange.marks_from_books())
    records = liquidator.liquidations
    assert [(r["account_id"], r["round"], r["parents"]) for r in records] == [
        (a, 0, []),
        (b, 1, [0]),
        (c, 2, [1]),
    ]
    assert [r["average_price"] for r in records] == [99.0, 98.0, 97.0]
    # Fees 0.5% of the filled notional: 4.95 + 4.90 + 4.85 = 14.70 go to the fund.
    assert ledger.collateral[ENGINE] == pytest.approx(14.70)
    # A: 40 - 10 (loss) - 4.95 = 25.05; B: 52 - 20 - 4.90 = 27.10; C: 57 - 30 - 4.85 = 22.15.
    assert ledger.collateral[[a, b, c]] == pytest.approx([25.05, 27.10, 22.15])
    assert ledger.position[maker, 0] == 30 and ledger.entry_price[maker, 0] == pytest.approx(98.0)
    assert ledger.position[d, 0] == 10
    assert liquidator.totals.rounds == 3
    check(exchange, 3, book.mid())
    graph = build_cascade_graph(_frame(records))
    assert sorted(graph.edges) == [(0, 1), (1, 2)]
    measures = cascade_measures(graph)
    assert (measures["cascades"], measures["largest_cascade"], measures["cascade_depth"]) == (1, 3, 2)
    assert measures["branching_ratio"] == pytest.approx(2 / 3)


def test_disabled_liquidation_only_flags():
    exchange, _, (a, *_rest) = build_cascade_case()
    liquidator = exchange.liquidator
    check = liquidator.run(0, exchange.marks_from_books(), enabled=False)
    assert liquidator.liquidations == []
    assert a in check.breached.tolist()


def test_bad_debt_paid_by_fund_then_socialised():
    exchange = make_exchange(fund=50.0, fee=0.005)
    book, ledger, liquidator = exchange.book, exchange.ledger, exchange.liquidator
    maker = int(ledger.add_accounts(1, 1e6, "market_maker")[0])
    short = int(ledger.add_accounts(1, 1000.0, "noise")[0])
    victim = int(ledger.add_accounts(1, 6.0, "leveraged_trader")[0])
    ledger.open_position(victim, 0, 10, 100.0, short)
    book.submit_limit(maker, BUY, 90, 10)
    # The victim sells 10 @90: collateral 6 - 100 = -94, no fee (nothing left), bad debt 94.
    # The fund pays its 50; the remaining 44 is charged to the only account in profit, the short
    # (profit 10 x (100 - 90) = 100 at the last price 90).
    liquidator.run(0, exchange.marks_from_books())
    record = liquidator.liquidations[0]
    assert record["bad_debt"] == pytest.approx(94.0)
    assert ledger.collateral[victim] == 0.0
    assert ledger.collateral[ENGINE] == pytest.approx(0.0)
    assert ledger.total_socialised == pytest.approx(44.0)
    assert ledger.collateral[short] == pytest.approx(1000.0 - 44.0)
    check(exchange, 0, 90.0)


@pytest.mark.parametrize(("leftover", "kept", "fund"), [("trader", 25.05, 4.95), ("fund", 0.0, 30.0)])
def test_a_liquidated_accounts_leftover_goes_to_the_trader_or_the_fund(leftover, kept, fund):
    exchange = make_exchange(fee=0.005, leftover=leftover)
    book, ledger, liquidator = exchange.book, exchange.ledger, exchange.liquidator
    maker = int(ledger.add_accounts(1, 1e6, "market_maker")[0])
    short = int(ledger.add_accounts(1, 1000.0, "noise")[0])
    victim = int(ledger.add_accounts(1, 40.0, "leveraged_trader")[0])
    ledger.open_position(victim, 0, 10, 100.0, short)
    book.submit_limit(maker, BUY, 99, 10)
    # Mark 100: equity 40 < maintenance 50. Sells 10 @99: 40 - 10 = 30; fee 0.5% x 990 = 4.95 to the
    # fund: 25.05 left. "trader": it keeps 25.05 (the fund holds 4.95); "fund" (Binance, BitMEX): the
    # 25.05 goes to the fund as well, which holds 30.
    liquidator.run(0, constant(100.0))
    assert ledger.collateral[victim] == pytest.approx(kept)
    assert ledger.collateral[ENGINE] == pytest.approx(fund)
    check(exchange, 0, 99.0)


@pytest.mark.parametrize(
    ("socialise", "short_pays", "maker_pays"),
    [("all", 22.0, 22.0), ("traders", 44.0, 0.0), ("none", 0.0, 0.0)],
)
def test_who_covers_a_fund_below_zero(socialise, short_pays, maker_pays):
    exchange = make_exchange(fund=50.0, fee=0.0, socialise=socialise)
    book, ledger, liquidator = exchange.book, exchange.ledger, exchange.liquidator
    maker = int(ledger.add_accounts(1, 1000.0, "market_maker")[0])
    bidder = int(ledger.add_accounts(1, 1e6, "noise")[0])
    short = int(ledger.add_accounts(1, 1000.0, "noise")[0])
    victim = int(ledger.add_accounts(1, 6.0, "leveraged_trader")[0])
    ledger.open_position(victim, 0, 10, 100.0, short)
    ledger.trade(bidder, maker, 0, 10, 100.0)  # the maker is short 10 @100 as well
    book.submit_limit(bidder, BUY, 90, 10)
    # The victim sells 10 @90: collateral 6 - 100 = -94, bad debt 94; the fund pays its 50, 44 short.
    # At the last price 90 the short and the maker are each 10 x 10 = 100 in profit (the bidder, long
    # 20 from 100 and 90, is not). "all": 22 each; "traders": the maker is left out, the short pays 44;
    # "none": nobody, the fund stays at -44.
    liquidator.run(0, exchange.marks_from_books())
    assert ledger.collateral[short] == pytest.approx(1000.0 - short_pays)
    assert ledger.collateral[maker] == pytest.approx(1000.0 - maker_pays)
    assert ledger.collateral[ENGINE] == pytest.approx(-44.0 + short_pays + maker_pays)
    check(exchange, 0, 90.0)


def test_bad_debt_counts_a_takeover_at_a_loss_valued_at_the_mark():
    exchange = make_exchange(fund=100.0, fee=0.0)
    book, ledger, liquidator = exchange.book, exchange.ledger, exchange.liquidator
    maker = int(ledger.add_accounts(1, 1e6, "market_maker")[0])
    short = int(ledger.add_accounts(1, 1000.0, "noise")[0])
    victim = int(ledger.add_accounts(1, 20.0, "leveraged_trader")[0])
    ledger.open_position(victim, 0, 10, 100.0, short)
    book.submit_limit(maker, BUY, 95, 4)
    # Mark 97: the victim's equity is 20 + 10 x (97 - 100) = -10, below maintenance 0.05 x 970 = 48.5.
    # It sells 4 @95 into the book: realised 4 x (95 - 100) = -20, collateral 0. The book is empty, so
    # the engine takes the other 6 over at the bankruptcy price, now 100 - 0 / 6 = 100, while they are
    # worth 97: the fund takes on 6 x (100 - 97) = 18 of negative equity. That is the bad debt (the
    # account itself ends flat at 0: no deficit to cover). Before, only deficits counted: 0.
    liquidator.run(0, constant(97.0))
    record = liquidator.liquidations[0]
    assert (record["filled_quantity"], ledger.position[ENGINE, 0]) == (4, 6)
    assert ledger.entry_price[ENGINE, 0] == pytest.approx(100.0)
    assert record["bad_debt"] == pytest.approx(18.0)
    assert ledger.total_bad_debt == pytest.approx(18.0) and liquidator.totals.bad_debt == pytest.approx(18.0)
    # The fund's cash is untouched (100); its worth at the mark is 100 + 6 x (97 - 100) = 82.
    assert ledger.collateral[ENGINE] == pytest.approx(100.0)
    assert ledger.account_equity(ENGINE, [97.0]) == pytest.approx(82.0)
    check(exchange, 0, 97.0)


def test_a_takeover_worth_more_than_its_price_is_no_bad_debt():
    exchange = make_exchange(fund=100.0, fee=0.0)
    ledger, liquidator = exchange.ledger, exchange.liquidator
    short = int(ledger.add_accounts(1, 1000.0, "noise")[0])
    victim = int(ledger.add_accounts(1, 20.0, "leveraged_trader")[0])
    ledger.open_position(victim, 0, 10, 100.0, short)
    # Mark 99: equity 20 - 10 = 10 < 0.05 x 990 = 49.5. No bids: the engine takes the 10 lots at the
    # bankruptcy price 100 - 20 / 10 = 98, worth 99 each: the fund gains 10 at the mark, no bad debt.
    liquidator.run(0, constant(99.0))
    assert liquidator.liquidations[0]["bad_debt"] == 0.0 and ledger.total_bad_debt == 0.0
    assert ledger.account_equity(ENGINE, [99.0]) == pytest.approx(110.0)
    check(exchange, 0, 99.0)


def _adl_case(**liquidation):
    exchange = make_exchange(fund=0.0, **liquidation)
    ledger = exchange.ledger
    victim = int(ledger.add_accounts(1, 20.0, "leveraged_trader")[0])
    short_a = int(ledger.add_accounts(1, 1000.0, "noise")[0])
    short_b = int(ledger.add_accounts(1, 100.0, "noise")[0])
    short_c = int(ledger.add_accounts(1, 60.0, "noise")[0])
    longs = int(ledger.add_accounts(1, 1e4, "noise")[0])
    ledger.trade(victim, short_a, 0, 10, 100.0)  # the victim long 10 @100 (collateral 20), a short
    ledger.trade(longs, short_b, 0, 5, 110.0)  # b: short 5 @110
    ledger.trade(longs, short_c, 0, 10, 98.5)  # c: short 10 @98.5, collateral 60
    return exchange, victim, (short_a, short_b, short_c)


def test_auto_deleveraging_ranks_by_profit_times_leverage_at_the_mark():
    exchange, victim, (short_a, short_b, short_c) = _adl_case()
    ledger, liquidator = exchange.ledger, exchange.liquidator
    # Mark 99: the victim's equity 20 - 10 = 10 < maintenance 0.05 x 990 = 49.5. No bids and an empty
    # fund: ADL at the bankruptcy price 100 - 20 / 10 = 98. Ranks at the mark 99 (PnL% x leverage):
    #   a: pnl 10 x (100 - 99) = 10, cost 1,000 -> 1%; equity 1,010, notional 990 -> 0.98x; rank 0.0098
    #   b: pnl 5 x (110 - 99) = 55, cost 550 -> 10%; equity 155, notional 495 -> 3.19x; rank 0.319
    #   c: pnl 10 x (98.5 - 99) = -5: not in profit at the mark, skipped (equity 55 > 49.5: not
    #      liquidated either)
    # So b first (5 lots), then a (the other 5). The old ranking, at the bankruptcy price 98, put c
    # second: pnl 5, cost 985 -> 0.51%; equity 65, notional 980 -> 15.1x; rank 0.077 against a's
    # 20/1,000 x 980/1,020 = 0.019 (and b's 60/550 x 490/160 = 0.334): it cut c, a loser at the mark.
    liquidator.run(0, constant(99.0))
    record = liquidator.liquidations[0]
    assert record["adl_quantity"] == 10 and record["filled_quantity"] == 0
    assert ledger.position[[short_a, short_b, short_c], 0].tolist() == [-5, 0, -10]
    # Closed at 98: b realises 5 x (110 - 98) = 60 (160); a 5 x (100 - 98) = 10 (1,010); c untouched.
    assert ledger.collateral[[short_a, short_b, short_c]] == pytest.approx([1010.0, 160.0, 60.0])
    assert ledger.position[victim, 0] == 0
    assert ledger.collateral[victim] == pytest.approx(0.0, abs=1e-9)
    check(exchange, 0, 99.0)


def test_auto_deleveraging_at_the_mark_price():
    exchange, victim, (short_a, short_b, _) = _adl_case(adl_price="mark")
    ledger, liquidator = exchange.ledger, exchange.liquidator
    # The same ranking, closed at the mark 99: b realises 5 x (110 - 99) = 55 (155), a 5 x 1 = 5 (1,005).
    # The victim sells 10 @99: 20 - 10 = 10 left, its own (it is not bankrupt at the mark).
    liquidator.run(0, constant(99.0))
    assert ledger.collateral[[short_a, short_b]] == pytest.approx([1005.0, 155.0])
    assert ledger.collateral[victim] == pytest.approx(10.0)
    check(exchange, 0, 99.0)


def test_engine_takes_over_what_an_empty_book_cannot_absorb():
    exchange = make_exchange(fund=100.0)
    ledger, liquidator = exchange.ledger, exchange.liquidator
    victim = int(ledger.add_accounts(1, 20.0, "leveraged_trader")[0])
    short = int(ledger.add_accounts(1, 1000.0, "noise")[0])
    ledger.open_position(victim, 0, 10, 100.0, short)
    liquidator.run(0, constant(100.0))
    assert ledger.position[ENGINE, 0] == 10
    assert ledger.entry_price[ENGINE, 0] == pytest.approx(98.0)  # the bankruptcy price
    assert ledger.collateral[victim] == pytest.approx(0.0, abs=1e-9)
    check(exchange, 0, 100.0)


def test_partial_liquidation_restores_target_ratio():
    exchange = make_exchange(fund=0.0, mode="partial", target_ratio=1.5, fee=0.0, adl=False)
    book, ledger, liquidator = exchange.book, exchange.ledger, exchange.liquidator
    maker = int(ledger.add_accounts(1, 1e6, "market_maker")[0])
    victim = int(ledger.add_accounts(1, 400.0, "leveraged_trader")[0])
    counterparty = int(ledger.add_accounts(1, 1e6, "counterparty")[0])
    ledger.set_checked(counterparty, False)
    ledger.open_position(victim, 0, 100, 100.0, counterparty)
    book.submit_limit(maker, BUY, 100, 1000)
    book.submit_limit(maker, SELL, 100 + 1, 1000)
    # Mark 100.5; equity 450 < 0.05 x 100 x 100.5 = 502.5. Keep int(450 / (1.5 x 0.05 x 100.5)) = 59
    # lots, so 41 are sold.
    liquidator.run(0, exchange.marks_from_books())
    assert liquidator.liquidations[0]["quantity"] == 41
    assert ledger.position[victim, 0] == 59


def test_speed_limit_caps_lots_per_round():
    exchange, _, (a, b, c, d) = build_cascade_case()
    liquidator = exchange.liquidator
    liquidator.settings = liquidator.settings.model_copy(update={"max_lots_per_round": 5})
    liquidator.run(0, exchange.marks_from_books())
    per_round = [r["quantity"] for r in liquidator.liquidations]
    assert max(per_round) <= 5
    assert liquidator.liquidations[0]["account_id"] == a


def _frame(records):
    import pandas as pd

    return pd.DataFrame(records)


def test_margin_check_is_vectorised_and_orders_worst_first():
    exchange = make_exchange()
    ledger = exchange.ledger
    counterparty = int(ledger.add_accounts(1, 1e9, "counterparty")[0])
    accounts = ledger.add_accounts(5, np.array([60.0, 30.0, 45.0, 200.0, 55.0]), "leveraged_trader")
    for account in accounts.tolist():
        ledger.open_position(account, 0, 10, 100.0, counterparty)
    check = exchange.checker.check([100.0])  # maintenance 50 each; call buffer 20% -> calls below 60
    assert check.breached.tolist() == [accounts[1], accounts[2]]  # 30 then 45
    assert check.called[accounts].tolist() == [False, False, False, False, True]
    # exposed: checked accounts with a position (the counterparty is not margin-checked here)
    ledger.set_checked(counterparty, False)
    check = exchange.checker.check([100.0])
    assert np.flatnonzero(check.exposed).tolist() == accounts.tolist()


def test_no_call_buffer_means_no_margin_calls():
    exchange = make_exchange(call_buffer=0.0)
    ledger = exchange.ledger
    counterparty = int(ledger.add_accounts(1, 1e9, "counterparty")[0])
    accounts = ledger.add_accounts(3, np.array([30.0, 50.0, 55.0]), "leveraged_trader")
    for account in accounts.tolist():
        ledger.open_position(account, 0, 10, 100.0, counterparty)
    check = exchange.checker.check([100.0])  # maintenance 50: 30 breaches, 50 is exactly at it
    assert check.breached.tolist() == [accounts[0]]
    assert not check.called.any()


def test_open_interest_follows_every_booking():
    exchange = make_exchange()
    ledger = exchange.ledger
    a, b, c = ledger.add_accounts(3, 1e6, "noise").tolist()
    steps = [(a, b, 5), (c, a, 8), (b, c, 2), (a, c, 1), (c, b, 3)]  # (buyer, seller, lots)
    # positions (a, b, c) after each trade, by hand: (5,-5,0) (-3,-5,8) (-3,-3,6) (-2,-3,5) (-2,0,8)
    expected = [5, 8, 6, 5, 8]
    for (buyer, seller, lots), open_interest in zip(steps, expected, strict=True):
        ledger.trade(buyer, seller, 0, lots, 100.0)
        assert ledger.open_interest_of(0) == open_interest
        assert ledger.open_interest_of(0) == int(ledger.position[ledger.position > 0].sum())


@pytest.mark.parametrize(("max_parents", "expected"), [(32, [0, 1, 2]), (2, [0, 1])])
def test_parents_are_capped_at_the_largest_by_filled_notional(max_parents, expected):
    exchange = make_exchange(max_parents=max_parents)
    book, ledger, liquidator = exchange.book, exchange.ledger, exchange.liquidator
    maker = int(ledger.add_accounts(1, 1e6, "market_maker")[0])
    counterparty = int(ledger.add_accounts(1, 1e6, "counterparty")[0])
    ledger.set_checked(counterparty, False)
    # Three longs at 100, each at equity / maintenance 0.8 at the mid 100 (tie: by id): 10 lots on 40,
    # 20 lots on 80, 5 lots on 20. Round 0 sells their 35 lots at 99 (the whole first bid), filled
    # notionals 990, 1,980 and 495; the mid drops to (97 + 101) / 2 = 99.
    longs = [int(ledger.add_accounts(1, cash, "leveraged_trader")[0]) for cash in (40.0, 80.0, 20.0)]
    for account, lots in zip(longs, (10, 20, 5), strict=True):
        ledger.open_position(account, 0, lots, 100.0, counterparty)
    # The child: 10 lots on 52, safe at 100 (52 >= 50), under at 99 (52 - 10 = 42 < 49.5): round 1.
    child = int(ledger.add_accounts(1, 52.0, "leveraged_trader")[0])
    ledger.open_position(child, 0, 10, 100.0, counterparty)
    book.submit_limit(maker, BUY, 99, 35)
    book.submit_limit(maker, BUY, 97, 10)
    book.submit_limit(maker, SELL, 101, 10)
    liquidator.run(0, exchange.marks_from_books())
    records = liquidator.liquidations
    assert [(r["account_id"], r["round"]) for r in records] == [*[(a, 0) for a in longs], (child, 1)]
    # Capped at 2: the two largest fills (1,980 and 990), listed by id; every child keeps a parent.
    assert records[3]["parents"] == expected


# --------------------------------------------------------------------------- liquidation designs


def test_every_design_sets_only_what_the_scenario_leaves_open():
    from abm.config import LIQUIDATION_DESIGNS, LiquidationConfig

    for name, (_, preset) in LIQUIDATION_DESIGNS.items():
        settings = LiquidationConfig(design=name)
        assert {key: getattr(settings, key) for key in preset} == preset
    assert LiquidationConfig(design="binance", price_limit="none").price_limit == "none"


def test_binance_stops_at_the_bankruptcy_price_and_the_fund_takes_the_rest_there():
    exchange = make_exchange(fund=100.0, design="binance")
    book, ledger, liquidator = exchange.book, exchange.ledger, exchange.liquidator
    maker = int(ledger.add_accounts(1, 1e6, "market_maker")[0])
    short = int(ledger.add_accounts(1, 1000.0, "noise")[0])
    victim = int(ledger.add_accounts(1, 20.0, "leveraged_trader")[0])
    ledger.open_position(victim, 0, 10, 100.0, short)
    book.submit_limit(maker, BUY, 99, 4)
    book.submit_limit(maker, BUY, 97, 10)
    # Mark 100: equity 20 < 50. The order is limited at the bankruptcy price 100 - 20 / 10 = 98, so it
    # takes the 4 @99 (collateral 20 - 4 = 16) and leaves the bids at 97 alone. The fund takes the
    # other 6 at the bankruptcy price of what is left, 100 - 16 / 6 = 97.33: collateral 0, so no fee
    # can be paid and nothing is left over. At the mark 100 the fund's 6 lots are worth 6 x 2.67 = 16
    # more than it paid: no bad debt, the fund worth 116.
    liquidator.run(0, constant(100.0))
    record = liquidator.liquidations[0]
    assert (record["filled_quantity"], ledger.position[ENGINE, 0]) == (4, 6)
    assert ledger.entry_price[ENGINE, 0] == pytest.approx(100.0 - 16.0 / 6.0)
    assert book.levels(BUY, 2) == [(97, 10)]
    assert ledger.collateral[victim] == pytest.approx(0.0, abs=1e-9) and record["bad_debt"] == 0.0
    assert ledger.account_equity(ENGINE, [100.0]) == pytest.approx(116.0)
    check(exchange, 0, 100.0)


def test_dydx_deleverages_from_a_random_start_without_ranking():
    exchange = make_exchange(fund=0.0, design="dydx")
    ledger, liquidator = exchange.ledger, exchange.liquidator
    victim = int(ledger.add_accounts(1, 20.0, "leveraged_trader")[0])
    shorts = ledger.add_accounts(3, 1000.0, "noise").tolist()
    outside = int(ledger.add_accounts(1, 1e6, "noise")[0])
    for short in shorts:  # three shorts of 4 lots @100 each
        ledger.trade(victim, short, 0, 4, 100.0)
    ledger.trade(outside, victim, 0, 4, 100.0)  # the victim sells 4 to an outsider: long 8 @100
    # Mark 99: equity 20 - 8 = 12 < 0.05 x 792 = 39.6. No book, no fund: 8 lots deleveraged against the
    # offsetting shorts (all +4 at the mark; the outsider is long, not offsetting), in id order from a
    # random one on, with no ranking. The start is the generator's integers(3): 2 for seed 5, so the
    # third short and then the first are closed (4 lots each) and the second keeps its 4.
    liquidator.rng = np.random.default_rng(5)
    liquidator.run(0, constant(99.0))
    assert liquidator.liquidations[0]["adl_quantity"] == 8
    assert [int(ledger.position[short, 0]) for short in shorts] == [0, -4, 0]
    # At the bankruptcy price 100 - 20 / 8 = 97.5: each closed short realises 4 x 2.5 = 10.
    assert ledger.collateral[shorts].tolist() == pytest.approx([1010.0, 1000.0, 1010.0])
    check(exchange, 0, 99.0)


def test_vega_takes_every_position_over_and_sells_it_off_within_depth_and_band():
    exchange = make_exchange(fund=1000.0, fee=0.0, design="vega")
    book, ledger, liquidator = exchange.book, exchange.ledger, exchange.liquidator
    maker = int(ledger.add_accounts(1, 1e6, "market_maker")[0])
    short = int(ledger.add_accounts(1, 1e4, "noise")[0])
    victim = int(ledger.add_accounts(1, 200.0, "leveraged_trader")[0])
    ledger.open_position(victim, 0, 100, 100.0, short)
    book.submit_limit(maker, BUY, 99, 50)
    book.submit_limit(maker, BUY, 96, 50)
    # Mark 99.5: equity 200 - 50 = 150 < 0.05 x 9,950 = 497.5. No order goes into the book: the
    # network takes all 100 lots at the bankruptcy price 100 - 200 / 100 = 98.
    liquidator.run(0, constant(99.5))
    assert liquidator.liquidations[0]["filled_quantity"] == 0
    assert ledger.position[ENGINE, 0] == 100 and ledger.entry_price[ENGINE, 0] == pytest.approx(98.0)
    assert book.levels(BUY, 2) == [(99, 50), (96, 50)]
    # Next step it offers 10% of its 100 lots, at most 10% of the 50 lots resting within the band of
    # int(99 x 3%) = 2 ticks below the best bid 99 (the 96 level is outside it): 5 lots, at 99.
    ledger.begin_step(1)
    liquidator.begin_step()
    liquidator.run(1, constant(99.5))
    assert ledger.position[ENGINE, 0] == 95
    assert book.levels(BUY, 2) == [(99, 45), (96, 50)]
    check(exchange, 1, 99.5)


def _hyperliquid_case(collateral, fund=100.0, **liquidation):
    # Positions here are small: the 100,000 notional above which Hyperliquid goes in chunks is scaled
    # to 1,000 so that a 20-lot position at about 100 (2,000) is one.
    exchange = make_exchange(
        fund=fund, fee=0.0, design="hyperliquid", chunk_above_notional=1000.0, **liquidation
    )
    book, ledger = exchange.book, exchange.ledger
    maker = int(ledger.add_accounts(1, 1e6, "market_maker")[0])
    short = int(ledger.add_accounts(1, 1e4, "noise")[0])
    victim = int(ledger.add_accounts(1, collateral, "leveraged_trader")[0])
    ledger.open_position(victim, 0, 20, 100.0, short)
    book.submit_limit(maker, BUY, 99, 40)
    return exchange, victim


def test_hyperliquid_liquidates_a_large_position_a_fifth_at_a_time_with_a_cooldown():
    exchange, victim = _hyperliquid_case(90.0)
    ledger, liquidator = exchange.ledger, exchange.liquidator
    # Mark 99: equity 90 - 20 = 70 < maintenance 0.05 x 1,980 = 99, above 2/3 of it (66): no backstop.
    # Notional 1,980 > 1,000: a chunk of ceil(20% x 20) = 4 lots @99 (collateral 90 - 4 = 86). Still
    # below maintenance (86 - 16 = 70 < 79.2), but cooling down for 30 steps: no second chunk.
    liquidator.run(0, constant(99.0))
    assert [record["quantity"] for record in liquidator.liquidations] == [4]
    assert ledger.position[victim, 0] == 16 and ledger.collateral[victim] == pytest.approx(86.0)
    for step in (1, 29):
        ledger.begin_step(step)
        liquidator.begin_step()
        liquidator.run(step, constant(99.0))
    assert len(liquidator.liquidations) == 1
    # At step 30 the next chunk: ceil(20% x 16) = 4 lots.
    ledger.begin_step(30)
    liquidator.run(30, constant(99.0))
    assert [record["quantity"] for record in liquidator.liquidations] == [4, 4]
    check(exchange, 30, 99.0)


def test_hyperliquid_backstop_vault_takes_the_account_over_at_the_mark_with_what_is_left():
    exchange, victim = _hyperliquid_case(40.0)
    book, ledger, liquidator = exchange.book, exchange.ledger, exchange.liquidator
    # Mark 99: equity 40 - 20 = 20, below 2/3 of maintenance 99 (66) and not negative: the vault (an
    # account of its own, capital 2,000) takes the 20 lots at the mark 99 (realised -20: collateral
    # 20) and keeps the 20 left: 2,020. No order goes into the book; the insurance fund is untouched.
    liquidator.run(0, constant(99.0))
    vault = liquidator.vault
    assert vault != ENGINE and ledger.kind[vault] == KIND_CODES["backstop_vault"]
    assert ledger.position[vault, 0] == 20 and ledger.entry_price[vault, 0] == pytest.approx(99.0)
    assert ledger.collateral[victim] == pytest.approx(0.0)
    assert ledger.collateral[vault] == pytest.approx(2020.0)
    assert ledger.collateral[ENGINE] == pytest.approx(100.0) and ledger.position[ENGINE, 0] == 0
    assert book.levels(BUY, 1) == [(99, 40)] and liquidator.liquidations[0]["bad_debt"] == 0.0
    check(exchange, 0, 99.0)
    # The next step the vault sells its inventory into the book as the engine does: 20 lots @99.
    ledger.begin_step(1)
    liquidator.begin_step()
    liquidator.run(1, constant(99.0))
    assert ledger.position[vault, 0] == 0 and book.levels(BUY, 1) == [(99, 20)]
    check(exchange, 1, 99.0)


def test_hyperliquid_deleverages_only_an_account_whose_value_turned_negative():
    # No bids. An account with positive equity goes to the vault even with an empty fund; one with
    # negative equity is deleveraged against the short (in profit at the mark).
    for collateral, mark, adl_lots in ((40.0, 99.0, 0), (10.0, 99.0, 20)):
        exchange = make_exchange(fund=0.0, fee=0.0, design="hyperliquid")
        ledger, liquidator = exchange.ledger, exchange.liquidator
        short = int(ledger.add_accounts(1, 1e4, "noise")[0])
        victim = int(ledger.add_accounts(1, collateral, "leveraged_trader")[0])
        ledger.open_position(victim, 0, 20, 100.0, short)
        # Equity at 99: 40 - 20 = 20 (backstop), or 10 - 20 = -10 (negative: the book, then ADL).
        liquidator.run(0, constant(mark))
        assert liquidator.liquidations[0]["adl_quantity"] == adl_lots
        assert ledger.position[victim, 0] == 0
        check(exchange, 0, mark)


def test_ccp_auctions_the_defaulters_portfolio_and_covers_its_deficit_in_the_waterfalls_order():
    exchange = make_exchange(fund=0.0, fee=0.0, design="ccp", ccp_capital=0.0, default_fund_share=0.005)
    ledger, liquidator = exchange.ledger, exchange.liquidator
    maker_1 = int(ledger.add_accounts(1, 1000.0, "market_maker")[0])
    maker_2 = int(ledger.add_accounts(1, 3000.0, "market_maker")[0])
    short = int(ledger.add_accounts(1, 1000.0, "noise")[0])
    victim = int(ledger.add_accounts(1, 20.0, "leveraged_trader")[0])
    ledger.trade(victim, short, 0, 10, 100.0)
    liquidator.open_system_accounts()
    house = liquidator.clearing
    # Contributions, 0.5% of collateral: makers 5 and 15, the short 5, the victim 0.1 (fund 25.1).
    assert house.fund_balance() == pytest.approx(25.1)
    # Mark 95: the victim's equity 20 - 50 = -30. No order into the book: its 10 lots are auctioned to
    # the makers pro rata to their contributions (2.5 and 7.5: 2 and 7, and the lot left to the lower
    # id on the tie of remainders, so 3 and 7) at 2% off the mark, 93.1. It realises 10 x -6.9 = -69:
    # collateral -49. The waterfall: its own 0.1 (48.9 left), no house capital, the survivors' 25 (23.9
    # left), then assessments pro rata to their contributions, capped at one contribution each (room
    # 5, 15, 5): 23.9 x 5/25 = 4.78, 14.34 and 4.78. Covered: 49, all of it bad debt for the members,
    # none for the insurance fund.
    liquidator.run(0, constant(95.0))
    assert ledger.position[[maker_1, maker_2], 0].tolist() == [3, 7]
    assert ledger.entry_price[maker_1, 0] == pytest.approx(93.1)
    assert ledger.collateral[victim] == pytest.approx(0.0, abs=1e-9)
    assert house.fund_balance() == pytest.approx(0.0, abs=1e-9)
    assert ledger.collateral[[maker_1, maker_2, short]] == pytest.approx([995.22, 2985.66, 995.22])
    assert liquidator.liquidations[0]["bad_debt"] == pytest.approx(49.0)
    assert ledger.collateral[ENGINE] == pytest.approx(0.0, abs=1e-9)
    journal = ledger.journal.frame(["X"])
    by_kind = journal[journal["account_id"] == victim].groupby("kind")["amount"].sum()
    assert by_kind["default_fund"] == pytest.approx(25.1) and by_kind["assessment"] == pytest.approx(23.9)
    check(exchange, 0, 95.0)
