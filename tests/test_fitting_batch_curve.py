"""Batch-size curves: monotone, defined only on the measured range, and a correct throughput-optimal size."""

from __future__ import annotations

import json

import numpy as np
import pytest

from simulator.fitting import BatchCurve, best_batch_size, fit_batch_curve
from simulator.fitting.curves import AffinePower, PiecewiseLinear, isotonic

SIZES = [1, 2, 4, 8, 16, 32, 64]


def power_law(size):
    return 2.0 + 0.5 * np.asarray(size, dtype=float) ** 0.8


def measured(rng: np.random.Generator, law, count: int = 400, cv: float = 0.1) -> dict[int, np.ndarray]:
    return {size: law(size) * rng.lognormal(-(cv**2) / 2, cv, count) for size in SIZES}


def test_power_law_data_get_the_affine_power_curve_close_to_the_truth():
    curve = fit_batch_curve(measured(np.random.default_rng(0), power_law))
    assert curve.kind == "affine_power"
    # Each size's mean has CV 0.1/√400 = 0.5%; 4 such errors bound the curve's relative error.
    grid = np.linspace(1, 64, 50)
    np.testing.assert_allclose(curve.time_ms(grid), power_law(grid), rtol=4 * 0.005)


def test_a_kinked_curve_gets_the_piecewise_linear_fit():
    def kinked(size):  # flat until the device saturates at 16, then linear
        return np.where(np.asarray(size) <= 16, 5.0, 5.0 * np.asarray(size) / 16)

    curve = fit_batch_curve(measured(np.random.default_rng(1), kinked))
    assert curve.kind == "piecewise_linear"
    assert curve.loo_errors["piecewise_linear"] < curve.loo_errors["affine_power"]


def test_curve_is_monotone_even_when_measurements_are_not():
    rng = np.random.default_rng(2)
    samples = {1: rng.normal(10, 0.1, 50), 2: rng.normal(9, 0.1, 50), 4: rng.normal(12, 0.1, 50)}
    curve = fit_batch_curve(samples)
    grid = np.linspace(1, 4, 100)
    assert np.all(np.diff(curve.time_ms(grid)) >= 0)
    assert curve.time_ms(1) == pytest.approx(curve.time_ms(2))  # the violators are pooled


def test_evaluation_outside_the_measured_range_names_it():
    curve = fit_batch_curve(measured(np.random.default_rng(3), power_law))
    for outside in (0.5, 65, [8, 128]):
        with pytest.raises(ValueError, match=r"outside the measured range \[1, 64\]"):
            curve.time_ms(outside)


def test_best_batch_size_on_a_hand_made_curve():
    # time(B): 10, 12, 16, 30 ms at B = 1, 2, 4, 8 → throughput 0.1, 0.167, 0.25, 0.267 per ms.
    curve = BatchCurve(PiecewiseLinear([1, 2, 4, 8], [10, 12, 16, 30]), "mean", [1, 2, 4, 8], [10, 12, 16, 30])
    assert best_batch_size(curve, 30.0, [1, 2, 4, 8]) == 8
    assert best_batch_size(curve, 29.9, [1, 2, 4, 8]) == 4
    assert best_batch_size(curve, 11.0, [1, 2, 4, 8]) == 1
    # Over every integer size: B/time(B) at B = 5, 6, 7 is 5/19.5, 6/23, 7/26.5 — 0.256, 0.261, 0.264.
    assert best_batch_size(curve, 27.0) == 7
    with pytest.raises(ValueError, match="no batch size meets the 5 ms budget"):
        best_batch_size(curve, 5.0)
    with pytest.raises(ValueError, match="outside the measured range"):
        best_batch_size(curve, 30.0, [1, 16])


def test_p99_curve_and_json_round_trip():
    samples = measured(np.random.default_rng(4), power_law)
    curve = fit_batch_curve(samples, statistic="p99")
    np.testing.assert_allclose(curve.measured_ms, [np.quantile(samples[size], 0.99) for size in SIZES])
    rebuilt = BatchCurve.from_dict(json.loads(json.dumps(curve.to_dict())))
    np.testing.assert_allclose(rebuilt.time_ms(SIZES), curve.time_ms(SIZES), rtol=1e-12)
    assert rebuilt.kind == curve.kind and rebuilt.statistic == "p99"


def test_few_sizes_use_piecewise_linear():
    curve = fit_batch_curve({1: [2.0, 2.2], 8: [5.0, 5.5], 32: [12.0, 12.4]})
    assert curve.kind == "piecewise_linear" and curve.loo_errors == {}


@pytest.mark.parametrize(
    ("samples", "statistic", "message"),
    [
        ({1: [1.0]}, "mean", "at least 2 batch sizes"),
        ({1: [1.0], 2.5: [2.0]}, "mean", "integers ≥ 1"),
        ({1: [1.0], 2: [-2.0]}, "mean", "batch size 2: need at least one finite time > 0"),
        ({1: [1.0], 2: [2.0]}, "median", "statistic must be"),
    ],
)
def test_bad_measurements_are_rejected(samples, statistic, message):
    with pytest.raises(ValueError, match=message):
        fit_batch_curve(samples, statistic)


def test_isotonic_and_power_building_blocks():
    np.testing.assert_allclose(isotonic([1, 3, 2, 4], [1, 1, 1, 1]), [1, 2.5, 2.5, 4])
    np.testing.assert_allclose(isotonic([1, 3, 2], [1, 1, 3]), [1, 2.25, 2.25])
    with pytest.raises(ValueError, match="b ≥ 0 and c > 0"):
        AffinePower(1.0, -1.0, 1.0)
    with pytest.raises(ValueError, match="non-decreasing"):
        PiecewiseLinear([1, 2], [3, 2])
