"""Safe reading of scenario YAML files and ``--set`` overrides.

Files are read with a SafeLoader that refuses files above :data:`MAX_FILE_BYTES`, non-UTF-8
bytes, several documents, duplicate keys and alias bombs (more than :data:`MAX_ALIASES` aliases
or an expansion above :data:`MAX_EXPANDED_NODES` nodes). Every refusal is a
:class:`ScenarioError` whose lines name the place (``(file)``, a dotted path) and the line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "MAX_ALIASES",
    "MAX_EXPANDED_NODES",
    "MAX_FILE_BYTES",
    "InputError",
    "ScenarioError",
    "apply_overrides",
    "line_of",
    "read_yaml_mapping",
]

MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_ALIASES = 100
MAX_EXPANDED_NODES = 100_000

_MAX_DEPTH = 64
_FILE = "(file)"
_TOP = "(top level)"
_MERGE_TAG = "tag:yaml.org,2002:merge"


class InputError(Exception):
    """Bad input, with one line per problem; the CLI prints it and exits with status 2.

    Subclasses name what was read (``what``): a scenario, a sweep file.

    Attributes:
        errors: One line per problem, each naming the field path (and the line, when known).
        source: The file (or name) the problems belong to, or None.
    """

    what = "input"

    def __init__(self, errors: Sequence[str], source: str | Path | None = None) -> None:
        self.errors = list(errors)
        self.source = None if source is None else str(source)
        super().__init__(self.errors, self.source)

    def __str__(self) -> str:
        count = len(self.errors)
        head = f"{self.source}: invalid {self.what}" if self.source else f"invalid {self.what}"
        head += f" ({count} problem{'' if count == 1 else 's'})"
        return "\n".join([head, *(f"  {line}" for line in self.errors)])


class ScenarioError(InputError):
    """A scenario that cannot be loaded or validated, with one line per problem.

    Attributes:
        errors: One line per problem, ``"<dotted.path>: <message> (line N)"``; the line is given
            when the problem maps to a place in the file.
        source: The scenario file (or name) the problems belong to, or None for a mapping.
    """

    what = "scenario"


def line_of(root: yaml.Node | None, path: Sequence[Any]) -> int | None:
    r"""Line (1-based) of the deepest node of ``path`` present in the composed document ``root``.

    ``path`` holds mapping keys and sequence indices (ints, or digit strings as in a dotted key);
    None when ``root`` is None or ``path`` is empty.

    >>> root = yaml.compose("agents:\n  - kind: noise\n    count: 3\n", Loader=yaml.SafeLoader)
    >>> line_of(root, ["agents", 0, "count"]), line_of(root, "agents.0.kind".split(".")), line_of(root, ["x"])
    (3, 2, None)
    >>> line_of(root, ["agents", "²"])  # not an index: the deepest node found is agents
    1
    """
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
            and (index := _index(segment)) is not None
            and (index < len(node.value))
        ):
            node = node.value[index]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _index(segment: Any) -> int | None:
    if isinstance(segment, int):
        return segment if segment >= 0 else None
    # isdecimal, not isdigit: "²" is a digit that int() refuses.
    return int(segment) if isinstance(segment, str) and segment.isdecimal() else None


def _dotted(path: Sequence[Any]) -> str:
    return ".".join(str(segment) for segment in path) or _TOP


# Text longer than this is never repeated in a message: a file that is not YAML for us (a password
# file, a key) must not be printed back by the error about it.
_ECHO_LIMIT = 40


def _describe(value: Any, echo: bool = True) -> str:
    """Name a YAML value for a message: its kind and, for short scalars, the value itself.

    ``echo=False`` (a whole document that is not a mapping) never repeats text, only its length.
    """
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        if not echo or len(value) > _ECHO_LIMIT or "\n" in value:
            return f"text of {len(value)} characters"
        return f"text {value!r}"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return f"{type(value).__name__} {value}"


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


# Numbers only YAML 1.1 reads (PyYAML does; YAML 1.2 and most people read them otherwise): octal with a
# bare leading zero, hexadecimal, binary and base-60. `steps: 0310` would silently be 200 steps.
_YAML11_NUMBER = re.compile(
    r"^[-+]?(?:0[0-7_]+|0x[0-9a-fA-F_]+|0b[01_]+|[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?)$"
)
_INT_TAG, _FLOAT_TAG = "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"


class _Yaml11Number(_Refused):
    """A plain scalar that only YAML 1.1 reads as a number."""

    def __init__(self, message: str, line: int, path: str) -> None:
        super().__init__(message, line)
        self.path = path


def _inspect_nodes(root: yaml.Node) -> dict[int, tuple[Any, ...]]:
    """Check the composed document's shape; return the path of every node by ``id``.

    Aliases make the node graph a DAG (or a cycle); the expanded size is counted with
    memoisation, so a billion-laughs document is refused without being expanded.

    Raises:
        _Refused: For a recursive alias, nesting deeper than ``_MAX_DEPTH`` or an expanded
            size above ``MAX_EXPANDED_NODES``; :class:`_Yaml11Number` for a plain scalar only YAML 1.1
            reads as a number (``0310``, ``0xC8``, ``3:20``).
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
        if isinstance(node, yaml.ScalarNode) and node.tag in (_INT_TAG, _FLOAT_TAG) and node.style is None:
            if _YAML11_NUMBER.match(node.value):
                read_as = yaml.safe_load(node.value)
                raise _Yaml11Number(
                    f"{node.value} is read by YAML 1.1 as the number {read_as}, which is rarely what was "
                    f"meant; write {read_as} (or quote it for text)",
                    line,
                    _dotted(path) or _TOP,
                )
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
    except _Yaml11Number as exc:
        raise fail(exc.message, exc.line, path=exc.path) from None
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
            "not a scenario: expected a mapping of sections (name: ..., steps: ..., agents: ...), got "
            f"{_describe(data, echo=False)}",
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
    if isinstance(value, str) and _PLAIN_FLOAT.fullmatch(text.strip()):
        # YAML 1.1 reads 1e-06 (no dot) as text; on a command line it can only mean the number.
        value = float(text.strip())
    return segments, value


# A bare number in exponent form without a dot, as Python and YAML 1.2 write it (1e-06, 5E3).
_PLAIN_FLOAT = re.compile(r"[-+]?\d+[eE][-+]?\d+")


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
        raise ScenarioError([f"{_TOP}: expected a mapping of sections, got {_describe(result, echo=False)}"])
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


def read_yaml_mapping(path: str | Path) -> dict[str, Any]:
    """Read a YAML file whose top level is a mapping, with the refusals of :func:`~abm.config.load_scenario`.

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
