"""Scenario schema (pydantic v2) and loading.

A scenario file is YAML with the top-level sections ``name``, ``description``, ``steps``,
``seed``, ``market``, ``fundamental``, ``agents``, ``margin``, ``liquidation`` and ``shocks``.
Every section is a strict pydantic model: unknown keys are rejected, numbers written as text
are rejected, and every error names the field by its dotted path (``agents.1.count``).

Use :func:`load_scenario` to read a file, :func:`scenario_from_dict` for plain mappings, and
:func:`apply_overrides` for the ``--set dotted.key=value`` overrides of the command line.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
import types
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, Tag, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from abm.margin.settings import BUILTIN_RULES, FixedMargin, MarginConfig, max_initial_rate

__all__ = [
    "AGENT_KINDS",
    "MAX_ALIASES",
    "MAX_EXPANDED_NODES",
    "MAX_FILE_BYTES",
    "SCENARIOS_DIR",
    "SHOCK_TYPES",
    "AgentGroup",
    "FundamentalConfig",
    "LeverageDistribution",
    "LeveragedTraderGroup",
    "LiquidationConfig",
    "MarginConfig",
    "MarketConfig",
    "MarketMakerGroup",
    "NoiseTraderGroup",
    "FundamentalistGroup",
    "Scenario",
    "ScenarioError",
    "Shock",
    "apply_overrides",
    "available_scenarios",
    "load_scenario",
    "read_yaml_mapping",
    "resolve_scenario",
    "scenario_from_dict",
    "scenario_hash",
]


class _Strict(BaseModel):
    """Base for every section: unknown keys rejected, no silent type coercion."""

    # allow_inf_nan=False: `.inf` or `.nan` in a file is a typo, never a meaningful setting.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=False, allow_inf_nan=False)


Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
PositiveFloat = Annotated[float, Field(gt=0.0)]


# --------------------------------------------------------------------------- market


class MarkPriceConfig(_Strict):
    """How the exchange's mark price is formed."""

    source: Literal["last", "mid", "index", "index_ema_basis"] = "mid"
    ema_steps: int = Field(default=30, ge=1, description="EMA span of the basis (index_ema_basis).")


class MarketConfig(_Strict):
    """The traded future and its book."""

    tick_size: PositiveFloat = 0.01
    initial_price: PositiveFloat = 100.0
    contract_size: PositiveFloat = Field(default=1.0, description="Units of underlying per lot.")
    mark_price: MarkPriceConfig = Field(default_factory=MarkPriceConfig)
    vol_window: int = Field(default=60, ge=2, description="Steps in the realised-volatility window.")

    @model_validator(mode="before")
    @classmethod
    def _mark_price_shorthand(cls, data: Any) -> Any:
        # `mark_price: mid` is accepted as shorthand for `mark_price: {source: mid}`.
        if isinstance(data, dict) and isinstance(data.get("mark_price"), str):
            data = {**data, "mark_price": {"source": data["mark_price"]}}
        return data


class FundamentalConfig(_Strict):
    """The fundamental value (the external spot index) process, in log terms per step."""

    process: Literal["gbm", "ou", "constant"] = "gbm"
    volatility: float = Field(default=0.0005, ge=0.0, le=0.2, description="Per-step log sigma.")
    drift: float = Field(default=0.0, ge=-0.1, le=0.1, description="Per-step log drift.")
    mean_reversion: float = Field(default=0.01, ge=0.0, le=1.0, description="OU speed per step.")
    long_run: float | None = Field(default=None, gt=0.0, description="OU level; default initial.")
    initial: float | None = Field(default=None, gt=0.0, description="Default market.initial_price.")


# --------------------------------------------------------------------------- agents


class LeverageDistribution(_Strict):
    """Distribution of traders' target leverage (notional / equity)."""

    distribution: Literal["fixed", "uniform", "lognormal"] = "uniform"
    value: float | None = Field(default=None, ge=1.0, description="For fixed.")
    low: float | None = Field(default=None, ge=1.0, description="For uniform.")
    high: float | None = Field(default=None, ge=1.0, description="For uniform.")
    median: float | None = Field(default=None, ge=1.0, description="For lognormal.")
    sigma: float | None = Field(default=None, gt=0.0, description="For lognormal (log sd).")
    cap: float | None = Field(default=None, ge=1.0, description="Upper clip for lognormal.")

    @model_validator(mode="after")
    def _check_parameters(self) -> LeverageDistribution:
        needed = {"fixed": ("value",), "uniform": ("low", "high"), "lognormal": ("median", "sigma")}
        missing = [p for p in needed[self.distribution] if getattr(self, p) is None]
        if missing:
            raise ValueError(f"distribution '{self.distribution}' needs {', '.join(missing)}")
        if self.distribution == "uniform" and self.low > self.high:
            raise ValueError("low must not exceed high")
        return self

    @property
    def upper_bound(self) -> float:
        """Largest leverage the distribution can draw (inf for an uncapped lognormal)."""
        if self.distribution == "fixed":
            return float(self.value)
        if self.distribution == "uniform":
            return float(self.high)
        return float(self.cap) if self.cap is not None else float("inf")


