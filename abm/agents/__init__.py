"""Mesa agents by family: leveraged, makers, noise, fundamentalists, arbitrageurs, flow, switching, TFG.

Every agent kind is registered with its group model in :data:`abm.config.agents.AGENT_KINDS`, which
names the agent class (``module:Class``); :data:`AGENT_CLASSES` is derived from it. The modules:

* :mod:`~abm.agents.base`: :class:`TraderAgent`, one ledger account and one market;
* :mod:`~abm.agents.leveraged`: :class:`LeveragedTrader`;
* :mod:`~abm.agents.makers`: :class:`MarketMaker`;
* :mod:`~abm.agents.noise`: :class:`NoiseTrader`;
* :mod:`~abm.agents.fundamentalists`: :class:`Fundamentalist`;
* :mod:`~abm.agents.arbitrageurs`: :class:`BasisArbitrageur` (cash and carry against a spot hedge);
* :mod:`~abm.agents.metaorders`: :class:`MetaorderTrader` (split orders: signs with long memory);
* :mod:`~abm.agents.switching`: :class:`SwitchingTrader` (chartist or fundamentalist by performance);
* :mod:`~abm.agents.tfg`: :class:`ValueFund` and :class:`AR1NoiseTrader` (Thurner, Farmer and
  Geanakoplos 2012).
"""

from __future__ import annotations

import importlib

from abm.agents.arbitrageurs import BasisArbitrageur
from abm.agents.base import TraderAgent
from abm.agents.fundamentalists import Fundamentalist
from abm.agents.leveraged import LeveragedTrader
from abm.agents.makers import MarketMaker
from abm.agents.metaorders import MetaorderTrader
from abm.agents.noise import NoiseTrader
from abm.agents.switching import SwitchingTrader
from abm.agents.tfg import AR1NoiseTrader, ValueFund
from abm.config.agents import AGENT_KINDS

__all__ = [
    "AGENT_CLASSES",
    "AR1NoiseTrader",
    "BasisArbitrageur",
    "Fundamentalist",
    "LeveragedTrader",
    "MarketMaker",
    "MetaorderTrader",
    "NoiseTrader",
    "SwitchingTrader",
    "TraderAgent",
    "ValueFund",
    "agent_class",
]


def agent_class(kind: str) -> type[TraderAgent]:
    """The agent class registered for an agent kind (imported from its ``module:Class``)."""
    module, _, name = AGENT_KINDS[kind].agent.partition(":")
    return getattr(importlib.import_module(module), name)


AGENT_CLASSES: dict[str, type[TraderAgent]] = {kind: agent_class(kind) for kind in AGENT_KINDS}
