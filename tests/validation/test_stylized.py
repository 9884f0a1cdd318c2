"""Hand-checked tests of the stylized-fact statistics (abm.stylized).

Every expected figure is computed here by hand (arithmetic written out) or by an independent numpy
route (np.corrcoef, normal equations, numerical integration of the chi-squared density).
"""

import math

import numpy as np
import pandas as pd
import pytest

from abm import published_facts
from abm import stylized as st


def test_log_returns_non_overlapping_intervals():
    prices = [1.0, 2.0, 4.0, 8.0, 16.0]
    np.testing.assert_allclose(st.log_returns(prices), [math.log(2)] * 4)
    # interval 2 samples 1, 4, 16: two returns of log 4
    np.testing.assert_allclose(st.log_returns(prices, 2), [math.log(4)] * 2)
    with pytest.raises(ValueError):
        st.log_returns(prices, 0)


def test_skewness_and_kurtosis_by_hand():
    x = [1.0, 2.0, 3.0, 4.0, 10.0]
    # mean 4; deviations -3, -2, -1, 0, 6
    m2 = (9 + 4 + 1 + 0 + 36) / 5
    m3 = (-27 - 8 - 1 + 0 + 216) / 5
    m4 = (81 + 16 + 1 + 0 + 1296) / 5
    assert st.skewness(x) == pytest.approx(m3 / m2**1.5)
    assert st.excess_kurtosis(x) == pytest.approx(m4 / m2**2 - 3)
    assert math.isnan(st.skewness([1.0, 1.0, 1.0]))
    assert math.isnan(st.excess_kurtosis([1.0, 2.0]))


def test_kurtosis_of_normal_and_student_samples():
    rng = np.random.default_rng(5)
    n = 20_000
    normal = rng.standard_normal(n)
    # Standard error of the sample excess kurtosis of a normal law: sqrt(24 / n).
    assert abs(st.excess_kurtosis(normal)) < 4 * math.sqrt(24 / n)
    # Student t with 6 degrees of freedom: excess kurtosis 6 / (6 - 4) = 3.
    assert st.excess_kurtosis(rng.standard_t(6, n)) > 1.0


def test_hill_estimator_by_hand():
    values = [1.0, 2.0, 4.0, 8.0, 16.0, -0.0]
    estimate = st.hill_tail_index(values, k=2)
    # Largest two: 16 and 8; threshold is the third largest, 4.
    expected = 1.0 / ((math.log(16 / 4) + math.log(8 / 4)) / 2)
    assert estimate.alpha == pytest.approx(expected)
    assert estimate.k == 2
    assert estimate.threshold == 4.0
    # Signs do not matter: |x| is used.
    assert st.hill_tail_index([-v for v in values], k=2).alpha == pytest.approx(expected)


def test_hill_estimator_recovers_a_pareto_tail():
    rng = np.random.default_rng(11)
    alpha = 3.0
    sample = rng.random(50_000) ** (-1.0 / alpha)  # Pareto(alpha) on [1, inf)
    estimate = st.hill_tail_index(sample, k=2_000)
    # Hill's estimator is asymptotically normal with sd alpha / sqrt(k).
    assert abs(estimate.alpha - alpha) < 4 * alpha / math.sqrt(2_000)
    default = st.hill_tail_index(sample)
    assert default.k == int(0.05 * 50_000)


def test_autocorrelation_by_hand_and_against_numpy():
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    # deviations -2, -1, 0, 1, 2; sum of squares 10
    lag1 = ((-2) * (-1) + (-1) * 0 + 0 * 1 + 1 * 2) / 10
    lag2 = ((-2) * 0 + (-1) * 1 + 0 * 2) / 10
    acf = st.autocorrelation(x, 3)
    np.testing.assert_allclose(acf[:2], [lag1, lag2])
    rng = np.random.default_rng(2)
    y = rng.standard_normal(300)
    deviation = y - y.mean()
    full = np.correlate(deviation, deviation, mode="full")[len(y) - 1 :] / np.dot(deviation, deviation)
    np.testing.assert_allclose(st.autocorrelation(y, 10), full[1:11])
    assert np.isnan(st.autocorrelation(np.ones(10), 2)).all()