class MarginCallReaction(_Strict):
    """Probabilities of a trader's reaction to a margin call; they must sum to 1."""

    top_up: Fraction = 0.3
    reduce: Fraction = 0.3
    ignore: Fraction = 0.4

    @model_validator(mode="after")
    def _sum_to_one(self) -> MarginCallReaction:
        total = self.top_up + self.reduce + self.ignore
        if abs(total - 1.0) > 1e-9:
            raise ValueError(f"top_up + reduce + ignore must sum to 1 (got {total:g})")
        return self


class _GroupBase(_Strict):
    count: int = Field(ge=0, le=10_000_000)
    collateral: PositiveFloat = Field(default=1_000.0, description="Initial collateral per agent.")
    arrival_rate: Fraction = Field(default=0.1, description="Probability of acting in a step.")
    label: str | None = Field(default=None, description="Name of the group in outputs.")


class LeveragedTraderGroup(_GroupBase):
    """Leveraged position takers, the accounts whose liquidation makes the spiral."""

    kind: Literal["leveraged_trader"]
    side: Literal["long", "short", "mixed"] = "long"
    long_share: Fraction = Field(default=0.5, description="Share of longs when side is mixed.")
    leverage: LeverageDistribution = Field(
        default_factory=lambda: LeverageDistribution(distribution="uniform", low=2.0, high=10.0)
    )
    initial_position: bool = Field(
        default=True,
        description="Start at the target position (opposite side held by the counterparty "
        "account) instead of building it through the book.",
    )
    strategy: Literal["hold", "momentum", "value", "random"] = "hold"
    lookback: int = Field(default=20, ge=1, description="Momentum lookback in steps.")
    threshold: float = Field(default=0.002, ge=0.0, description="Signal threshold (momentum/value).")
    reentry_rate: Fraction = Field(default=0.0, description="Chance per step to re-enter when flat.")
    reserves: float = Field(default=0.0, ge=0.0, description="Off-exchange cash for top-ups.")
    margin_call: MarginCallReaction = Field(default_factory=MarginCallReaction)


class MarketMakerGroup(_GroupBase):
    """Market makers quoting a depth profile around the mid (or last price)."""

    kind: Literal["market_maker"]
    collateral: PositiveFloat = 1_000_000.0
    arrival_rate: Fraction = 1.0
    levels: int = Field(default=10, ge=1, le=500)
    half_spread_ticks: int = Field(default=2, ge=1)
    level_spacing_ticks: int = Field(default=2, ge=1)
    level_size: int = Field(default=5, ge=1, description="Lots at the first level.")
    size_growth: float = Field(default=0.0, ge=0.0, description="Size at level k: size*(1+g*k).")
    inventory_limit: int = Field(default=500, ge=1)
    skew_ticks: float = Field(default=0.0, ge=0.0, description="Quote shift per lot of inventory.")
    anchor_weight: Fraction = Field(
        default=0.0, description="Weight of the index in the quote reference (0: pure mid)."
    )
    vol_baseline: float = Field(default=0.0005, gt=0.0, description="Calm per-step volatility.")
    vol_widen: float = Field(default=1.0, ge=0.0, description="Spread x (1 + w (vol/base - 1)).")
    vol_pull_ratio: float = Field(default=5.0, gt=0.0, description="Vol/base ratio to pull depth.")
    pull_fraction: Fraction = Field(default=0.5, description="Share of depth pulled in stress.")


class NoiseTraderGroup(_GroupBase):
    """Uninformed traders: random side, market or limit orders near the touch."""

    kind: Literal["noise"]
    collateral: PositiveFloat = 100_000.0
    min_size: int = Field(default=1, ge=1)
    max_size: int = Field(default=5, ge=1)
    market_order_share: Fraction = 0.3
    max_offset_ticks: int = Field(default=10, ge=0)
    max_position: int = Field(default=200, ge=1)

    @model_validator(mode="after")
    def _sizes(self) -> NoiseTraderGroup:
        if self.min_size > self.max_size:
            raise ValueError("min_size must not exceed max_size")
        return self


class FundamentalistGroup(_GroupBase):
    """Value traders buying below and selling above the fundamental value."""

    kind: Literal["fundamentalist"]
    collateral: PositiveFloat = 100_000.0
    aggression: float = Field(default=200.0, gt=0.0, description="Lots per unit log mispricing.")
    threshold: float = Field(default=0.001, ge=0.0, description="Ignore smaller mispricing.")
    max_order: int = Field(default=20, ge=1)
    max_position: int = Field(default=500, ge=1)
    market_order_share: Fraction = 0.5


AgentGroup = Annotated[
    LeveragedTraderGroup | MarketMakerGroup | NoiseTraderGroup | FundamentalistGroup,
    Field(discriminator="kind"),
]
AGENT_KINDS = ("leveraged_trader", "market_maker", "noise", "fundamentalist")


# --------------------------------------------------------------------------- liquidation


