"""The table of bad scenario files that tests/test_config.py checks three ways, and a valid file.

Each :class:`BadCase` is a file's content (text, bytes, or :data:`MISSING` / :data:`DIRECTORY` for a
path that is no file), the overrides given with it, and where the error must point: the dotted
path, the line (None where the file has none) and a fragment of the message.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from abm.config import MAX_ALIASES, MAX_FILE_BYTES

VALID = """\
name: demo
steps: 100
agents:
  - kind: market_maker
    count: 2
  - kind: leveraged_trader
    count: 10
    leverage: {distribution: uniform, low: 2, high: 5}
margin:
  rule: fixed
  initial: 0.1
  maintenance: 0.05
"""

TWO_INSTRUMENTS = "name: demo\ninstruments:\n  - name: A\n  - name: B\n"
MISSING = object()
DIRECTORY = object()


def _bomb() -> str:
    # Five levels of ten aliases: 40 aliases (under MAX_ALIASES) that expand to 111,111 nodes.
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for name, previous in zip("bcde", "abcd", strict=True):
        lines.append(f"{name}: &{name} [{', '.join([f'*{previous}'] * 10)}]")
    return "\n".join(lines) + "\nname: bomb\n"


def _many_aliases() -> str:
    return "x: &x 1\nlist: [" + ", ".join(["*x"] * (MAX_ALIASES + 1)) + "]\nname: aliases\n"


def _too_large() -> bytes:
    line = b"# " + b"x" * 1021 + b"\n"  # 1 KiB per line
    return b"name: big\n" + line * (MAX_FILE_BYTES // len(line) + 1)


@dataclass(frozen=True)
class BadCase:
    """One bad scenario: its content, overrides, and where the error must point."""

    id: str
    content: str | bytes | object
    path: str
    line: int | None
    fragment: str
    overrides: tuple[str, ...] = ()


BAD_CASES = [
    BadCase("wrong_type", "name: demo\nsteps: [1, 2]\n", "steps", 2, "expected a whole number, got a list"),
    BadCase("out_of_range", "name: demo\nsteps: 0\n", "steps", 2, "must be >= 1 (got 0)"),
    BadCase("unknown_key", "name: demo\ncolour: red\n", "colour", 2, "unknown key 'colour'"),
    BadCase(
        "misspelt_key",
        "name: demo\nagents:\n  - kind: noise\n    cont: 3\n",
        "agents.0.cont",
        4,
        "unknown key 'cont'; did you mean 'count'?",
    ),
    BadCase(
        "missing_required_key",
        "name: demo\nagents:\n  - kind: noise\n    collateral: 5.0\n",
        "agents.0.count",
        3,
        "missing required key 'count'",
    ),
    BadCase("missing_name", "steps: 10\n", "name", None, "missing required key 'name'"),
    BadCase(
        "maintenance_above_initial",
        "name: demo\nmargin:\n  rule: fixed\n  initial: 0.05\n  maintenance: 0.1\n",
        "margin.maintenance",
        5,
        "must be below initial",
    ),
    BadCase(
        "unknown_agent_kind",
        "name: demo\nagents:\n  - kind: whale\n    count: 3\n",
        "agents.0.kind",
        3,
        "use one of leveraged_trader, market_maker, noise, fundamentalist",
    ),
    BadCase(
        "misspelt_agent_kind",
        "name: demo\nagents:\n  - kind: market-maker\n    count: 3\n",
        "agents.0.kind",
        3,
        "did you mean 'market_maker'?",
    ),
    BadCase(
        "missing_agent_kind", "name: demo\nagents:\n  - count: 3\n", "agents.0.kind", 3, "missing 'kind'"
    ),
    BadCase("agents_not_a_list", "name: demo\nagents:\n  kind: noise\n", "agents", 2, "expected a list"),
    BadCase(
        "unknown_margin_rule",
        "name: demo\nmargin:\n  rule: fixd\n",
        "margin.rule",
        3,
        "did you mean 'fixed'?",
    ),
    BadCase(
        "unknown_shock_type",
        "name: demo\nshocks:\n  - {type: crash, step: 1}\n",
        "shocks.0.type",
        3,
        "use one of fundamental_jump, market_order",
    ),
    BadCase("empty_file", "", "(file)", None, "file is empty"),
    BadCase("comments_only", "# just a comment\n\n", "(file)", None, "file is empty"),
    BadCase("not_yaml", "name: demo\n\tsteps: 3\n", "(file)", 2, "not valid YAML"),
    BadCase("two_documents", "name: a\n---\nname: b\n", "(file)", 2, "expected a single document"),
    BadCase("python_tag", "name: !!python/object:os.system x\n", "(file)", 1, "not valid YAML"),
    BadCase("top_level_list", "- name: demo\n- steps: 3\n", "(top level)", 1, "got a list"),
    # The document is never echoed back (it may be a password file): only its length.
    BadCase("top_level_text", "just some words\n", "(top level)", 1, "not a scenario"),
    BadCase("missing_file", MISSING, "(file)", None, "file not found"),
    BadCase("directory", DIRECTORY, "(file)", None, "is a directory"),
    BadCase(
        "duplicate_key",
        "name: demo\nsteps: 10\nagents:\n  - kind: noise\n    count: 1\n    count: 2\n",
        "agents.0.count",
        6,
        "duplicate key 'count', also set at line 5",
    ),
    BadCase("duplicate_top_key", "name: a\nsteps: 3\nname: b\n", "name", 3, "also set at line 1"),
    BadCase("yaml_bomb", _bomb(), "(file)", 5, "YAML bomb"),
    BadCase("too_many_aliases", _many_aliases(), "(file)", 2, f"more than {MAX_ALIASES} aliases"),
    BadCase("recursive_alias", "name: demo\nloop: &a [*a]\n", "(file)", 2, "recursive alias"),
    BadCase("larger_than_5_mb", _too_large(), "(file)", None, "5 MB limit"),
    BadCase("not_utf8", b"steps: 10\nname: caf\xe9\n", "(file)", 2, "not UTF-8 text: byte 0xe9"),
    BadCase("number_as_text", 'name: demo\nsteps: "100"\n', "steps", 2, "number written as text ('100')"),
    BadCase(
        "float_as_text",
        "name: demo\nmarket:\n  tick_size: '0.5'\n",
        "market.tick_size",
        3,
        "number written as text",
    ),
    BadCase(
        "exponent_without_dot",
        "name: demo\nagents:\n  - kind: noise\n    count: 1e3\n",
        "agents.0.count",
        4,
        "(YAML reads 1e3 as text: write 1000 or 1.0e+3)",
    ),
    BadCase("whole_float_for_int", "name: demo\nsteps: 100.0\n", "steps", 2, "write 100"),
    BadCase("infinite_number", "name: demo\nmarket:\n  tick_size: .inf\n", "market.tick_size", 3, "finite"),
    BadCase(
        "infinite_number_in_margin",
        "name: demo\nmargin:\n  rule: fixed\n  apc:\n    speed_limit: .inf\n",
        "margin.apc.speed_limit",
        5,
        "must be a finite number (got inf)",
    ),
    BadCase(
        "nan_in_margin",
        "name: demo\nmargin:\n  rule: dynamic_leverage\n  base_volatility: .nan\n",
        "margin.base_volatility",
        4,
        "must be a finite number (got nan)",
    ),
    BadCase("date_as_text", "name: 2020-03-12\n", "name", 1, "put it in quotes"),
    BadCase(
        "percentage_as_whole_number",
        "name: demo\nmargin:\n  rule: fixed\n  maintenance: 5\n",
        "margin.maintenance",
        4,
        "rates are fractions: 0.05 means 5%",
    ),
    BadCase(
        "confidence_as_percentage",
        "name: demo\nmargin:\n  rule: ewma_vol\n  confidence: 99\n",
        "margin.confidence",
        4,
        "rates are fractions: 0.05 means 5%",
    ),
    BadCase(
        "shock_beyond_horizon",
        "name: demo\nsteps: 100\nshocks:\n  - type: fundamental_jump\n    step: 100\n    size: -0.1\n",
        "shocks.0.step",
        5,
        "beyond the horizon",
    ),
    BadCase(
        "leverage_above_one_over_initial",
        VALID.replace("high: 5", "high: 20"),
        "agents.1.leverage",
        8,
        "can reach 20x, above 1 / initial margin = 10x",
    ),
    BadCase(
        "uncapped_lognormal_leverage",
        VALID.replace(
            "{distribution: uniform, low: 2, high: 5}", "{distribution: lognormal, median: 3, sigma: 0.5}"
        ),
        "agents.1.leverage",
        8,
        "lognormal leverage without a cap: set cap to at most 10x",
    ),
    BadCase(
        "uniform_low_above_high",
        VALID.replace("low: 2, high: 5", "low: 6, high: 5"),
        "agents.1.leverage.low",
        8,
        "low must not exceed high",
    ),
    BadCase(
        "min_size_above_max_size",
        "name: demo\nagents:\n  - kind: noise\n    count: 3\n    min_size: 10\n    max_size: 5\n",
        "agents.0.min_size",
        5,
        "min_size must not exceed max_size",
    ),
    BadCase(
        "tiers_not_increasing",
        "name: demo\nmargin:\n  rule: tiered\n  tiers:\n"
        "    - {notional_floor: 0, initial: 0.1, maintenance: 0.05}\n"
        "    - {notional_floor: 0, initial: 0.2, maintenance: 0.1}\n",
        "margin.tiers",
        4,
        "strictly increasing",
    ),
    BadCase(
        "reactions_not_summing_to_one",
        VALID.replace("high: 5}", "high: 5}\n    margin_call: {top_up: 0.5, reduce: 0.5, ignore: 0.5}"),
        "agents.1.margin_call",
        9,
        "must sum to 1",
    ),
    BadCase(
        "unknown_mark_price_shorthand",
        "name: demo\nmarket:\n  mark_price: median\n",
        "market.mark_price.source",
        3,
        "must be one of last, mid, index, index_ema_basis (got 'median')",
    ),
    BadCase("bad_override_path", VALID, "name", None, "goes through 'name'", ("name.first=x",)),
    BadCase(
        "override_index_out_of_range", VALID, "agents.5", None, "'agents' has 2 items", ("agents.5.count=1",)
    ),
    BadCase("override_list_by_name", VALID, "agents.noise", None, "is a list", ("agents.noise.count=1",)),
    BadCase("override_without_equals", VALID, "steps", None, "dotted.key=value", ("steps",)),
    BadCase("override_bad_yaml", VALID, "steps", None, "not valid YAML", ("steps=[1,",)),
    BadCase(
        "override_bad_value",
        VALID,
        "agents.1.count",
        None,
        "(set by override 'agents.1.count=many')",
        ("agents.1.count=many",),
    ),
    # Liquidation settings and odd values (reliability, issue 7).
    BadCase(
        "negative_insurance_fund",
        "name: demo\nliquidation:\n  insurance_fund: -5\n",
        "liquidation.insurance_fund",
        3,
        "must be >= 0 (got -5)",
    ),
    BadCase(
        "unknown_liquidation_design",
        "name: demo\nliquidation:\n  design: nasdaq\n",
        "liquidation.design",
        3,
        "classic",
    ),
    BadCase(
        "unwind_fraction_zero",
        "name: demo\nliquidation:\n  design: vega\n  unwind_fraction: 0.0\n",
        "liquidation.unwind_fraction",
        4,
        "must be > 0",
    ),
    BadCase(
        "unwind_interval_negative",
        "name: demo\nliquidation:\n  unwind_interval: -3\n",
        "liquidation.unwind_interval",
        3,
        "must be >= 1",
    ),
    BadCase(
        "negative_cooldown",
        "name: demo\nliquidation:\n  design: hyperliquid\n  cooldown_steps: -1\n",
        "liquidation.cooldown_steps",
        4,
        "must be >= 0",
    ),
    BadCase(
        "vault_threshold_above_one",
        "name: demo\nliquidation:\n  backstop_ratio: 1.5\n",
        "liquidation.backstop_ratio",
        3,
        "must be < 1",
    ),
    BadCase(
        "chunk_share_zero",
        "name: demo\nliquidation:\n  chunk_share: 0.0\n",
        "liquidation.chunk_share",
        3,
        "must be > 0",
    ),
    BadCase(
        "unwind_depth_share_above_one",
        "name: demo\nliquidation:\n  unwind_depth_share: 1.5\n",
        "liquidation.unwind_depth_share",
        3,
        "must be <= 1",
    ),
    BadCase(
        "liquidation_fee_too_large",
        "name: demo\nliquidation:\n  fee: 0.5\n",
        "liquidation.fee",
        3,
        "must be <= 0.1 (got 0.5)",
    ),
    BadCase(
        "zero_speed_limit",
        "name: demo\nliquidation:\n  max_lots_per_round: 0\n",
        "liquidation.max_lots_per_round",
        3,
        "must be >= 1 (got 0)",
    ),
    BadCase(
        "target_ratio_not_above_one",
        "name: demo\nliquidation:\n  mode: partial\n  target_ratio: 1.0\n",
        "liquidation.target_ratio",
        4,
        "must be > 1 (got 1.0)",
    ),
    BadCase(
        "misspelt_liquidation_mode",
        "name: demo\nliquidation:\n  mode: partal\n",
        "liquidation.mode",
        3,
        "did you mean 'partial'?",
    ),
    BadCase(
        "boolean_as_text",
        "name: demo\nliquidation:\n  adl: 'yes'\n",
        "liquidation.adl",
        3,
        "expected true or false, got text 'yes'",
    ),
    BadCase(
        "negative_agent_count",
        "name: demo\nagents:\n  - kind: noise\n    count: -1\n",
        "agents.0.count",
        4,
        "must be >= 0 (got -1)",
    ),
    BadCase("null_steps", "name: demo\nsteps: null\n", "steps", 2, "got nothing (null)"),
    BadCase(
        "duplicate_instrument_name",
        "name: demo\ninstruments:\n  - name: A\n  - name: A\n",
        "instruments.1.name",
        4,
        "duplicate instrument name 'A' (also instruments.0.name)",
    ),
    BadCase(
        "bad_instrument_name",
        'name: demo\ninstruments:\n  - name: "A/B"\n  - name: B\n',
        "instruments.0.name",
        3,
        "should match pattern",
    ),
    BadCase(
        "unknown_instrument_in_portfolio",
        (
            TWO_INSTRUMENTS + "agents:\n"
            "  - kind: leveraged_trader\n"
            "    count: 3\n"
            "    portfolio:\n"
            "      - {instrument: A}\n"
            "      - {instrument: C}\n"
        ),
        "agents.0.portfolio.1.instrument",
        10,
        "unknown instrument 'C' (the scenario has: A, B)",
    ),
    BadCase(
        "unknown_instrument_in_shock",
        (TWO_INSTRUMENTS + "shocks:\n  - {type: fundamental_jump, step: 3, size: -0.1, instrument: Z}\n"),
        "shocks.0.instrument",
        6,
        "unknown instrument 'Z'",
    ),
    BadCase(
        "unknown_instrument_in_group",
        (TWO_INSTRUMENTS + "agents:\n  - kind: noise\n    count: 3\n    instruments: [A, X]\n"),
        "agents.0.instruments.1",
        8,
        "unknown instrument 'X'",
    ),
    BadCase(
        "correlation_not_symmetric",
        "name: demo\ninstruments:\n  - name: A\n  - name: B\ncorrelation: [[1.0, 0.5], [0.4, 1.0]]\n",
        "correlation",
        5,
        "must be symmetric",
    ),
    BadCase(
        "correlation_diagonal_not_one",
        "name: demo\ninstruments:\n  - name: A\n  - name: B\ncorrelation: [[1.0, 0.5], [0.5, 0.9]]\n",
        "correlation",
        5,
        "must have 1 on the diagonal",
    ),
    BadCase(
        "correlation_not_psd",
        (
            TWO_INSTRUMENTS + "  - name: C\n"
            "correlation: [[1.0, 0.9, -0.9], [0.9, 1.0, 0.9], [-0.9, 0.9, 1.0]]\n"
        ),
        "correlation",
        6,
        "must be positive semi-definite",
    ),
    BadCase(
        "correlation_wrong_shape",
        (TWO_INSTRUMENTS + "correlation: [[1.0, 0.5, 0.1], [0.5, 1.0, 0.1]]\n"),
        "correlation",
        5,
        "must be 2 x 2",
    ),
    BadCase(
        "negative_portfolio_weight",
        (
            TWO_INSTRUMENTS + "agents:\n"
            "  - kind: leveraged_trader\n"
            "    count: 3\n"
            "    portfolio:\n"
            "      - {instrument: A, weight: -1.0}\n"
            "      - {instrument: B}\n"
        ),
        "agents.0.portfolio.0.weight",
        9,
        "must be >= 0 (got -1.0)",
    ),
    BadCase(
        "portfolio_weights_all_zero",
        (
            TWO_INSTRUMENTS + "agents:\n"
            "  - kind: leveraged_trader\n"
            "    count: 3\n"
            "    portfolio:\n"
            "      - {instrument: A, weight: 0.0}\n"
            "      - {instrument: B, weight: 0.0}\n"
        ),
        "agents.0",
        6,
        "portfolio weights are all zero",
    ),
    BadCase(
        "market_beside_instruments",
        "name: demo\nmarket:\n  tick_size: 0.01\ninstruments:\n  - name: A\n  - name: B\n",
        "market",
        2,
        "every instrument has its own market",
    ),
    BadCase(
        "correlation_regime_one_instrument",
        "name: demo\nshocks:\n  - {type: correlation_regime, step: 3, over_steps: 4, common: 0.9}\n",
        "shocks.0.type",
        3,
        "needs several instruments",
    ),
]


def materialise(tmp_path: Path, case: BadCase) -> Path:
    file = tmp_path / f"{case.id}.yaml"
    if case.content is MISSING:
        return file
    if case.content is DIRECTORY:
        file.mkdir()
        return file
    if isinstance(case.content, bytes):
        file.write_bytes(case.content)
    else:
        file.write_text(case.content, encoding="utf-8")
    return file
