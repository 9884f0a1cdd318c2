"""The margin check: one vectorised pass over accounts x instruments.

For every account ``a`` and instrument ``i`` at the marks ``m``::

    notional[a, i]    = |position[a, i]| * m[i] * contract_size[i]
    initial[a, i], maintenance[a, i] = policy_i.requirements(notional[:, i])
    equity[a]         = collateral[a] + sum_i position[a, i] * (m[i] - entry[a, i]) * contract_size[i]

A cross-margined account is breached when ``equity < sum_i maintenance[a, i]`` and margin-called
when ``equity < sum_i maintenance[a, i] * (1 + call_buffer_i)`` but not breached. An isolated position
is an account of its own, so the same test applies to it alone. A portfolio-margined account meets
the portfolio rule's requirements instead of the sums (:mod:`abm.margin.portfolio`), and its call
buffer. Breached accounts come worst first (lowest equity / maintenance, then lowest id).

With one instrument and few holders (fewer than one account in ``_SPARSE_SHARE``) the pass does its
arithmetic over the holders alone (:meth:`MarginChecker._held_pass`), with the same figures.

A check whose inputs have not moved since the last one (the ledger's ``state_version``, the marks, and
every instrument's rates in force) is that check again: in a step where nobody trades and no mark
moves it costs a comparison, not a pass over the accounts (with portfolio-margined accounts it is
always made afresh, since their rule reviews itself). With ``verify_reuse`` every reuse is checked
against a fresh pass (runs with invariants checked turn it on).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from abm.ledger import MARGIN_MODES, Ledger
from abm.margin.policy import MarginPolicy

_PORTFOLIO = MARGIN_MODES.index("portfolio")
# One instrument and fewer holders than 1 in this many accounts: the pass runs over the holders only
# (0: never).
_SPARSE_SHARE = 4

__all__ = ["MarginCheck", "MarginChecker"]


@dataclass(slots=True)
class MarginCheck:
    """Result of one margin pass (arrays over the accounts; per-position ones over accounts x instruments).

    Attributes:
        marks: The marks it was taken at, one per instrument.
        equity: Account equity.
        notional: Gross notional of each account (sum over its positions).
        initial_requirement: Initial margin of each account (sum over its positions).
        maintenance_requirement: Maintenance margin of each account (sum over its positions).
        breached: Ids of the accounts below maintenance, worst first.
        called: Mask of the accounts inside the margin-call buffer but not breached.
        exposed: Mask of the margin-checked accounts that hold a position.
        position_notional: Notional per position.
        position_initial: Initial margin per position (computed when first read, where rules are
            linear: most steps never read it).
        position_maintenance: Maintenance margin per position (likewise).
        reduce_only: Mask of the accounts a portfolio rule lets only cut (exposed, not breached), or
            None when the rule has no such rung.
    """

    marks: np.ndarray
    equity: np.ndarray
    notional: np.ndarray
    initial_requirement: np.ndarray
    maintenance_requirement: np.ndarray
    breached: np.ndarray
    called: np.ndarray
    exposed: np.ndarray
    position_notional: np.ndarray
    _position_initial: np.ndarray | None = None
    _position_maintenance: np.ndarray | None = None
    _rates: tuple[np.ndarray, np.ndarray] | None = None  # linear rules: requirement = notional x rate
    reduce_only: np.ndarray | None = None  # accounts that may only cut (a portfolio rule's rung)

    @property
    def position_initial(self) -> np.ndarray:
        """Initial margin per position."""
        if self._position_initial is None:
            self._position_initial = self.position_notional * self._rates[0]
        return self._position_initial

    @property
    def position_maintenance(self) -> np.ndarray:
        """Maintenance margin per position."""
        if self._position_maintenance is None:
            self._position_maintenance = self.position_notional * self._rates[1]
        return self._position_maintenance

    def position_rows(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Initial and maintenance margin per position of some accounts only (without forming them all)."""
        return _position_rows(
            self.position_notional, self._position_initial, self._position_maintenance, self._rates, rows
        )

    def exposed_totals(self) -> tuple[np.ndarray, np.ndarray]:
        """Initial margin and notional per instrument, summed over the exposed accounts.

        One product with the exposed mask per table, without forming the per-position margin when the
        rules are linear.
        """
        weights = self.exposed.astype(np.float64)
        notional = weights @ self.position_notional
        if self._position_initial is None and self._rates is not None:
            return notional * self._rates[0], notional
        return weights @ self.position_initial, notional


# What a reused check is compared on (verify_reuse): every field a caller reads.
_COMPARED_FIELDS = (
    "equity",
    "notional",
    "initial_requirement",
    "maintenance_requirement",
    "breached",
    "called",
    "exposed",
    "position_notional",
)


