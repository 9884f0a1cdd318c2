"""Margin policies: the rules under test, behind one small interface."""

from abm.margin.settings import BUILTIN_RULES, MarginConfig

__all__ = ["BUILTIN_RULES", "MarginConfig"]