def _chi2_tail_by_integration(x: float, dof: int) -> float:
    upper = x + 60.0 + 20.0 * dof
    grid = np.linspace(x, upper, 400_001)
    log_density = (dof / 2 - 1) * np.log(grid) - grid / 2 - (dof / 2) * math.log(2) - math.lgamma(dof / 2)
    return float(np.trapezoid(np.exp(log_density), grid))


@pytest.mark.parametrize("dof", [1, 2, 3, 4, 10, 51])
@pytest.mark.parametrize("x", [0.5, 3.84, 12.0, 60.0])
def test_chi2_survival_matches_numerical_integration(dof, x):
    assert st.chi2_survival(x, dof) == pytest.approx(_chi2_tail_by_integration(x, dof), rel=1e-5, abs=1e-12)


def test_chi2_survival_edges():
    assert st.chi2_survival(0.0, 3) == 1.0
    assert st.chi2_survival(float("inf"), 3) == 0.0
    assert st.chi2_survival(5.0, 2) == pytest.approx(math.exp(-2.5))  # dof 2: exp(-x/2)
    assert st.chi2_survival(5_000.0, 50) < 1e-300
    with pytest.raises(ValueError):
        st.chi2_survival(1.0, 0)


def test_ljung_box_by_hand():
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    rho1, rho2 = 0.4, -0.1  # from test_autocorrelation_by_hand_and_against_numpy
    q = 5 * 7 * (rho1**2 / 4 + rho2**2 / 3)
    result = st.ljung_box(x, 2)
    assert result.statistic == pytest.approx(q)
    assert result.dof == 2
    assert result.pvalue == pytest.approx(math.exp(-q / 2))


def test_ljung_box_rejects_an_ar1_and_not_white_noise():
    rng = np.random.default_rng(8)
    noise = rng.standard_normal(4_000)
    ar = np.empty_like(noise)
    ar[0] = noise[0]
    for t in range(1, len(noise)):
        ar[t] = 0.3 * ar[t - 1] + noise[t]
    assert st.ljung_box(ar, 20).pvalue < 1e-10
    assert st.ljung_box(noise, 20).pvalue > 0.001


def test_power_law_decay_exponent():
    lags = np.arange(1, 51)
    acf = 0.4 * lags**-0.3
    assert st.power_law_decay_exponent(acf) == pytest.approx(0.3)
    acf_with_negative = acf.copy()
    acf_with_negative[10] = -0.01  # non-positive values are left out of the log-log fit
    assert st.power_law_decay_exponent(acf_with_negative) == pytest.approx(0.3)
    assert math.isnan(st.power_law_decay_exponent([0.1, -0.1, 0.0]))


def test_arch_lm_statistic_against_normal_equations():
    rng = np.random.default_rng(3)
    x = rng.standard_normal(500)
    lags = 3
    e2 = (x - x.mean()) ** 2
    y = e2[lags:]
    design = np.column_stack([np.ones(len(y))] + [e2[lags - k : len(e2) - k] for k in range(1, lags + 1)])
    beta = np.linalg.solve(design.T @ design, design.T @ y)
    r2 = 1 - np.sum((y - design @ beta) ** 2) / np.sum((y - y.mean()) ** 2)
    result = st.arch_lm_test(x, lags)
    assert result.statistic == pytest.approx(len(y) * r2)
    assert result.pvalue == pytest.approx(st.chi2_survival(len(y) * r2, lags))


def _garch(shocks, omega, alpha, beta):
    # A GARCH(1,1) path driven by the given standard normal shocks, starting at variance 1.
    path = np.empty(len(shocks))
    variance = 1.0
    for t, shock in enumerate(shocks):
        path[t] = math.sqrt(variance) * shock
        variance = omega + alpha * path[t] ** 2 + beta * variance
    return path


