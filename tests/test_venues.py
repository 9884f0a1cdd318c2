"""An index from several spot venues: the pricing rules and the venue faults, worked by hand."""

import numpy as np
import pytest

from abm import MarketModel
from abm.config import ScenarioError, scenario_from_dict
from abm.config.market import IndexConfig
from abm.venues import SpotVenues


def venues(**settings):
    return SpotVenues(IndexConfig(**settings), 100.0)


def test_mean_median_and_weights_with_a_misprinting_venue():
    # Three venues at 100, one prints 30% low: 70.
    mean = venues(venues=3, method="mean")
    mean.fault(2, "misprint", -0.30)
    assert mean.publish(100.0, None) == pytest.approx(90.0)  # (100 + 100 + 70) / 3
    median = venues(venues=3, method="median")
    median.fault(2, "misprint", -0.30)
    assert median.publish(100.0, None) == pytest.approx(100.0)  # the middle of 70, 100, 100
    weighted = venues(venues=3, method="mean", weights=[2.0, 1.0, 1.0])
    weighted.fault(2, "misprint", -0.30)
    assert weighted.publish(100.0, None) == pytest.approx(92.5)  # (2 x 100 + 100 + 70) / 4


def test_the_outlier_band_leaves_the_wrong_print_out():
    rule = venues(venues=3, method="mean", outlier_band=0.1)
    rule.fault(2, "misprint", -0.30)
    # |log(70 / 100)| = 0.357 > 0.1 from the median (100): left out; the mean of the rest is 100.
    assert rule.publish(100.0, None) == pytest.approx(100.0)
    assert rule.sources == 2
    rule.reset_faults()
    rule.fault(2, "misprint", -0.05)  # |log(0.95)| = 0.051 inside the band: (100 + 100 + 95) / 3
    assert rule.publish(100.0, None) == pytest.approx(295.0 / 3)


def test_a_stale_venue_is_left_out_after_stale_after_steps():
    rule = venues(venues=3, method="mean", stale_after=3)
    # Venue 0 stops updating at 100 while the fundamental is 110: (100 + 110 + 110) / 3 = 106.67 for
    # its first 2 stale steps; from its 3rd step without an update it is left out: 110.
    expected = [320.0 / 3, 320.0 / 3, 110.0, 110.0]
    for value in expected:
        rule.reset_faults()
        rule.fault(0, "stale")
        assert rule.publish(110.0, None) == pytest.approx(value)
    assert rule.prices[0] == 100.0
    # Back live: it updates at once and counts again.
    rule.reset_faults()
    assert rule.publish(110.0, None) == pytest.approx(110.0) and rule.sources == 3


def test_with_every_venue_dropped_the_index_holds():
    rule = venues(venues=2, method="median")
    assert rule.publish(105.0, None) == pytest.approx(105.0)
    for venue in (0, 1):
        rule.fault(venue, "drop")
    assert rule.publish(90.0, None) == pytest.approx(105.0) and rule.sources == 0


def test_venue_noise_is_persistent_and_reproducible():
    def path(seed):
        rule = venues(venues=4, noise=0.001, persistence=0.9)
        rng = np.random.default_rng(seed)
        return np.array([rule.publish(100.0, rng) for _ in range(4000)]), rule

    first, rule = path(1)
    again, _ = path(1)
    assert np.array_equal(first, again)
    # Each venue's deviation is AR(1): d <- 0.9 d + 0.001 z, stationary sd 0.001 / sqrt(1 - 0.81) = 0.0023.
    deviations = []
    rule = venues(venues=4, noise=0.001, persistence=0.9)
    rng = np.random.default_rng(2)
    for _ in range(4000):
        rule.publish(100.0, rng)
        deviations.append(rule.deviation.copy())
    sd = np.std(np.array(deviations)[500:])
    assert sd == pytest.approx(0.001 / np.sqrt(1 - 0.81), rel=0.15)


def test_one_venue_is_the_old_index():
    # venues = 1 (the default) draws nothing and publishes the fundamental: the golden runs guard the
    # rest; here the index column equals the fundamental path of a run with noise on the venues' rule.
    model = MarketModel("calm", rng=3, steps=50)
    model.run()
    assert model.market.venues is None


def _glitch(method, band=None):
    index = {"venues": 5, "method": method}
    if band is not None:
        index["outlier_band"] = band
    model = MarketModel(
        "oracle_glitch",
        rng=7,
        steps=320,
        **{
            "market.index": index,
            "shocks": [
                {
                    "type": "venue_fault",
                    "step": 300,
                    "over_steps": 3,
                    "venue": 4,
                    "mode": "misprint",
                    "size": -0.30,
                }
            ],
        },
    )
    model.run()
    return model.results()


def test_the_pricing_rule_decides_what_one_wrong_venue_does():
    # oracle_glitch's market (marked on the index), five venues, one prints 30% low for 3 steps.
    mean, median, banded = _glitch("mean"), _glitch("median"), _glitch("mean", band=0.05)
    ts = mean.timeseries.set_index("step")
    # The mean of four at F and one at 0.7 F is 0.94 F: the index 6% low, the longs liquidated.
    ratio = ts.loc[300, "index"] / mean.timeseries.set_index("step").loc[299, "index"]
    assert ratio == pytest.approx(0.94, abs=0.005)
    assert len(mean.liquidations) >= 100
    assert len(median.liquidations) == 0 and len(banded.liquidations) == 0
    assert banded.timeseries.set_index("step").loc[300, "index_sources"] == 4


def test_a_fault_on_a_venue_that_does_not_exist_is_refused():
    with pytest.raises(ScenarioError, match=r"shocks\.0\.venue"):
        scenario_from_dict(
            {
                "name": "x",
                "market": {"index": {"venues": 3}},
                "shocks": [{"type": "venue_fault", "step": 1, "venue": 3, "mode": "drop"}],
            }
        )
