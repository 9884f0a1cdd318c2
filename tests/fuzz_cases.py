"""Fuzz cases for the CLI: scenario files and ``--set`` overrides drawn around the schema's bounds.

Shared by ``tests/test_hostile.py`` (a short budget in the suite) and ``benchmarks/fuzz.py`` (a long
one). A case is a base scenario from the library, shortened, plus a few leaf values replaced by values
near the bounds the schema declares (read from ``Scenario.model_json_schema()``, so a new bounded field
is fuzzed without being listed here), delivered either as ``--set`` overrides or written into a
scenario file. Every case must end in one of two ways:

- exit 0: the run completed under ``--check`` (every invariant after every step) and wrote its
  directory;
- exit 2: one ``error:`` message naming a field path, and nothing written.

Never a traceback, never exit 1 (an internal error or a broken invariant).
"""

from __future__ import annotations

import contextlib
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from abm import cli
from abm.config import Scenario, read_yaml_mapping, resolve_scenario

__all__ = [
    "BASES",
    "FuzzCase",
    "Outcome",
    "draw_case",
    "leaf_paths",
    "mutations",
    "prepare_base",
    "problems",
    "run_case",
    "schema_and_leaves",
]

# Single- and multi-instrument bases; each is cut to a few dozen steps with its shocks inside them.
BASES = ("calm", "spiral", "contagion")
STEPS = 24


