"""M/G/1 beyond the P–K mean: Takács second moments, queue length, P(wait > 0).

Checked against M/M/1, whose wait and sojourn laws are known in full, and against a seeded
Lindley-recursion simulation of M/D/1 with a batch-means confidence interval.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats

from simulator.analytic import (
    mg1_mean_queue_length,
    mg1_mean_wait_ms,
    mg1_sojourn_second_moment_ms2,
    mg1_wait_probability,
    mg1_wait_second_moment_ms2,
)


def test_takacs_is_exact_for_mm1():
    """M/M/1: P(W > t) = ρ e^{−(μ−λ)t}, so E[W²] = 2ρ/(μ−λ)²; T ~ Exp(μ − λ), so E[T²] = 2/(μ−λ)²."""
    arrival, mean = 0.07, 10.0
    service = 1 / mean
    moments = (mean, 2 * mean**2, 6 * mean**3)
    rho = arrival * mean
    assert mg1_wait_second_moment_ms2(arrival, *moments) == pytest.approx(2 * rho / (service - arrival) ** 2)
    assert mg1_sojourn_second_moment_ms2(arrival, *moments) == pytest.approx(2 / (service - arrival) ** 2)


def test_takacs_md1_by_hand():
    """M/D/1, D = 1 ms, ρ = 0.5: E[W] = 0.5, E[W²] = 2 · 0.25 + 0.5/(3 · 0.5) = 5/6, E[T²] = 5/6 + 1 + 1."""
    assert mg1_wait_second_moment_ms2(0.5, 1.0, 1.0, 1.0) == pytest.approx(5 / 6)
    assert mg1_sojourn_second_moment_ms2(0.5, 1.0, 1.0, 1.0) == pytest.approx(5 / 6 + 2)


def test_queue_length_and_wait_probability():
    arrival, mean, second = 0.06, 10.0, 170.0
    assert mg1_mean_queue_length(arrival, mean, second) == pytest.approx(arrival * mg1_mean_wait_ms(arrival, mean, second))
    assert mg1_mean_queue_length(0.05, 10.0, 200.0) == pytest.approx(0.5**2 / 0.5)  # M/M/1: Lq = ρ²/(1 − ρ)
    assert mg1_wait_probability(arrival, mean) == pytest.approx(0.6)


def _lindley_md1_waits(arrival_per_ms: float, service_ms: float, customers: int, seed: int) -> np.ndarray:
    """Waits of successive M/D/1 customers: W_{n+1} = max(0, W_n + D − A_{n+1}), as a reflected random walk."""
    walk = np.cumsum(service_ms - np.random.default_rng(seed).exponential(1 / arrival_per_ms, customers - 1))
    return np.concatenate(([0.0], walk - np.minimum(np.minimum.accumulate(walk), 0.0)))


def test_takacs_matches_a_simulated_md1_queue():
    """Every estimate within its own 99.9 % batch-means interval (100 batches of 20 000 customers)."""
    arrival, service = 0.6, 1.0
    waits = _lindley_md1_waits(arrival, service, 2_010_000, seed=11)[10_000:]  # drop the empty-start transient
    batches = waits.reshape(100, -1)
    sojourns = batches + service
    t = scipy.stats.t.ppf(0.9995, df=len(batches) - 1)
    checks = {
        "E[W]": (batches.mean(axis=1), mg1_mean_wait_ms(arrival, service, service**2)),
        "E[W²]": ((batches**2).mean(axis=1), mg1_wait_second_moment_ms2(arrival, service, service**2, service**3)),
        "E[T²]": ((sojourns**2).mean(axis=1), mg1_sojourn_second_moment_ms2(arrival, service, service**2, service**3)),
        "P(W>0)": ((batches > 0).mean(axis=1), mg1_wait_probability(arrival, service)),
    }
    for name, (means, exact) in checks.items():
        half_width = t * means.std(ddof=1) / math.sqrt(len(means))
        assert half_width < 0.03 * exact, name  # the interval is narrow enough to mean something
        assert abs(means.mean() - exact) < half_width, name


def test_takacs_grows_with_the_third_moment():
    """Same mean and variance, heavier right tail (larger E[S³]) → larger E[W²], same E[W]."""
    arrival, mean, second = 0.05, 10.0, 300.0
    light, heavy = (mg1_wait_second_moment_ms2(arrival, mean, second, third) for third in (10_000.0, 40_000.0))
    assert light < heavy
    assert heavy - light == pytest.approx(arrival * 30_000.0 / (3 * 0.5))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: mg1_wait_second_moment_ms2(0.05, 10.0, 200.0, 3000.0), "third_moment_ms3 .* not a valid third moment"),
        (lambda: mg1_wait_second_moment_ms2(0.05, 10.0, 200.0, -1.0), "third_moment_ms3"),
        (lambda: mg1_wait_second_moment_ms2(0.05, 10.0, 50.0, 6000.0), "second_moment_ms2 .* not a valid second moment"),
        (lambda: mg1_wait_second_moment_ms2(0.1, 10.0, 200.0, 6000.0), "M/G/1: utilization ρ = 1 ≥ 1"),
        (lambda: mg1_sojourn_second_moment_ms2(0.0, 10.0, 200.0, 6000.0), "arrival_per_ms"),
        (lambda: mg1_sojourn_second_moment_ms2(0.05, math.inf, 200.0, 6000.0), "mean_service_ms"),
        (lambda: mg1_mean_queue_length(0.05, 10.0, math.nan), "second_moment_ms2"),
        (lambda: mg1_wait_probability(0.2, 10.0), "≥ 1"),
        (lambda: mg1_wait_probability(0.05, -1.0), "mean_service_ms"),
    ],
)
def test_invalid_inputs_raise_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()
