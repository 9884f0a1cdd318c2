"""Margin policies: the rules under test, behind one small interface.

``build_margin_policy(config)`` turns a validated ``margin:`` section into a :class:`MarginPolicy`;
the model calls ``policy.review(step, prices)`` every step and ``policy.requirements(notional)`` to
mark accounts. Rules subclass :class:`MarginRule`; the measures used to compare them are in
:mod:`abm.margin.measures`. Portfolio-margined accounts meet one of the portfolio rules of
:mod:`abm.margin.portfolio` (settings in :mod:`abm.margin.portfolio_settings`), backtested by
:mod:`abm.margin.backtest`; :mod:`abm.margin.sensitivity` gives each account's utilisation and
distance to liquidation. Reference: ``docs/margin-rules.md``.
"""

from abm.margin.apc import ApcOutcome, apply_speed_limit, buffer_windows, target_rates, volatility_ratio
from abm.margin.base import RULE_FIGURES, MarginRule, MarginRuleError, bracket_requirement, log_returns
from abm.margin.measures import (
    basel_traffic_light,
    calm_cost,
    christoffersen_independence,
    coverage_exception_flags,
    coverage_exceptions,
    kupiec_pof,
    largest_increase,
    margin_call_liquidity,
    peak_to_trough,
)
from abm.margin.plugins import ENTRY_POINT_GROUP, available_rules, build_custom_rule, load_rule_class
from abm.margin.policy import POLICY_FIGURES, MarginPolicy, build_margin_policy
from abm.margin.rules import (
    BUILTIN_RULE_CLASSES,
    DynamicLeverageRule,
    EwmaVolRule,
    ExpectedShortfallRule,
    FixedRule,
    HistoricalVarRule,
    TieredRule,
    two_sided_tail_loss,
)
from abm.margin.settings import (
    BUILTIN_RULES,
    ApcConfig,
    CustomMargin,
    DynamicLeverageMargin,
    EwmaVolMargin,
    ExpectedShortfallMargin,
    FixedMargin,
    HistoricalVarMargin,
    MarginConfig,
    MarginTier,
    TieredMargin,
    max_initial_rate,
)

__all__ = [
    "BUILTIN_RULES",
    "BUILTIN_RULE_CLASSES",
    "ENTRY_POINT_GROUP",
    "POLICY_FIGURES",
    "RULE_FIGURES",
    "ApcConfig",
    "ApcOutcome",
    "CustomMargin",
    "DynamicLeverageMargin",
    "DynamicLeverageRule",
    "EwmaVolMargin",
    "EwmaVolRule",
    "ExpectedShortfallMargin",
    "ExpectedShortfallRule",
    "FixedMargin",
    "FixedRule",
    "HistoricalVarMargin",
    "HistoricalVarRule",
    "MarginConfig",
    "MarginPolicy",
    "MarginRule",
    "MarginRuleError",
    "MarginTier",
    "TieredMargin",
    "TieredRule",
    "apply_speed_limit",
    "available_rules",
    "basel_traffic_light",
    "bracket_requirement",
    "buffer_windows",
    "build_custom_rule",
    "build_margin_policy",
    "calm_cost",
    "christoffersen_independence",
    "coverage_exception_flags",
    "coverage_exceptions",
    "kupiec_pof",
    "largest_increase",
    "load_rule_class",
    "log_returns",
    "margin_call_liquidity",
    "max_initial_rate",
    "peak_to_trough",
    "target_rates",
    "two_sided_tail_loss",
    "volatility_ratio",
]
