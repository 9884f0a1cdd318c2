"""The cross-section checks' error, and the checks of a SPAN portfolio margin rule against the instruments.

:func:`cross_check_error` is the error every cross-section check of :class:`abm.config.schema.Scenario`
raises: the loader reports it at the dotted path it carries (and that path's line). :func:`check_span`
checks what a ``portfolio_margin: {method: span}`` rule names (instruments, combined commodities,
tiers, spread credits) against the scenario's instruments.
"""

from __future__ import annotations

from pydantic_core import PydanticCustomError

__all__ = ["check_span", "cross_check_error"]


def cross_check_error(path: str, message: str, **context: object) -> PydanticCustomError:
    """The error of a check across sections, reported at ``path`` (``message`` formatted with ``context``).

    A PydanticCustomError with a ``path`` in its context: the loader reports the error at that dotted
    path (and its line) instead of at the top level where the cross checks run.
    """
    return PydanticCustomError("scenario_cross_check", message, {"path": path, **context})


def check_span(rule, names: list[str]) -> None:
    """A SPAN rule against the scenario's instruments ``names``: scan ranges, combined commodities, tiers.

    Every instrument has a scan range, and only instruments do; a combined commodity's members are
    instruments, each in one at most; a spread credit names two different legs.
    """
    known = ", ".join(names)
    for name in rule.scan_ranges:
        if name not in names:
            raise cross_check_error(
                "portfolio_margin.scan_ranges",
                "'{name}' is not an instrument ({known})",
                name=name,
                known=known,
            )
    missing = [name for name in names if name not in rule.scan_ranges]
    if missing:
        raise cross_check_error(
            "portfolio_margin.scan_ranges", "no scan range for {missing}", missing=", ".join(missing)
        )
    member_of = _check_combined_commodities(rule, names)
    legs = [name for name in names if name not in member_of]
    legs += [commodity.name for commodity in rule.combined_commodities]
    for index, credit in enumerate(rule.spread_credits):
        where = f"portfolio_margin.spread_credits.{index}.pair"
        for name in credit.pair:
            if name in member_of:
                raise cross_check_error(
                    where,
                    "'{name}' is in the combined commodity '{commodity}': a spread credit is between "
                    "combined commodities, so name '{commodity}'",
                    name=name,
                    commodity=member_of[name],
                )
            if name not in legs:
                raise cross_check_error(
                    where,
                    "'{name}' is neither an instrument nor a combined commodity ({known})",
                    name=name,
                    known=", ".join(legs),
                )
        if credit.pair[0] == credit.pair[1]:
            raise cross_check_error(
                where, "a spread needs two different legs, not '{name}' twice", name=credit.pair[0]
            )


def _check_combined_commodities(rule, names: list[str]) -> dict[str, str]:
    # Members are instruments, each in one commodity at most; a commodity's name is its own.
    member_of: dict[str, str] = {}
    seen: set[str] = set()
    for index, commodity in enumerate(rule.combined_commodities):
        where = f"portfolio_margin.combined_commodities.{index}"
        if commodity.name in names or commodity.name in seen:
            raise cross_check_error(
                f"{where}.name",
                "'{name}' is already the name of an instrument or of another combined commodity",
                name=commodity.name,
            )
        seen.add(commodity.name)
        for name in commodity.instruments:
            if name not in names:
                raise cross_check_error(
                    f"{where}.instruments",
                    "'{name}' is not an instrument ({known})",
                    name=name,
                    known=", ".join(names),
                )
            if name in member_of:
                raise cross_check_error(
                    f"{where}.instruments",
                    "'{name}' is already in the combined commodity '{other}': an instrument belongs "
                    "to one at most",
                    name=name,
                    other=member_of[name],
                )
            member_of[name] = commodity.name
    taken = set(names) | {commodity.name for commodity in rule.combined_commodities}
    for index, commodity in enumerate(rule.combined_commodities):
        _check_tiers(commodity, f"portfolio_margin.combined_commodities.{index}", taken)
    return member_of


def _check_tiers(commodity, where: str, taken: set[str]) -> None:
    """A combined commodity's tiers hold its members, one tier each; its tier spreads name its legs."""
    tier_of: dict[str, str] = {}
    tier_names: set[str] = set()
    for index, tier in enumerate(commodity.tiers):
        if tier.name in taken or tier.name in tier_names:
            raise cross_check_error(
                f"{where}.tiers.{index}.name",
                "'{name}' is already the name of an instrument, a combined commodity or another tier",
                name=tier.name,
            )
        tier_names.add(tier.name)
        for name in tier.instruments:
            if name not in commodity.instruments:
                raise cross_check_error(
                    f"{where}.tiers.{index}.instruments",
                    "'{name}' is not a member of '{commodity}' ({members})",
                    name=name,
                    commodity=commodity.name,
                    members=", ".join(commodity.instruments),
                )
            if name in tier_of:
                raise cross_check_error(
                    f"{where}.tiers.{index}.instruments",
                    "'{name}' is already in the tier '{other}': a member belongs to one tier at most",
                    name=name,
                    other=tier_of[name],
                )
            tier_of[name] = tier.name
    legs = [tier.name for tier in commodity.tiers]
    legs += [name for name in commodity.instruments if name not in tier_of]
    for index, spread in enumerate(commodity.tier_spreads):
        path = f"{where}.tier_spreads.{index}.tiers"
        for name in spread.tiers:
            if name in tier_of:
                raise cross_check_error(
                    path,
                    "'{name}' is in the tier '{tier}': a tier spread is between tiers, so name '{tier}'",
                    name=name,
                    tier=tier_of[name],
                )
            if name not in legs:
                raise cross_check_error(
                    path,
                    "'{name}' is neither a tier of '{commodity}' nor a member in none ({known})",
                    name=name,
                    commodity=commodity.name,
                    known=", ".join(legs),
                )
        if spread.tiers[0] == spread.tiers[1]:
            raise cross_check_error(
                path, "a tier spread needs two different legs, not '{name}' twice", name=spread.tiers[0]
            )