class LiquidationConfig(_Strict):
    """How breaching accounts are closed and who pays for what is left."""

    enabled: bool = True
    mode: Literal["full", "partial"] = "full"
    target_ratio: float = Field(
        default=1.5, gt=1.0, description="Partial: equity / maintenance after the cut."
    )
    fee: float = Field(default=0.005, ge=0.0, le=0.1, description="Share of liquidated notional.")
    max_rounds: int = Field(default=50, ge=1, le=10_000)
    max_lots_per_round: int | None = Field(default=None, ge=1, description="Speed limit.")
    insurance_fund: float = Field(default=0.0, ge=0.0, description="Initial insurance fund.")
    price_limit: Literal["none", "bankruptcy"] = Field(
        default="none", description="bankruptcy: liquidation orders stop at the bankruptcy price."
    )
    adl: bool = Field(default=True, description="Auto-deleverage when the fund is empty.")


# --------------------------------------------------------------------------- shocks


class _ShockBase(_Strict):
    step: int = Field(ge=0)


class FundamentalJump(_ShockBase):
    """The fundamental / index jumps by a fraction (-0.1 is a 10% fall)."""

    type: Literal["fundamental_jump"]
    size: float = Field(gt=-1.0, le=10.0)


class MarketOrderShock(_ShockBase):
    """An exogenous sell (or buy) program of `quantity` lots, spread over `over_steps`."""

    type: Literal["market_order"]
    side: Literal["buy", "sell"] = "sell"
    quantity: int = Field(ge=1)
    over_steps: int = Field(default=1, ge=1)


Shock = Annotated[FundamentalJump | MarketOrderShock, Field(discriminator="type")]
SHOCK_TYPES = ("fundamental_jump", "market_order")


# --------------------------------------------------------------------------- scenario


class Scenario(_Strict):
    """A complete, validated scenario."""

    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    steps: int = Field(default=1_000, ge=1, le=10_000_000)
    seed: int = Field(default=0, ge=0)
    market: MarketConfig = Field(default_factory=MarketConfig)
    fundamental: FundamentalConfig = Field(default_factory=FundamentalConfig)
    agents: list[AgentGroup] = Field(default_factory=list)
    margin: MarginConfig = Field(default_factory=lambda: FixedMargin(rule="fixed"))
    liquidation: LiquidationConfig = Field(default_factory=LiquidationConfig)
    shocks: list[Shock] = Field(default_factory=list)

    @model_validator(mode="after")
    def _cross_checks(self) -> Scenario:
        # PydanticCustomError with a `path` in its context: the loader reports the error at that
        # dotted path (and its line) instead of at the top level where this validator runs.
        for i, shock in enumerate(self.shocks):
            if shock.step >= self.steps:
                raise PydanticCustomError(
                    "scenario_cross_check",
                    "step {step} is beyond the horizon: steps is {steps}, so shocks must fall in 0..{last}",
                    {
                        "path": f"shocks.{i}.step",
                        "step": shock.step,
                        "steps": self.steps,
                        "last": self.steps - 1,
                    },
                )
        initial = max_initial_rate(self.margin)
        if initial is not None:
            for i, group in enumerate(self.agents):
                if isinstance(group, LeveragedTraderGroup):
                    top = group.leverage.upper_bound
                    if top > 1.0 / initial + 1e-9:
                        limit = f"{1.0 / initial:g}"
                        if top == float("inf"):
                            message = (
                                "lognormal leverage without a cap: "
                                "set cap to at most {limit}x (1 / initial margin)"
                            )
                        else:
                            message = (
                                "leverage can reach {top}x, above 1 / initial margin = {limit}x "
                                "(lower the leverage or the initial margin rate)"
                            )
                        raise PydanticCustomError(
                            "scenario_cross_check",
                            message,
                            {"path": f"agents.{i}.leverage", "top": f"{top:g}", "limit": limit},
                        )
        return self


# --------------------------------------------------------------------------- loading

MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_ALIASES = 100
MAX_EXPANDED_NODES = 100_000
SCENARIOS_DIR = Path(__file__).resolve().parent.parent / "scenarios"

_MAX_DEPTH = 64
_MAX_REPORTED = 50
_FILE = "(file)"
_TOP = "(top level)"
_PERCENT_HINT = "rates are fractions: 0.05 means 5%"
_MERGE_TAG = "tag:yaml.org,2002:merge"
# Segments pydantic adds to `loc` for validators and unions, e.g. `function-after[_check(), ...]`.
_SYNTHETIC_SEGMENT = re.compile(r"^[\w-]+\[.*\]$", re.DOTALL)
_BOUND_WORDS = {
    "greater_than": ("gt", ">"),
    "greater_than_equal": ("ge", ">="),
    "less_than": ("lt", "<"),
    "less_than_equal": ("le", "<="),
}
_EXPECTED_KIND = {
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "text",
    "list_type": "a list (lines starting with '- ')",
    "dict_type": "a mapping (key: value lines)",
    "model_type": "a mapping (key: value lines)",
    "model_attributes_type": "a mapping (key: value lines)",
}
_NUMBER_TYPES = {"int_type", "int_parsing", "int_from_float", "float_type", "float_parsing"}


