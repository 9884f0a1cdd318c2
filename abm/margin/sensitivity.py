"""What risk teams read off an account: utilisation, buffer above maintenance, distance to liquidation.

For each account, at given marks:

* ``utilisation = initial requirement / equity`` (margin used over equity; above 1 the account can open
  nothing);
* ``buffer = equity / maintenance - 1`` (the collateral kept above the liquidation line, as a share of
  maintenance; below 0 the account is liquidated);
* ``distance_to_liquidation``: the smallest relative move of one instrument's mark, against the
  account's position in it, that brings its equity under its maintenance with every other mark held;
* ``joint_distance_to_liquidation``: the same for a move of every mark together, the nearer of a fall
  and a rise (a hedged book may be liquidated by either, or by neither: inf).

The moves are found by bisection (40 halvings, so to about 1e-12 of the search range: falls up to
99.9%, rises up to 1,000%), vectorised over accounts; a move that liquidates only inside the range but
not at its end (a hedge whose loss turns back) is not searched for, and counts as inf. A move of the
mark of instrument ``i`` by a factor ``1 + x`` changes a future's exposure ``lots x contract x mark``
as a position ``lots x (1 + x)`` at the old mark would, so every rule, the portfolio rules included,
is asked at the current marks with positions scaled per account: each account moves by its own
amount in one pass.
"""

from __future__ import annotations

import numpy as np

from abm.ledger import MARGIN_MODES

__all__ = ["AccountSensitivity", "account_sensitivity"]

_PORTFOLIO = MARGIN_MODES.index("portfolio")
_HALVINGS = 40
_LARGEST_FALL = 0.999
_LARGEST_RISE = 10.0


class AccountSensitivity:
    """The figures of :func:`account_sensitivity`, one array per figure.

    Attributes:
        accounts: The account ids, in the order of every array.
        equity, initial, maintenance: ``(accounts,)`` at the marks.
        utilisation, buffer: ``(accounts,)``; NaN without positive equity / maintenance.
        distance: ``(accounts, instruments)``: the adverse move of each instrument alone (NaN for a flat
            position, inf when no move up to the search range liquidates).
        joint_distance: ``(accounts,)``: every mark together.
    """

    def __init__(self, accounts, equity, initial, maintenance, distance, joint_distance) -> None:
        self.accounts = accounts
        self.equity = equity
        self.initial = initial
        self.maintenance = maintenance
        with np.errstate(divide="ignore", invalid="ignore"):
            self.utilisation = np.where(equity > 0, initial / equity, np.nan)
            self.buffer = np.where(maintenance > 0, equity / maintenance - 1.0, np.nan)
        self.distance = distance
        self.joint_distance = joint_distance


