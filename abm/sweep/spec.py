"""Sweep files: their schema, and their expansion into validated runs with common random numbers.

A sweep file is YAML::

    base: spiral                     # scenario path (relative to the sweep file) or scenario name
    name: spiral_maintenance         # optional; default: the file name without .sweep.yaml
    set: {steps: 300}                # fixed overrides for every run (dotted keys, as `abm run --set`)
    grid:                            # cartesian product over dotted keys
      margin.maintenance: [0.01, 0.02, 0.03]
      liquidation.mode: [full, partial]
    zip:                             # parallel lists: one more axis of the product
      margin.initial: [0.02, 0.04]
      margin.call_buffer: [0.1, 0.2]
    seeds: {count: 20, root: 2024}   # or a list of seeds: [1, 2, 3]
    labels: {margin.maintenance: [low, mid, high]}
    group_by: [margin.maintenance]   # default: every grid and zip key

A grid value may be a whole mapping (``margin: [{rule: fixed, ...}, {rule: ewma_vol, ...}]``): it replaces
that section. Such a mapping may carry a ``label:`` key (taken out before it is applied), and any value can
be written ``{label: NAME, value: VALUE}``. ``set`` applies to every run: its keys are applied before the
swept values, except keys inside a swept key (``margin.call_buffer`` when ``margin`` is swept), which are
applied on top of each swept value.

Seeds: ``{count: N, root: R}`` gives seed ``i`` from ``numpy.random.SeedSequence(R).spawn(N)[i]`` (63 bits
of its state), so a run's seed depends on its seed index only, never on the worker that runs it; and every
grid point gets the same seed list (common random numbers).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from abm.config import Scenario, ScenarioError, read_yaml_mapping, resolve_scenario, scenario_from_dict
from abm.config.common import Seed
from abm.config.reading import _TOP, InputError
from abm.sweep.spec_errors import spec_problems

__all__ = [
    "MAX_RUNS",
    "SeedCount",
    "SeedPlan",
    "SweepError",
    "SweepPlan",
    "SweepPoint",
    "SweepSpec",
    "derive_seeds",
    "expand_sweep",
    "flatten_values",
    "format_run_id",
    "load_sweep",
]

MAX_RUNS = 10_000_000
_MAX_REPORTED = 30
_KEY_PATTERN = re.compile(r"^[A-Za-z_][\w]*(\.(\d+|[A-Za-z_]\w*))*$")
# Keys a sweep must not vary: the seed comes from `seeds:`.
_RESERVED_KEYS = ("seed",)
# Keys of a mapping value whose content names it well enough to be its default label.
_NAMING_KEYS = ("rule", "kind", "type", "name")


class SweepError(InputError):
    """A sweep file that cannot be read, validated or expanded, with one line per problem.

    Attributes:
        errors: One line per problem, ``"<dotted.path>: <message> (line N)"`` for the sweep file, or
            ``"point 3 (margin.maintenance=0.05): <scenario field>: <message>"`` for an expanded run.
        source: The sweep file, or None.
    """

    what = "sweep"


# --------------------------------------------------------------------------- schema


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, populate_by_name=True)


class SeedCount(_Strict):
    """``count`` seeds spawned from ``numpy.random.SeedSequence(root)``."""

    count: int = Field(ge=1, le=1_000_000)
    root: Seed = 0


NonEmptyList = Annotated[list[Any], Field(min_length=1)]


class SweepSpec(_Strict):
    """The contents of a sweep file (see the module docstring)."""

    base: str = Field(min_length=1, description="Scenario path (relative to the sweep file) or name.")
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str = ""
    fixed: dict[str, Any] = Field(default_factory=dict, alias="set")
    grid: dict[str, NonEmptyList] = Field(default_factory=dict)
    zip: dict[str, NonEmptyList] = Field(default_factory=dict)
    seeds: Annotated[list[Seed], Field(min_length=1)] | SeedCount
    labels: dict[str, Annotated[list[str], Field(min_length=1)]] = Field(default_factory=dict)
    group_by: list[str] | None = None
    counterfactual: bool = Field(
        default=False,
        description="Also run every run with forced liquidation off, and add amplification, "
        "counterfactual_max_drawdown and liquidation_added_drawdown to its measures (twice the time).",
    )

    @property
    def swept_keys(self) -> list[str]:
        """Grid keys then zip keys, in file order."""
        return [*self.grid, *self.zip]

    @model_validator(mode="after")
    def _check_keys(self) -> SweepSpec:
        for section, keys in (("set", self.fixed), ("grid", self.grid), ("zip", self.zip)):
            for key in keys:
                if not _KEY_PATTERN.match(key):
                    _fail(
                        f"{section}.{key}",
                        "not a dotted scenario key like margin.maintenance or agents.1.count",
                    )
                if key.split(".")[0] in _RESERVED_KEYS:
                    _fail(f"{section}.{key}", "the seed is set by 'seeds:', not by a key")
        swept = self.swept_keys
        for key in self.zip:
            if key in self.grid:
                _fail(f"zip.{key}", "also a grid key: sweep a key in grid or in zip, not both")
        for index, key in enumerate(swept):
            for other in swept[index + 1 :]:
                if _inside(key, other) or _inside(other, key):
                    _fail(
                        _section_of(self, other, other), f"overlaps the swept key '{key}': sweep one of them"
                    )
        for key in self.fixed:
            if key in swept:
                _fail(f"set.{key}", "also swept: a key is either fixed (set) or swept (grid/zip)")
        lengths = {key: len(values) for key, values in self.zip.items()}
        if len(set(lengths.values())) > 1:
            first = next(iter(lengths))
            for key, length in lengths.items():
                if length != lengths[first]:
                    _fail(
                        f"zip.{key}",
                        f"has {length} values but zip.{first} has {lengths[first]}: zip lists run in step",
                    )
        for key, names in self.labels.items():
            if key not in swept:
                _fail(f"labels.{key}", f"not a grid or zip key (swept: {', '.join(swept) or 'none'})")
            values = self.grid.get(key, self.zip.get(key))
            if len(names) != len(values):
                _fail(f"labels.{key}", f"has {len(names)} labels for {len(values)} values")
            if len(set(names)) != len(names):
                _fail(f"labels.{key}", "labels must be distinct")
        for index, key in enumerate(self.group_by or []):
            if key not in swept:
                _fail(
                    f"group_by.{index}",
                    f"'{key}' is not a grid or zip key (swept: {', '.join(swept) or 'none'})",
                )
        if isinstance(self.seeds, list) and len(set(self.seeds)) != len(self.seeds):
            _fail("seeds", "seeds must be distinct")
        return self


def _fail(path: str, message: str) -> None:
    raise PydanticCustomError("sweep_check", "{message}", {"path": path, "message": message})


def _inside(outer: str, inner: str) -> bool:
    """Whether ``inner`` is a key strictly inside ``outer`` (``margin.rule`` inside ``margin``)."""
    return inner.startswith(outer + ".")


def _section_of(spec: SweepSpec, key: str, shown: str) -> str:
    return f"{'grid' if key in spec.grid else 'zip'}.{shown}"


# --------------------------------------------------------------------------- seeds


@dataclass(frozen=True)
class SeedPlan:
    """The seeds shared by every grid point (common random numbers).

    Attributes:
        seeds: The seed of each seed index.
        entropy: The SeedSequence root (None for a listed seed).
        spawn_keys: The spawn key of each seed (None for a listed seed).
    """

    seeds: tuple[int, ...]
    entropy: int | None
    spawn_keys: tuple[tuple[int, ...] | None, ...]


def derive_seeds(seeds: Sequence[int] | SeedCount) -> SeedPlan:
    """Expand a ``seeds:`` entry into one seed per seed index.

    Args:
        seeds: A list of seeds (used as given) or a :class:`SeedCount`.

    Returns:
        The seed plan; for a count, seed ``i`` is 63 bits of the state of
        ``SeedSequence(root).spawn(count)[i]``, a function of ``root`` and ``i`` only.
    """
    if isinstance(seeds, SeedCount):
        children = np.random.SeedSequence(seeds.root).spawn(seeds.count)
        # 63 bits: the seed fits an int64 column and reproduces the run with `abm run --seed`.
        values = tuple(int(child.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1)) for child in children)
        return SeedPlan(
            values, seeds.root, tuple(tuple(int(k) for k in child.spawn_key) for child in children)
        )
    listed = tuple(int(seed) for seed in seeds)
    return SeedPlan(listed, None, tuple(None for _ in listed))


# --------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class SweepPoint:
    """One grid point: the swept values, their labels and the validated scenario.

    Attributes:
        index: Position in the expansion (grid keys in file order, then zip, last key fastest).
        values: Swept key -> value applied (labels taken out).
        labels: Swept key -> readable label of the value.
        group: The label of the point's group (from the ``group_by`` keys).
        overrides: Every ``dotted.key=value`` override applied to the base scenario, in order.
        scenario: The validated scenario of the point (before its seed is set).
    """

    index: int
    values: dict[str, Any]
    labels: dict[str, str]
    group: str
    overrides: tuple[str, ...]
    scenario: Scenario


@dataclass(frozen=True)
class SweepPlan:
    """A validated sweep: every point times every seed.

    Attributes:
        name: Sweep name.
        source: The sweep file (None for a mapping).
        base: The base scenario file.
        spec: The validated sweep spec.
        points: The grid points.
        seeds: The seeds shared by every point.
        group_by: The keys that define groups.
        extra_set: ``--set`` overrides from the command line (applied with ``set:``).
    """

    name: str
    source: Path | None
    base: Path
    spec: SweepSpec
    points: tuple[SweepPoint, ...]
    seeds: SeedPlan
    group_by: tuple[str, ...]
    extra_set: tuple[str, ...] = field(default=())

    @property
    def run_count(self) -> int:
        """Number of runs: points times seeds."""
        return len(self.points) * len(self.seeds.seeds)

    def run_id(self, point: int, seed_index: int) -> str:
        """Identifier of a run, sortable as text (see :func:`format_run_id`)."""
        return format_run_id(point, seed_index, len(self.points), len(self.seeds.seeds))

    def fingerprint(self) -> str:
        """SHA-256 of what the sweep runs: each point's scenario hash and the seeds (for --resume)."""
        payload = {
            "points": [_scenario_sha256(point.scenario) for point in self.points],
            "labels": [point.labels for point in self.points],
            "seeds": list(self.seeds.seeds),
        }
        if self.spec.counterfactual:  # the measures differ; a sweep without them is another sweep
            payload["counterfactual"] = True
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode("utf-8")).hexdigest()


