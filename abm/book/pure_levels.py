"""What the pure book's modules share about its levels: the housekeeping thresholds and two helpers.

The layout itself (sides, levels, queues, dead entries) is described in :mod:`abm.book.pure`; this
module holds the parts that both :mod:`abm.book.pure` (order entry, matching, cancellation) and
:mod:`abm.book.pure_ladders` (the makers' requote, which cancels and places in one pass) need, so
that neither imports the other.
"""

from __future__ import annotations

from bisect import bisect_left

__all__: list[str] = []

# A level's dead (cancelled) queue entries are compacted away once there are more than this many
# and they outnumber the live ones.
_COMPACTION_SLACK = 16

# Emptied levels are kept for reuse until they outnumber the listed ones by more than this.
_EMPTY_LEVEL_SLACK = 64


def _drop_empty_levels(levels: dict[int, list]) -> None:
    """Delete the emptied levels kept for reuse (their queues are empty and their keys unlisted)."""
    for price in [price for price, level in levels.items() if not level[0]]:
        del levels[price]


def _unlist(keys: list[int], key: int) -> None:
    """Take ``key`` (present) out of a side's ascending key list; the best key, the last, is the usual one."""
    if keys[-1] == key:
        keys.pop()
    else:
        del keys[bisect_left(keys, key)]
