"""SPAN-style scanning: a risk array of price moves per combined commodity, the worst loss, spreads.

The scan ranges are fixed, or follow each instrument's volatility at every review through the
anti-procyclicality tools (:class:`~abm.margin.portfolio_settings.ScanRangeScaling`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from abm.margin.apc import buffer_windows, volatility_ratio
from abm.margin.portfolio_base import EwmaCovariance, LastResult, PortfolioMarginRule, implements_portfolio
from abm.margin.portfolio_settings import SpanMargin

__all__ = ["SpanRule"]


@implements_portfolio(SpanMargin)
class SpanRule(PortfolioMarginRule):
    """SPAN-style scanning risk per combined commodity, plus intra- less inter-commodity spreads.

    A position's loss in a scenario is ``-lots x contract x mark x range x move`` for the moves 0,
    +-1/3, +-2/3, +-1 and, counted at ``extreme_weight``, +-``extreme_move`` (in scan ranges); its
    scanning risk is the worst of them (0 at least): for a future, a full-range move against it, as
    ``2 x 0.35 = 0.7 < 1``. The members of a combined commodity move together, each by the same share
    of its own range, so their losses add scenario by scenario: the commodity's scanning risk is
    ``|sum of signed exposures| x`` the largest move, and its intra-commodity spread charge is
    ``intra_spread_rate x`` (the members' own scanning risks less that). Spread pairs then credit
    offsetting commodities (see :class:`SpanMargin`).

    Worked by hand (``tests/test_portfolio_margin.py`` has more): A at 100 with a 6% range, B at 50 with
    8%, contracts of 0.1, a credit of 50% between them. Long 10 A: ``10 x 0.1 x 100 x 0.06 = 6``; short
    20 B: ``20 x 0.1 x 50 x 0.08 = 8``; offsetting, so the pair uses ``min(6, 8) = 6`` of each and
    credits ``0.5 x 6 = 3``: maintenance ``6 + 8 - 3 = 11``, initial ``1.1 x 11 = 12.1``. Long both: 14
    and 15.4, no credit. With A and B one combined commodity charging 25% of its offset, the first
    account's scanning risk is ``|6 - 8| = 2``, its spread charge ``0.25 x (6 + 8 - 2) = 3``: 5.

    A commodity with ``tiers`` charges its offset in three parts (SPAN's order). Within each tier:
    the tier's rate x (its members' own risks less ``|`` the tier's net ``|``). Then each tier spread
    in turn, when its two legs' nets still left offset: the spread's rate x twice the smaller of them
    (a long and a short of that much risk each forgiven), which it uses up from both. Last, what still
    offsets among the legs' remainders, ``sum |remainder| - |net|``, at the commodity's
    ``intra_spread_rate``. With every rate equal this is the untiered charge (tested).

    With ``volatility_scaling``, each review sets instrument ``i``'s range to
    ``multiple x sigma_i x sqrt(liquidation_steps)`` (``sigma_i`` its EWMA sd of one-step log returns),
    then applies the APC tools in the policy's order: stressed weight, lookback floor (the same formula
    with the sd of the last ``floor_lookback`` returns), buffer (dropped while the instrument's
    short/long volatility ratio exceeds ``release_ratio``), speed limit (against the previous range);
    finally the fixed ``scan_ranges`` floor it and 1 caps it.

    >>> from types import SimpleNamespace as Item
    >>> config = SpanMargin(rule="span", scan_ranges={"A": 0.06, "B": 0.08},
    ...                     spread_credits=[{"pair": ["A", "B"], "rate": 0.5}])
    >>> instruments = [Item(name="A", contract_size=0.1), Item(name="B", contract_size=0.1)]
    >>> rule = SpanRule(config, np.eye(2), instruments)
    >>> positions, marks = np.array([[10, -20], [10, 20]]), np.array([100.0, 50.0])
    >>> initial, maintenance = rule.requirements(positions, marks, None, None)
    >>> maintenance.round(6).tolist(), initial.round(6).tolist()
    ([11.0, 14.0], [12.1, 15.4])
    >>> combined = SpanMargin(rule="span", scan_ranges={"A": 0.06, "B": 0.08}, combined_commodities=[
    ...     {"name": "AB", "instruments": ["A", "B"], "intra_spread_rate": 0.25}])
    >>> SpanRule(combined, np.eye(2), instruments).requirements(positions, marks, None, None)[1].round(6)
    array([ 5., 14.])
    """

    def __init__(self, config: SpanMargin, correlation: np.ndarray, instruments: Sequence[Any] = ()) -> None:
        super().__init__(config, correlation, instruments)
        self.floor_ranges = np.array(
            [config.scan_ranges[name] for name in self.instrument_names], dtype=float
        )
        self.scan_ranges = self.floor_ranges.copy()
        self._last_risk = LastResult()  # the last _risk(), for state() after the margin check
        extreme, weight = config.extreme_move, config.extreme_weight
        # P&L of a position per unit of (lots x contract x mark x range), weighted, one per scenario.
        self.scenario_moves = np.array(
            [0.0, 1 / 3, -1 / 3, 2 / 3, -2 / 3, 1.0, -1.0, extreme * weight, -extreme * weight]
        )
        self._largest_move = float(np.abs(self.scenario_moves).max())
        self.commodity_names, self._members, self._intra_rates = _commodities(config, self.instrument_names)
        self._tiers = _tiers(config, self.instrument_names, self.commodity_names)
        column = {name: i for i, name in enumerate(self.commodity_names)}
        self.pairs = [(column[c.pair[0]], column[c.pair[1]], c.rate) for c in config.spread_credits]
        scaling = config.volatility_scaling
        self._ewma = (
            EwmaCovariance(scaling.decay, scaling.min_history, len(self.instrument_names))
            if scaling is not None
            else None
        )
        self._buffer_level = np.full(len(self.instrument_names), math.nan)

    # ------------------------------------------------------------------ the ranges

    def review(self, step: int, mark_histories: Sequence[np.ndarray]) -> None:
        """With volatility scaling, on the review schedule: the ranges from volatility now."""
        if self._ewma is None or step % self.config.review_every:
            return
        self._ewma.update(mark_histories)
        if self._ewma.ready:
            self.scan_ranges = self.scaled_ranges(self._ewma.sigma, mark_histories)

    def scaled_ranges(self, sigma: np.ndarray, mark_histories: Sequence[np.ndarray]) -> np.ndarray:
        """The ranges for per-step sds ``sigma``: scaled, through the APC tools, floored and capped."""
        scaling, apc = self.config.volatility_scaling, self.config.apc
        to_range = scaling.multiple * math.sqrt(scaling.liquidation_steps)
        ranges = to_range * np.asarray(sigma, dtype=float)
        if apc is not None:
            if apc.stressed_weight is not None:
                weight = apc.stressed_weight
                ranges = (1 - weight) * ranges + weight * to_range * apc.stressed_volatility
            if apc.floor_lookback is not None:
                lookback = [np.diff(np.log(h[-(apc.floor_lookback + 1) :])) for h in mark_histories]
                window_sd = np.array([np.std(r, ddof=1) if r.size > 1 else 0.0 for r in lookback])
                ranges = np.maximum(ranges, to_range * window_sd)
            if apc.buffer is not None:
                windows = buffer_windows(apc)
                ratios = np.array([volatility_ratio(np.asarray(h), *windows) for h in mark_histories])
                released = ~np.isnan(ratios) & (ratios > apc.release_ratio)
                self._buffer_level = np.where(released, 0.0, apc.buffer)
                ranges = ranges * (1.0 + self._buffer_level)
            if apc.speed_limit is not None:
                limit = apc.speed_limit
                ranges = np.clip(ranges, self.scan_ranges * (1 - limit), self.scan_ranges * (1 + limit))
        return np.minimum(np.maximum(ranges, self.floor_ranges), 1.0)

    # ------------------------------------------------------------------ the charges

    def risk_array(self, positions: np.ndarray, marks: np.ndarray) -> np.ndarray:
        """Each position's loss in each scenario of the risk array, ``(accounts, instruments, scenarios)``."""
        exposure = np.asarray(positions, dtype=float) * (
            np.asarray(marks) * self.contract_sizes * self.scan_ranges
        )
        return -exposure[:, :, None] * self.scenario_moves

    def scanning_risk(self, positions: np.ndarray, marks: np.ndarray) -> np.ndarray:
        """Each position's worst loss over the risk array, ``(accounts, instruments)``.

        A future's loss is linear in the move and the moves come in +- pairs, so the worst is
        ``|exposure| x`` the largest move: the risk array's maximum without forming it (tested equal).
        """
        exposure = np.abs(np.asarray(positions, dtype=float))
        exposure *= np.asarray(marks) * self.contract_sizes * (self.scan_ranges * self._largest_move)
        return exposure

    def commodity_risk(
        self, positions: np.ndarray, marks: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Per combined commodity: its scanning risk, its net side, its intra-commodity spread charge.

        Each ``(accounts, commodities)``, in :attr:`commodity_names` order (the lone instruments in
        instrument order, then the combined commodities as listed); the charge is ``None`` with no
        combined commodity, when the scanning risk is :meth:`scanning_risk` itself.
        """
        if self._members is None:
            return self.scanning_risk(positions, marks), np.sign(positions), None
        signed = np.asarray(positions, dtype=float) * (
            np.asarray(marks) * self.contract_sizes * (self.scan_ranges * self._largest_move)
        )
        net = signed @ self._members
        own = np.abs(signed) @ self._members
        scanning = np.abs(net)
        # Summed in another order, the members' own risks can fall a last bit below the net's.
        intra = self._intra_rates * np.maximum(own - scanning, 0.0)
        if self._tiers is not None:
            columns = self._tiers.columns
            intra[:, columns] = self._tiers.charges(signed, scanning[:, columns])
        return scanning, np.sign(net), intra

    def requirements(self, positions, marks, position_initial, position_maintenance):
        """Scanning risk plus spread charges less credits (maintenance), times ``initial_multiple``."""
        scanning, intra, credits = self._charges(positions, marks)
        maintenance = scanning - credits if intra is None else scanning + intra - credits
        return maintenance * self.config.initial_multiple, maintenance

    def _charges(self, positions: np.ndarray, marks: np.ndarray):
        # Each account's scanning risk, its intra-commodity spread charges and its credits.
        _, _, intra, scanning, credits = self._risk(positions, marks)
        return scanning, None if intra is None else intra.sum(axis=1), credits

    def _risk(self, positions: np.ndarray, marks: np.ndarray):
        # commodity_risk() and the credits, kept for state(), which the recorder asks right after the
        # margin check for the same positions, marks and scan ranges. Callers only read the arrays.
        last = self._last_risk.get(positions, marks, self.scan_ranges)
        if last is not None:
            return last
        charges, sides, intra = self.commodity_risk(positions, marks)
        risk = (charges, sides, intra, *self._credited(charges, sides))
        self._last_risk.keep(risk, positions, marks, self.scan_ranges)
        return risk

    def _credited(self, charges: np.ndarray, sides: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        scanning = charges.sum(axis=1)
        remaining = charges.copy()
        credits = np.zeros(len(scanning))
        for first, second, rate in self.pairs:
            offsetting = sides[:, first] * sides[:, second] < 0
            used = np.where(offsetting, np.minimum(remaining[:, first], remaining[:, second]), 0.0)
            credits += rate * used
            remaining[:, first] -= used
            remaining[:, second] -= used
        return scanning, credits

    def state(self, positions: np.ndarray, marks: np.ndarray) -> dict[str, float]:
        """Scanning risk, spread charges and credits summed over the accounts; the scenario that bound.

        Each combined commodity (a lone instrument is one) has its own worst scenario: the largest
        move against its net position (down when net long, up when net short; the extreme move when it
        weighs more than a full range). ``span_binding_move`` is the move, in scan ranges as counted,
        that bound the larger part of the scanning risk (the fall on a tie; 0 with none),
        ``span_binding_share`` that part.
        """
        charges, sides, intra, scanning, credits = self._risk(positions, marks)
        bound_by_fall = float(charges[sides > 0].sum())
        bound_by_rise = float(charges[sides < 0].sum())
        total = bound_by_fall + bound_by_rise
        if total > 0:
            move = -self._largest_move if bound_by_fall >= bound_by_rise else self._largest_move
            share = max(bound_by_fall, bound_by_rise) / total
        else:
            move, share = 0.0, 0.0
        return {
            "span_scanning_risk": float(scanning.sum()),
            "span_intra_spread_charges": 0.0 if intra is None else float(intra.sum()),
            "span_credits": float(credits.sum()),
            "span_binding_move": move,
            "span_binding_share": share,
        }

    def instrument_state(self) -> dict[str, np.ndarray]:
        """The scan range in force per instrument (and, with an APC buffer, its level: NaN without)."""
        return {"span_scan_range": self.scan_ranges.copy(), "span_buffer_level": self._buffer_level.copy()}


@dataclass(frozen=True)
class _Tiers:
    """The tiered commodities' legs (their tiers, and their members in none) and tier spreads."""

    members: np.ndarray  # instruments x legs
    rates: np.ndarray  # each leg's own rate (a lone member's offsets with itself are 0)
    to_commodity: np.ndarray  # legs x tiered commodities
    spreads: list[tuple[int, int, float, int]]  # legs, rate, tiered commodity, in the order listed
    columns: np.ndarray  # the tiered commodities' columns among all commodities
    default_rates: np.ndarray  # their intra_spread_rate, for the offset left after the spreads

    def charges(self, signed: np.ndarray, scanning: np.ndarray) -> np.ndarray:
        """The tiered commodities' intra-commodity spread charges, ``(accounts, tiered commodities)``."""
        net = signed @ self.members
        remaining = np.abs(net)
        within = self.rates * np.maximum(np.abs(signed) @ self.members - remaining, 0.0)
        charges = within @ self.to_commodity
        for first, second, rate, commodity in self.spreads:
            offsetting = net[:, first] * net[:, second] < 0
            used = np.where(offsetting, np.minimum(remaining[:, first], remaining[:, second]), 0.0)
            charges[:, commodity] += rate * 2.0 * used
            remaining[:, first] -= used
            remaining[:, second] -= used
        left = np.maximum(remaining @ self.to_commodity - scanning, 0.0)
        return charges + self.default_rates * left


def _tiers(config: SpanMargin, instrument_names: Sequence[str], commodity_names: Sequence[str]):
    # One leg per tier, and one per member of a tiered commodity in no tier.
    tiered = [c for c in config.combined_commodities if c.tiers or c.tier_spreads]
    if not tiered:
        return None
    row = {name: i for i, name in enumerate(instrument_names)}
    legs: list[tuple[list[str], float, int]] = []
    spreads = []
    for position, commodity in enumerate(tiered):
        in_tier = {name for tier in commodity.tiers for name in tier.instruments}
        leg = {}
        for tier in commodity.tiers:
            leg[tier.name] = len(legs)
            legs.append((tier.instruments, tier.intra_spread_rate, position))
        for name in commodity.instruments:
            if name not in in_tier:
                leg[name] = len(legs)
                legs.append(([name], 0.0, position))
        spreads += [(leg[s.tiers[0]], leg[s.tiers[1]], s.rate, position) for s in commodity.tier_spreads]
    members = np.zeros((len(instrument_names), len(legs)))
    to_commodity = np.zeros((len(legs), len(tiered)))
    for column, (names, _, position) in enumerate(legs):
        members[[row[name] for name in names], column] = 1.0
        to_commodity[column, position] = 1.0
    return _Tiers(
        members=members,
        rates=np.array([rate for _, rate, _ in legs]),
        to_commodity=to_commodity,
        spreads=spreads,
        columns=np.array([list(commodity_names).index(c.name) for c in tiered]),
        default_rates=np.array([c.intra_spread_rate for c in tiered]),
    )


def _commodities(config: SpanMargin, instrument_names: Sequence[str]):
    # The commodity columns: lone instruments in instrument order, then the combined commodities;
    # the membership matrix (instruments x commodities) and each column's intra-spread rate.
    if not config.combined_commodities:
        return list(instrument_names), None, None
    grouped = {name for commodity in config.combined_commodities for name in commodity.instruments}
    lone = [name for name in instrument_names if name not in grouped]
    names = lone + [commodity.name for commodity in config.combined_commodities]
    row = {name: i for i, name in enumerate(instrument_names)}
    members = np.zeros((len(instrument_names), len(names)))
    rates = np.zeros(len(names))
    for column, name in enumerate(lone):
        members[row[name], column] = 1.0
    for column, commodity in enumerate(config.combined_commodities, start=len(lone)):
        members[[row[name] for name in commodity.instruments], column] = 1.0
        rates[column] = commodity.intra_spread_rate
    return names, members, rates
