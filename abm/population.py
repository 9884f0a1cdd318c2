"""Population: the groups of a scenario, their accounts in the ledger and their Mesa agents, in one registry.

Every account the ledger opens is registered here at the same time, with its group (or none, for the
system accounts: the liquidation engine, the counterparty of initial positions and the outside party
of exogenous orders) and its agent (or none), so the three can never drift out of step. An agent may
own several accounts (an isolated-margin trader has one per position); its first is its *primary*
account. The population also draws the agents that act in a step (step 3 of the step order).

Example:
    >>> from abm.ledger import Instrument, Ledger
    >>> population = Population(Ledger([Instrument("X", 1.0, 1.0)]))
    >>> group = population.open_group(object(), 3, 100.0, "noise", lambda accounts: [None] * len(accounts))
    >>> group.accounts.tolist(), population.group_of(2) is group, population.group_of(0)
    ([1, 2, 3], True, None)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from abm.ledger import KIND_NAMES, Ledger

__all__ = ["Group", "Population"]


@dataclass
class Group:
    """One group of agents: its settings, its accounts and its agents (same order).

    Attributes:
        index: Position of the group (scenario groups first, groups joining mid-run after).
        config: The group's validated settings (shared by its agents).
        accounts: The group's account ids (each agent's accounts together, its primary first).
        agents: Its agents.
        primary: Each agent's primary account, in agent order (the accounts arrivals are drawn over).
        activity: Its :class:`~abm.activity.ActivityFeedback` when its rate follows volatility (set by
            the model), else None.
        clock: The run's :class:`~abm.trading_time.TradingClock` when its kind follows trading time,
            else None.
    """

    index: int
    config: Any
    accounts: np.ndarray
    agents: list = field(default_factory=list)
    primary: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    activity: Any = None
    clock: Any = None

    @property
    def kind(self) -> str:
        """The agent kind of the group."""
        return self.config.kind

    @property
    def arrival_rate(self) -> float:
        """Probability that one of its agents acts in a step (with ``activity`` or ``clock``, this step's)."""
        if self.activity is None and self.clock is None:
            return self.config.arrival_rate
        rate = self.config.arrival_rate
        if self.activity is not None:
            rate *= self.activity.multiplier
        if self.clock is not None:
            rate *= self.clock.multiplier
        return min(1.0, rate)

    @property
    def label(self) -> str:
        """The group's name in the outputs: its ``label``, or ``<index>:<kind>``."""
        return self.config.label or f"{self.index}:{self.config.kind}"


# Actors sorted through a mask over the accounts once they pass 1 in this many accounts.
_MASK_SHARE = 16
_NO_ACCOUNTS = np.empty(0, dtype=np.intp)
_NO_ACCOUNTS.flags.writeable = False


class Population:
    """Groups, accounts and agents, registered together.

    Args:
        ledger: The ledger that opens the accounts; accounts it holds already (the engine) are
            registered as system accounts.
    """

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.groups: list[Group] = []
        self._agent_of: list[Any] = [None] * ledger.n_accounts
        self._group_of: list[int] = [-1] * ledger.n_accounts
        self.makers: list[Any] = []
        self.maker_accounts = np.empty(0, dtype=np.int64)
        self._idle_mask: np.ndarray | None = None
        self.idle_holders: Callable[[Group], bool] = lambda group: False
        # The run's trading clock (abm.trading_time): every group of its kinds follows it, mid-run too.
        self.trading_clock: Any = None

    # ------------------------------------------------------------------ opening accounts

    def open_group(
        self,
        config: Any,
        count: int,
        collateral: float | Sequence[float],
        kind: str,
        make_agents: Callable[[np.ndarray], Sequence[Any]],
        *,
        maker: bool = False,
    ) -> Group:
        """Open the accounts of a new group of ``count`` agents and make the agents.

        Args:
            config: The group's settings.
            count: Agents to make.
            collateral: Collateral of each agent's account, or one amount per account of an agent that
                owns several (each agent then owns ``len(collateral)`` accounts, its primary first).
            kind: Their account kind.
            make_agents: Makes the agents of the given account ids: ``(count,)`` ids, or
                ``(count, accounts per agent)`` when agents own several; one agent each, in order.
            maker: The group's agents quote every step (market makers).

        Returns:
            The new group.
        """
        group = self.add_group(config)
        self.extend_group(group, count, collateral, kind, make_agents)
        if maker:
            self.makers.extend(group.agents)
            self.maker_accounts = np.array([agent.account for agent in self.makers], dtype=np.int64)
        return group

    def extend_group(
        self,
        group: Group,
        count: int,
        collateral: float | Sequence[float],
        kind: str,
        make_agents: Callable[[np.ndarray], Sequence[Any]],
    ) -> np.ndarray:
        """Open the accounts of ``count`` more agents in ``group``; returns their primary account ids."""
        slices = np.atleast_1d(np.asarray(collateral, dtype=np.float64))
        per_agent = len(slices)
        amounts = slices[0] if per_agent == 1 and np.ndim(collateral) == 0 else np.tile(slices, count)
        accounts = self.ledger.add_accounts(count * per_agent, amounts, kind)
        owned = accounts if np.ndim(collateral) == 0 else accounts.reshape(count, per_agent)
        agents = list(make_agents(owned))
        if len(agents) != count:
            raise ValueError(f"make_agents gave {len(agents)} agents for {count}")
        group.accounts = np.concatenate([group.accounts, accounts])
        group.primary = np.concatenate([group.primary, accounts[::per_agent]])
        group.agents.extend(agents)
        self._agent_of.extend(agent for agent in agents for _ in range(per_agent))
        self._group_of.extend([group.index] * len(accounts))
        self._idle_mask = None
        return accounts[::per_agent]

    def group_like(self, config: Any) -> Group | None:
        """The group whose settings are this very object, if any."""
        return next((group for group in self.groups if group.config is config), None)

    def add_group(self, config: Any) -> Group:
        """Register an empty group (its accounts come through :meth:`extend_group`)."""
        group = Group(len(self.groups), config, np.empty(0, dtype=np.int64))
        clock = self.trading_clock
        if clock is not None and config.kind in clock.kinds:
            group.clock = clock
        self.groups.append(group)
        return group

    def open_system_account(self, kind: str, collateral: float, *, checked: bool = False) -> int:
        """Open one account with no group and no agent (counterparty, exogenous party); returns its id."""
        account = self.ledger.open_system_account(kind, collateral, checked=checked)
        self._agent_of.append(None)
        self._group_of.append(-1)
        self._idle_mask = None
        return account

    # ------------------------------------------------------------------ lookups

    def agent_of(self, account: int) -> Any:
        """The agent of an account (None for system accounts)."""
        return self._agent_of[account]

    def group_of(self, account: int) -> Group | None:
        """The group of an account (None for system accounts)."""
        index = self._group_of[account]
        return self.groups[index] if index >= 0 else None

    def labels(self) -> list[str]:
        """The group label of every account (the account kind for system accounts)."""
        kinds = self.ledger.kind
        return [
            self.groups[index].label if index >= 0 else KIND_NAMES[int(kinds[account])]
            for account, index in enumerate(self._group_of)
        ]

    def agents(self) -> list[Any]:
        """Every agent, by account id."""
        return [agent for agent in self._agent_of if agent is not None]

    # ------------------------------------------------------------------ who acts

    def _idle_holders(self, n: int) -> np.ndarray:
        """Mask of the accounts whose arrival is a no-op unless margin-called (see ``idle_holders``)."""
        mask = self._idle_mask
        if mask is None or len(mask) != n:  # accounts only ever get added: rebuilt when they are
            mask = np.zeros(n, dtype=bool)
            for group in self.groups:
                if self.idle_holders(group):
                    mask[group.accounts] = True
            self._idle_mask = mask
        return mask

    def draw_actors(self, rng: np.random.Generator, margin_called: np.ndarray) -> list[Any]:
        """The agents that act this step, in a random order.

        Makers act every step; every other group's agents arrive independently with the group's
        arrival rate (this step's: :attr:`Group.arrival_rate`), a binomial count over their primary
        accounts, then that many chosen without replacement; agents with a pending margin call on any
        of their accounts act too (once).
        Holders whose arrival is a no-op (``idle_holders``) are dropped after the draws, so the random
        stream is the one every agent acting would give.

        Args:
            rng: The run's generator.
            margin_called: The ledger's margin-call flags (one per account).
        """
        chosen = [self.maker_accounts]
        for group in self.groups:
            config = group.config
            rate = group.arrival_rate  # this step's (with activity, scaled by the recent volatility)
            accounts = group.primary
            if config.kind == "market_maker" or rate <= 0.0 or len(accounts) == 0:
                continue
            k = int(rng.binomial(len(accounts), rate))
            if k:
                chosen.append(accounts[rng.choice(len(accounts), size=k, replace=False)])
        n = self.ledger.n_accounts
        # any() first: most steps have no margin call, and it costs a third of flatnonzero.
        called = np.flatnonzero(margin_called) if margin_called.any() else _NO_ACCOUNTS
        if not len(called) and sum(len(some) for some in chosen) <= 1:
            # At most one actor: its permutation draws no number, so the stream is the same without it.
            only = [int(some[0]) for some in chosen if len(some)]
            if not only or self._idle_holders(n)[only[0]]:
                return []
            agent = self._agent_of[only[0]]
            return [] if agent is None else [agent]
        if len(called):
            chosen.append(called)
        if sum(len(some) for some in chosen) * _MASK_SHARE > n:
            # Many actors: a mask over the accounts gives them sorted and once each, as np.unique
            # would, in O(accounts) instead of a sort of the actors (250 us for 10,000 of 100,000).
            mask = np.zeros(n, dtype=bool)
            for some in chosen:
                mask[some] = True
            accounts = np.flatnonzero(mask)
        elif len(called):
            accounts = np.unique(np.concatenate(chosen))
        else:
            # Groups hold disjoint accounts, so only a margin call can repeat one: a sort is enough.
            accounts = np.sort(np.concatenate(chosen))
        accounts = accounts[rng.permutation(len(accounts))]
        # A holder without a margin call neither trades nor draws a number in its step.
        idle = self._idle_holders(n)[accounts]
        if idle.any():
            accounts = accounts[~(idle & ~margin_called[accounts])]
        agent_of = self._agent_of
        agents = [agent_of[a] for a in accounts.tolist() if agent_of[a] is not None]
        if len(called) and len(agents) != len({id(agent) for agent in agents}):
            # An agent whose several accounts were called acts once, at its first place in the order.
            seen: set[int] = set()
            agents = [agent for agent in agents if not (id(agent) in seen or seen.add(id(agent)))]
        return agents
