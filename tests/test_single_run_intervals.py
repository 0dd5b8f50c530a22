"""One run's intervals at high load: batches long against the correlation time, or a note that says they are not.

The queues are exact M/M/1 recursions through latsim's statistics path (``tests/queue_harness.py``); the
coverage itself is checked in ``tests/test_coverage.py``.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import binom

from simulator.metrics.estimators import batch_size_for, lag1_autocorrelation, run_too_short
from tests.queue_harness import coverage


def _ar1(phi: float, length: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.normal(size=length)
    series = np.empty(length)
    series[0] = noise[0] / np.sqrt(1 - phi**2)
    for index in range(1, length):
        series[index] = phi * series[index - 1] + noise[index]
    return series


def test_a_run_of_few_correlation_times_is_too_short_and_a_long_one_is_not():
    """Fine batches of 10 units of an AR(1) with correlation time (1 + φ)/(1 − φ) = 399 units: 1,280 fine batches hold
    32 correlation times, fewer than 20 batches of 5; white noise of the same length is fine."""
    units = _ar1(0.995, 12_800, 1) + 10
    fine = units.reshape(1280, 10).sum(axis=1)
    counts = np.full(1280, 10.0)
    factor, correlated = batch_size_for(fine, counts)
    assert correlated or run_too_short(fine, counts, float(units.var()), factor)
    assert run_too_short(fine, counts, float(units.var()), factor)
    noise = np.random.default_rng(2).normal(size=12_800) + 10
    fine = noise.reshape(1280, 10).sum(axis=1)
    factor, correlated = batch_size_for(fine, counts)
    assert factor == 1 and not correlated and not run_too_short(fine, counts, float(noise.var()), factor)


def test_a_lag1_that_passes_by_chance_on_few_batches_is_not_trusted():
    """An AR(1) of fine-batch means whose lag-1 halves with each merge only from ~0.4 on: merging must go on until
    the finer levels agree, not stop at the first level whose few batches happen to look uncorrelated."""
    means = _ar1(0.9, 1280, 3) + 10
    factor, correlated = batch_size_for(means, np.ones(1280))
    merged = means[: 1280 // factor * factor].reshape(-1, factor).mean(axis=1)
    finer = means[: 1280 // (factor // 2) * (factor // 2)].reshape(-1, factor // 2).mean(axis=1)
    assert correlated or (lag1_autocorrelation(merged) <= 0.1 and lag1_autocorrelation(finer) <= 0.2)


def test_one_short_run_at_rho_0_9_says_its_batch_means_are_still_correlated():
    """M/M/1 at ρ 0.9, one run of 20,000 requests (~70 correlation times): the note came in 27 % of runs; it must
    come in more often than that rate explains (beyond the 99.9 % quantile of Binomial(seeds, 0.27))."""
    seeds = 30
    flagged = coverage(1, 0.9, 1, 20_000, range(seeds))["correlated"]
    assert flagged > binom.ppf(0.999, seeds, 0.27), flagged
