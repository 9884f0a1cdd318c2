"""Market orders with protection (``market.market_order_protection``, CME Globex's rule), worked by hand.

A buy fills up to ``floor(best_ask x (1 + band))`` ticks, a sell down to ``ceil(best_bid x (1 - band))``;
the rest is cancelled or (``remainder: rest``) rests at that limit. Run on every book engine.
"""

from __future__ import annotations

import math

import pytest
from book_cases import ENGINES

from abm.book import BUY, SELL, make_book
from abm.config import FundamentalConfig, MarketConfig, scenario_from_dict
from abm.ledger import Instrument, Ledger
from abm.market import Market
from abm.model import MarketModel


def _market(engine: str, protection: dict | None):
    instrument = Instrument("X", tick_size=1.0, contract_size=1.0)
    ledger = Ledger([instrument])
    settings = MarketConfig(tick_size=1.0, market_order_protection=protection)
    fundamental = FundamentalConfig(process="constant")
    market = Market(0, instrument, settings, fundamental, make_book(engine), ledger, 10)
    maker, taker = ledger.add_accounts(2, 1e6, "noise").tolist()
    return market, ledger, maker, taker


def _offers(market, maker):
    # Asks: 2 lots at 100, 3 at 101, 5 at 103 ticks.
    for price, lots in ((100, 2), (101, 3), (103, 5)):
        market.submit_limit(maker, SELL, price, lots)


@pytest.mark.parametrize("engine", ENGINES)
def test_buy_fills_up_to_the_protection_limit_and_the_rest_is_cancelled(engine):
    market, ledger, maker, taker = _market(engine, {"band": 0.02})
    _offers(market, maker)
    # Limit floor(100 x 1.02) = 102 ticks: 2 lots at 100 and 3 at 101 fill; 103 is beyond it.
    assert market.protection_limit(BUY) == 102
    assert market.submit_market(taker, BUY, 8) == 5
    assert ledger.position_of(taker, 0) == 5
    # Cash: the taker paid 2 x 100 + 3 x 101 = 503 for its 5 lots (its entry price is 100.6).
    assert ledger.entry_price[taker, 0] == pytest.approx(503 / 5)
    # The 3 lots left are cancelled: nothing of the taker's rests, the 5 lots at 103 are untouched.
    assert market.book.open_orders(taker) == []
    assert market.book.best_ask() == 103
    assert market.book.depth(SELL, 10) == 5


@pytest.mark.parametrize("engine", ENGINES)
def test_the_rest_rests_at_the_limit_under_cme_rule(engine):
    market, ledger, maker, taker = _market(engine, {"band": 0.02, "remainder": "rest"})
    _offers(market, maker)
    assert market.submit_market(taker, BUY, 8) == 5
    # The 3 lots left become a bid at the limit, 102 ticks: the new best bid, below the ask at 103.
    assert market.book.best_bid() == 102
    assert market.book.depth(BUY, 0) == 3
    assert len(market.book.open_orders(taker)) == 1


@pytest.mark.parametrize("engine", ENGINES)
def test_sell_limit_and_an_empty_side(engine):
    market, ledger, maker, taker = _market(engine, {"band": 0.05})
    # Bids: 4 lots at 200, 4 at 191, 4 at 189. Limit ceil(200 x 0.95) = 190: 200 and 191 fill, 8 lots.
    for price in (200, 191, 189):
        market.submit_limit(maker, BUY, price, 4)
    assert market.protection_limit(SELL) == 190
    assert market.submit_market(taker, SELL, 12) == 8
    assert ledger.position_of(taker, 0) == -8
    # No ask in the book: the mark (100.0, one tick a unit) stands for the best ask: limit 105.
    assert market.book.best_ask() is None
    assert market.protection_limit(BUY) == 105