class ScenarioError(Exception):
    """A scenario that cannot be loaded or validated, with one line per problem.

    Attributes:
        errors: One line per problem, ``"<dotted.path>: <message> (line N)"``; the line is given
            when the problem maps to a place in the file.
        source: The scenario file (or name) the problems belong to, or None for a mapping.
    """

    def __init__(self, errors: Sequence[str], source: str | Path | None = None) -> None:
        self.errors = list(errors)
        self.source = None if source is None else str(source)
        super().__init__(self.errors, self.source)

    def __str__(self) -> str:
        count = len(self.errors)
        head = f"{self.source}: invalid scenario" if self.source else "invalid scenario"
        head += f" ({count} problem{'' if count == 1 else 's'})"
        return "\n".join([head, *(f"  {line}" for line in self.errors)])


class _Refused(Exception):
    """A YAML document refused before construction (bomb, cycle, nesting)."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


class _ScenarioLoader(yaml.SafeLoader):
    """SafeLoader that caps aliases and records duplicate mapping keys while composing.

    Duplicates are found on the composed nodes, before merge keys (``<<``) are flattened,
    so a key overriding a merged one is not mistaken for a duplicate.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.alias_count = 0
        self.duplicates: list[tuple[yaml.MappingNode, str, int, int]] = []

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        """Compose one node, refusing documents with more than ``MAX_ALIASES`` aliases."""
        if self.check_event(yaml.AliasEvent):
            self.alias_count += 1
            if self.alias_count > MAX_ALIASES:
                line = self.peek_event().start_mark.line + 1
                raise _Refused(
                    f"more than {MAX_ALIASES} aliases (*name): refused as a possible YAML bomb", line
                )
        return super().compose_node(parent, index)

    def compose_mapping_node(self, anchor: str | None) -> yaml.MappingNode:
        """Compose a mapping and note every key that appears in it twice."""
        node = super().compose_mapping_node(anchor)
        first_lines: dict[tuple[str, str], int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == _MERGE_TAG:
                continue
            identity = (key_node.tag, key_node.value)
            line = key_node.start_mark.line + 1
            if identity in first_lines:
                self.duplicates.append((node, key_node.value, first_lines[identity], line))
            else:
                first_lines[identity] = line
        return node


def _inspect_nodes(root: yaml.Node) -> dict[int, tuple[Any, ...]]:
    """Check the composed document's shape; return the path of every node by ``id``.

    Aliases make the node graph a DAG (or a cycle); the expanded size is counted with
    memoisation, so a billion-laughs document is refused without being expanded.

    Raises:
        _Refused: For a recursive alias, nesting deeper than ``_MAX_DEPTH`` or an expanded
            size above ``MAX_EXPANDED_NODES``.
    """
    sizes: dict[int, int] = {}
    paths: dict[int, tuple[Any, ...]] = {}
    in_progress: set[int] = set()

    def visit(node: yaml.Node, path: tuple[Any, ...]) -> int:
        key = id(node)
        line = node.start_mark.line + 1
        if key in in_progress:
            raise _Refused("recursive alias: a node contains itself", line)
        if key in sizes:
            return sizes[key]
        if len(path) > _MAX_DEPTH:
            raise _Refused(f"nested deeper than {_MAX_DEPTH} levels", line)
        paths[key] = path
        in_progress.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            for index, child in enumerate(node.value):
                total += visit(child, (*path, index))
        elif isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                name = key_node.value if isinstance(key_node, yaml.ScalarNode) else "?"
                total += visit(key_node, (*path, name)) + visit(value_node, (*path, name))
        in_progress.discard(key)
        sizes[key] = total
        if total > MAX_EXPANDED_NODES:
            raise _Refused(
                f"aliases expand to more than {MAX_EXPANDED_NODES:,} nodes: refused as a possible YAML bomb",
                line,
            )
        return total

    visit(root, ())
    return paths


def _parse_yaml(text: str) -> tuple[Any, yaml.Node | None, list[str]]:
    """Parse one YAML document safely.

    Returns:
        The data, its root node (None for an empty document) and the duplicate-key problems
        (when there are any, the data is None).

    Raises:
        _Refused: See :func:`_inspect_nodes` and ``MAX_ALIASES``.
        yaml.YAMLError: Not YAML, or more than one document.
    """
    loader = _ScenarioLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None, None, []
        paths = _inspect_nodes(root)
        if loader.duplicates:
            problems = [
                f"{_dotted((*paths.get(id(node), ()), key))}: duplicate key '{key}', "
                f"also set at line {first} (line {second})"
                for node, key, first, second in sorted(loader.duplicates, key=lambda item: item[3])
            ]
            return None, root, problems
        return loader.construct_document(root), root, []
    finally:
        loader.dispose()


def _read_scenario_file(file: Path) -> tuple[dict[str, Any], yaml.Node]:
    """Read a scenario file into plain data and its composed node tree.

    Raises:
        ScenarioError: For every reason the file cannot be a scenario mapping.
    """

    def fail(message: str, line: int | None = None, path: str = _FILE) -> ScenarioError:
        return ScenarioError([f"{path}: {message}" + (f" (line {line})" if line else "")], file)

    try:
        if file.is_dir():
            raise fail("is a directory, not a scenario file")
        size = file.stat().st_size
        if not file.is_file():
            raise fail("is not a regular file")
        if size > MAX_FILE_BYTES:
            raise fail(
                f"file is {size:,} bytes, above the {MAX_FILE_BYTES // 2**20} MB limit for scenario files"
            )
        with file.open("rb") as handle:
            # Read one byte past the limit: a file that grew since stat() is still refused.
            raw = handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise fail("file not found") from None
    except OSError as exc:
        raise fail(f"cannot read the file ({exc.strerror or exc})") from None
    if len(raw) > MAX_FILE_BYTES:
        raise fail(f"file is above the {MAX_FILE_BYTES // 2**20} MB limit for scenario files")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise fail(f"not UTF-8 text: byte 0x{raw[exc.start]:02x} at offset {exc.start}", line) from None
    if not text.strip():
        raise fail("file is empty")
    try:
        data, root, duplicates = _parse_yaml(text)
    except _Refused as exc:
        raise fail(exc.message, exc.line) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = ", ".join(part for part in (exc.context, exc.problem) if part) or "unreadable"
        raise fail(f"not valid YAML: {problem}", mark.line + 1 if mark else None) from None
    except yaml.YAMLError as exc:
        raise fail(f"not valid YAML: {exc}") from None
    except RecursionError:
        raise fail("not valid YAML: nested too deeply") from None
    if duplicates:
        raise ScenarioError(duplicates, file)
    if root is None:
        raise fail("file is empty (only comments)")
    if not isinstance(data, dict):
        raise fail(
            f"expected a mapping of sections (name: ..., steps: ..., agents: ...), got {_describe(data)}",
            root.start_mark.line + 1,
            path=_TOP,
        )
    return data, root


# --------------------------------------------------------------------------- overrides


def _copy_tree(value: Any) -> Any:
    """Copy nested mappings and lists without sharing (YAML aliases share objects)."""
    if isinstance(value, Mapping):
        return {key: _copy_tree(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_copy_tree(item) for item in value]
    return value


def _split_override(override: str) -> tuple[list[str], Any]:
    """Split ``dotted.key=value`` into its key segments and its YAML-parsed value."""
    key, separator, text = override.partition("=")
    key = key.strip()
    if not separator or not key:
        raise ScenarioError([f"{key or '(override)'}: override '{override}' must look like dotted.key=value"])
    segments = key.split(".")
    if any(not segment.strip() for segment in segments):
        raise ScenarioError([f"{key}: override '{override}' has an empty key segment"])
    segments = [segment.strip() for segment in segments]
    try:
        value, _, duplicates = _parse_yaml(text) if text.strip() else (None, None, [])
    except _Refused as exc:
        raise ScenarioError([f"{key}: value of override '{override}' refused: {exc.message}"]) from None
    except (yaml.YAMLError, RecursionError) as exc:
        problem = getattr(exc, "problem", None) or str(exc)
        raise ScenarioError([f"{key}: value of override '{override}' is not valid YAML: {problem}"]) from None
    if duplicates:
        raise ScenarioError([f"{key}: value of override '{override}' has a duplicate key"])
    return segments, value


def apply_overrides(data: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply ``--set`` style overrides to scenario data.

    Each override is ``dotted.key=value``. The value is parsed as YAML, so ``3``, ``0.05``,
    ``true``, ``[1, 2]`` and ``{a: 1}`` keep their types. A number segment indexes a list by
    position (``agents.1.count=1000``); missing mapping keys are created.

    Args:
        data: Scenario data as read from a file; it is not modified.
        overrides: The overrides, applied in order (a later one wins).

    Returns:
        A new dict with the overrides applied.

    Raises:
        ScenarioError: An override that is malformed, indexes past the end of a list or goes
            through a value that is neither a mapping nor a list. The error names the override.
    """
    result = _copy_tree(data)
    if not isinstance(result, dict):
        raise ScenarioError([f"{_TOP}: expected a mapping of sections, got {_describe(result)}"])
    for override in overrides:
        segments, value = _split_override(override)
        _set_path(result, segments, value, override)
    return result


def _set_path(root: dict[str, Any], segments: list[str], value: Any, override: str) -> None:
    """Set ``value`` at ``segments`` inside ``root``, creating missing mapping keys."""
    node: Any = root
    for depth, segment in enumerate(segments):
        here = ".".join(segments[: depth + 1])
        parent = ".".join(segments[:depth]) or _TOP
        last = depth == len(segments) - 1
        if isinstance(node, dict):
            if last:
                node[segment] = value
                return
            if node.get(segment) is None:
                node[segment] = {}
            node = node[segment]
        elif isinstance(node, list):
            if not segment.isdigit():
                raise ScenarioError(
                    [f"{here}: override '{override}': '{parent}' is a list, index it by position 0, 1, ..."]
                )
            index = int(segment)
            if index >= len(node):
                raise ScenarioError(
                    [
                        f"{here}: override '{override}': index {index} is out of range, "
                        f"'{parent}' has {len(node)} item{'' if len(node) == 1 else 's'}"
                    ]
                )
            if last:
                node[index] = value
                return
            if node[index] is None:
                node[index] = {}
            node = node[index]
        else:
            raise ScenarioError(
                [f"{parent}: override '{override}' goes through '{parent}', which is {_describe(node)}"]
            )


# --------------------------------------------------------------------------- validation errors


def _dotted(path: Sequence[Any]) -> str:
    return ".".join(str(segment) for segment in path) or _TOP


def _describe(value: Any) -> str:
    """Name a YAML value for a message: its kind and, for scalars, the value itself."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"text {value!r}"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return f"{type(value).__name__} {value}"


def _show(value: Any) -> str:
    """A value as written in the file: text in quotes, anything else described."""
    return f"'{value}'" if isinstance(value, str) else _describe(value)


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _is_union(tp: Any) -> bool:
    return get_origin(tp) in (Union, types.UnionType)


def _unwrap(tp: Any) -> Any:
    """Strip ``Annotated`` and ``Optional`` from a type annotation."""
    while True:
        if get_origin(tp) is Annotated:
            tp = get_args(tp)[0]
        elif _is_union(tp) and len(members := [a for a in get_args(tp) if a is not type(None)]) == 1:
            tp = members[0]
        else:
            return tp


def _union_choices(union: Any) -> dict[str, Any]:
    """Tag -> member type of a discriminated union.

    Tags are the members' ``Tag`` annotations or, for a field discriminator, the ``Literal``
    values of the one field that every member declares as a ``Literal`` (``kind``, ``type``).
    """
    choices: dict[str, Any] = {}
    untagged: list[type[BaseModel]] = []
    for member in get_args(union):
        tags = [meta.tag for meta in getattr(member, "__metadata__", ()) if isinstance(meta, Tag)]
        choices.update({tag: _unwrap(member) for tag in tags})
        if not tags and _is_model(_unwrap(member)):
            untagged.append(_unwrap(member))
    if untagged:
        shared = set.intersection(*(set(model.model_fields) for model in untagged))
        for name in sorted(shared):
            if all(get_origin(model.model_fields[name].annotation) is Literal for model in untagged):
                for model in untagged:
                    choices.update(
                        {str(value): model for value in get_args(model.model_fields[name].annotation)}
                    )
                break
    return choices


def _resolve_loc(loc: Sequence[Any]) -> tuple[list[Any], type[BaseModel] | None, Any]:
    """Turn a pydantic ``loc`` into a dotted path by walking the schema.

    Returns:
        The path without union tags and validator segments, the model in which the last
        segment is a field (None when not a model field) and the type the path points to.
    """
    path: list[Any] = []
    owner: type[BaseModel] | None = None
    target: Any = Scenario
    for segment in loc:
        if isinstance(segment, str) and _SYNTHETIC_SEGMENT.match(segment):
            continue
        target = _unwrap(target)
        if _is_union(target):
            # A discriminated union puts the selected tag into loc; it is not a key of the file.
            target = _union_choices(target).get(segment)
            continue
        path.append(segment)
        if _is_model(target):
            owner = target
            field = target.model_fields.get(segment) if isinstance(segment, str) else None
            target = field.annotation if field is not None else None
        elif get_origin(target) is list:
            owner, target = None, get_args(target)[0]
        else:
            owner, target = None, None
    return path, owner, _unwrap(target)


def _suggest(word: Any, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def _quoted_list(text: str) -> list[str]:
    return re.findall(r"'([^']*)'", text)


def _format_bound(bound: Any) -> str:
    return f"{bound:g}" if isinstance(bound, float) else str(bound)


def _explain(error: Mapping[str, Any]) -> tuple[list[Any], str]:
    """One pydantic error as a dotted path and a message a scenario author understands."""
    kind = error["type"]
    value = error.get("input")
    context = error.get("ctx") or {}
    path, owner, target = _resolve_loc(error["loc"])

    if kind == "scenario_cross_check":
        path = [int(part) if part.isdigit() else part for part in context["path"].split(".")]
        return path, error["msg"]
    if kind == "extra_forbidden":
        fields = list(owner.model_fields) if owner is not None else []
        key = path[-1] if path else "?"
        suggestion = _suggest(key, fields)
        if not suggestion and fields:
            suggestion = f"; valid keys: {', '.join(fields)}"
        return path, f"unknown key '{key}'{suggestion}"
    if kind == "missing":
        return path, f"missing required key '{path[-1]}'" if path else "missing required value"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        discriminator = str(context.get("discriminator", "kind")).strip("'")
        expected = _quoted_list(str(context.get("expected_tags", ""))) or list(_union_choices(target))
        what = {"kind": "agent kind", "type": "shock type"}.get(discriminator, discriminator)
        if kind == "union_tag_not_found":
            return [*path, discriminator], f"missing '{discriminator}'; use one of {', '.join(expected)}"
        tag = context.get("tag")
        return (
            [*path, discriminator],
            f"unknown {what} {_show(tag)} (use one of {', '.join(expected)}){_suggest(tag, expected)}",
        )
    if kind == "unknown_margin_rule":
        rules = ", ".join(BUILTIN_RULES) + " or a dotted path 'package.module:ClassName'"
        if not isinstance(value, Mapping):
            return path, f"expected a mapping with a 'rule' key (e.g. rule: fixed), got {_describe(value)}"
        if "rule" not in value:
            return [*path, "rule"], f"missing 'rule'; use one of {rules}"
        rule = value["rule"]
        return [
            *path,
            "rule",
        ], f"unknown margin rule {_show(rule)} (use one of {rules}){_suggest(rule, BUILTIN_RULES)}"
    if kind in _BOUND_WORDS:
        name, symbol = _BOUND_WORDS[kind]
        bound = context.get(name)
        message = f"must be {symbol} {_format_bound(bound)} (got {_describe(value)})"
        is_number = isinstance(value, int | float) and not isinstance(value, bool)
        if kind in ("less_than", "less_than_equal") and bound == 1 and is_number and 1 < value <= 100:
            message += f"; {_PERCENT_HINT}"
        return path, message
    if kind in _NUMBER_TYPES and isinstance(value, str) and _looks_numeric(value):
        message = f"number written as text ({value!r}); write it without quotes"
        exponent = re.fullmatch(r"([+-]?\d+)[eE]([+-]?\d+)", value.strip())
        if exponent:
            # YAML 1.1 needs a dot in a float with an exponent: 1e6 stays text, 1.0e+6 is a number.
            mantissa, power = exponent.groups()
            number = float(value)
            plain = f"{int(number)}" if number.is_integer() and abs(number) < 1e16 else f"{number!r}"
            message += (
                f" (YAML reads {value.strip()} as text: write {plain} or "
                f"{mantissa}.0e{'' if power[0] in '+-' else '+'}{power})"
            )
        return path, message
    if kind in ("int_type", "int_from_float") and isinstance(value, float) and value.is_integer():
        return path, f"expected a whole number, got {value!r}; write {int(value)}"
    if kind in _EXPECTED_KIND:
        message = f"expected {_EXPECTED_KIND[kind]}, got {_describe(value)}"
        if kind == "string_type" and not isinstance(value, str | Mapping | list | type(None)):
            message += "; put it in quotes to use it as text"
        return path, message
    if kind == "literal_error":
        expected = _quoted_list(str(context.get("expected", "")))
        return (
            path,
            f"must be one of {', '.join(expected)} (got {_show(value)}){_suggest(value, expected)}",
        )
    if kind == "finite_number":
        return path, f"must be a finite number (got {_describe(value)})"
    if kind == "string_too_short" and context.get("min_length") == 1:
        return path, "must not be empty"
    if kind == "too_short":
        count = context.get("min_length")
        return path, f"needs at least {count} item{'' if count == 1 else 's'}"
    if kind == "value_error":
        message = str(context.get("error", error["msg"]))
        # "min_size must not exceed max_size" belongs to min_size: point the path (and line) at it.
        first = re.match(r"^(\w+) (?:must|\()", message)
        if first and _is_model(target) and first.group(1) in target.model_fields:
            path = [*path, first.group(1)]
        return path, message
    message = str(error["msg"])
    return path, message[:1].lower() + message[1:]


def _looks_numeric(text: str) -> bool:
    try:
        float(text.replace("_", ""))
    except ValueError:
        return False
    return True


def _line_of(root: yaml.Node | None, path: Sequence[Any]) -> int | None:
    """Line (1-based) of the deepest node of ``path`` present in the composed document."""
    if root is None or not path:
        return None
    node, line = root, None
    for segment in path:
        if isinstance(node, yaml.MappingNode):
            # After construction a mapping holds its merged (<<) pairs first: the last match wins.
            matches = [
                (key_node, value_node)
                for key_node, value_node in node.value
                if isinstance(key_node, yaml.ScalarNode) and key_node.value == str(segment)
            ]
            if not matches:
                break
            key_node, node = matches[-1]
            line = key_node.start_mark.line + 1
        elif (
            isinstance(node, yaml.SequenceNode)
            and isinstance(segment, int)
            and 0 <= segment < len(node.value)
        ):
            node = node.value[segment]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _override_paths(overrides: Sequence[str]) -> list[tuple[list[str], str]]:
    return [([part.strip() for part in item.partition("=")[0].split(".")], item) for item in overrides]


def _validation_problems(exc: ValidationError, root: yaml.Node | None, overrides: Sequence[str]) -> list[str]:
    """Turn a ValidationError into ``"<dotted.path>: <message> (line N)"`` lines."""
    set_paths = _override_paths(overrides)
    problems: list[str] = []
    lines: dict[str, float] = {}
    for error in exc.errors(include_url=False):
        path, message = _explain(error)
        text_path = [str(segment) for segment in path]
        source = next((item for keys, item in set_paths if text_path[: len(keys)] == keys), None)
        # An override below the error's path (agents.1.leverage.high for agents.1.leverage) changed it.
        inside = next((item for keys, item in set_paths if keys[: len(text_path)] == text_path), None)
        line = None if source is not None else _line_of(root, path)
        if source is not None:
            where = f" (set by override '{source}')"
        elif line and inside is not None:
            where = f" (line {line}, after override '{inside}')"
        else:
            where = f" (line {line})" if line else ""
        problem = f"{_dotted(path)}: {message}{where}"
        if problem not in lines:
            problems.append(problem)
            lines[problem] = line if line is not None else float("inf")
    # In file order: the order of pydantic's errors follows the schema, not the file.
    problems.sort(key=lines.__getitem__)
    if len(problems) > _MAX_REPORTED:
        hidden = len(problems) - _MAX_REPORTED
        problems = [*problems[:_MAX_REPORTED], f"{_TOP}: ... and {hidden} more problems"]
    return problems


def _validate(
    data: dict[str, Any], overrides: Sequence[str], root: yaml.Node | None, source: str | Path | None
) -> Scenario:
    try:
        data = apply_overrides(data, overrides)
    except ScenarioError as exc:
        raise ScenarioError(exc.errors, source) from None
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(_validation_problems(exc, root, overrides), source) from None


# --------------------------------------------------------------------------- public loading API


def load_scenario(path: str | Path, overrides: Sequence[str] = ()) -> Scenario:
    """Read, override and validate a scenario file.

    The file is read with a safe YAML loader that refuses files above ``MAX_FILE_BYTES``,
    non-UTF-8 bytes, several documents, duplicate keys, and alias bombs (more than
    ``MAX_ALIASES`` aliases or an expansion above ``MAX_EXPANDED_NODES`` nodes).

    Args:
        path: The scenario file.
        overrides: ``dotted.key=value`` overrides, see :func:`apply_overrides`.

    Returns:
        The validated scenario.

    Raises:
        ScenarioError: With one ``"<dotted.path>: <message> (line N)"`` line per problem.
    """
    file = Path(path)
    data, root = _read_scenario_file(file)
    return _validate(data, overrides, root, file)


def scenario_from_dict(data: Mapping[str, Any], overrides: Sequence[str] = ()) -> Scenario:
    """Validate a scenario given as a mapping, with the same messages as :func:`load_scenario`.

    Args:
        data: Scenario data; it is not modified.
        overrides: ``dotted.key=value`` overrides, see :func:`apply_overrides`.

    Returns:
        The validated scenario.

    Raises:
        ScenarioError: One line per problem (without line numbers).
    """
    if not isinstance(data, Mapping):
        raise ScenarioError([f"{_TOP}: expected a mapping of sections, got {_describe(data)}"])
    return _validate(_copy_tree(data), overrides, None, None)


def read_yaml_mapping(path: str | Path) -> dict[str, Any]:
    """Read a YAML file whose top level is a mapping, with the refusals of :func:`load_scenario`.

    Nothing is validated against the scenario schema: this is for listing scenarios and for
    other YAML inputs (sweep files) that want the same safe reading and messages.

    Args:
        path: The YAML file.

    Returns:
        The file's top-level mapping as plain data.

    Raises:
        ScenarioError: The file is missing, too large, not UTF-8, not YAML, a bomb, has
            duplicate keys, or its top level is not a mapping.
    """
    data, _ = _read_scenario_file(Path(path))
    return data


def available_scenarios(directory: str | Path | None = None) -> list[str]:
    """Names of the scenario files (``*.yaml``) in ``directory``, sorted.

    Args:
        directory: Where to look; ``SCENARIOS_DIR`` (the repository's ``scenarios/``) by default.
    """
    folder = Path(directory) if directory is not None else SCENARIOS_DIR
    return sorted(file.stem for file in folder.glob("*.yaml") if file.is_file())


def resolve_scenario(name_or_path: str | Path, directory: str | Path | None = None) -> Path:
    """Find a scenario file from a path or a bare scenario name.

    Args:
        name_or_path: An existing path, or a name looked up as ``<directory>/<name>.yaml``.
        directory: Where names are looked up; ``SCENARIOS_DIR`` by default.

    Returns:
        The path of the scenario file (existence only; it is not read).

    Raises:
        ScenarioError: Neither a file nor a known name; the message lists the available names.
    """
    folder = Path(directory) if directory is not None else SCENARIOS_DIR
    candidate = Path(name_or_path)
    if candidate.exists():
        return candidate
    text = str(name_or_path)
    if candidate.name == text:
        for named in (folder / f"{text}.yaml", folder / text):
            if named.is_file():
                return named
    names = available_scenarios(folder)
    if names:
        close = difflib.get_close_matches(candidate.stem, names, n=1, cutoff=0.6)
        hint = (f"did you mean '{close[0]}'? " if close else "") + f"available scenarios: {', '.join(names)}"
    else:
        hint = f"there are no scenarios in {folder}"
    raise ScenarioError([f"{_FILE}: no file '{text}' and no scenario of that name; {hint}"], text)


def scenario_hash(scenario: Scenario) -> str:
    """SHA-256 (hex) of the scenario's canonical JSON: sorted keys, no whitespace."""
    canonical = json.dumps(
        scenario.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