def test_arch_lm_detects_garch_and_not_iid_noise():
    shocks = np.random.default_rng(4).standard_normal(5_000)
    garch = _garch(shocks, 0.1, 0.3, 0.6)
    assert st.arch_lm_test(garch, 5).pvalue < 1e-6
    assert st.arch_lm_test(shocks, 5).pvalue > 0.001


def test_robust_acf_standard_error_by_hand_and_under_garch():
    # x = [2, 0, -2, 0] has mean 0 and squares [4, 0, 4, 0] (sum 8): lag 1 pairs 4x0, 0x4, 4x0 -> 0;
    # lag 2 pairs 4x4, 0x0 -> 16, sqrt(16) / 8 = 0.5; lag 3 pairs 4x0 -> 0.
    np.testing.assert_allclose(st.autocorrelation_standard_error([2, 0, -2, 0], 3), [0.0, 0.5, 0.0])
    assert np.isnan(st.autocorrelation_standard_error(np.ones(5), 2)).all()
    # iid normal returns: about 1/sqrt(n); a GARCH(1,1) with clustered volatility: wider at lag 1,
    # so the robust band flags no more of the GARCH's lags than the iid band (1.96/sqrt(n)) does.
    n = 20_000
    shocks = np.random.default_rng(11).standard_normal(n)
    garch = _garch(shocks, 0.05, 0.15, 0.8)
    iid_error = st.autocorrelation_standard_error(shocks, 50)
    assert iid_error == pytest.approx(np.full(50, 1 / math.sqrt(n)), rel=0.1)
    assert st.autocorrelation_standard_error(garch, 1)[0] > 1.3 / math.sqrt(n)
    facts = st.stylized_facts(pd.DataFrame({"mark": 100 * np.exp(np.cumsum(garch) * 1e-3)}))
    assert len(facts["acf_robust_band"]) == 50
    assert facts["acf_robust_significant_share"] <= facts["acf_significant_share"]


def test_leverage_correlation_against_corrcoef():
    rng = np.random.default_rng(6)
    x = rng.standard_normal(400)
    result = st.leverage_correlation(x, 3)
    for lag in (1, 2, 3):
        assert result[lag - 1] == pytest.approx(np.corrcoef(x[:-lag], x[lag:] ** 2)[0, 1])
    # A series where a fall is followed by a large move: negative correlation at lag 1.
    levered = np.empty(2_000)
    levered[0] = 0.0
    shocks = rng.standard_normal(2_000)
    for t in range(1, 2_000):
        levered[t] = shocks[t] * (1.5 if levered[t - 1] < 0 else 0.5)
    assert st.leverage_correlation(levered, 1)[0] < -0.1


def test_aggregational_kurtosis_falls_for_iid_fat_tailed_increments():
    rng = np.random.default_rng(9)
    prices = 100 * np.exp(np.cumsum(0.001 * rng.standard_t(4, 64_000)))
    by_interval = st.aggregational_kurtosis(prices, (1, 64))
    assert by_interval[1] > 2.0
    assert by_interval[64] < by_interval[1] / 4
    assert by_interval[1] == pytest.approx(st.excess_kurtosis(st.log_returns(prices)))


def test_volume_volatility_correlation_against_corrcoef():
    rng = np.random.default_rng(10)
    r = rng.standard_normal(100)
    volume = np.abs(r) * 3 + rng.random(100)
    assert st.volume_volatility_correlation(r, volume) == pytest.approx(np.corrcoef(np.abs(r), volume)[0, 1])
    with pytest.raises(ValueError):
        st.volume_volatility_correlation(r, volume[:-1])


