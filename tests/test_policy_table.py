"""benchmarks/policy_table.py: the margin-rule comparison's tables in docs/margin-rules.md, from a sweep."""

import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from policy_table import against, main, table  # noqa: E402

MEASURES = {
    # group -> per seed: liquidated accounts, liquidated notional, drawdown, bad debt
    "fixed": [(10, 50_000.0, 0.10, 0.0), (20, 150_000.0, 0.20, 30.0), (30, 250_000.0, 0.30, 60.0)],
    "ewma_vol": [(40, 120_000.0, 0.12, 0.0), (50, 160_000.0, 0.22, 0.0), (60, 260_000.0, 0.32, 0.0)],
}


def _sweep(tmp_path: Path) -> Path:
    rows = []
    for point, (group, runs) in enumerate(MEASURES.items()):
        for seed_index, (accounts, notional, drawdown, bad_debt) in enumerate(runs):
            rows.append(
                {
                    "group": group,
                    "point": point,
                    "seed_index": seed_index,
                    "seed": 1000 + seed_index,
                    "status": "ok",
                    "liquidated_accounts": accounts,
                    "liquidated_notional": notional,
                    "max_drawdown": drawdown,
                    "bad_debt": bad_debt,
                    "mmr_stress_increase": 0.0 if group == "fixed" else 4.0,
                    "mmr_largest_increase": 0.0 if group == "fixed" else 5.0,
                    "margin_calls": 100 + seed_index,
                    "calm_margin_per_notional": 0.04,
                }
            )
    pd.DataFrame(rows).to_parquet(tmp_path / "results.parquet")
    return tmp_path


def test_the_table_rows_worked_by_hand(tmp_path):
    lines = table(_sweep(tmp_path)).splitlines()
    assert len(lines) == 4  # header, rule, one row per group in the sweep's order
    # fixed: accounts mean (10 + 20 + 30) / 3 = 20, range 10-30; notional above 100k on 2 of 3 seeds;
    # mean notional 150k; drawdown 0.2; bad debt 30; margin calls (100 + 101 + 102) / 3 = 101.
    assert lines[2] == "| `fixed` | 20 (10-30) | 2/3 | 150k | - | 0.200 | 30 | 0.00 | 0.00 | 101 | 0.0400 |"
    # ewma_vol: accounts 50 (40-60); all three seeds above 100k; mean notional 180k. Paired on the
    # seed, ewma_vol minus fixed is 70k, 10k, 10k: mean 30k, sd sqrt((40^2 + 20^2 + 20^2) / 2) =
    # 34.641k, half-width t(0.975, 2) x sd / sqrt(3) = 4.3027 x 20.0k = 86.05k: [-56k, +116k].
    assert lines[3] == (
        "| `ewma_vol` | 50 (40-60) | 3/3 | 180k | +30k [-56k, +116k] | 0.220 | 0 | 4.00 | 5.00 | 101 "
        "| 0.0400 |"
    )


def test_the_differences_against_another_group_worked_by_hand(tmp_path):
    lines = against(_sweep(tmp_path), "ewma_vol").splitlines()
    assert len(lines) == 3
    # fixed minus ewma_vol: notional -30k [-116k, +56k] (the interval above, mirrored); bad debt 0, 30,
    # 60: mean 30, sd 30, half 4.3027 x 30 / sqrt(3) = 74.5: [-45, +105]; drawdown -0.02 on each seed:
    # sd 0, so the interval is the point.
    assert lines[2] == "| `fixed` | -30k [-116k, +56k] | +30 [-45, +105] | -0.020 [-0.020, -0.020] |"


def test_a_directory_without_results_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main([str(tmp_path)])
    assert stop.value.code == 2
    assert "no results.parquet" in capsys.readouterr().err


def test_an_unknown_group_is_named(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main([str(_sweep(tmp_path)), "--against", "ewma"])
    assert stop.value.code == 2
    assert "'ewma' is not in the results" in capsys.readouterr().err
