"""benchmarks/policy_table.py: the margin-rule comparison's table in docs/margin-rules.md, from a sweep."""

import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from policy_table import main, table  # noqa: E402

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
    pd.DataFrame(
        [
            {
                "group": "ewma_vol",
                "liquidated_notional.diff": 13_333.3,
                "liquidated_notional.low": -2_000.0,
                "liquidated_notional.high": 28_700.0,
            }
        ]
    ).to_csv(tmp_path / "differences_vs_fixed.csv", index=False)
    return tmp_path


def test_the_table_rows_worked_by_hand(tmp_path):
    lines = table(_sweep(tmp_path)).splitlines()
    assert len(lines) == 4  # header, rule, one row per group in the sweep's order
    # fixed: accounts mean (10 + 20 + 30) / 3 = 20, range 10-30; notional above 100k on 2 of 3 seeds;
    # mean notional 150k; drawdown 0.2; bad debt 30; margin calls (100 + 101 + 102) / 3 = 101.
    assert lines[2] == "| `fixed` | 20 (10-30) | 2/3 | 150k | - | 0.200 | 30 | 0.00 | 0.00 | 101 | 0.0400 |"
    # ewma_vol: accounts 50 (40-60); all three seeds above 100k; mean notional 180k; the paired
    # difference from the differences file, rounded to thousands with its sign.
    assert lines[3] == (
        "| `ewma_vol` | 50 (40-60) | 3/3 | 180k | +13k [-2k, +29k] | 0.220 | 0 | 4.00 | 5.00 | 101 | 0.0400 |"
    )


def test_a_directory_without_results_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main([str(tmp_path)])
    assert stop.value.code == 2
    assert "no results.parquet" in capsys.readouterr().err
