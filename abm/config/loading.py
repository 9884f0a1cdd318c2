"""Validating scenarios: pydantic errors as dotted paths with lines, and the public load functions.

:func:`load_scenario` reads a file (see :mod:`abm.config.reading`), applies overrides and
validates it against :class:`~abm.config.schema.Scenario`; every problem becomes one line
``"<dotted.path>: <message> (line N)"`` of a :class:`~abm.config.reading.ScenarioError`.
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
from pydantic import BaseModel, Tag, ValidationError

from abm.config.reading import (
    _FILE,
    _TOP,
    ScenarioError,
    _copy_tree,
    _describe,
    _dotted,
    _read_scenario_file,
    apply_overrides,
    line_of,
)
from abm.config.schema import Scenario
from abm.margin.settings import BUILTIN_RULES

__all__ = [
    "available_scenarios",
    "available_sweeps",
    "check_user_rules",
    "is_sweep_file",
    "load_scenario",
    "resolve_scenario",
    "scenario_from_dict",
    "scenario_hash",
]

_MAX_REPORTED = 50
_PERCENT_HINT = "rates are fractions: 0.05 means 5%"
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
        line = None if source is not None else line_of(root, path)
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
        path: The scenario file, or the name of a shipped scenario (``"spiral"``), as the CLI takes it.
        overrides: ``dotted.key=value`` overrides, see :func:`apply_overrides`.

    Returns:
        The validated scenario.

    Raises:
        ScenarioError: With one ``"<dotted.path>: <message> (line N)"`` line per problem; for a bare
            name that is neither a file nor a shipped scenario, the names there are.

    Example:
        >>> load_scenario("calm", ["steps=50"]).steps
        50
    """
    file = Path(path)
    if not file.exists() and file.name == str(path) and not file.suffix:
        file = resolve_scenario(path)  # a bare name: the shipped scenario of that name
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
        raise ScenarioError([f"{_TOP}: expected a mapping of sections, got {_describe(data, echo=False)}"])
    return _validate(_copy_tree(data), overrides, None, None)


def _default_directory() -> Path:
    """The package's ``SCENARIOS_DIR``, read when called so that setting it on ``abm.config`` takes effect."""
    # Imported here: abm.config imports this module, so the package is complete only at call time.
    from abm import config

    return Path(config.SCENARIOS_DIR)


def check_user_rules(scenario: Scenario, source: str | Path | None = None) -> None:
    """Import and build every margin rule the scenario names by import path, as the run will.

    This runs the rules' code (``--no-user-code`` refuses such scenarios instead), so that a rule that
    cannot be loaded (a missing module or class, not a MarginRule, params it rejects) is bad input
    named by its field and line, not a failure once the run has started.

    Args:
        scenario: The validated scenario.
        source: The scenario file, for line numbers (none without it).

    Raises:
        ScenarioError: One line per rule that cannot be built.
    """
    from abm.margin.base import MarginRuleError
    from abm.margin.plugins import build_custom_rule

    problems = []
    root = None
    for field_path, _ in scenario.user_code():
        segments = [int(part) if part.isdigit() else part for part in field_path.split(".")]
        owner: Any = scenario
        for segment in segments[:-1]:
            owner = owner[segment] if isinstance(segment, int) else getattr(owner, segment)
        try:
            build_custom_rule(owner)
        except MarginRuleError as error:
            if root is None and source is not None and Path(source).is_file():
                root = _read_scenario_file(Path(source))[1]
            line = line_of(root, segments)
            problems.append(f"{field_path}: {error}" + (f" (line {line})" if line else ""))
    if problems:
        raise ScenarioError(problems, source)


def available_scenarios(directory: str | Path | None = None) -> list[str]:
    """Names of the scenario files (``*.yaml``, not sweep files) in ``directory``, sorted.

    Args:
        directory: Where to look; ``abm.config.SCENARIOS_DIR`` (the repository's ``scenarios/``) by default.
    """
    folder = Path(directory) if directory is not None else _default_directory()
    return sorted(file.stem for file in folder.glob("*.yaml") if file.is_file() and not is_sweep_file(file))


def available_sweeps(directory: str | Path | None = None) -> list[str]:
    """Names of the sweep files in ``directory`` (see :func:`is_sweep_file`), sorted.

    Args:
        directory: Where to look; ``abm.config.SCENARIOS_DIR`` by default.
    """
    folder = Path(directory) if directory is not None else _default_directory()
    return sorted(file.name for file in folder.glob("*.yaml") if file.is_file() and is_sweep_file(file))


def is_sweep_file(path: str | Path) -> bool:
    """Whether a YAML file is a sweep file: named ``*.sweep.yaml`` or with a top-level ``base:`` key.

    A scenario has no ``base`` section, so the test needs no parsing (an unreadable file is no sweep).
    """
    path = Path(path)
    if path.name.endswith(".sweep.yaml"):
        return True
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return re.search(r"^base\s*:", text, flags=re.MULTILINE) is not None


def resolve_scenario(name_or_path: str | Path, directory: str | Path | None = None) -> Path:
    """Find a scenario file from a path or a bare scenario name.

    Args:
        name_or_path: An existing path, or a name looked up as ``<directory>/<name>.yaml``.
        directory: Where names are looked up; ``abm.config.SCENARIOS_DIR`` by default.

    Returns:
        The path of the scenario file (existence only; it is not read).

    Raises:
        ScenarioError: Neither a file nor a known name; the message lists the available names.
    """
    folder = Path(directory) if directory is not None else _default_directory()
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