def _shortfall(checker, accounts: np.ndarray, marks: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """``equity - maintenance`` of the accounts, each mark scaled by ``factors`` (per account)."""
    ledger = checker.ledger
    position = ledger.position[accounts].astype(np.float64)
    contract = ledger.contract_sizes
    moved = marks * factors  # each account's own marks
    equity = ledger.collateral[accounts] + (position * (moved - ledger.entry_price[accounts])) @ contract
    notional = np.abs(position) * moved * contract
    initial = np.empty_like(notional)
    maintenance = np.empty_like(notional)
    for column, policy in enumerate(checker.policies):
        initial[:, column], maintenance[:, column] = policy.requirements(notional[:, column])
    required = maintenance.sum(axis=1)
    if checker.has_portfolio_accounts:
        portfolio = ledger.margin_mode[accounts] == _PORTFOLIO
        if portfolio.any():
            # A future's exposure at mark m (1 + x) is that of lots (1 + x) at m.
            _, held = checker.portfolio_rule.requirements(
                position[portfolio] * factors[portfolio],
                marks,
                initial[portfolio],
                maintenance[portfolio],
            )
            required[portfolio] = held
    return equity - required


def _bisect(checker, accounts, marks, direction: np.ndarray, moved: np.ndarray, limit: float) -> np.ndarray:
    """Smallest ``x`` in (0, limit] with a breach when the ``moved`` marks go ``direction * x`` (else inf)."""
    k = len(marks)
    count = len(accounts)
    mask = np.broadcast_to(moved, (count, k)).astype(np.float64)

    def breached(x: np.ndarray) -> np.ndarray:
        factors = 1.0 + (direction * x)[:, None] * mask
        return _shortfall(checker, accounts, marks, factors) < 0.0

    high = np.full(count, limit)
    result = np.full(count, np.inf)
    reached = breached(high)
    low = np.zeros(count)
    for _ in range(_HALVINGS):
        middle = 0.5 * (low + high)
        hit = breached(middle)
        high = np.where(hit, middle, high)
        low = np.where(hit, low, middle)
    result[reached] = high[reached]
    return result


def _closed_form(equity, maintenance, exposure, rates) -> tuple[np.ndarray, np.ndarray]:
    """Distances when every requirement is notional x rate and no account is portfolio-margined.

    One instrument alone, against the position (``a = |lots| x contract x mark``, ``b = a x mmr``): a
    fall ``x`` costs a long ``a x`` and lowers maintenance by ``b x``, so ``x = (E - M) / (a - b)``; a
    rise costs a short ``a x`` and raises it by ``b x``: ``x = (E - M) / (a + b)``. Every mark by
    ``1 + s x``: equity ``E + s x A`` (``A`` the signed exposures' sum), maintenance ``M (1 + s x)``:
    a fall liquidates at ``(E - M) / (A - M)`` when ``A > M``, a rise at ``(E - M) / (M - A)`` when
    ``A < M``.
    """
    room = (equity - maintenance)[:, None]
    size = np.abs(exposure)
    adverse = size - np.sign(exposure) * size * rates  # a - b for a long, a + b for a short
    with np.errstate(divide="ignore", invalid="ignore"):
        distance = np.where(exposure != 0, room / adverse, np.nan)
        limit = np.where(exposure > 0, _LARGEST_FALL, _LARGEST_RISE)
        distance = np.where((exposure != 0) & (distance > limit), np.inf, distance)
        total = exposure.sum(axis=1)
        fall = np.where(total > maintenance, room[:, 0] / (total - maintenance), np.inf)
        rise = np.where(total < maintenance, room[:, 0] / (maintenance - total), np.inf)
    fall = np.where(fall > _LARGEST_FALL, np.inf, fall)
    rise = np.where(rise > _LARGEST_RISE, np.inf, rise)
    return distance, np.minimum(fall, rise)


def account_sensitivity(checker, marks, accounts, *, exact: bool = False) -> AccountSensitivity:
    """Utilisation, buffer and distances to liquidation of these accounts at these marks.

    Args:
        checker: The exchange's :class:`~abm.margin.check.MarginChecker` (its ledger, rules).
        marks: The marks, one per instrument.
        accounts: Account ids.
        exact: Always search by bisection (else linear rules without portfolio accounts use the
            closed form of :func:`_closed_form`, the same figures).

    Returns:
        The figures (see the module docstring).
    """
    accounts = np.asarray(accounts, dtype=np.int64)
    marks = np.asarray(marks, dtype=np.float64)
    ledger = checker.ledger
    k = ledger.n_instruments
    check = checker.check(marks)
    equity = check.equity[accounts]
    initial = check.initial_requirement[accounts]
    maintenance = check.maintenance_requirement[accounts]
    position = ledger.position[accounts]
    distance = np.full((len(accounts), k), np.nan)
    joint = np.full(len(accounts), np.nan)
    exposed = np.flatnonzero((position != 0).any(axis=1) & (equity >= maintenance))
    linear = [policy.linear_rates() for policy in checker.policies]
    if len(exposed) and not exact and not checker.has_portfolio_accounts and all(linear):
        exposure = position[exposed] * (marks * ledger.contract_sizes)
        rates = np.array([pair[1] for pair in linear])
        distance[exposed], joint[exposed] = _closed_form(
            equity[exposed], maintenance[exposed], exposure, rates
        )
    elif len(exposed):
        held = accounts[exposed]
        for column in range(k):
            lots = position[exposed, column]
            rows = np.flatnonzero(lots != 0)
            if len(rows) == 0:
                continue
            one = np.zeros(k, dtype=bool)
            one[column] = True
            falls = lots[rows] > 0  # a long is liquidated by a fall, a short by a rise
            found = np.empty(len(rows))
            for is_fall, limit in ((True, _LARGEST_FALL), (False, _LARGEST_RISE)):
                chosen = rows[falls == is_fall]
                if len(chosen):
                    sign = np.full(len(chosen), -1.0 if is_fall else 1.0)
                    found[falls == is_fall] = _bisect(checker, held[chosen], marks, sign, one, limit)
            distance[exposed[rows], column] = found
        every = np.ones(k, dtype=bool)
        fall = _bisect(checker, held, marks, np.full(len(held), -1.0), every, _LARGEST_FALL)
        rise = _bisect(checker, held, marks, np.ones(len(held)), every, _LARGEST_RISE)
        joint[exposed] = np.minimum(fall, rise)
    # Accounts under maintenance already: no move is needed.
    breached = (position != 0).any(axis=1) & (equity < maintenance)
    distance[breached] = np.where(position[breached] != 0, 0.0, np.nan)
    joint[breached] = 0.0
    return AccountSensitivity(accounts, equity, initial, maintenance, distance, joint)
