"""What a sweep ran, restated from its manifest: the base, the overrides, the grid and the seeds.

The sweep report opens with these two tables so that a reader knows what was compared without
opening the sweep file:

>>> manifest = {
...     "name": "demo", "base_scenario": "scenarios/spiral.yaml", "spec": {"set": {"steps": 400}},
...     "extra_set": ["seed=3"], "swept_keys": ["margin.maintenance"], "runs": 4,
...     "seeds": [{"seed": 11, "entropy": 7, "spawn_key": [0]}, {"seed": 12, "entropy": 7, "spawn_key": [1]}],
...     "points": [
...         {"point": 0, "group": "0.02", "labels": {"margin.maintenance": "0.02"},
...          "values": {"margin.maintenance": 0.02}},
...         {"point": 1, "group": "0.03", "labels": {"margin.maintenance": "0.03"},
...          "values": {"margin.maintenance": 0.03}},
...     ],
... }
>>> settings, points = sweep_design(manifest)
>>> for item, value in settings.itertuples(index=False):
...     print(f"{item}: {value}")
sweep: demo
base scenario: scenarios/spiral.yaml
every run (set): steps=400, seed=3
swept: margin.maintenance: 2 values
seeds: 2, common to every point: numpy.random.SeedSequence(7).spawn(2), in that order
runs: 4
>>> print(points.to_string(index=False))
 point group margin.maintenance
     0  0.02               0.02
     1  0.03               0.03
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pandas as pd

from abm.sweep.spec import _flatten

__all__ = ["sweep_design"]


def _shown(value: Any) -> str:
    # Sections (a whole margin: block) as compact JSON, scalars as they are.
    if isinstance(value, Mapping | list):
        return json.dumps(value, separators=(", ", ": "))
    return str(value)


def _seed_text(seeds: list[Mapping[str, Any]]) -> str:
    entropies = {seed.get("entropy") for seed in seeds}
    if len(entropies) == 1 and None not in entropies:
        return (
            f"{len(seeds)}, common to every point: numpy.random.SeedSequence({entropies.pop()})"
            f".spawn({len(seeds)}), in that order"
        )
    return f"{len(seeds)}, common to every point: " + ", ".join(str(seed["seed"]) for seed in seeds)


def sweep_design(manifest: Mapping[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The sweep's settings (``item``, ``value``) and its points (``point``, ``group``, one column per key).

    Args:
        manifest: A sweep manifest (``sweep_manifest.json``).

    Returns:
        ``(settings, points)``.
    """
    spec = manifest.get("spec") or {}
    common = [f"{key}={_shown(value)}" for key, value in _flatten(spec.get("set") or {}).items()]
    common += [str(item) for item in manifest.get("extra_set") or []]
    swept = list(manifest.get("swept_keys") or [])
    points = list(manifest.get("points") or [])
    counts = {key: len({_shown(point["values"].get(key)) for point in points}) for key in swept}
    settings = pd.DataFrame(
        [
            ("sweep", manifest.get("name", "")),
            ("base scenario", manifest.get("base_scenario", "")),
            ("every run (set)", ", ".join(common) or "nothing"),
            ("swept", "; ".join(f"{key}: {count} values" for key, count in counts.items()) or "nothing"),
            ("seeds", _seed_text(list(manifest.get("seeds") or []))),
            ("runs", str(manifest.get("runs", ""))),
        ],
        columns=["item", "value"],
    )
    rows = [
        {
            "point": point["point"],
            "group": point.get("group", ""),
            **{key: _shown(point["values"].get(key)) for key in swept},
        }
        for point in points
    ]
    return settings, pd.DataFrame(rows, columns=["point", "group", *swept])