@pytest.mark.parametrize("engine", ENGINES)
def test_mark_reference_holds_every_order_of_a_step_to_the_last_mark(engine):
    market, ledger, maker, taker = _market(engine, {"band": 0.02, "reference": "mark"})
    # The mark is 100.0 (one tick a unit): a buy's limit is floor(100 x 1.02) = 102 ticks whatever the
    # touch. Asks at 101 (3 lots) and 105 (5): 3 lots fill; the touch rule would allow floor(101 x 1.02)
    # = 103 and the same 3 lots, but after them the next buy meets 105 and fills nothing, where the touch
    # rule would give it floor(105 x 1.02) = 107 and 5 lots.
    market.submit_limit(maker, SELL, 101, 3)
    market.submit_limit(maker, SELL, 105, 5)
    assert market.protection_limit(BUY) == 102
    assert market.submit_market(taker, BUY, 4) == 3
    assert market.submit_market(taker, BUY, 4) == 0
    assert ledger.position_of(taker, 0) == 3
    # A sell: ceil(100 x 0.98) = 98 ticks.
    assert market.protection_limit(SELL) == 98


@pytest.mark.parametrize("engine", ENGINES)
def test_replace_with_market_cancels_first_then_fills_within_the_band(engine):
    market, ledger, maker, taker = _market(engine, {"band": 0.02})
    _offers(market, maker)
    market.submit_limit(taker, BUY, 90, 7)  # the taker's old order
    assert market.replace_with_market(taker, BUY, 8) == 5
    assert market.book.open_orders(taker) == []
    assert market.book.depth(BUY, 20) == 0


@pytest.mark.parametrize("engine", ENGINES)
def test_without_protection_a_market_order_sweeps(engine):
    market, ledger, maker, taker = _market(engine, None)
    _offers(market, maker)
    assert market.protection_limit(BUY) is None
    assert market.submit_market(taker, BUY, 8) == 8  # 2 at 100, 3 at 101, 3 at 103


def test_a_band_that_never_binds_leaves_the_run_unchanged():
    # A band wider than any move of the calm market: the same trades as without it, to the last lot.
    def run(extra):
        scenario = scenario_from_dict(
            {
                "name": "calm_band",
                "steps": 200,
                "seed": 3,
                "market": {"tick_size": 0.01, "mark_price": "mid", **extra},
                "agents": [
                    {"kind": "market_maker", "count": 2, "levels": 5, "level_size": 20},
                    {"kind": "noise", "count": 30, "arrival_rate": 0.3, "market_order_share": 0.5},
                ],
            }
        )
        model = MarketModel(scenario, check_invariants=True)
        model.run()
        return model.results().trades

    plain, banded = run({}), run({"market_order_protection": {"band": 0.5}})
    assert len(plain) > 100
    assert plain.equals(banded)


def test_a_tight_band_stops_a_sell_program_short():
    # A 3,000-lot sell program into one maker's 20 levels 5 ticks apart (about 1% of the price deep).
    # Without protection it sweeps the ladder; with a 0.1% band its order in a step fills no lower than
    # ceil(first fill x 0.999) ticks (the first fill is at the best bid), about 10 ticks below it.
    def program_trades(extra):
        scenario = scenario_from_dict(
            {
                "name": "program",
                "steps": 3,
                "seed": 1,
                "market": {"tick_size": 0.01, "mark_price": "mid", **extra},
                "agents": [
                    {
                        "kind": "market_maker",
                        "count": 1,
                        "levels": 20,
                        "level_spacing_ticks": 5,
                        "level_size": 10,
                    }
                ],
                "shocks": [{"type": "market_order", "step": 1, "side": "sell", "quantity": 3000}],
            }
        )
        model = MarketModel(scenario, check_invariants=True)
        model.run()
        return model.results().trades

    plain = program_trades({})
    banded = program_trades({"market_order_protection": {"band": 0.001}})
    assert banded["quantity"].sum() < plain["quantity"].sum()
    for _, fills in banded.groupby("step"):
        ticks = (fills["price"] / 0.01).round()
        assert ticks.min() >= math.ceil(ticks.iloc[0] * 0.999 - 1e-9)
    assert (plain["price"] / 0.01).round().min() < math.ceil(round(plain["price"].iloc[0] / 0.01) * 0.999)
