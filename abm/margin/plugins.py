"""Loading user margin rules: dotted import paths and the ``abm.margin_rules`` entry-point group.

A scenario names a user rule as ``rule: "package.module:ClassName"`` (or ``package.module.ClassName``)
with its keyword arguments under ``params``. A package can also register rules under the entry-point
group ``abm.margin_rules``; a registered name is looked up before the import path is tried (the
scenario schema accepts only names with a ``.`` or ``:``, so register names like ``acme.stress_var``).
"""

from __future__ import annotations

import importlib
import inspect
from importlib.metadata import EntryPoint, entry_points

from abm.margin.base import MarginRule, MarginRuleError
from abm.margin.settings import BUILTIN_RULES, CustomMargin

__all__ = ["ENTRY_POINT_GROUP", "available_rules", "build_custom_rule", "load_rule_class"]

ENTRY_POINT_GROUP = "abm.margin_rules"


def _entry_points() -> dict[str, EntryPoint]:
    return {entry.name: entry for entry in entry_points(group=ENTRY_POINT_GROUP)}


def available_rules() -> dict[str, str]:
    """Every rule a scenario can name: the built-ins and the registered entry points.

    Returns:
        Mapping of rule name to where it comes from (``"built-in"`` or the entry point's target).
    """
    rules = {name: "built-in" for name in BUILTIN_RULES}
    rules.update({name: entry.value for name, entry in sorted(_entry_points().items())})
    return rules


def _split(spec: str) -> tuple[str, str]:
    if ":" in spec:
        module_name, _, class_name = spec.partition(":")
    else:
        module_name, _, class_name = spec.rpartition(".")
    if not module_name or not class_name:
        raise MarginRuleError(f"margin rule {spec!r}: write it as 'package.module:ClassName'")
    return module_name, class_name


def _check_class(spec: str, candidate: object) -> type[MarginRule]:
    if not (isinstance(candidate, type) and issubclass(candidate, MarginRule)):
        raise MarginRuleError(
            f"margin rule {spec!r} is {candidate!r}, not a subclass of abm.margin.MarginRule; define it as "
            "'class MyRule(MarginRule)' with a rates(self, step, prices) -> (imr, mmr) method"
        )
    if inspect.isabstract(candidate):
        missing = ", ".join(sorted(candidate.__abstractmethods__))
        raise MarginRuleError(f"margin rule {spec!r} does not implement {missing}; see docs/margin-rules.md")
    return candidate


def load_rule_class(spec: str) -> type[MarginRule]:
    """Import the rule class a scenario names.

    Args:
        spec: An entry-point name of the ``abm.margin_rules`` group, or ``package.module:ClassName``
            (``package.module.ClassName`` also works).

    Returns:
        The :class:`~abm.margin.base.MarginRule` subclass.

    Raises:
        MarginRuleError: The module cannot be imported, has no such class, or the class is not a
            concrete ``MarginRule``; the message says how to fix it.
    """
    registered = _entry_points().get(spec)
    if registered is not None:
        try:
            return _check_class(spec, registered.load())
        except ImportError as error:
            raise MarginRuleError(
                f"margin rule {spec!r} is registered as {registered.value!r} in {ENTRY_POINT_GROUP!r}, "
                f"but loading it failed: {error}"
            ) from error
    module_name, class_name = _split(spec)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name is not None and module_name.startswith(error.name):
            raise MarginRuleError(
                f"margin rule {spec!r}: no module named {module_name!r}. Install the package that holds it "
                "(pip install -e .) or add its folder to PYTHONPATH, and check the spelling "
                "'package.module:ClassName'"
            ) from error
        raise MarginRuleError(
            f"margin rule {spec!r}: module {module_name!r} was found but importing it failed "
            f"(it needs {error.name!r}, which is not installed)"
        ) from error
    except ImportError as error:
        raise MarginRuleError(f"margin rule {spec!r}: importing {module_name!r} failed: {error}") from error
    if not hasattr(module, class_name):
        candidates = sorted(
            name
            for name, value in vars(module).items()
            if isinstance(value, type) and issubclass(value, MarginRule) and value is not MarginRule
        )
        hint = f"; MarginRule subclasses there: {', '.join(candidates)}" if candidates else ""
        raise MarginRuleError(f"margin rule {spec!r}: module {module_name!r} has no {class_name!r}{hint}")
    return _check_class(spec, getattr(module, class_name))


def build_custom_rule(config: CustomMargin) -> MarginRule:
    """Load a user rule and build it as ``RuleClass(config, **config.params)``.

    Args:
        config: The validated custom ``margin:`` section.

    Returns:
        The rule instance.

    Raises:
        MarginRuleError: Loading fails, or the class does not accept ``params``; the message lists the
            parameters it accepts.
    """
    rule_class = load_rule_class(config.rule)
    try:
        signature = inspect.signature(rule_class)
        signature.bind(config, **config.params)
    except TypeError as error:
        accepted = [name for name in signature.parameters if name != "config"]
        raise MarginRuleError(
            f"margin rule {config.rule!r} rejected params {sorted(config.params)}: {error}. "
            f"It accepts: {', '.join(accepted) if accepted else 'no params'}"
        ) from error
    try:
        return rule_class(config, **config.params)
    except (TypeError, ValueError) as error:
        raise MarginRuleError(
            f"margin rule {config.rule!r}: bad params {config.params!r}: {error}"
        ) from error