def format_run_id(point: int, seed_index: int, points: int, seeds: int) -> str:
    """Identifier of a run, ``p<point>-s<seed index>``, zero-padded so that text order is run order.

    Args:
        point: The grid point's index.
        seed_index: The seed's index.
        points: Number of points of the sweep.
        seeds: Number of seeds of the sweep.
    """
    point_width = max(4, len(str(points - 1)))
    seed_width = max(4, len(str(seeds - 1)))
    return f"p{point:0{point_width}d}-s{seed_index:0{seed_width}d}"


def _scenario_sha256(scenario: Scenario) -> str:
    text = json.dumps(scenario.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def load_sweep(path: str | Path, extra_set: Sequence[str] = ()) -> SweepPlan:
    """Read, validate and expand a sweep file; every run is validated before anything runs.

    Args:
        path: The sweep file.
        extra_set: ``dotted.key=value`` overrides for every run (``abm sweep --set``), applied after ``set:``.

    Returns:
        The plan.

    Raises:
        SweepError: The file, one of its fields, or an expanded point is invalid; every problem is listed.
    """
    file = Path(path)
    try:
        data = read_yaml_mapping(file)
    except ScenarioError as exc:
        raise SweepError(exc.errors, file) from None
    return expand_sweep(data, source=file, extra_set=extra_set)


def expand_sweep(
    data: Mapping[str, Any], *, source: Path | None = None, extra_set: Sequence[str] = ()
) -> SweepPlan:
    """Validate sweep data (as read from a sweep file) and expand it into validated points.

    Args:
        data: The sweep file's mapping.
        source: The sweep file; ``base`` is looked up beside it first (None: the working directory).
        extra_set: Overrides for every run, applied after ``set:``.

    Returns:
        The plan.

    Raises:
        SweepError: See :func:`load_sweep`.
    """
    try:
        spec = SweepSpec.model_validate(dict(data))
    except ValidationError as exc:
        raise SweepError(spec_problems(exc, source), source) from None
    base = _find_base(spec.base, source)
    try:
        base_data = read_yaml_mapping(base)
    except ScenarioError as exc:
        raise SweepError([f"base ({base}): {line}" for line in exc.errors], source) from None
    seeds = derive_seeds(spec.seeds)
    axes = _axes(spec)
    point_count = math.prod(len(axis) for axis in axes) if axes else 1
    if point_count * len(seeds.seeds) > MAX_RUNS:
        raise SweepError(
            [f"{_TOP}: {point_count * len(seeds.seeds):,} runs, above the limit of {MAX_RUNS:,}"], source
        )
    group_by = tuple(spec.swept_keys if spec.group_by is None else spec.group_by)
    outer_set, inner_set = _split_set(spec, extra_set)
    points: list[SweepPoint] = []
    problems: list[str] = []
    for index, choice in enumerate(product(*axes) if axes else [()]):
        values: dict[str, Any] = {}
        labels: dict[str, str] = {}
        for entries in choice:
            for key, (value, label) in entries.items():
                values[key], labels[key] = value, label
        overrides = (*outer_set, *(_override(key, value) for key, value in values.items()), *inner_set)
        try:
            scenario = scenario_from_dict(base_data, overrides)
        except ScenarioError as exc:
            where = ", ".join(f"{key}={label}" for key, label in labels.items()) or "the only point"
            problems.extend(f"point {index} ({where}): {line}" for line in exc.errors)
            continue
        points.append(SweepPoint(index, values, labels, _group_label(labels, group_by), overrides, scenario))
    if problems:
        if len(problems) > _MAX_REPORTED:
            problems = [*problems[:_MAX_REPORTED], f"... and {len(problems) - _MAX_REPORTED} more problems"]
        raise SweepError(["nothing was run: every point is validated first", *problems], source)
    name = spec.name or _default_name(source, base)
    return SweepPlan(name, source, base, spec, tuple(points), seeds, group_by, tuple(extra_set))


def _find_base(base: str, source: Path | None) -> Path:
    if source is not None:
        beside = source.parent / base
        if beside.is_file():
            return beside
    try:
        return resolve_scenario(base)
    except ScenarioError as exc:
        raise SweepError([f"base: {line.split(': ', 1)[-1]}" for line in exc.errors], source) from None


def _default_name(source: Path | None, base: Path) -> str:
    if source is None:
        return f"{base.stem}-sweep"
    name = source.name
    for suffix in (".sweep.yaml", ".sweep.yml", ".yaml", ".yml"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return source.stem


def _split_set(spec: SweepSpec, extra_set: Sequence[str]) -> tuple[list[str], list[str]]:
    """``set:`` and ``--set`` overrides before the swept values, and those inside a swept key (after)."""
    swept = spec.swept_keys
    outer: list[str] = []
    inner: list[str] = []
    entries = [(key, _override(key, value)) for key, value in spec.fixed.items()]
    entries += [(item.partition("=")[0].strip(), item) for item in extra_set]
    for key, text in entries:
        if key in swept:
            # --set of a swept key is refused: it would silently collapse the axis.
            raise SweepError(
                [f"--set {text}: '{key}' is swept in this sweep; remove it from the sweep file instead"]
            )
        (inner if any(_inside(s, key) for s in swept) else outer).append(text)
    return outer, inner


def _axes(spec: SweepSpec) -> list[list[dict[str, tuple[Any, str]]]]:
    """One axis per grid key and one for the zip; each entry maps key -> (value, label)."""
    axes = []
    for key, raw in spec.grid.items():
        pairs = _labelled(key, raw, spec.labels.get(key), "grid")
        axes.append([{key: pair} for pair in pairs])
    if spec.zip:
        columns = {key: _labelled(key, raw, spec.labels.get(key), "zip") for key, raw in spec.zip.items()}
        length = len(next(iter(columns.values())))
        axes.append([{key: column[i] for key, column in columns.items()} for i in range(length)])
    return axes


def _labelled(key: str, raw: list[Any], names: list[str] | None, section: str) -> list[tuple[Any, str]]:
    values: list[Any] = []
    inline: list[str | None] = []
    for item in raw:
        if isinstance(item, dict) and set(item) == {"label", "value"}:
            values.append(item["value"])
            inline.append(str(item["label"]))
        elif isinstance(item, dict) and "label" in item:
            values.append({k: v for k, v in item.items() if k != "label"})
            inline.append(str(item["label"]))
        else:
            values.append(item)
            inline.append(None)
    if names is not None:
        if any(label is not None for label in inline):
            raise SweepError(
                [f"labels.{key}: {section}.{key} already labels its values inline; use one or the other"]
            )
        return list(zip(values, names, strict=True))
    defaults = _default_labels(values)
    labels = [
        label if label is not None else default for label, default in zip(inline, defaults, strict=True)
    ]
    if len(set(labels)) != len(labels):
        raise SweepError([f"{section}.{key}: two values have the same label; give each a distinct label"])
    return list(zip(values, labels, strict=True))


def _default_labels(values: list[Any]) -> list[str]:
    labels = [_scalar_label(value) for value in values]
    if all(isinstance(value, dict) for value in values):
        for naming_key in _NAMING_KEYS:
            names = [str(value.get(naming_key)) for value in values]
            if all(naming_key in value for value in values) and len(set(names)) == len(names):
                return names
    if len(set(labels)) != len(labels):
        return [f"{label}#{i}" for i, label in enumerate(labels)]
    return labels


def _scalar_label(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{key}={_scalar_label(item)}" for key, item in _flatten(value).items())
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _group_label(labels: Mapping[str, str], group_by: Sequence[str]) -> str:
    if not group_by:
        return "all"
    if len(group_by) == 1:
        return labels[group_by[0]]
    return ", ".join(f"{key}={labels[key]}" for key in group_by)


def _flatten(value: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, Mapping) and item:
            flat.update(_flatten(item, f"{name}."))
        else:
            flat[name] = item
    return flat


def flatten_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """Swept values as flat columns: a mapping value becomes ``key.sub.key`` columns, lists JSON text.

    Args:
        values: Swept key -> value.

    Returns:
        Column name -> scalar.
    """
    columns: dict[str, Any] = {}
    for key, value in values.items():
        flat = _flatten(value, f"{key}.") if isinstance(value, Mapping) else {key: value}
        for name, item in flat.items():
            columns[name] = json.dumps(item, separators=(",", ":")) if isinstance(item, list | dict) else item
    return columns


def _override(key: str, value: Any) -> str:
    """``key=value`` with the value in YAML flow style, checked to read back as the same value."""
    text = yaml.safe_dump(value, default_flow_style=True, width=1_000_000, sort_keys=False).strip()
    if text.endswith("\n..."):
        text = text[: -len("\n...")].strip()
    elif text.endswith("..."):
        text = text[:-3].strip()
    if yaml.safe_load(text) != value:
        raise SweepError([f"{key}: value {value!r} cannot be written as an override"])
    return f"{key}={text}"
