"""Liquidation: the cascade rounds within a step and the waterfall that closes a breaching account.

:class:`Liquidator` runs the rounds (DESIGN step 6) and, for each breached account, the waterfall
(step 7); see :mod:`abm.liquidation.liquidator` and ``docs/accounting.md``.
"""

from abm.liquidation.liquidator import ENGINE_UNWIND_BAND, Liquidator, StepTotals

__all__ = ["ENGINE_UNWIND_BAND", "Liquidator", "StepTotals"]
