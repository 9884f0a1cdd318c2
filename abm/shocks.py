"""Scenario events: scheduled shocks applied at the start of a step (DESIGN.md step 1).

Each shock type is a small handler registered in ``HANDLERS`` under the scenario's ``type``
name. A handler receives the model, the shock's settings and the current step, and is called for
every step in which the shock is active (``step`` up to ``step + over_steps - 1`` for programs
spread over several steps).
"""

from __future__ import annotations

from collections.abc import Callable

from abm.book import BUY, SELL
from abm.config import FundamentalJump, MarketOrderShock

__all__ = ["HANDLERS", "ShockSchedule"]


def _fundamental_jump(model, shock: FundamentalJump, step: int) -> None:
    # A jump is a repricing: the index moves and so does the level a mean-reverting process returns to.
    model.fundamental *= 1.0 + shock.size
    model.fundamental_level *= 1.0 + shock.size


def _market_order(model, shock: MarketOrderShock, step: int) -> None:
    # Spread the program evenly; the first steps take the remainder so the total is exact.
    k = step - shock.step
    base, extra = divmod(shock.quantity, shock.over_steps)
    quantity = base + (1 if k < extra else 0)
    if quantity > 0:
        side = SELL if shock.side == "sell" else BUY
        model.submit_market(model.exogenous_account, side, quantity)


HANDLERS: dict[str, Callable] = {
    "fundamental_jump": _fundamental_jump,
    "market_order": _market_order,
}


def _duration(shock) -> int:
    return int(getattr(shock, "over_steps", 1))


class ShockSchedule:
    """The scenario's shocks indexed by the steps in which they act.

    Args:
        shocks: The scenario's validated shock list.
    """

    def __init__(self, shocks) -> None:
        self.shocks = list(shocks)
        self._by_step: dict[int, list] = {}
        for shock in self.shocks:
            for step in range(shock.step, shock.step + _duration(shock)):
                self._by_step.setdefault(step, []).append(shock)

    def apply(self, model, step: int) -> int:
        """Apply every shock active at ``step``, in file order; returns how many acted."""
        active = self._by_step.get(step, ())
        for shock in active:
            HANDLERS[shock.type](model, shock, step)
        return len(active)

    @property
    def needs_exogenous_account(self) -> bool:
        """Whether some shock trades for an outside party (an exogenous account is needed)."""
        return any(shock.type == "market_order" for shock in self.shocks)