def _same_check(kept: MarginCheck, fresh: MarginCheck, step: int) -> None:
    # A reused check must be the fresh one, field by field; a difference names the accounts.
    for name in _COMPARED_FIELDS:
        before, now = getattr(kept, name), getattr(fresh, name)
        if not np.array_equal(before, now, equal_nan=True):
            from abm.errors import InvariantError

            if name == "breached" or before.shape != now.shape:
                accounts = np.setxor1d(before, now) if name == "breached" else np.zeros(0, dtype=np.int64)
            else:
                differs = before != now
                accounts = np.flatnonzero(differs.any(axis=1) if differs.ndim == 2 else differs)
            raise InvariantError(
                f"step {step}: margin check reused while its inputs moved: {name} differs for accounts "
                f"{[int(a) for a in accounts[:10]]} (a ledger operation that does not advance "
                "Ledger.state_version)",
                step=step,
                invariant="margin_check_reuse",
                accounts=accounts[:10],
            )


def _position_rows(notional, initial, maintenance, rates, rows) -> tuple[np.ndarray, np.ndarray]:
    # The accounts' rows of the per-position requirements: under linear rules notional x rate for those
    # rows alone (the full arrays are formed only when read).
    if initial is None:
        selected = notional[rows]
        return selected * rates[0], selected * rates[1]
    return initial[rows], maintenance[rows]


