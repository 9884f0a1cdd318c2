"""Argument checks shared by every book engine, so that both refuse the same calls with the same words.

Each engine tests the common case (plain ints in range) inline and calls these only when that test
fails: the slow path that converts numpy integers and raises the precise error. The order of the
checks is fixed (side, then the integers in argument order, then their ranges), so a call with two bad
arguments raises the same error in every engine.
"""

from __future__ import annotations

from math import isfinite
from operator import index as _as_index

from abm.book.protocol import MAX_LOTS, MAX_PRICE_TICKS

__all__ = [
    "ladder_arguments",
    "profile_arguments",
    "market_arguments",
    "replace_arguments",
    "check_reference",
    "check_side",
    "integer",
    "validated_depth_profile",
    "validated_ladder",
    "validated_limit",
    "validated_market",
    "validated_within",
]


def integer(value: object, name: str) -> int:
    """Return ``value`` as a plain Python int if it is integral (int, numpy integer), else raise TypeError.

    Numpy integers are converted so that they never reach the price lists or the fills: they would
    make every later comparison slower and leak numpy types into the ledger.
    """
    if type(value) is int:
        return value
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, got bool {value!r}")
    try:
        return _as_index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}") from None


def check_side(side: object) -> int:
    """Return ``side`` as an int; raise ValueError unless it is BUY (+1) or SELL (-1)."""
    if side != 1 and side != -1:
        raise ValueError(f"side must be BUY (+1) or SELL (-1), got {side!r}")
    return integer(side, "side")


def check_reference(reference: object, name: str = "reference") -> float:
    """Return ``reference`` (a price in ticks) as a float; raise ValueError unless it is finite."""
    try:
        value = float(reference)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number of ticks, got {type(reference).__name__}") from None
    if not isfinite(value):
        raise ValueError(f"{name} must be a finite price in ticks, got {reference!r}")
    return value


def _owner(owner: object) -> int:
    owner = integer(owner, "owner")
    if owner < 0:
        raise ValueError(f"owner must be an account id >= 0, got {owner}")
    return owner


def _quantity(quantity: object) -> int:
    quantity = integer(quantity, "quantity")
    if quantity <= 0:
        raise ValueError(f"quantity must be a positive number of lots, got {quantity}")
    if quantity > MAX_LOTS:
        raise ValueError(f"quantity must be at most {MAX_LOTS} lots, got {quantity}")
    return quantity


def check_price(price: int) -> None:
    """Raise ValueError unless ``price`` (an int) is a tick price the books take."""
    if price < 1:
        raise ValueError(f"price must be >= 1 tick, got {price}")
    if price > MAX_PRICE_TICKS:
        raise ValueError(
            f"price must be at most {MAX_PRICE_TICKS} ticks, got {price} "
            "(use a larger market.tick_size or lower prices)"
        )


def validated_limit(
    owner: object, side: object, price: object, quantity: object
) -> tuple[int, int, int, int]:
    """Checked ``(owner, side, price, quantity)`` of a limit order."""
    side = check_side(side)
    owner = integer(owner, "owner")
    price = integer(price, "price")
    quantity = integer(quantity, "quantity")
    owner = _owner(owner)
    check_price(price)
    return owner, side, price, _quantity(quantity)


def validated_market(owner: object, side: object, quantity: object) -> tuple[int, int, int]:
    """Checked ``(owner, side, quantity)`` of an order without a price (market orders, replaces)."""
    side = check_side(side)
    owner = integer(owner, "owner")
    quantity = integer(quantity, "quantity")
    return _owner(owner), side, _quantity(quantity)


def validated_limit_price(limit_price: object) -> int | None:
    """Checked limit of a market order: None, or an int >= 1 tick."""
    if limit_price is None:
        return None
    limit = integer(limit_price, "limit_price")
    if limit < 1:
        raise ValueError(f"limit_price must be None or >= 1 tick, got {limit}")
    return limit


def validated_within(side: object, within_ticks: object) -> tuple[int, int]:
    """Checked ``(side, within_ticks)`` of a depth query."""
    side = check_side(side)
    within = integer(within_ticks, "within_ticks")
    if within < 0:
        raise ValueError(f"within_ticks must be >= 0, got {within}")
    return side, within


def validated_count(side: object, n: object) -> tuple[int, int]:
    """Checked ``(side, n)`` of a levels query."""
    side = check_side(side)
    n = integer(n, "n")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    return side, n