def test_stylized_facts_of_a_small_series_by_hand():
    prices = np.array([100.0, 101.0, 100.0, 102.0, 101.0, 103.0, 102.0, 104.0, 103.0])
    volume = np.array([0, 5, 1, 2, 3, 4, 0, 6, 7])
    timeseries = pd.DataFrame({"mark": prices, "volume": volume})
    facts = st.stylized_facts(timeseries, interval=2, max_lag=2, aggregation=(1, 2))
    # interval 2 samples 100, 100, 101, 102, 103: four returns
    returns = np.log(np.array([100.0, 101.0, 102.0, 103.0]) / np.array([100.0, 100.0, 101.0, 102.0]))
    assert facts["observations"] == 4
    assert facts["interval"] == 2
    assert facts["skewness"] == pytest.approx(st.skewness(returns))
    assert facts["zero_return_share"] == pytest.approx(0.25)
    # Volume of return t covers steps 2t+1 and 2t+2: 5+1, 2+3, 4+0, 6+7
    expected_corr = np.corrcoef(np.abs(returns), [6, 5, 4, 13])[0, 1]
    assert facts["volume_volatility_correlation"] == pytest.approx(expected_corr)
    assert set(facts["kurtosis_by_interval"]) == {"2", "4"}


def test_compare_with_published_and_the_table():
    facts = st.stylized_facts(
        pd.DataFrame(
            {
                "mark": 100 * np.exp(np.cumsum(0.001 * np.random.default_rng(1).standard_t(3, 5_000))),
                "volume": np.ones(5_000),
            }
        )
    )
    checks = {check.fact.name: check for check in published_facts.compare_with_published(facts)}
    assert set(checks) == {fact.name for fact in published_facts.PUBLISHED_FACTS}
    assert checks["tail_index"].value == pytest.approx(facts["tail_index"])
    assert checks["tail_index"].inside == (2.0 <= facts["tail_index"] <= 5.0)
    kurtosis = facts["kurtosis_by_interval"]
    assert checks["aggregational_gaussianity"].value == pytest.approx(kurtosis["64"] - kurtosis["1"])
    # constant volume: the correlation is undefined, so outside every range
    assert not checks["volume_volatility_correlation"].inside
    table = published_facts.format_fact_table(facts)
    for fact in published_facts.PUBLISHED_FACTS:
        assert fact.label in table


def test_published_fact_bounds():
    fact = published_facts.PublishedFact("x", "x", "2 to 5", 2.0, 5.0)
    assert fact.contains(2.0) and fact.contains(5.0) and fact.contains(3.0)
    assert not fact.contains(1.99) and not fact.contains(5.01) and not fact.contains(float("nan"))
    assert published_facts.PublishedFact("y", "y", "> 0", 0.0, None).contains(1e9)


def test_index_explained_share_by_hand():
    rng = np.random.default_rng(4)
    index = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 400)))
    x = np.diff(np.log(index))
    # With no lag the regression has one regressor: R^2 is the squared correlation of the returns.
    noise = rng.normal(0, 0.01, 399)
    mark = 100 * np.exp(np.r_[0.0, np.cumsum(0.5 * x + noise)])
    expected = np.corrcoef(np.diff(np.log(mark)), x)[0, 1] ** 2
    assert st.index_explained_share(mark, index, lags=0) == pytest.approx(expected)
    # A mark made of the index's returns now and two steps ago (0.3 x_t + 0.7 x_{t-2}) is explained in
    # full once lag 2 is among the regressors, and not with lags 0-1 alone.
    r = 0.3 * x + 0.7 * np.r_[0.0, 0.0, x[:-2]]
    mark = 100 * np.exp(np.r_[0.0, np.cumsum(r)])
    assert st.index_explained_share(mark, index, lags=3) == pytest.approx(1.0)
    # With lags 0-1 only x_t of r's formula is a regressor: R^2 is 0.3^2 / (0.3^2 + 0.7^2) = 0.155 in
    # expectation (0.21 in this sample of 398 returns); far from 1 either way.
    assert 0.05 < st.index_explained_share(mark, index, lags=1) < 0.4
    # A mark that never moves: undefined; too few returns: undefined.
    assert np.isnan(st.index_explained_share(np.full(50, 100.0), index[:50]))
    assert np.isnan(st.index_explained_share(index[:6], index[:6]))
    # The facts carry it when the time series has an index column.
    facts = st.stylized_facts(pd.DataFrame({"mark": index, "index": index, "volume": np.ones(400)}))
    assert facts["index_explained_share"] == pytest.approx(1.0)
