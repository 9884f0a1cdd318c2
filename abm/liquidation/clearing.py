"""A clearing house's default waterfall (``liquidation.design: ccp``).

When a clearing member defaults, central counterparties cover what its margin does not in a fixed
order (CPMI-IOSCO PFMI Principle 4; EMIR Art. 45): the defaulter's own default-fund contribution, the
CCP's own capital set aside for this ("skin in the game"), the surviving members' default fund, and
then assessments on the survivors, capped. Here every account the margin check covers is a member;
at the first liquidation pass each member's contribution is ``default_fund_share`` of its collateral
then, held in a default-fund account (outside money, like the insurance fund: the contribution does
not come out of the member's trading collateral); the house's capital is an account of its own.
Assessments do come out of the survivors' collateral, pro rata to their contributions, each at most
``assessment_cap`` times its contribution. What is left after all four goes to the insurance fund as
before (and is socialised if the fund cannot pay).

Example: a member with contribution 10 defaults 100 short; the house's capital is 20; the survivors'
contributions are 30 and 60 (fund 100 in all); the cap is one contribution.

>>> from abm.config import LiquidationConfig
>>> from abm.ledger import Instrument, Ledger
>>> ledger = Ledger([Instrument("X", 1.0, 1.0)])
>>> defaulter, a, b = ledger.add_accounts(3, [100.0, 300.0, 600.0], "noise").tolist()
>>> house = ClearingHouse.open(ledger, LiquidationConfig(default_fund_share=0.1, ccp_capital=20.0))
>>> ledger.withdraw(defaulter, 200.0)  # collateral 100 - 200 = -100: the deficit to cover
>>> house.cover(defaulter)  # 10 own + 20 capital + 70 of the survivors' 90
100.0
>>> round(house.fund_balance(), 6), house.capital_balance()  # 100 - 10 - 70 left in the fund
(20.0, 0.0)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from abm.config import LiquidationConfig
from abm.ledger import ENGINE, Ledger

__all__ = ["ClearingHouse"]


@dataclass
class ClearingHouse:
    """The default fund and the house's capital, with each member's contribution.

    Attributes:
        ledger: The ledger.
        fund_account: The default fund's account.
        capital_account: The house's capital's account.
        contribution: Each account's contribution (0 for non-members), as paid in.
        claim: What is left of each contribution (used first for its own member's default, then for
            others' pro rata).
        assessed: What each survivor has been assessed so far.
        assessment_cap: Assessments at most this many times a contribution.
    """

    ledger: Ledger
    fund_account: int
    capital_account: int
    contribution: np.ndarray
    claim: np.ndarray
    assessed: np.ndarray
    assessment_cap: float

    @classmethod
    def open(cls, ledger: Ledger, settings: LiquidationConfig, open_account=None) -> ClearingHouse:
        """Open the default fund (contributions of every checked account's collateral) and the capital.

        Args:
            ledger: The ledger.
            settings: The liquidation settings (``default_fund_share``, ``ccp_capital``, ...).
            open_account: ``open_account(kind, collateral)`` opening an unchecked system account and
                returning its id (the population's in a model); the ledger's by default.
        """
        open_account = open_account or ledger.open_system_account
        members = np.flatnonzero(ledger.checked)
        contribution_of_members = settings.default_fund_share * np.maximum(ledger.collateral[members], 0.0)
        fund_account = open_account("default_fund", float(contribution_of_members.sum()))
        capital_account = open_account("ccp_capital", float(settings.ccp_capital))
        contribution = np.zeros(ledger.n_accounts)
        contribution[members] = contribution_of_members
        return cls(
            ledger=ledger,
            fund_account=fund_account,
            capital_account=capital_account,
            contribution=contribution,
            claim=contribution.copy(),
            assessed=np.zeros(ledger.n_accounts),
            assessment_cap=settings.assessment_cap,
        )

    def _fit(self) -> None:
        # Accounts opened since (traders joining in a shock) are not members: no contribution.
        missing = self.ledger.n_accounts - len(self.contribution)
        if missing > 0:
            self.contribution = np.concatenate([self.contribution, np.zeros(missing)])
            self.claim = np.concatenate([self.claim, np.zeros(missing)])
            self.assessed = np.concatenate([self.assessed, np.zeros(missing)])

    def weights(self, accounts: np.ndarray) -> np.ndarray:
        """The contributions of these accounts (0 for accounts opened after the fund)."""
        self._fit()
        return self.contribution[accounts]

    def fund_balance(self) -> float:
        """The default fund's money left."""
        return self.ledger.collateral_of(self.fund_account)

    def capital_balance(self) -> float:
        """The house's capital left."""
        return self.ledger.collateral_of(self.capital_account)

    def cover(self, account: int) -> float:
        """Cover a closed member's deficit in the waterfall's order; returns what was covered.

        Whatever is still negative afterwards is for the insurance fund.
        """
        ledger = self.ledger
        self._fit()
        covered = 0.0
        deficit = -ledger.collateral_of(account)
        # 1. its own contribution
        own = min(deficit, self.claim[account], self.fund_balance())
        if own > 0.0:
            ledger.transfer(self.fund_account, account, own, "default_fund")
            self.claim[account] -= own
            covered += own
            deficit -= own
        # 2. the house's capital
        capital = min(deficit, self.capital_balance())
        if capital > 0.0:
            ledger.transfer(self.capital_account, account, capital, "ccp_capital")
            covered += capital
            deficit -= capital
        # 3. the survivors' contributions, pro rata to what is left of them
        survivors = self.claim.copy()
        survivors[account] = 0.0
        pool = min(float(survivors.sum()), self.fund_balance())
        mutual = min(deficit, pool)
        if mutual > 0.0:
            ledger.transfer(self.fund_account, account, mutual, "default_fund")
            self.claim -= survivors * (mutual / float(survivors.sum()))
            covered += mutual
            deficit -= mutual
        # 4. assessments on the survivors, pro rata to their contributions, capped, from their collateral
        if deficit > 0.0 and self.assessment_cap > 0.0:
            weights = self.contribution.copy()
            weights[account] = 0.0
            room = np.maximum(self.assessment_cap * weights - self.assessed, 0.0)
            room = np.minimum(room, np.maximum(ledger.collateral[: len(room)], 0.0))
            room[ENGINE] = 0.0
            total_room = float(room.sum())
            if total_room > 0.0:
                take = min(deficit, total_room)
                charges = room * (take / total_room)
                payers = np.flatnonzero(charges)
                ledger.collect(payers, charges[payers], account, "assessment")
                self.assessed[payers] += charges[payers]
                covered += take
        return float(covered)
