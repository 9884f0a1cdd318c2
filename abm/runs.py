"""Running scenarios from Python: one run, and a run with its counterfactual (liquidation switched off).

:func:`run_scenario` runs one scenario to its horizon and returns its :class:`~abm.results.RunResult`.
With ``counterfactual=True`` it also runs the same scenario and seed with forced liquidation off and
puts the comparison into the summary: ``amplification`` is the run's maximum drawdown over the
counterfactual's (how much the liquidations deepened the fall; None when the counterfactual did not
fall at all), beside ``counterfactual_max_drawdown`` and ``counterfactual_liquidations``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from abm.results import RunResult

__all__ = ["add_counterfactual", "amplification", "run_scenario", "without_liquidations"]


def without_liquidations(scenario: Any) -> Any:
    """The same scenario with ``liquidation.enabled`` false (the counterfactual)."""
    liquidation = scenario.liquidation.model_copy(update={"enabled": False})
    return scenario.model_copy(update={"liquidation": liquidation}, deep=True)


def amplification(drawdown: float, counterfactual_drawdown: float) -> float | None:
    """Drawdown with liquidations over drawdown without (None when the latter is 0).

    >>> amplification(0.128, 0.052)
    2.4615384615384617
    >>> amplification(0.01, 0.0) is None
    True
    """
    return drawdown / counterfactual_drawdown if counterfactual_drawdown != 0 else None


def add_counterfactual(result: RunResult, counterfactual: RunResult) -> None:
    """Put the comparison with the no-liquidation run into ``result.summary``."""
    drawdown = _max_drawdown(result, "main")
    baseline = _max_drawdown(counterfactual, "counterfactual")
    result.summary["amplification"] = amplification(drawdown, baseline)
    result.summary["counterfactual_max_drawdown"] = baseline
    result.summary["counterfactual_liquidations"] = len(counterfactual.liquidations)
    # The drawdown the liquidations add: the fall with them less the fall without them.
    result.summary["liquidation_added_drawdown"] = drawdown - baseline


def _max_drawdown(result: RunResult, label: str) -> float:
    value = result.summary.get("max_drawdown")
    if value is None:
        raise RuntimeError(f"the {label} run's summary has no 'max_drawdown'")
    return float(value)


def run_scenario(
    scenario: Any,
    seed: int | None = None,
    *,
    check_invariants: bool = False,
    progress: Callable[[int], None] | None = None,
    liquidation_enabled: bool | None = None,
    counterfactual: bool = False,
) -> RunResult:
    """Run one scenario to its horizon and return its results.

    Args:
        scenario: A validated :class:`~abm.config.Scenario` (or anything :class:`abm.model.MarketModel`
            takes: a path, a scenario name, a mapping).
        seed: Seed of the run's generator; None uses the scenario's seed.
        check_invariants: Check every invariant after every step.
        progress: Called with the number of steps just completed.
        liquidation_enabled: Override ``liquidation.enabled`` (False: the counterfactual).
        counterfactual: Also run without liquidations and add ``amplification`` to the summary.

    Returns:
        The run's :class:`RunResult`.
    """
    from abm.model import MarketModel

    model = MarketModel(
        scenario,
        rng=seed,
        check_invariants=check_invariants,
        liquidation_enabled=liquidation_enabled,
    )
    model.run(progress=progress)
    result = model.results()
    if counterfactual:
        baseline = MarketModel(
            model.config, rng=seed, check_invariants=check_invariants, liquidation_enabled=False
        )
        baseline.run(progress=progress)
        add_counterfactual(result, baseline.results())
    return result
