"""A small clearing house for tests: an empty book, a fixed margin rule, unit contract and tick."""

from abm.book import OrderBook
from abm.clearing import Clearing
from abm.config.schema import LiquidationConfig
from abm.margin import build_margin_policy
from abm.margin.settings import FixedMargin


def make_clearing(fund=0.0, maintenance=0.05, initial=0.10, **liquidation):
    book = OrderBook()
    policy = build_margin_policy(FixedMargin(rule="fixed", initial=initial, maintenance=maintenance))
    settings = LiquidationConfig(insurance_fund=fund, **liquidation)
    clearing = Clearing(book, policy, settings, contract_size=1.0, tick_size=1.0, call_buffer=0.2)
    return book, clearing
