"""A small exchange for tests: one instrument ("X", tick 1, contract 1), fixed margin, an empty book."""

import numpy as np

from abm.exchange import Exchange
from abm.invariants import check_ledger


def make_exchange(fund=0.0, maintenance=0.05, initial=0.10, call_buffer=0.2, **liquidation):
    exchange = Exchange.single(
        initial=initial, maintenance=maintenance, call_buffer=call_buffer, insurance_fund=fund, **liquidation
    )
    exchange.ledger.begin_step(0)
    return exchange


def constant(mark):
    """A marks function that always gives ``mark`` (one instrument)."""
    return lambda: np.array([float(mark)])


def check(exchange, step, mark):
    """Every ledger invariant at ``mark`` (raises InvariantError)."""
    return check_ledger(exchange.ledger, step, [mark])


def make_pair_exchange(fund=0.0, maintenance=0.05, initial=0.10, correlation=None, **liquidation):
    """Two instruments ("X", "Y": tick 1, contract 1) under the same fixed rule, empty books.

    ``correlation`` (between X and Y) sets up the correlation-offset portfolio rule.
    """
    from abm.config import LiquidationConfig
    from abm.ledger import Instrument
    from abm.margin.portfolio import build_portfolio_rule
    from abm.margin.settings import FixedMargin

    margin = FixedMargin(rule="fixed", initial=initial, maintenance=maintenance, call_buffer=0.0)
    instruments = [Instrument("X", 1.0, 1.0), Instrument("Y", 1.0, 1.0)]
    portfolio = None
    if correlation is not None:
        portfolio = build_portfolio_rule(None, np.array([[1.0, correlation], [correlation, 1.0]]))
    exchange = Exchange.build(
        instruments,
        [margin, margin],
        LiquidationConfig(insurance_fund=fund, **liquidation),
        portfolio_rule=portfolio,
    )
    exchange.ledger.begin_step(0)
    return exchange
