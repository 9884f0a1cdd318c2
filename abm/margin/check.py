"""The margin check: one vectorised pass over accounts x instruments.

For every account ``a`` and instrument ``i`` at the marks ``m``::

    notional[a, i]    = |position[a, i]| * m[i] * contract_size[i]
    initial[a, i], maintenance[a, i] = policy_i.requirements(notional[:, i])
    equity[a]         = collateral[a] + sum_i position[a, i] * (m[i] - entry[a, i]) * contract_size[i]

A cross-margined account is breached when ``equity < sum_i maintenance[a, i]`` and margin-called
when ``equity < sum_i maintenance[a, i] * (1 + call_buffer_i)`` but not breached. Breached accounts
come worst first (lowest equity / maintenance, then lowest id).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from abm.ledger import Ledger
from abm.margin.policy import MarginPolicy

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
        position_initial: Initial margin per position.
        position_maintenance: Maintenance margin per position.
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
    position_initial: np.ndarray
    position_maintenance: np.ndarray


class MarginChecker:
    """The exchange's risk engine: the margin policy of each instrument applied to the ledger.

    Args:
        ledger: The ledger it reads.
        policies: One margin policy per instrument, in the ledger's column order.
        call_buffers: One margin-call buffer per instrument (a call when equity falls below
            maintenance x (1 + buffer)).
    """

    def __init__(
        self, ledger: Ledger, policies: Sequence[MarginPolicy], call_buffers: Sequence[float]
    ) -> None:
        if len(policies) != ledger.n_instruments or len(call_buffers) != ledger.n_instruments:
            raise ValueError("one margin policy and one call buffer per instrument")
        self.ledger = ledger
        self.policies = list(policies)
        self.call_buffers = [float(buffer) for buffer in call_buffers]

    def check(self, marks) -> MarginCheck:
        """One vectorised pass: equity, requirements, breaches (worst first) and calls."""
        ledger = self.ledger
        n = ledger.n_accounts
        marks = np.asarray(marks, dtype=np.float64)
        if ledger.n_instruments == 1:
            position = ledger.position[:, 0]
            mark = marks[0]
            contract = ledger.contract_sizes[0]
            notional = np.abs(position) * (mark * contract)
            equity = ledger.collateral + position * (mark - ledger.entry_price[:, 0]) * contract
            initial_req, maintenance_req = self.policies[0].requirements(notional)
            exposed = position != 0
            buffered = maintenance_req * (1.0 + self.call_buffers[0]) if self.call_buffers[0] > 0.0 else None
            per_position = (notional[:, None], initial_req[:, None], maintenance_req[:, None])
        else:
            position = ledger.position
            position_notional = np.abs(position) * (marks * ledger.contract_sizes)
            equity = ledger.collateral + (
                position * (marks - ledger.entry_price) * ledger.contract_sizes
            ).sum(axis=1)
            position_initial = np.empty_like(position_notional)
            position_maintenance = np.empty_like(position_notional)
            for instrument, policy in enumerate(self.policies):
                position_initial[:, instrument], position_maintenance[:, instrument] = policy.requirements(
                    position_notional[:, instrument]
                )
            notional = position_notional.sum(axis=1)
            initial_req = position_initial.sum(axis=1)
            maintenance_req = position_maintenance.sum(axis=1)
            exposed = (position != 0).any(axis=1)
            buffers = np.array(self.call_buffers)
            buffered = (position_maintenance * (1.0 + buffers)).sum(axis=1) if (buffers > 0.0).any() else None
            per_position = (position_notional, position_initial, position_maintenance)
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
        if len(breached) > 1:
            ratio = equity[breached] / np.maximum(maintenance_req[breached], 1e-300)
            breached = breached[np.lexsort((breached, ratio))]
        return MarginCheck(
            marks, equity, notional, initial_req, maintenance_req, breached, called, exposed, *per_position
        )

    def requirements(self, instrument: int, notional: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Initial and maintenance requirements of positions in one instrument with these notionals."""
        return self.policies[instrument].requirements(notional)

    def account_initial_requirement(self, account: int, marks) -> float:
        """The initial margin one account's positions need now (summed over its instruments)."""
        ledger = self.ledger
        total = 0.0
        for instrument, policy in enumerate(self.policies):
            lots = ledger.position_of(account, instrument)
            if lots:
                notional = np.array([abs(lots) * marks[instrument] * ledger.contract_sizes[instrument]])
                total += float(policy.requirements(notional)[0][0])
        return total

    def max_position(self, account: int, instrument: int, marks) -> int:
        """Largest absolute position (lots) in ``instrument`` the account's equity supports at opening rates.

        The equity left after the initial margin of its other positions backs this one, priced at the
        opening initial rate of its current notional.
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
        notional = np.array([abs(ledger.position_of(account, instrument)) * mark * contract])
        rate = float(self.policies[instrument].opening_initial_rate(notional)[0])
        return int(equity / (rate * mark * contract))