def validated_cost(side: object, quantity: object) -> tuple[int, int]:
    """Checked ``(side, quantity)`` of a hypothetical market order."""
    side = check_side(side)
    quantity = integer(quantity, "quantity")
    if quantity <= 0:
        raise ValueError(f"quantity must be a positive number of lots, got {quantity}")
    return side, quantity


def validated_ladder(owner: object, reference: float, half_spread: float, spacing: float, levels: object,
                     level_size: object) -> tuple[int, int, int]:  # fmt: skip
    """Checked ``(owner, levels, level_size)`` of a ladder around ``reference`` (ticks).

    The ladder's farthest ask, ``ceil(reference + half_spread + (levels - 1) * spacing)``, must be a
    price the books take, so that a refused ladder changes nothing.
    """
    owner = _owner(owner)
    levels = integer(levels, "levels")
    level_size = integer(level_size, "level_size")
    if levels < 0:
        raise ValueError(f"levels must be >= 0, got {levels}")
    if level_size < 1 or level_size > MAX_LOTS:
        raise ValueError(f"level_size must be in 1..{MAX_LOTS} lots, got {level_size}")
    for name, value in (("half_spread", half_spread), ("spacing", spacing)):
        if not isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a finite number of ticks >= 0, got {value!r}")
    top = reference + half_spread + max(levels - 1, 0) * spacing
    if levels and not top < MAX_PRICE_TICKS:
        raise ValueError(
            f"the ladder reaches {top:.6g} ticks, above the books' limit of {MAX_PRICE_TICKS} ticks"
        )
    return owner, levels, level_size


def validated_depth_profile(reference: object, width: object, buckets: object, max_levels: object
                            ) -> tuple[float, float, int, int]:  # fmt: skip
    """Checked ``(reference, width, buckets, max_levels)`` of a depth profile."""
    reference = check_reference(reference)
    width = check_reference(width, "width")
    if width <= 0:
        raise ValueError(f"width must be > 0 ticks, got {width!r}")
    buckets = integer(buckets, "buckets")
    max_levels = integer(max_levels, "max_levels")
    if buckets < 1:
        raise ValueError(f"buckets must be >= 1, got {buckets}")
    if max_levels < 0:
        raise ValueError(f"max_levels must be >= 0, got {max_levels}")
    return reference, width, buckets, max_levels


# --------------------------------------------------------------------------- cheap test first
# The calls below run once per maker quote or trader replace: a function call is cheap there, so
# both engines share these (submit_limit, the hottest call, tests its arguments inline).


def market_arguments(owner: object, side: object, quantity: object) -> tuple[int, int, int]:
    """Checked ``(owner, side, quantity)`` of an order without a price: one combined test when usual."""
    if (
        type(quantity) is not int
        or type(side) is not int
        or type(owner) is not int
        or not 0 < quantity <= MAX_LOTS
        or owner < 0
        or (side != 1 and side != -1)
    ):
        return validated_market(owner, side, quantity)
    return owner, side, quantity


def replace_arguments(
    owner: object, side: object, quantity: object, offset: object, reference: object
) -> tuple[int, int, int, int]:
    """Checked ``(owner, side, quantity, offset)`` of a replace with a passive order (reference finite)."""
    owner, side, quantity = market_arguments(owner, side, quantity)
    if type(offset) is not int:
        offset = integer(offset, "offset")
    if type(reference) is not float or not isfinite(reference):
        check_reference(reference)
    return owner, side, quantity, offset


def ladder_arguments(
    owner: object, reference: float, half_spread: float, spacing: float, levels: object, level_size: object
) -> tuple[int, int, int]:
    """Checked ``(owner, levels, level_size)`` of a ladder (see :func:`validated_ladder`)."""
    if (
        type(owner) is not int
        or owner < 0
        or type(levels) is not int
        or type(level_size) is not int
        or not 0 < level_size <= MAX_LOTS
        or not 0.0 <= half_spread
        or not 0.0 <= spacing
        or not reference + half_spread + levels * spacing < MAX_PRICE_TICKS
    ):
        return validated_ladder(owner, reference, half_spread, spacing, levels, level_size)
    return owner, levels, level_size


def profile_arguments(
    reference: object, width: object, buckets: object, max_levels: object
) -> tuple[float, float, int, int]:
    """Checked ``(reference, width, buckets, max_levels)`` of a depth profile (cheap test first)."""
    if (
        type(buckets) is not int
        or type(max_levels) is not int
        or not width > 0  # type: ignore[operator]
        or buckets < 1
        or not isfinite(reference)  # type: ignore[arg-type]
    ):
        return validated_depth_profile(reference, width, buckets, max_levels)
    return reference, width, buckets, max_levels  # type: ignore[return-value]
