"""Portfolio VaR and expected shortfall: historical simulation (plain or filtered) and variance-covariance.

Every rule here values the account's whole portfolio in each scenario: its exposure per instrument is
``e_i = lots_i x contract_i x mark_i``, so a relative move ``x_i`` loses ``-sum_i e_i x_i``. Until a
rule has enough history it asks for the sum of the positions' own requirements (no offset), and says
so in its ``<rule>_ready`` column.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Sequence
from statistics import NormalDist
from typing import Any

import numpy as np

from abm.margin.portfolio_base import EwmaCovariance, LastResult, PortfolioMarginRule, implements_portfolio
from abm.margin.portfolio_settings import ParametricVarMargin, PortfolioEsMargin, PortfolioVarMargin

__all__ = [
    "HistoricalPortfolioRule",
    "ParametricVarRule",
    "PortfolioEsRule",
    "PortfolioVarRule",
    "tail_count",
]


def tail_count(confidence: float, scenarios: int) -> int:
    """Scenarios in the tail: ``ceil((1 - confidence) x scenarios)``, at least 1.

    Rounded to 9 decimals first, so that 0.9 x 10 scenarios gives 1, not 2 from binary rounding.

    >>> tail_count(0.9, 10), tail_count(0.99, 250), tail_count(0.975, 500)
    (1, 3, 13)
    """
    return max(1, math.ceil(round((1.0 - confidence) * scenarios, 9)))


_CHUNK = 2048  # accounts whose scenario losses are made and searched at once


def _exposures(positions: np.ndarray, marks: np.ndarray, contract_sizes: np.ndarray) -> np.ndarray:
    return np.asarray(positions, dtype=np.float64) * (np.asarray(marks, dtype=np.float64) * contract_sizes)


def _floored(config, measure: np.ndarray, exposure: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # Maintenance: the measure, 0 at least and minimum_rate x gross notional at least; initial a multiple.
    maintenance = np.maximum(measure, 0.0)
    if config.minimum_rate > 0.0:
        maintenance = np.maximum(maintenance, config.minimum_rate * np.abs(exposure).sum(axis=1))
    return maintenance * config.initial_multiple, maintenance


class HistoricalPortfolioRule(PortfolioMarginRule):
    """Historical simulation over the joint mark history; VaR or ES of each account's losses.

    At each review the scenarios are rebuilt: the overlapping ``h``-step log returns ``R`` of every
    instrument over the last ``window`` one-step returns (``h = liquidation_steps``), one-step returns
    first rescaled by ``sigma_now / sigma_then`` (EWMA) when ``filtered``, and the stress window's
    ``h``-step returns once the run has passed it. Between reviews they stay; the requirement follows
    the positions and marks at every check: loss ``L_s = -sum_i e_i (exp(R_is) - 1)``; VaR is the
    ``k``-th largest loss, ES the mean of the ``k`` largest, ``k = tail_count(confidence, scenarios)``;
    maintenance is that (0 at least, ``minimum_rate`` x gross notional at least), initial
    ``initial_multiple`` times it.
    """

    def __init__(self, config: Any, correlation: np.ndarray, instruments: Sequence[Any] = ()) -> None:
        super().__init__(config, correlation, instruments)
        k = len(self.instrument_names)
        self.scenario_moves = np.zeros((k, 0))  # relative moves exp(R) - 1, (instruments, scenarios)
        self._loss_per_exposure = np.zeros((k, 0))  # -scenario_moves: a loss is one product away
        self.scenario_steps = np.zeros(0, dtype=np.int64)  # step each scenario's period ended in
        self._stress_moves: np.ndarray | None = None
        self._stress_steps = np.zeros(0, dtype=np.int64)
        self._ewma = EwmaCovariance(config.decay, 2, k) if config.filtered else None
        self._sigma_before: list[np.ndarray] = []  # the EWMA sd known before each one-step return
        self._last_tail = LastResult()  # the last tail search, for state() after the margin check

    @property
    def name(self) -> str:
        """The rule's name (its columns' prefix)."""
        return self.config.rule

    @property
    def ready(self) -> bool:
        """Whether the rule has its minimum of scenarios (else positions are margined alone)."""
        return self.scenario_moves.shape[1] >= self.config.min_scenarios

    def review(self, step: int, mark_histories: Sequence[np.ndarray]) -> None:
        """On the review schedule: the scenarios from the marks so far."""
        if self._ewma is not None:
            self._track_volatility(mark_histories)
        if step % self.config.review_every:
            return
        config = self.config
        h = config.liquidation_steps
        length = min(len(history) for history in mark_histories)
        if length - 1 < h:
            return
        first = max(0, length - 1 - config.window)  # index of the first mark the window uses
        log_marks = np.log(np.column_stack([history[first:length] for history in mark_histories]))
        returns = np.diff(log_marks, axis=0)  # (window, instruments); row j ends at mark first + j + 1
        if self._ewma is not None:
            returns = self._filter(returns, first)
        cumulative = np.vstack([np.zeros((1, returns.shape[1])), np.cumsum(returns, axis=0)])
        periods = cumulative[h:] - cumulative[:-h]  # h-step returns, (scenarios, instruments)
        # A period ending with mark index j ended in step j - 1.
        steps = np.arange(first + h, length, dtype=np.int64) - 1
        stress = config.stress_window
        if stress is not None and self._stress_moves is None and length - 2 >= stress.end:
            self._keep_stress_period(mark_histories, stress.start, stress.end, h)
        moves = np.expm1(periods.T)
        if self._stress_moves is not None:
            moves = np.hstack([moves, self._stress_moves])
            steps = np.concatenate([steps, self._stress_steps])
        # Fortran order: the product with the exposures runs a third faster. The negated copy makes
        # the losses in one product; negation is exact, so they equal -(exposure @ moves) bit for bit.
        self.scenario_moves, self.scenario_steps = np.asfortranarray(moves), steps
        self._loss_per_exposure = np.asfortranarray(-moves)

    def _keep_stress_period(self, mark_histories, start: int, end: int, h: int) -> None:
        # The h-step periods ending in steps start..end (ending mark index s + 1, from s + 1 - h >= 0).
        ends = np.arange(max(start, h - 1), end + 1, dtype=np.int64)
        log_marks = np.log(np.column_stack([history[: end + 2] for history in mark_histories]))
        self._stress_moves = np.expm1((log_marks[ends + 1] - log_marks[ends + 1 - h]).T)
        self._stress_steps = ends

    def _track_volatility(self, mark_histories) -> None:
        # The EWMA sd known before every one-step return (its forecast), so that past returns can be
        # rescaled; NaN before the EWMA has its seed.
        ewma = self._ewma
        available = min(len(history) for history in mark_histories) - 1
        while len(self._sigma_before) < available:
            read = len(self._sigma_before)
            self._sigma_before.append(ewma.sigma if ewma.ready else np.full(len(mark_histories), np.nan))
            ewma.update([history[: read + 2] for history in mark_histories])  # reads return `read`

    def _filter(self, returns: np.ndarray, first: int) -> np.ndarray:
        # r_t x sigma_now / sigma_t (sigma_t: the forecast before r_t), the factor clipped to
        # [1 / max_scale, max_scale]; returns before the EWMA has a value keep their size.
        then = np.array(self._sigma_before[first : first + len(returns)])
        now = self._ewma.sigma
        # The factor is clipped: after a still spell the forecast is near zero and the ratio unbounded.
        limit = self.config.max_scale
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(then > 0, now / then, limit)  # a zero forecast: the largest factor
        scale = np.where(np.isnan(then), 1.0, scale)
        return returns * np.clip(scale, 1.0 / limit, limit)

    def losses(self, positions: np.ndarray, marks: np.ndarray) -> np.ndarray:
        """Each account's loss in each scenario, ``(accounts, scenarios)``."""
        return _exposures(positions, marks, self.contract_sizes) @ self._loss_per_exposure

    def tail(self, losses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` largest losses of each account (largest first) and the column of the k-th largest.

        For the few scenarios of a usual tail (k <= 8: 99% of 250 is 3) k passes of argmax, each
        masking the loss it found, cost a third of a partition; ties go to the first scenario. It
        masks with -inf in place where it found the tail: in ``losses`` itself when it is C-contiguous
        (the callers pass their own temporaries, products that are), else in a contiguous copy.
        """
        k = tail_count(self.config.confidence, losses.shape[1])
        accounts = len(losses)
        if k > 8 or accounts == 0:
            order = np.argsort(-losses, axis=1, kind="stable")[:, :k]
            tail = np.take_along_axis(losses, order, axis=1)
            return tail, order[:, k - 1] if accounts else np.zeros(0, dtype=np.int64)
        # Each row's found loss by its flat position: a 1-D index costs half the (rows, column) pair's.
        losses = np.ascontiguousarray(losses)  # the products are already: no copy
        flat = losses.reshape(-1)  # a view, so the -inf written below masks what argmax reads
        row_starts = np.arange(0, losses.size, losses.shape[1])
        tail = np.empty((accounts, k))
        for rank in range(k):
            column = losses.argmax(axis=1)
            found = row_starts + column
            tail[:, rank] = flat[found]
            flat[found] = -np.inf
        return tail, column

    def _exposure_tail(self, exposure: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # tail() of the losses, made and searched _CHUNK accounts at a time: a chunk's losses (2,048
        # x 250 scenarios, 4 MB) stay in cache for the k passes; a row's figures do not depend on
        # the chunk it is in. At 10,000 x 10 x 241 scenarios: 3.6 ms against 5.0 ms in one piece.
        # The same scenarios and exposures as the last search give its answer again (a comparison of
        # the exposures costs a fiftieth of a search). Callers only read the arrays returned.
        matrix = self._loss_per_exposure
        last = self._last_tail.get(matrix, exposure)
        if last is not None:
            return last
        accounts = len(exposure)
        if accounts <= _CHUNK:
            tail, column = self.tail(exposure @ matrix)
        else:
            k = tail_count(self.config.confidence, matrix.shape[1])
            tail, column = np.empty((accounts, k)), np.empty(accounts, dtype=np.int64)
            for start in range(0, accounts, _CHUNK):
                part = slice(start, start + _CHUNK)
                tail[part], column[part] = self.tail(exposure[part] @ matrix)
        self._last_tail.keep((tail, column), matrix, exposure)
        return tail, column

    @abstractmethod
    def measure(self, tail: np.ndarray) -> np.ndarray:
        """The requirement of each account from its tail losses (VaR or ES)."""

    def requirements(self, positions, marks, position_initial, position_maintenance):
        """VaR or ES of each account's scenario losses (the positions' own sums before it is ready)."""
        if not self.ready:
            return position_initial.sum(axis=1), position_maintenance.sum(axis=1)
        exposure = _exposures(positions, marks, self.contract_sizes)
        tail, _ = self._exposure_tail(exposure)
        return _floored(self.config, self.measure(tail), exposure)

    def state(self, positions: np.ndarray, marks: np.ndarray) -> dict[str, float]:
        """Scenarios in use, whether the rule is in force, and the step of the most binding scenario.

        The binding scenario of an account is its k-th largest loss (VaR's); the column gives the step
        its period ended in for the most accounts (ties: the earliest), -1 before the rule is ready.
        """
        name = self.name
        binding = -1.0
        if self.ready and len(positions):
            _, kth = self._exposure_tail(_exposures(positions, marks, self.contract_sizes))
            exposed = np.any(positions != 0, axis=1)
            if exposed.any():
                counts = np.bincount(kth[exposed], minlength=self.scenario_moves.shape[1])
                binding = float(self.scenario_steps[int(counts.argmax())])
        return {
            f"{name}_scenarios": float(self.scenario_moves.shape[1]),
            f"{name}_ready": float(self.ready),
            f"{name}_binding_step": binding,
        }


@implements_portfolio(PortfolioVarMargin)
class PortfolioVarRule(HistoricalPortfolioRule):
    """Historical-simulation VaR: the k-th largest scenario loss.

    >>> from types import SimpleNamespace as Item
    >>> config = PortfolioVarMargin(rule="portfolio_var", confidence=0.8, liquidation_steps=1,
    ...                             window=10, min_scenarios=10)
    >>> rule = PortfolioVarRule(config, np.eye(1), [Item(name="A", contract_size=1.0)])
    >>> moves = [0.01, -0.02, 0.03, -0.05, 0.0, 0.02, -0.01, 0.04, -0.03, 0.01]
    >>> rule.review(10, [100 * np.exp(np.cumsum([0.0, *moves]))])
    >>> # Long 10 at 100 (exposure 1,000): the losses are -1000 (e^r - 1); k = ceil(0.2 x 10) = 2,
    >>> # the second largest loss is that of r = -0.03: 1000 x (1 - e^-0.03) = 29.554.
    >>> round(float(rule.requirements(np.array([[10]]), np.array([100.0]), None, None)[1][0]), 3)
    29.554
    """

    def measure(self, tail: np.ndarray) -> np.ndarray:
        """The k-th largest loss."""
        return tail[:, -1]


@implements_portfolio(PortfolioEsMargin)
class PortfolioEsRule(HistoricalPortfolioRule):
    """Historical-simulation expected shortfall: the mean of the k largest scenario losses."""

    def measure(self, tail: np.ndarray) -> np.ndarray:
        """The mean of the k largest losses."""
        return tail.mean(axis=1)


@implements_portfolio(ParametricVarMargin)
class ParametricVarRule(PortfolioMarginRule):
    """Variance-covariance VaR: ``z(c) x sqrt(h) x sqrt(e' S e)`` with an EWMA covariance ``S``.

    Worked by hand: sds 1% and 2% a step, correlation 0.5, exposures 100 long and 50 short:
    ``e' S e = 100^2 x 1e-4 + 50^2 x 4e-4 - 2 x 100 x 50 x 0.5 x 0.01 x 0.02 = 1 + 1 - 1 = 1``; at
    ``c = 0.99`` (``z = 2.3263``) over ``h = 4`` steps: ``2.3263 x 2 x 1 = 4.6527``.

    >>> from types import SimpleNamespace as Item
    >>> rule = ParametricVarRule(
    ...     ParametricVarMargin(rule="parametric_var", liquidation_steps=4), np.eye(2),
    ...     [Item(name="A", contract_size=1.0), Item(name="B", contract_size=1.0)])
    >>> rule.covariance = np.array([[1e-4, 1e-4], [1e-4, 4e-4]]); rule.ready = True
    >>> round(float(rule.requirements(np.array([[1, -1]]), np.array([100.0, 50.0]), None, None)[1][0]), 4)
    4.6527
    """

    def __init__(self, config: ParametricVarMargin, correlation: np.ndarray, instruments=()) -> None:
        super().__init__(config, correlation, instruments)
        k = len(self.instrument_names)
        self._ewma = EwmaCovariance(config.decay, config.min_history, k)
        self.covariance = np.zeros((k, k))  # the covariance in force (set at reviews)
        self.ready = False
        self.scale = NormalDist().inv_cdf(config.confidence) * math.sqrt(config.liquidation_steps)

    def review(self, step: int, mark_histories: Sequence[np.ndarray]) -> None:
        """Every step the estimate reads the new returns; on the review schedule it takes effect."""
        self._ewma.update(mark_histories)
        if step % self.config.review_every == 0 and self._ewma.ready:
            self.covariance = self._ewma.covariance.copy()
            self.ready = True

    def requirements(self, positions, marks, position_initial, position_maintenance):
        """The VaR of each account's exposures (the positions' own sums before it is ready)."""
        if not self.ready:
            return position_initial.sum(axis=1), position_maintenance.sum(axis=1)
        exposure = _exposures(positions, marks, self.contract_sizes)
        # e' S e row by row as one matrix product and a row sum (a third of einsum's time).
        variance = ((exposure @ self.covariance) * exposure).sum(axis=1)
        return _floored(self.config, self.scale * np.sqrt(np.maximum(variance, 0.0)), exposure)

    def state(self, positions: np.ndarray, marks: np.ndarray) -> dict[str, float]:
        """Whether the rule is in force and the mean correlation of the covariance in force."""
        k = len(self.instrument_names)
        mean_correlation = math.nan
        sigma = np.sqrt(np.diag(self.covariance))
        if self.ready and k > 1 and (sigma > 0).all():
            correlation = self.covariance / np.outer(sigma, sigma)
            mean_correlation = float(correlation[~np.eye(k, dtype=bool)].mean())
        return {
            "parametric_var_ready": float(self.ready),
            "parametric_var_mean_correlation": mean_correlation,
        }

    def instrument_state(self) -> dict[str, np.ndarray]:
        """The per-step sd of each instrument in force."""
        return {"parametric_var_sigma": np.sqrt(np.diag(self.covariance))}
