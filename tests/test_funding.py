"""Perpetual funding: the premium index, the time-weighted rate, the payment, worked by hand.

Contract size 1 and tick 1.0 in the hand cases, so book prices in ticks are prices.
"""

import pytest

from abm import MarketModel
from abm.book import BUY, SELL, OrderBook
from abm.config import FundamentalConfig, MarketConfig
from abm.funding import DEFAULT_IMPACT_LOTS, PerpetualFunding, funding_rate, premium_index
from abm.ledger import Instrument, Ledger
from abm.market import Market


def test_premium_index_by_hand():
    # Impact bid 101 above an index of 100: (1 - 0) / 100 = 1%.
    assert premium_index(101.0, 102.0, 100.0) == pytest.approx(0.01)
    # Impact ask 98 below the index: (0 - 2) / 100 = -2%.
    assert premium_index(97.0, 98.0, 100.0) == pytest.approx(-0.02)
    # The index between the impact prices: no premium.
    assert premium_index(99.5, 100.5, 100.0) == 0.0
    # An empty side counts nothing: only the bid's 1% is left.
    assert premium_index(101.0, None, 100.0) == pytest.approx(0.01)
    assert premium_index(None, None, 100.0) == 0.0


def test_funding_rate_clamp_and_cap_by_hand():
    # P = 0: 0 + clamp(0.0001 - 0, +-0.0005) = 0.0001 (the interest term alone).
    assert funding_rate(0.0, 0.0001, 0.0005, 0.0075) == pytest.approx(0.0001)
    # P = 0.0003: 0.0003 + clamp(-0.0002) = 0.0001: within the clamp the rate is the interest rate.
    assert funding_rate(0.0003, 0.0001, 0.0005, 0.0075) == pytest.approx(0.0001)
    # P = 0.002: 0.002 + clamp(-0.0019 -> -0.0005) = 0.0015.
    assert funding_rate(0.002, 0.0001, 0.0005, 0.0075) == pytest.approx(0.0015)
    # P = -0.002: -0.002 + clamp(0.0021 -> 0.0005) = -0.0015.
    assert funding_rate(-0.002, 0.0001, 0.0005, 0.0075) == pytest.approx(-0.0015)
    # P = 0.05: 0.0495, capped at 0.0075.
    assert funding_rate(0.05, 0.0001, 0.0005, 0.0075) == pytest.approx(0.0075)


def test_impact_size_from_the_notional():
    funding = PerpetualFunding(MarketConfig().funding, tick_size=0.01, contract_size=0.1)
    assert funding.impact_lots(100.0) == DEFAULT_IMPACT_LOTS
    sized = PerpetualFunding(
        MarketConfig(funding={"impact_notional": 2_505.0}).funding, tick_size=0.01, contract_size=0.1
    )
    # 2,505 / (100 x 0.1) = 250.5 lots: rounded up to 251.
    assert sized.impact_lots(100.0) == 251


def _market(interval=2, cap=0.02):
    instrument = Instrument("X", tick_size=1.0, contract_size=1.0)
    ledger = Ledger([instrument])
    settings = MarketConfig(
        tick_size=1.0, initial_price=100.0, mark_price="index", funding={"interval": interval, "cap": cap}
    )
    book = OrderBook()
    market = Market(0, instrument, settings, FundamentalConfig(process="constant"), book, ledger, horizon=10)
    return market, ledger, book


