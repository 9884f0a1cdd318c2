"""Collateral that is not cash: assets whose price moves, valued every step at price less haircut.

A leveraged or basis-arbitrageur group with ``collateral_asset: NAME`` posts its collateral in that
asset: each account holds ``units = collateral / (price x (1 - haircut))`` of it at the start, so that
margin first sees the collateral the scenario gives. Every step (after the shocks and the fundamentals)
each asset's price moves (a driftless geometric random walk of per-step sd ``volatility``, one standard
normal per moving asset from the run's generator; assets that do not move draw nothing), or follows the
index of the instrument it ``tracks`` (``price x index / index at the start``: the coin a coin-margined
contract's margin is posted in, whose value falls with the market it margins), a ``depeg`` shock may
quote it at a fraction of that, its haircut follows its volatility if the asset says so, and every
holding is revalued: the account's collateral changes by ``units x`` the change of the unit's ``quoted
price x (1 - haircut)``, journalled as ``revaluation``. Profits and losses settle in cash, so an
account's collateral is its cash plus its holding's haircut value; an account whose collateral is no
longer positive has had its holding taken (the exchange sold it to cover the losses), so it holds no
units from then on.

Example: 100 of collateral in an asset at 1.00 with a 10% haircut is 111.11 units; quoted at 0.65 the
holding is worth ``111.11 x 0.65 x 0.9 = 65``, so the account's collateral falls by 35.

>>> from types import SimpleNamespace
>>> book = CollateralBook([SimpleNamespace(name="USDX", price=1.0, volatility=0.0, haircut=0.1,
...                                        volatility_haircut=None)])
>>> round(float(book.units_for("USDX", 100.0)), 2), round(float(book.unit_value[0] * 111.111111), 2)
(111.11, 100.0)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["CollateralBook"]


class CollateralBook:
    """The scenario's collateral assets: prices, haircuts, quotes, and the accounts' holdings.

    Args:
        assets: The validated ``collateral_assets:`` entries.
        markets: The run's markets by instrument name, for the assets that track an index (their
            start is the index now).
    """

    def __init__(self, assets: Sequence[Any], markets: Mapping[str, Any] | None = None) -> None:
        self.assets = list(assets)
        self.names = [asset.name for asset in self.assets]
        # (asset, market, the index at the start) for each asset whose price follows an index.
        markets = markets or {}
        self._tracked = []
        for i, asset in enumerate(self.assets):
            tracks = getattr(asset, "tracks", None)
            if tracks is None:
                continue
            if tracks not in markets:
                raise ValueError(f"collateral asset {asset.name!r} tracks {tracks!r}: no such market given")
            self._tracked.append((i, markets[tracks], float(markets[tracks].index)))
        self.index = {name: i for i, name in enumerate(self.names)}
        self.price = np.array([asset.price for asset in self.assets], dtype=np.float64)
        self.volatility = np.array([asset.volatility for asset in self.assets], dtype=np.float64)
        self.base_haircut = np.array([asset.haircut for asset in self.assets], dtype=np.float64)
        self.haircut = self.base_haircut.copy()
        self.quote_factor = np.ones(len(self.assets))  # a depeg's fraction, reset every step
        self.quoted = self.price.copy()
        self.unit_value = self.quoted * (1.0 - self.haircut)
        self._variance = np.zeros(len(self.assets))  # EWMA of the quoted price's squared log returns
        self._moving = np.flatnonzero(self.volatility > 0.0)
        self.accounts: list[np.ndarray] = [np.zeros(0, dtype=np.int64) for _ in self.assets]
        self.units: list[np.ndarray] = [np.zeros(0) for _ in self.assets]

    def units_for(self, name: str, value: float | np.ndarray) -> np.ndarray:
        """Units of asset ``name`` whose haircut value is ``value`` now."""
        return np.asarray(value, dtype=np.float64) / self.unit_value[self.index[name]]

    def hold(self, accounts: np.ndarray, name: str, collateral: np.ndarray) -> None:
        """Accounts that post their (current) collateral in asset ``name``."""
        i = self.index[name]
        self.accounts[i] = np.concatenate([self.accounts[i], np.asarray(accounts, dtype=np.int64)])
        self.units[i] = np.concatenate([self.units[i], self.units_for(name, collateral)])

    def reset(self) -> None:
        """Back to unquoted prices: the running depegs lay their fractions on top (the shock schedule)."""
        self.quote_factor[:] = 1.0

    def depeg(self, name: str, fraction: float) -> None:
        """Quote asset ``name`` at ``fraction`` of its price this step."""
        self.quote_factor[self.index[name]] *= fraction

    def step(self, rng: np.random.Generator, ledger) -> float:
        """Move the prices, quote them, set the haircuts, revalue every holding; returns the net change."""
        if len(self._moving):
            sigma = self.volatility[self._moving]
            draws = rng.standard_normal(len(self._moving))
            self.price[self._moving] *= np.exp(sigma * draws - 0.5 * sigma * sigma)
        for i, market, start in self._tracked:
            self.price[i] = self.assets[i].price * market.index / start
        quoted = self.price * self.quote_factor
        returns = np.log(quoted / self.quoted)
        self.quoted = quoted
        for i, asset in enumerate(self.assets):
            scaled = asset.volatility_haircut
            if scaled is not None:
                self._variance[i] = scaled.decay * self._variance[i] + (1.0 - scaled.decay) * returns[i] ** 2
                wanted = scaled.multiple * np.sqrt(self._variance[i] * scaled.horizon)
                self.haircut[i] = min(max(self.base_haircut[i], wanted), scaled.cap)
        value = quoted * (1.0 - self.haircut)
        change = value - self.unit_value
        self.unit_value = value
        net = 0.0
        for i in range(len(self.assets)):
            accounts, units = self.accounts[i], self.units[i]
            if len(accounts) == 0:
                continue
            # Holdings of accounts without positive collateral were taken to cover their losses.
            units[ledger.collateral[accounts] <= 0.0] = 0.0
            if change[i] != 0.0:
                held = units > 0.0
                if held.any():
                    net += ledger.revalue(accounts[held], units[held] * change[i])
        return net

    def state(self) -> dict[str, float]:
        """Each asset's quoted price and haircut now (time-series columns)."""
        figures: dict[str, float] = {}
        for i, name in enumerate(self.names):
            figures[f"collateral_{name}_price"] = float(self.quoted[i])
            figures[f"collateral_{name}_haircut"] = float(self.haircut[i])
        return figures
