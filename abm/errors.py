"""Errors the simulator raises while it runs (input errors are in :mod:`abm.config.reading`)."""

from __future__ import annotations

__all__ = ["InvariantError"]


class InvariantError(RuntimeError):
    """An accounting or market invariant was breached; the message names step, invariant and accounts.

    Args:
        message: The full description.
        step: The step at whose end the breach was found.
        invariant: Its short name (see :mod:`abm.invariants`), e.g. ``"conservation"``.
        accounts: Ids of the accounts involved.
    """

    def __init__(
        self, message: str, *, step: int | None = None, invariant: str | None = None, accounts=()
    ) -> None:
        super().__init__(message)
        self.step = step
        self.invariant = invariant
        self.accounts = tuple(int(account) for account in accounts)

    def __reduce__(self):
        # Keep the attributes across processes (sweeps run in workers).
        return _rebuild_invariant_error, (str(self), self.step, self.invariant, self.accounts)


def _rebuild_invariant_error(message, step, invariant, accounts) -> InvariantError:
    return InvariantError(message, step=step, invariant=invariant, accounts=accounts)
