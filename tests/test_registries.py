"""One registry per extension point; every other list derived from it, and every entry complete."""

from __future__ import annotations

import typing

import pytest

from abm.agents import AGENT_CLASSES, TraderAgent
from abm.book import BOOK_ENGINES, Book
from abm.config import schema
from abm.config.agents import AGENT_KINDS
from abm.config.market import MarketConfig
from abm.config.shocks import SHOCK_TYPES
from abm.ledger import ACCOUNT_KINDS, KIND_CODES, SYSTEM_KINDS
from abm.margin.rules import RULE_CLASSES
from abm.margin.settings import RULE_SETTINGS, MarginConfig
from abm.registry import Registry, UnknownName
from abm.shocks import HANDLERS


def _union_members(annotated) -> list:
    union = typing.get_args(annotated)[0]
    return [typing.get_args(member)[0] if typing.get_origin(member) is typing.Annotated else member
            for member in typing.get_args(union)]  # fmt: skip


@pytest.mark.parametrize("kind", list(AGENT_KINDS))
def test_every_agent_kind_has_its_agent_class(kind):
    cls = AGENT_CLASSES[kind]
    assert issubclass(cls, TraderAgent) and cls.kind == kind
    assert kind in ACCOUNT_KINDS and KIND_CODES[kind] == ACCOUNT_KINDS.index(kind)


def test_agent_lists_are_derived_from_the_registry():
    assert _union_members(schema.AgentGroup) == [entry.settings for entry in AGENT_KINDS.values()]
    allowed = typing.get_args(schema.CollateralHaircut.model_fields["kinds"].annotation.__args__[0])
    assert allowed == AGENT_KINDS.names()
    assert set(ACCOUNT_KINDS) == set(AGENT_KINDS) | set(SYSTEM_KINDS)
    assert list(AGENT_CLASSES) == list(AGENT_KINDS)


def test_every_shock_type_has_a_handler_and_is_in_the_schema():
    assert sorted(HANDLERS) == sorted(SHOCK_TYPES)
    assert _union_members(schema.Shock) == list(SHOCK_TYPES.values())


def test_every_margin_rule_has_settings_and_a_class():
    assert list(RULE_CLASSES) == list(RULE_SETTINGS)
    members = _union_members(MarginConfig)
    assert members[:-1] == list(RULE_SETTINGS.values()) and members[-1].__name__ == "CustomMargin"


def test_every_book_engine_is_a_choice_of_the_schema():
    choices = typing.get_args(MarketConfig.model_fields["book_engine"].annotation)
    assert choices == BOOK_ENGINES.names()
    for name, engine in BOOK_ENGINES.items():
        if engine.available():
            assert isinstance(engine.load()(), Book), name


def test_unknown_names_say_what_is_known():
    with pytest.raises(UnknownName, match=r"unknown agent kind 'noize'; did you mean 'noise'\? \(known: "):
        AGENT_KINDS["noize"]
    registry = Registry("thing")
    registry.add("a", 1)
    with pytest.raises(ValueError, match="registered twice"):
        registry.add("a", 2)