def test_an_interval_of_two_steps_by_hand():
    market, ledger, book = _market()
    maker, long, short = ledger.add_accounts(3, 1e4, "noise").tolist()
    ledger.open_position(long, 0, 10, 100.0, short)  # long 10 lots at 100 against the short
    # Step 0. Bids 5 @102 and 5 @100, asks 10 @103; the index is 100.
    # Impact bid (10 lots): (5 x 102 + 5 x 100) / 10 = 101 -> max(0, 101 - 100) = 1;
    # impact ask 103 -> max(0, 100 - 103) = 0; premium p1 = 1 / 100 = 0.01.
    book.submit_limit(maker, BUY, 102, 5)
    book.submit_limit(maker, BUY, 100, 5)
    book.submit_limit(maker, SELL, 103, 10)
    market.close_step(0)
    market.accrue_funding(0)
    assert market.funding.premium == pytest.approx(0.01)
    # Estimate after one sample: 0.01 + clamp(0.0001 - 0.01 -> -0.0005) = 0.0095 (under the 2% cap).
    assert market.funding.rate == pytest.approx(0.0095)
    assert market.funding_paid == 0.0  # not due: (0 + 1) % 2 != 0
    # Step 1. Bids 10 @100, asks 10 @101: impact bid 100, impact ask 101, the index between: p2 = 0.
    book.cancel_all(maker)
    book.submit_limit(maker, BUY, 100, 10)
    book.submit_limit(maker, SELL, 101, 10)
    market.reset_fundamental_effects()
    market.close_step(1)
    market.accrue_funding(1)
    assert market.funding.premium == 0.0
    # P = (1 x 0.01 + 2 x 0) / (1 + 2) = 0.0033333; F = 0.0033333 + clamp(-0.0032333 -> -0.0005)
    # = 0.0028333. Due at step 1: the long pays 10 x 100 x 0.0028333 = 2.8333 to the short.
    rate = 0.01 / 3 - 0.0005
    assert market.funding.rate == pytest.approx(rate)
    assert ledger.collateral[long] == pytest.approx(1e4 - 10 * 100 * rate)
    assert ledger.collateral[short] == pytest.approx(1e4 + 10 * 100 * rate)
    assert market.funding_paid == pytest.approx(10 * 100 * rate)
    assert ledger.total_funding == pytest.approx(10 * 100 * rate)
    # Step 2 starts a new interval: its estimate comes from its own sample only
    # (p3 = 0: 0 + clamp(0.0001) = 0.0001).
    market.reset_fundamental_effects()
    market.close_step(2)
    market.accrue_funding(2)
    assert market.funding.rate == pytest.approx(0.0001)
    assert market.funding_paid == 0.0


def test_a_thin_side_is_priced_over_the_lots_it_has():
    market, ledger, book = _market()
    maker = int(ledger.add_accounts(1, 1e4, "noise")[0])
    # Only 4 lots bid at 104 (impact wants 10): impact bid 104 -> 4 / 100; no ask: nothing.
    book.submit_limit(maker, BUY, 104, 4)
    market.close_step(0)
    market.accrue_funding(0)
    assert market.funding.premium == pytest.approx(0.04)


def test_funding_in_a_run_is_zero_sum_and_journalled():
    model = MarketModel("calm", rng=3, check_invariants=True, steps=500)
    model.run()
    result = model.results()
    ts, journal = result.timeseries, result.ledger
    payments = ts[ts.funding_paid > 0]
    # Every 480 steps: one payment in 500 steps, at step 479.
    assert payments.step.tolist() == [479]
    rows = journal[journal.kind == "funding"]
    assert len(rows) > 0 and (rows.step == 479).all()
    assert rows.amount.sum() == pytest.approx(0.0, abs=1e-9)  # what longs pay, shorts receive
    assert rows.amount.clip(lower=0).sum() == pytest.approx(payments.funding_paid.iloc[0])
    # The rate paid is the estimate recorded on the payment step, within the cap.
    assert abs(payments.funding_rate.iloc[0]) <= model.config.market.funding.cap


def test_funding_can_be_switched_off():
    model = MarketModel("calm", rng=3, steps=500, **{"market.funding.enabled": False})
    model.run()
    result = model.results()
    assert model.market.funding is None
    assert (result.timeseries[["premium_index", "funding_rate", "funding_paid"]].to_numpy() == 0).all()
    assert not (result.ledger.kind == "funding").any()


def test_the_premium_follows_the_book_in_a_crash():
    # The spiral's index drops 4% at step 300 while the book is still near 100: the book stands above
    # the index (a positive premium); then the liquidations carry it below (a negative one).
    model = MarketModel("spiral", rng=7)
    model.run()
    ts = model.results().timeseries.set_index("step")
    calm = ts.loc[:299, "premium_index"]
    assert calm.abs().median() < 0.001
    assert ts.loc[300, "premium_index"] > 0.02
    assert ts.loc[300:, "premium_index"].min() < -0.02
    first_liquidation = ts.index[ts.liquidations > 0][0]
    assert ts.loc[first_liquidation:, "premium_index"].idxmin() > first_liquidation
