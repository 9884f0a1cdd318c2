"""Registries: one per extension point (agent kinds, shock types, margin rules, book engines, ...).

A :class:`Registry` maps names to entries in registration order. Every list of names elsewhere (the
scenario schema's choices, error messages, the docs' tables) is derived from a registry, so adding an
entry in one place is enough for the rest to follow. Unknown names raise :class:`UnknownName`, whose
message lists what is known and suggests the closest name.

Example:
    >>> shapes = Registry("shape")
    >>> shapes.add("circle", 0)
    >>> shapes.add("square", 4)
    >>> list(shapes), shapes["square"]
    (['circle', 'square'], 4)
    >>> shapes["sqare"]
    Traceback (most recent call last):
    ...
    abm.registry.UnknownName: unknown shape 'sqare'; did you mean 'square'? (known: circle, square)
"""

from __future__ import annotations

import difflib
import functools
import operator
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Literal, get_args, get_origin

__all__ = ["Registry", "UnknownName", "literal_name", "registering", "union_of"]


class UnknownName(KeyError):
    """A name that is not in a registry; the message lists the known names."""

    def __init__(self, what: str, name: object, known: tuple[str, ...]) -> None:
        close = difflib.get_close_matches(str(name), list(known), n=1, cutoff=0.6)
        hint = f"; did you mean '{close[0]}'?" if close else ";"
        super().__init__(f"unknown {what} {name!r}{hint} (known: {', '.join(known) or 'none'})")
        self.what = what
        self.name = name
        self.known = known

    def __str__(self) -> str:
        return str(self.args[0])


class Registry[T](Mapping[str, T]):
    """Named entries of one extension point, in the order they were added.

    Args:
        what: What an entry is, for messages (``"agent kind"``).
    """

    def __init__(self, what: str) -> None:
        self.what = what
        self._entries: dict[str, T] = {}

    def add(self, name: str, entry: T) -> None:
        """Add an entry; a name may be added once.

        Raises:
            ValueError: The name is taken.
        """
        if name in self._entries:
            raise ValueError(f"{self.what} {name!r} is registered twice")
        self._entries[name] = entry

    def __getitem__(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownName(self.what, name, tuple(self._entries)) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> tuple[str, ...]:
        """The registered names, in order."""
        return tuple(self._entries)

    def literal(self) -> Any:
        """``typing.Literal`` of the registered names (for a schema field that takes one of them)."""
        return Literal[self.names()]  # type: ignore[valid-type]

    def __repr__(self) -> str:
        return f"Registry({self.what!r}: {', '.join(self._entries)})"


def literal_name(model: type, field: str) -> str:
    """The single value of a model's ``Literal`` field: the name a schema model registers under.

    Args:
        model: A pydantic model class.
        field: The discriminating field (``kind``, ``type``, ``rule``).

    Raises:
        TypeError: The field is not a ``Literal`` of one string.
    """
    annotation = model.model_fields[field].annotation  # type: ignore[attr-defined]
    values = get_args(annotation) if get_origin(annotation) is Literal else ()
    if len(values) != 1 or not isinstance(values[0], str):
        raise TypeError(f"{model.__name__}.{field} must be a Literal of one name to be registered")
    return values[0]


def registering(
    registry: Registry[Any], field: str, make: Callable[[str, type], Any]
) -> Callable[[type], type]:
    """A class decorator adding ``make(name, cls)`` to ``registry`` under the class's Literal ``field``."""

    def register(cls: type) -> type:
        name = literal_name(cls, field)
        registry.add(name, make(name, cls))
        return cls

    return register


def union_of(types: Any) -> Any:
    """``A | B | ...`` of the given types (a discriminated union of a registry's models)."""
    return functools.reduce(operator.or_, tuple(types))
