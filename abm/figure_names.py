"""The figures a run directory holds: their file names, captions and report order (no matplotlib).

:mod:`abm.plots` draws them; the run report (:mod:`abm.report`) only needs their names and captions,
so it reads them from here without importing matplotlib.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

__all__ = ["FIGURE_NAMES", "figure_caption", "figure_order", "has_figure", "instrument_names"]

# Every figure a run can have, in report order, with its caption.
FIGURE_NAMES = {
    "price.png": "Price, mark and index, with the liquidated notional per step",
    "depth.png": "Order book depth around the stress",
    "margin.png": "Margin rates, insurance fund and bad debt",
    "leverage.png": "Mean leverage and open interest",
    "leverage_distribution.png": "Leverage of the traders before and after the stress",
    "cascade.png": "The liquidation cascade DAG, by step and round",
    "cascade_sizes.png": "Cascade size distribution",
}
# Figures drawn once per instrument when there are several: ``<stem>_<instrument>.png``.
_PER_INSTRUMENT = {
    "price": "Price, mark and index of {name}",
    "depth": "Order book depth of {name} around the stress",
}


def instrument_names(table: pd.DataFrame | None) -> list[str]:
    """The instruments of a long-form table, in order of first appearance ([] without the column).

    Example:
        >>> instrument_names(pd.DataFrame({"step": [0, 0, 1, 1], "instrument": ["A", "B", "A", "B"]}))
        ['A', 'B']
    """
    if table is None or "instrument" not in table:
        return []
    return [str(name) for name in pd.unique(table["instrument"])]


def figure_caption(name: str) -> str:
    """The caption of a figure file (``price_B.png``: the per-instrument price figure of B).

    Example:
        >>> figure_caption("depth_B.png")
        'Order book depth of B around the stress'
    """
    if name in FIGURE_NAMES:
        return FIGURE_NAMES[name]
    stem, _, instrument = Path(name).stem.partition("_")
    if stem in _PER_INSTRUMENT and instrument:
        return _PER_INSTRUMENT[stem].format(name=instrument)
    return Path(name).stem.replace("_", " ")


def has_figure(name: str, present: Iterable[str]) -> bool:
    """Whether ``present`` holds the figure ``name`` (itself, or per instrument: ``depth_A.png``...).

    Example:
        >>> has_figure("depth.png", ["price.png", "depth_A.png"]), has_figure("depth.png", ["price.png"])
        (True, False)
    """
    present = set(present)
    if name in present:
        return True
    stem = Path(name).stem
    return stem in _PER_INSTRUMENT and any(other.startswith(f"{stem}_") for other in present)


def figure_order(names: Iterable[str], instruments: Sequence[str] = ()) -> list[str]:
    """Figure file names in report order: FIGURE_NAMES's order, each one's per-instrument figures after it.

    Per-instrument figures follow ``instruments`` (the scenario's order), else their names; other
    files come last, by name.

    Example:
        >>> figure_order(["margin.png", "price_B.png", "price.png", "price_A.png", "extra.png"], ["B", "A"])
        ['price.png', 'price_B.png', 'price_A.png', 'margin.png', 'extra.png']
    """
    base = list(FIGURE_NAMES)
    rank = {name: i for i, name in enumerate(instruments)}

    def key(name: str) -> tuple[int, int, str]:
        if name in FIGURE_NAMES:
            return base.index(name), -1, ""
        stem, _, instrument = Path(name).stem.partition("_")
        if f"{stem}.png" in FIGURE_NAMES and instrument:
            return base.index(f"{stem}.png"), rank.get(instrument, len(rank)), instrument
        return len(base), 0, name

    return sorted(names, key=key)