class MarginChecker:
    """The exchange's risk engine: the margin policy of each instrument applied to the ledger.

    Args:
        ledger: The ledger it reads.
        policies: One margin policy per instrument, in the ledger's column order.
        call_buffers: One margin-call buffer per instrument (a call when equity falls below
            maintenance x (1 + buffer)).
        portfolio_rule: The rule of portfolio-margined accounts (None: there are none).
    """

    def __init__(
        self,
        ledger: Ledger,
        policies: Sequence[MarginPolicy],
        call_buffers: Sequence[float],
        portfolio_rule=None,
    ) -> None:
        if len(policies) != ledger.n_instruments or len(call_buffers) != ledger.n_instruments:
            raise ValueError("one margin policy and one call buffer per instrument")
        self.ledger = ledger
        self.policies = list(policies)
        self.call_buffers = [float(buffer) for buffer in call_buffers]
        self.portfolio_rule = portfolio_rule
        self._has_portfolio_accounts = False  # set by uses_portfolio(); the common case skips the rule
        self._last: tuple[int, tuple[tuple[float, float], ...], MarginCheck] | None = None
        self.verify_reuse = False  # check every reused result against a fresh pass (see the module)
        self.reused = 0  # checks answered by the last one (for benchmarks and tests)

    @property
    def has_portfolio_accounts(self) -> bool:
        """Whether some account is portfolio-margined (see :meth:`uses_portfolio`)."""
        return self._has_portfolio_accounts

    def uses_portfolio(self) -> None:
        """Note that some accounts are portfolio-margined (they need the portfolio rule)."""
        if self.portfolio_rule is None:
            raise ValueError("portfolio-margined accounts need a portfolio rule")
        self._has_portfolio_accounts = True

    def check(self, marks) -> MarginCheck:
        """One vectorised pass: equity, requirements, breaches (worst first) and calls.

        The result is read-only by contract: it may be given again while nothing it depends on moves.
        """
        marks = np.asarray(marks, dtype=np.float64)
        if self._has_portfolio_accounts:
            return self._pass(marks)
        version = self.ledger.state_version
        rates = tuple((policy.imr, policy.mmr) for policy in self.policies)
        last = self._last
        if (
            last is not None
            and last[0] == version
            and last[1] == rates
            # Lists of Python floats: an eighth of np.array_equal's cost for a few marks, the same
            # answer (NaN equal to nothing, as without equal_nan).
            and last[2].marks.tolist() == marks.tolist()
        ):
            self.reused += 1
            if self.verify_reuse:
                _same_check(last[2], self._pass(marks), self.ledger.step)
            return last[2]
        check = self._pass(marks)
        self._last = (version, rates, check)
        return check

    def _pass(self, marks: np.ndarray) -> MarginCheck:
        """The pass over every account."""
        ledger = self.ledger
        n = ledger.n_accounts
        if ledger.n_instruments == 1 and not self._has_portfolio_accounts:
            position = ledger.position[:, 0]
            holding = position != 0  # nonzero on a mask: a seventh of its cost on int64 positions
            if _SPARSE_SHARE and np.count_nonzero(holding) * _SPARSE_SHARE < n:
                return self._held_pass(marks, position, np.flatnonzero(holding))
        if ledger.n_instruments == 1:
            position = ledger.position[:, 0]
            mark = marks[0]
            contract = ledger.contract_sizes[0]
            notional = np.abs(position) * (mark * contract)
            equity = ledger.collateral + position * (mark - ledger.entry_price[:, 0]) * contract
            initial_req, maintenance_req = self.policies[0].requirements(notional)
            exposed = position != 0
            buffered = maintenance_req * (1.0 + self.call_buffers[0]) if self.call_buffers[0] > 0.0 else None
            per_position = (notional[:, None], initial_req[:, None], maintenance_req[:, None], None)
        else:
            initial_req, maintenance_req, notional, equity, exposed, buffered, per_position = self._several(
                marks
            )
        reduce_line = None
        if self._has_portfolio_accounts:
            initial_req, maintenance_req, buffered, reduce_line = self._portfolio_requirements(
                marks, per_position, initial_req, maintenance_req, buffered
            )
        # In-place masks: each full-length temporary costs as much as the arithmetic at 1e5 accounts.
        exposed &= ledger.checked
        breached_mask = equity < maintenance_req
        breached_mask &= exposed
        breached = np.flatnonzero(breached_mask)
        if buffered is not None:
            called = equity < buffered
            called &= exposed
            called[breached] = False
        else:
            called = np.zeros(n, dtype=bool)  # no buffer: nobody is between the two thresholds
        reduce_only = None
        if reduce_line is not None:
            reduce_only = equity < reduce_line
            reduce_only &= exposed
            reduce_only[breached] = False
        if len(breached) > 1:
            ratio = equity[breached] / np.maximum(maintenance_req[breached], 1e-300)
            breached = breached[np.lexsort((breached, ratio))]
        return MarginCheck(
            marks,
            equity,
            notional,
            initial_req,
            maintenance_req,
            breached,
            called,
            exposed,
            *per_position,
            reduce_only=reduce_only,
        )

    def _held_pass(self, marks: np.ndarray, position: np.ndarray, held: np.ndarray) -> MarginCheck:
        """:meth:`_pass` with one instrument when few accounts hold a position: the arithmetic over those.

        A flat account has notional and requirements 0, equity ``collateral + 0.0`` (its term of
        the sum is 0 times a finite number), and is neither breached nor called; every figure of a
        held account is computed as in the full pass, element by element (requirements are functions
        of each notional alone), so the check is the same, bit for bit (``tests/test_check_reuse.py``).
        """
        ledger = self.ledger
        n = ledger.n_accounts
        held_position = position[held]
        mark = marks[0]
        contract = ledger.contract_sizes[0]
        held_notional = np.abs(held_position) * (mark * contract)
        held_equity = (
            ledger.collateral[held] + held_position * (mark - ledger.entry_price[held, 0]) * contract
        )
        held_initial, held_maintenance = self.policies[0].requirements(held_notional)
        equity = ledger.collateral + 0.0
        equity[held] = held_equity
        notional = np.zeros(n)
        notional[held] = held_notional
        initial_req = np.zeros(n)
        initial_req[held] = held_initial
        maintenance_req = np.zeros(n)
        maintenance_req[held] = held_maintenance
        checked = ledger.checked[held]
        held = held[checked]  # the margin-checked holders: the exposed accounts
        exposed = np.zeros(n, dtype=bool)
        exposed[held] = True
        held_equity, held_maintenance = held_equity[checked], held_maintenance[checked]
        breached = held[held_equity < held_maintenance]
        called = np.zeros(n, dtype=bool)
        if self.call_buffers[0] > 0.0:
            inside = held_equity < held_maintenance * (1.0 + self.call_buffers[0])
            inside &= held_equity >= held_maintenance
            called[held[inside]] = True
        if len(breached) > 1:
            ratio = equity[breached] / np.maximum(maintenance_req[breached], 1e-300)
            breached = breached[np.lexsort((breached, ratio))]
        return MarginCheck(
            marks,
            equity,
            notional,
            initial_req,
            maintenance_req,
            breached,
            called,
            exposed,
            notional[:, None],
            initial_req[:, None],
            maintenance_req[:, None],
            None,
            reduce_only=None,
        )

    def _several(self, marks: np.ndarray):
        """The accounts' sums over several instruments (one matrix product each where rules are linear)."""
        ledger = self.ledger
        position = ledger.position
        contract = ledger.contract_sizes
        # In place on one float copy: an int-by-float product costs more than the copy.
        position_notional = position.astype(np.float64)
        np.abs(position_notional, out=position_notional)
        position_notional *= marks * contract
        # equity = collateral + sum_i position (mark - entry) contract: one temporary, one product.
        pnl = marks - ledger.entry_price
        pnl *= position
        equity = ledger.collateral + pnl @ contract
        buffers = np.array(self.call_buffers)
        # Sums over instruments as products with ones: numpy's reduction along a short row is several
        # times slower.
        ones = np.ones(len(self.policies))
        linear = [policy.linear_rates() for policy in self.policies]
        if all(rates is not None for rates in linear):
            # Every rule is one bracket: requirement = notional x rate, so the sums over instruments are
            # products with the rate vectors (the fixed rule and every one-bracket rule).
            initial_rates = np.array([rates[0] for rates in linear])
            maintenance_rates = np.array([rates[1] for rates in linear])
            position_initial = position_maintenance = None  # formed when read (MarginCheck)
            rates = (initial_rates, maintenance_rates)
            initial_req = position_notional @ initial_rates
            maintenance_req = position_notional @ maintenance_rates
            buffered = (
                position_notional @ (maintenance_rates * (1.0 + buffers)) if (buffers > 0.0).any() else None
            )
        else:
            rates = None
            position_initial = np.empty_like(position_notional)
            position_maintenance = np.empty_like(position_notional)
            for instrument, policy in enumerate(self.policies):
                position_initial[:, instrument], position_maintenance[:, instrument] = policy.requirements(
                    position_notional[:, instrument]
                )
            initial_req = position_initial @ ones
            maintenance_req = position_maintenance @ ones
            buffered = position_maintenance @ (1.0 + buffers) if (buffers > 0.0).any() else None
        notional = position_notional @ ones
        # Marks and contract sizes are positive: an account holds a position exactly when its notional is.
        exposed = notional > 0.0
        per_position = (position_notional, position_initial, position_maintenance, rates)
        return initial_req, maintenance_req, notional, equity, exposed, buffered, per_position

    def _portfolio_requirements(self, marks, per_position, initial_req, maintenance_req, buffered):
        """The portfolio rule's requirements (and call thresholds) for the portfolio accounts."""
        ledger = self.ledger
        accounts = np.flatnonzero(ledger.margin_mode == _PORTFOLIO)
        if len(accounts) == 0:
            return initial_req, maintenance_req, buffered, None
        initial_rows, maintenance_rows = _position_rows(*per_position, accounts)
        initial, maintenance = self.portfolio_rule.requirements(
            ledger.position[accounts], marks, initial_rows, maintenance_rows
        )
        initial_req = np.array(initial_req, copy=True)
        maintenance_req = np.array(maintenance_req, copy=True)
        initial_req[accounts] = initial
        maintenance_req[accounts] = maintenance
        buffered = maintenance_req.copy() if buffered is None else np.array(buffered, copy=True)
        buffered[accounts] = maintenance * (1.0 + self.portfolio_rule.call_buffer)
        threshold = self.portfolio_rule.reduce_only_threshold(maintenance)
        reduce_line = None
        if threshold is not None:
            reduce_line = np.full(len(maintenance_req), -np.inf)
            reduce_line[accounts] = threshold
        return initial_req, maintenance_req, buffered, reduce_line

    def account_requirements(self, account: int, marks) -> tuple[float, float]:
        """One account's initial and maintenance requirements now (the portfolio rule's, if it has one)."""
        ledger = self.ledger
        k = ledger.n_instruments
        initial = np.zeros((1, k))
        maintenance = np.zeros((1, k))
        for instrument, policy in enumerate(self.policies):
            lots = ledger.position_of(account, instrument)
            if lots:
                notional = np.array([abs(lots) * marks[instrument] * ledger.contract_sizes[instrument]])
                im, mm = policy.requirements(notional)
                initial[0, instrument], maintenance[0, instrument] = im[0], mm[0]
        if self._has_portfolio_accounts and ledger.margin_mode[account] == _PORTFOLIO:
            im, mm = self.portfolio_rule.requirements(
                ledger.position[account : account + 1], np.asarray(marks), initial, maintenance
            )
            return float(im[0]), float(mm[0])
        return float(initial.sum()), float(maintenance.sum())

    def requirements(self, instrument: int, notional: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Initial and maintenance requirements of positions in one instrument with these notionals."""
        return self.policies[instrument].requirements(notional)

    def max_position(self, account: int, instrument: int, marks) -> int:
        """Largest absolute position (lots) in ``instrument`` the account's equity supports at opening rates.

        The equity left after the initial margin of its other positions backs this one: the largest
        position whose initial requirement, bracket by bracket, fits in it.
        """
        ledger = self.ledger
        equity = ledger.account_equity(account, marks)
        for other, policy in enumerate(self.policies):
            lots = ledger.position_of(account, other)
            if other != instrument and lots:
                notional = np.array([abs(lots) * marks[other] * ledger.contract_sizes[other]])
                equity -= float(policy.requirements(notional)[0][0])
        if equity <= 0.0:
            return 0
        mark = marks[instrument]
        contract = ledger.contract_sizes[instrument]
        notional = self.policies[instrument].max_opening_notional(equity)
        return int(notional / (mark * contract))
