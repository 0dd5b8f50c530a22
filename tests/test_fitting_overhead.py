"""Overhead models: fitted from worker − kernel time against occupancy; fixed and distribution models."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from simulator.distributions import ScipyFrozen
from simulator.fitting import DistributionOverhead, FixedOverhead, fit_overhead, overhead_from_dict

Z = 4.0
SIGMA = 0.3


@pytest.fixture(scope="module")
def profile() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Worker and kernel times where the overhead's mean is 0.2 + 0.05·occupancy ms, lognormal spread."""
    rng = np.random.default_rng(0)
    n = 8000
    occupancy = rng.integers(0, 10, n)
    kernel = rng.lognormal(0.0, 0.2, n)
    overhead = (0.2 + 0.05 * occupancy) * rng.lognormal(-(SIGMA**2) / 2, SIGMA, n)
    return kernel + overhead, kernel, occupancy


def test_mean_curve_recovers_the_load_dependence(profile):
    worker, kernel, occupancy = profile
    for shape in ("affine", "isotonic", "auto"):
        model = fit_overhead(worker, kernel, occupancy, curve=shape)
        levels = np.arange(10)
        truth = 0.2 + 0.05 * levels
        counts = np.bincount(occupancy, minlength=10)
        standard_error = truth * math.sqrt(math.exp(SIGMA**2) - 1) / np.sqrt(counts)
        assert np.all(np.abs(model.mean_ms(levels) - truth) <= Z * standard_error), shape
        assert np.all(np.diff(model.mean_ms(levels)) >= 0)


@pytest.mark.parametrize("shape", ["affine", "isotonic", "auto"])
def test_an_overhead_that_falls_with_occupancy_is_fitted_falling(shape):
    """A worker that finds the next request waiting skips the wake-up an idle one pays: the mean falls
    with occupancy (as on the testbed: 0.19 ms alone, 0.08 ms with requests waiting). A rising-only
    curve would flatten to the overall mean, too low at light load and too high under load."""
    rng = np.random.default_rng(5)
    n = 20_000
    occupancy = rng.integers(1, 9, n)
    truth_by_level = np.where(np.arange(9) == 1, 0.19, 0.08) if shape != "affine" else 0.3 - 0.02 * np.arange(9)
    kernel = rng.lognormal(0.0, 0.2, n)
    worker = kernel + truth_by_level[occupancy] * rng.lognormal(-(SIGMA**2) / 2, SIGMA, n)
    model = fit_overhead(worker, kernel, occupancy, curve=shape)
    levels = np.arange(1, 9)
    counts = np.bincount(occupancy, minlength=9)[1:]
    standard_error = truth_by_level[1:] * math.sqrt(math.exp(SIGMA**2) - 1) / np.sqrt(counts)
    assert model.falling
    if shape != "affine":  # an affine fit cannot follow the step; it still falls
        assert np.all(np.abs(model.mean_ms(levels) - truth_by_level[1:]) <= Z * standard_error)
    else:
        assert np.all(np.abs(model.mean_ms(levels) - truth_by_level[1:]) <= Z * standard_error.max())
    assert np.all(np.diff(model.mean_ms(levels)) <= 0)
    assert model.mean_ms([0, 50]).tolist() == model.mean_ms([1, 8]).tolist()  # held at the ends
    rebuilt = overhead_from_dict(json.loads(json.dumps(model.to_dict())))
    np.testing.assert_array_equal(rebuilt.mean_ms(levels), model.mean_ms(levels))


@pytest.mark.parametrize("residual", ["empirical", "lognormal"])
def test_sampled_overheads_have_the_fitted_mean_and_spread(profile, residual):
    worker, kernel, occupancy = profile
    model = fit_overhead(worker, kernel, occupancy, residual=residual)
    draws = model.sample(np.random.default_rng(1), np.full(200_000, 5))
    mean = model.mean_ms([5])[0]
    assert abs(draws.mean() - mean) <= Z * draws.std() / math.sqrt(draws.size)
    assert np.std(np.log(draws)) == pytest.approx(SIGMA, rel=0.05)  # ±5% covers the 8000-sample fit


def test_occupancy_beyond_the_measured_range_is_held_at_the_end(profile):
    model = fit_overhead(*profile)
    assert model.mean_ms([9, 50])[1] == model.mean_ms([9])[0]
    assert model.occupancy_range == (0.0, 9.0)


def test_models_round_trip_through_json(profile):
    fitted = fit_overhead(*profile, occupancy_at="start")
    models = [FixedOverhead(0.4), DistributionOverhead(ScipyFrozen("lognorm", {"s": 0.5, "scale": 0.3})), fitted]
    for model in models:
        rebuilt = overhead_from_dict(json.loads(json.dumps(model.to_dict())))
        occupancy = np.arange(12)
        np.testing.assert_allclose(rebuilt.mean_ms(occupancy), model.mean_ms(occupancy))
        np.testing.assert_array_equal(
            rebuilt.sample(np.random.default_rng(2), occupancy), model.sample(np.random.default_rng(2), occupancy)
        )
    assert overhead_from_dict(fitted.to_dict()).occupancy_at == "start"


def test_fixed_and_distribution_overheads_ignore_occupancy():
    assert np.all(FixedOverhead(0.4).sample(np.random.default_rng(3), [0, 5, 9]) == 0.4)
    draws = DistributionOverhead(ScipyFrozen("expon", {"scale": 0.5})).sample(np.random.default_rng(3), np.zeros(1000))
    assert draws.shape == (1000,) and np.all(draws >= 0)


def test_bad_overhead_input_is_explained():
    rng = np.random.default_rng(4)
    kernel = rng.lognormal(0, 0.2, 100)
    with pytest.raises(ValueError, match="same length"):
        fit_overhead(kernel + 1, kernel, np.zeros(99))
    with pytest.raises(ValueError, match="no overhead to model"):
        fit_overhead(kernel, kernel, np.zeros(100))
    with pytest.raises(ValueError, match="use residual='empirical'"):
        fit_overhead(np.where(np.arange(100) < 5, kernel, kernel + 1), kernel, np.zeros(100), residual="lognormal")
    with pytest.raises(ValueError, match="overhead_ms"):
        FixedOverhead(-1.0)
    with pytest.raises(ValueError, match="overhead kind"):
        overhead_from_dict({"kind": "linear"})
