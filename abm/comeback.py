"""Traders that come back: liquidated accounts re-enter after a delay, topped up from a reserve.

A leveraged group with ``comeback:`` does not lose its traders for good when they are liquidated. At the
end of every step with liquidations, :meth:`Comebacks.observe` finds the group's accounts whose
liquidation count rose (one vectorised comparison over the groups' accounts) and schedules each for
``delay`` steps later, plus a uniform ``0..spread-1`` steps when ``spread > 1`` (with ``share < 1``, one
uniform draw per liquidated account decides whether it comes back; nothing is drawn unless ``share <
1`` or ``spread > 1``, so a run whose returns never fall due keeps its random stream). When an
account's return is due (:meth:`Comebacks.due`, before the agents act), the model tops its equity up to
the configured collateral with a deposit drawn from the group's reserve and the trader re-opens its
position at its own leverage (:meth:`abm.agents.leveraged.LeveragedTrader.come_back`): by default with
a bid (a long; an ask for a short) at the touch, which fills as sellers arrive, so that returning
traders rebuild depth and leverage through the book; with ``order: market``, at once, whatever the book
holds (a wave of returns into a thin book then sweeps it).
An account still holding a position when its return is due (partly liquidated) waits for the next
liquidation instead.

The deposits are outside money (journalled ``deposit``; the conservation invariant counts them), so the
reserve is what the world outside the exchange puts back into leverage after a crash.

Example:
    >>> from abm import MarketModel
    >>> model = MarketModel("spiral", rng=7, **{"agents.1.comeback": {"delay": 50}})
    >>> model.run()
    >>> model.comebacks.returned, len(model.results().liquidations)  # all 200 liquidated longs came back
    (200, 200)
"""

from __future__ import annotations

import numpy as np

__all__ = ["Comebacks"]


class _GroupReturns:
    """One group's returns: its accounts, what it has drawn from the reserve, the pending returns."""

    def __init__(self, group) -> None:
        self.group = group
        self.settings = group.config.comeback
        self.accounts = np.empty(0, dtype=np.int64)
        self.seen = np.empty(0, dtype=np.int32)  # liquidation counts already scheduled for
        self.returns = np.empty(0, dtype=np.int64)  # returns made per account
        self.drawn = 0.0

    def refresh(self) -> None:
        """Follow the group's accounts (traders may join mid-run)."""
        accounts = self.group.accounts
        if len(accounts) != len(self.accounts):
            grown = len(accounts) - len(self.accounts)
            self.accounts = np.asarray(accounts, dtype=np.int64).copy()
            self.seen = np.concatenate([self.seen, np.zeros(grown, dtype=np.int32)])
            self.returns = np.concatenate([self.returns, np.zeros(grown, dtype=np.int64)])

    def remaining(self) -> float:
        reserve = self.settings.reserve
        return float("inf") if reserve is None else max(reserve - self.drawn, 0.0)


class Comebacks:
    """The pending returns of every leveraged group with ``comeback:`` settings.

    Args:
        groups: The population's groups (those without ``comeback`` are ignored).

    Attributes:
        returned: Returns made so far (accounts re-entered).
        deposited: Money the returns drew from the reserves so far.
    """

    def __init__(self, groups) -> None:
        self._population_groups = groups  # the population's list: groups joining mid-run are followed
        self._known = 0
        self._groups: list[_GroupReturns] = []
        self._follow_groups()
        self._due: dict[int, list[tuple[_GroupReturns, int]]] = {}
        self.returned = 0
        self.deposited = 0.0

    def _follow_groups(self) -> None:
        groups = self._population_groups
        for group in groups[self._known :]:
            if group.kind == "leveraged_trader" and group.config.comeback is not None:
                self._groups.append(_GroupReturns(group))
        self._known = len(groups)

    def __bool__(self) -> bool:
        return bool(self._groups) or len(self._population_groups) > self._known

    def observe(self, step: int, ledger, rng: np.random.Generator) -> int:
        """After the step's liquidations: schedule the newly liquidated accounts' returns.

        Returns:
            Returns scheduled.
        """
        scheduled = 0
        self._follow_groups()
        counts = ledger.liquidated
        for returns in self._groups:
            returns.refresh()
            now = counts[returns.accounts]
            fresh = np.flatnonzero(now > returns.seen)
            if not len(fresh):
                continue
            returns.seen[fresh] = now[fresh]
            settings = returns.settings
            if settings.share < 1.0:
                fresh = fresh[rng.random(len(fresh)) < settings.share]
            fresh = fresh[returns.returns[fresh] < settings.max_returns]
            if not len(fresh):
                continue
            waits = np.full(len(fresh), settings.delay, dtype=np.int64)
            if settings.spread > 1:
                waits += rng.integers(0, settings.spread, len(fresh))
            for k, wait in zip(fresh.tolist(), waits.tolist(), strict=True):
                self._due.setdefault(step + wait, []).append((returns, k))
            scheduled += len(fresh)
        return scheduled

    def due(self, step: int, ledger, marks) -> list[tuple[int, float, str]]:
        """The returns due at ``step``: ``(account, deposit, order)``, the deposits drawn from the reserves.

        An account that still holds a position, or whose group's reserve is spent, does not return.
        """
        pending = self._due.pop(step, None)
        if not pending:
            return []
        out = []
        for returns, k in pending:
            account = int(returns.accounts[k])
            if ledger.held_instruments(account):
                continue
            left = returns.remaining()
            if left <= 0.0:
                continue
            target = returns.settings.collateral or float(ledger.initial_collateral[account])
            amount = min(max(target - ledger.account_equity(account, marks), 0.0), left)
            returns.drawn += amount
            returns.returns[k] += 1
            self.returned += 1
            self.deposited += amount
            out.append((account, amount, returns.settings.order))
        return out