def prepare_base(name: str, steps: int = STEPS) -> dict[str, Any]:
    """The library scenario ``name`` as data, cut to ``steps`` steps with every shock moved inside."""
    data = read_yaml_mapping(resolve_scenario(name))
    data["steps"] = steps
    for shock in data.get("shocks") or []:
        if "step" in shock:
            shock["step"] = min(int(shock["step"]), steps // 2)
        for key in ("duration", "steps"):
            if isinstance(shock.get(key), int):
                shock[key] = min(shock[key], steps // 4 or 1)
    return data


def leaf_paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a number, text or boolean leaf of ``data``, in document order."""
    if isinstance(data, dict):
        return [path for key, value in data.items() for path in leaf_paths(value, (*prefix, key))]
    if isinstance(data, list):
        return [path for index, value in enumerate(data) for path in leaf_paths(value, (*prefix, index))]
    return [prefix]


def _schema_node(schema: dict[str, Any], path: tuple[Any, ...], data: Any) -> dict[str, Any] | None:
    """The JSON-schema node of the leaf at ``path`` (refs and unions followed by the data's shape)."""
    definitions = schema.get("$defs", {})

    def resolve(node: dict[str, Any], value: Any) -> dict[str, Any]:
        while "$ref" in node:
            node = definitions[node["$ref"].rsplit("/", 1)[1]]
        for union in ("oneOf", "anyOf"):
            if union in node:
                branches = [resolve(branch, value) for branch in node[union]]
                if isinstance(value, dict) and isinstance(value.get("kind") or value.get("type"), str):
                    tag = value.get("kind") or value.get("type")
                    for branch in branches:
                        tag_node = branch.get("properties", {}).get("kind") or branch.get(
                            "properties", {}
                        ).get("type")
                        if tag_node and tag in (tag_node.get("const"), *(tag_node.get("enum") or ())):
                            return branch
                for branch in branches:
                    wanted = {"object": dict, "array": list}.get(branch.get("type"))
                    if wanted is not None and isinstance(value, wanted):
                        return branch
                numeric = [branch for branch in branches if branch.get("type") in ("number", "integer")]
                return numeric[0] if numeric else branches[0]
        return node

    node, value = resolve(schema, data), data
    for segment in path:
        if isinstance(segment, int):
            node, value = node.get("items", {}), value[segment]
        else:
            node, value = node.get("properties", {}).get(segment, {}), value[segment]
        node = resolve(node, value)
    return node or None


def _inside(node: dict[str, Any] | None, value: Any) -> bool:
    if node is None or isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if node.get("type") == "integer" and not isinstance(value, int):
        return False
    return (
        value >= node.get("minimum", -math.inf)
        and value <= node.get("maximum", math.inf)
        and value > node.get("exclusiveMinimum", -math.inf)
        and value < node.get("exclusiveMaximum", math.inf)
    )


def mutations(node: dict[str, Any] | None, current: Any) -> tuple[list[Any], list[Any]]:
    """Values to try for one leaf: (inside its bounds, outside them or of the wrong kind).

    Inside: the bounds, the floats next to them on the inside, and the current value scaled by 0.001 to
    1,000; outside: just past the bounds, and the usual hostile values.
    """
    candidates: list[Any] = [None, "text", True, -1, 0, 1, 1.0e308, -1.0e308, 2**63, 1e-300]
    if node:
        for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            if key in node:
                bound = node[key]
                candidates += [bound, bound * 2 if bound else 1.0, bound / 2 if bound else -1.0]
                candidates += [
                    math.nextafter(float(bound), math.inf),
                    math.nextafter(float(bound), -math.inf),
                ]
                if node.get("type") == "integer" and isinstance(bound, int):
                    candidates += [bound - 1, bound + 1]
    if isinstance(current, int | float) and not isinstance(current, bool):
        for factor in (0.001, 0.1, 0.5, 1.5, 2, 10, 1000, -1):
            scaled = current * factor
            candidates.append(round(scaled) if isinstance(current, int) else scaled)
    inside = [value for value in candidates if _inside(node, value)]
    outside = [value for value in candidates if not _inside(node, value)]
    if node and "enum" in node:
        inside += list(node["enum"])
        outside.append("no_such_choice")
    return inside, outside


@dataclass(frozen=True)
class FuzzCase:
    """One drawn case: a base, the leaves replaced, and how they are delivered."""

    base: str
    changes: tuple[tuple[tuple[Any, ...], Any], ...]
    as_file: bool

    def describe(self) -> str:
        """A one-line text of the case, to reproduce it."""
        parts = ", ".join(f"{'.'.join(map(str, path))}={value!r}" for path, value in self.changes)
        return f"{self.base} [{'file' if self.as_file else '--set'}] {parts}"


@dataclass(frozen=True)
class Outcome:
    """What the CLI did with a case."""

    status: int
    stderr: str
    wrote: bool


def _yaml_value(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=1_000_000).strip()
    return text.removesuffix("\n...").removesuffix("...").strip()


def run_case(case: FuzzCase, folder: Path) -> Outcome:
    """Run ``abm run --check`` on the case in this process; report the status, stderr and output."""
    data = prepare_base(case.base)
    overrides = [f"steps={STEPS}"]
    for path, value in case.changes:
        target = data
        for segment in path[:-1]:
            target = target[segment]
        target[path[-1]] = value
        overrides.append(f"{'.'.join(map(str, path))}={_yaml_value(value)}")
    out = folder / "run"
    if case.as_file:
        scenario = folder / "case.yaml"
        scenario.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        command = ["run", str(scenario)]
    else:
        base = prepare_base(case.base)
        scenario = folder / "base.yaml"
        scenario.write_text(yaml.safe_dump(base, sort_keys=False), encoding="utf-8")
        command = ["run", str(scenario)] + [part for item in overrides for part in ("--set", item)]
    command += ["--out", str(out), "--check", "--no-report", "--no-progress", "--force"]
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        try:
            status = cli.main(command)
        except BaseException as exc:  # a raise out of main is itself the defect
            import traceback

            traceback.print_exception(exc, file=stderr)
            status = -1
    return Outcome(status=status, stderr=stderr.getvalue(), wrote=(out / "manifest.json").exists())


def schema_and_leaves(base: str) -> tuple[dict[str, Any], dict[str, Any], list[tuple[Any, ...]]]:
    """The JSON schema, the prepared base and its leaf paths (``steps`` left alone: it is set)."""
    schema = Scenario.model_json_schema()
    data = prepare_base(base)
    leaves = [path for path in leaf_paths(data) if path != ("steps",) and path[:1] != ("description",)]
    return schema, data, leaves


def problems(case: FuzzCase, outcome: Outcome) -> list[str]:
    """What is wrong with an outcome (empty when it is one of the two allowed endings)."""
    found = []
    if "Traceback" in outcome.stderr:
        found.append("a traceback")
    if outcome.status == 0:
        if not outcome.wrote:
            found.append("exit 0 but no run directory")
    elif outcome.status == 2:
        if outcome.wrote:
            found.append("exit 2 but a run directory was written")
        lines = [line for line in outcome.stderr.splitlines() if line.strip()]
        if not lines or not lines[0].startswith("error:"):
            found.append("exit 2 without an error: line")
        elif not any(": " in line.split("error:", 1)[-1] for line in lines):
            found.append("exit 2 without a field path")
    else:
        found.append(f"exit {outcome.status}")
    return [f"{case.describe()}: {item}\n{outcome.stderr[-2000:]}" for item in found]


# The suite's budget skips agent counts above this (a valid group of a million agents takes a minute).
CHEAP_COUNT = 20_000


def draw_case(draw, max_changes: int = 3, cheap: bool = False, bases: tuple[str, ...] = BASES) -> FuzzCase:
    """Draw one case with hypothesis's ``draw`` (inside ``@st.composite``).

    Args:
        draw: Hypothesis's ``draw``.
        max_changes: At most this many leaves replaced.
        cheap: No agent counts above ``CHEAP_COUNT`` (the suite's budget).
        bases: The library scenarios to start from (:data:`BASES` by default).
    """
    from hypothesis import strategies as st

    base = draw(st.sampled_from(bases))
    schema, data, leaves = schema_and_leaves(base)
    chosen = draw(st.lists(st.sampled_from(leaves), min_size=1, max_size=max_changes, unique=True))
    changes = []
    for path in chosen:
        current = data
        for segment in path:
            current = current[segment]
        inside, outside = mutations(_schema_node(schema, path, data), current)
        if cheap and path[-1] == "count":
            inside = [value for value in inside if abs(value) <= CHEAP_COUNT]
        # Two draws in three inside the bounds: most cases should run, to test what validates.
        values = inside if inside and draw(st.integers(0, 2)) else outside
        value = draw(st.sampled_from(values))
        changes.append((path, value))
    return FuzzCase(base=base, changes=tuple(changes), as_file=draw(st.booleans()))
