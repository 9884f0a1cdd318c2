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
