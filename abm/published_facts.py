"""The published ranges of the stylized facts, and a run's figures put beside them.

:data:`PUBLISHED_FACTS` holds each fact of :func:`abm.stylized.stylized_facts` that has a published
range (Cont 2001, Quantitative Finance 1:223-236); :func:`compare_with_published` says which figures lie
inside, and :func:`format_fact_table` prints them (``abm facts``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from abm.stylized import DEFAULT_INDEX_LAGS

__all__ = ["PUBLISHED_FACTS", "FactCheck", "PublishedFact", "compare_with_published", "format_fact_table"]


@dataclass(frozen=True, slots=True)
class PublishedFact:
    """A published stylized fact and the check that puts a figure inside or outside it.

    Attributes:
        name: Key of the figure in :func:`stylized_facts`' dict (or a derived name).
        label: Short human label.
        published: The published range, in words.
        low: Lower bound of the range (None: unbounded).
        high: Upper bound of the range (None: unbounded).
        source: Where the range comes from.
    """

    name: str
    label: str
    published: str
    low: float | None
    high: float | None
    source: str = "Cont 2001"

    def contains(self, value: float) -> bool:
        """True when ``value`` is finite and inside ``[low, high]``."""
        if value is None or not math.isfinite(value):
            return False
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)


PUBLISHED_FACTS: tuple[PublishedFact, ...] = (
    PublishedFact("tail_index", "tail index of |r| (Hill)", "2 to 5 (about 3)", 2.0, 5.0),
    PublishedFact("excess_kurtosis", "excess kurtosis", "> 0 (fat tails)", 0.0, None),
    PublishedFact("skewness", "skewness", "< 0 (gain/loss asymmetry, levered long market)", None, 0.0),
    PublishedFact(
        "acf_significant_share",
        "share of ACF lags beyond the shortest outside +-1.96/sqrt(n)",
        "about 0.05 (no linear autocorrelation): <= 0.10",
        None,
        0.10,
    ),
    PublishedFact("abs_acf_lag1", "ACF of |r| at lag 1", "> 0 (volatility clustering)", 0.0, None),
    PublishedFact("abs_acf_decay_exponent", "power-law decay exponent of ACF |r|", "0.2 to 0.4", 0.2, 0.4),
    PublishedFact("arch_lm_pvalue", "ARCH LM test p-value", "< 0.05 (ARCH effect present)", None, 0.05),
    PublishedFact(
        "leverage_effect", "mean corr(r_t, r_{t+l}^2), l=1..10", "< 0 (leverage effect)", None, 0.0
    ),
    PublishedFact(
        "aggregational_gaussianity",
        "kurtosis at the longest interval minus at the shortest",
        "< 0 (kurtosis falls with aggregation)",
        None,
        0.0,
    ),
    PublishedFact("volume_volatility_correlation", "corr(|r|, volume)", "> 0", 0.0, None),
)


@dataclass(frozen=True, slots=True)
class FactCheck:
    """One figure beside its published range."""

    fact: PublishedFact
    value: float
    inside: bool


def _derived(facts: dict[str, Any], name: str) -> float:
    if name == "aggregational_gaussianity":
        by_interval = facts.get("kurtosis_by_interval") or {}
        values = [v for _, v in sorted(((int(k), v) for k, v in by_interval.items()))]
        return float(values[-1] - values[0]) if len(values) >= 2 else float("nan")
    value = facts.get(name)
    return float(value) if value is not None else float("nan")


def compare_with_published(facts: dict[str, Any]) -> list[FactCheck]:
    """Each figure of :func:`stylized_facts` beside its published range, inside or not."""
    checks = []
    for fact in PUBLISHED_FACTS:
        value = _derived(facts, fact.name)
        checks.append(FactCheck(fact, value, fact.contains(value)))
    return checks


def format_fact_table(facts: dict[str, Any]) -> str:
    """Aligned text: each figure, its published range and whether it lies inside."""
    checks = compare_with_published(facts)
    header = (
        f"returns over {facts['interval']} step(s), n = {facts['observations']}, "
        f"Hill k = {facts['tail_index_k']}, ACF lags 1..{len(facts['acf'])}, "
        f"shortest lags excused: {facts['short_lags']}"
    )
    width = max(len(check.fact.label) for check in checks)
    lines = [header, f"{'statistic':<{width}}  {'value':>10}  {'inside':<6}  published"]
    for check in checks:
        lines.append(
            f"{check.fact.label:<{width}}  {check.value:>10.4g}  {'yes' if check.inside else 'NO':<6}  "
            f"{check.fact.published} ({check.fact.source})"
        )
    kurtosis = ", ".join(f"{k}: {v:.3g}" for k, v in facts["kurtosis_by_interval"].items())
    lines.append(f"excess kurtosis by interval (steps): {kurtosis}")
    if "acf_robust_significant_share" in facts:  # figures saved before it was added lack it
        lines.append(
            "share of ACF lags beyond the shortest outside +-1.96 standard errors robust to volatility "
            f"clustering: {facts['acf_robust_significant_share']:.3g} (the +-1.96/sqrt(n) band assumes "
            "independent returns)"
        )
    explained = facts.get("index_explained_share", float("nan"))
    lines.append(
        f"returns exactly zero: {facts['zero_return_share']:.3g}; mark-return variance explained by "
        f"the index's returns at lags 0-{DEFAULT_INDEX_LAGS}: R^2 = {explained:.3g}"
    )
    lines.append(
        f"Ljung-Box Q({len(facts['acf'])}) = {facts['ljung_box_q']:.4g}, "
        f"p = {facts['ljung_box_pvalue']:.3g}; "
        f"ARCH LM({facts['arch_lags']}) = {facts['arch_lm']:.4g}; ACF lag 1 = {facts['acf_lag1']:.3g}"
    )
    return "\n".join(lines)
