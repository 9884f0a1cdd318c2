"""A sweep file's validation errors as one line each: the field path, the message, the line.

:func:`spec_problems` turns pydantic's errors for :class:`abm.sweep.spec.SweepSpec` into the lines
:class:`abm.sweep.spec.SweepError` carries, as :mod:`abm.config.loading` does for a scenario (and with
its :func:`~abm.config.reading.line_of`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from abm.config.reading import _TOP, line_of

__all__ = ["spec_problems"]


def spec_problems(exc: ValidationError, source: Path | None) -> list[str]:
    """One line per problem of a sweep file, ``"<dotted.path>: <message> (line N)"``, without repeats."""
    root = _compose(source)
    problems = []
    errors = exc.errors(include_url=False)
    seeds_given = next(
        (e["input"] for e in errors if tuple(e["loc"][:1]) == ("seeds",) and len(e["loc"]) == 2), None
    )
    for error in errors:
        context = error.get("ctx") or {}
        if not _relevant_branch(error["loc"], seeds_given):
            continue
        if error["type"] == "sweep_check":
            path = context["path"].split(".", 1)
            path = [path[0], path[1]] if len(path) == 2 else path
            message = context["message"]
        else:
            # Dict keys are dotted scenario keys: keep them whole; drop pydantic's union branch names.
            path = [str(part) for part in error["loc"] if not _is_branch(part)]
            message = _message(error)
        line = line_of(root, path)
        problems.append(f"{'.'.join(path) or _TOP}: {message}" + (f" (line {line})" if line else ""))
    return list(dict.fromkeys(problems))


def _relevant_branch(loc: Sequence[Any], seeds_given: Any) -> bool:
    """Of the two forms of ``seeds:``, report only the errors of the one the file used."""
    if len(loc) < 2 or loc[0] != "seeds" or not isinstance(seeds_given, list | dict):
        return True
    return (loc[1] == "SeedCount") == isinstance(seeds_given, dict)


def _is_branch(part: Any) -> bool:
    return isinstance(part, str) and (part in ("SeedCount", "list[int]") or "[" in part)


def _message(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        valid = "base, name, description, set, grid, zip, seeds, labels, group_by"
        return f"unknown key; valid keys: {valid}"
    if kind == "missing":
        return "missing required key"
    if kind == "too_short":
        return "needs at least one value"
    message = str(error["msg"])
    return message[:1].lower() + message[1:] + f" (got {json.dumps(error.get('input'), default=str)})"


def _compose(source: Path | None) -> yaml.Node | None:
    if source is None:
        return None
    try:
        # The file was read and checked by read_yaml_mapping already; this only finds lines.
        return yaml.compose(source.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except (OSError, yaml.YAMLError):
        return None
