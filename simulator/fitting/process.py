"""Service time as a process: autocorrelation, drift, block length, and samplers that keep the order.

Under sustained load a kernel's times come in slow and fast stretches; an i.i.d. model of them
understates queueing. This module measures that dependence and provides samplers that keep it:

* moving-block and stationary bootstraps of the measured sequence, with the Politis–White
  automatic block length (Politis & White 2004, corrected by Patton, Politis & White 2009);
* a Markov-modulated lognormal model (:mod:`simulator.fitting.hmm`, re-exported here);
* :func:`order_matters`, which asks an M/G/1 queue whether the order changes the p99.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import ArrayLike

from simulator.fitting._validation import check_count, check_probability, validated_samples
from simulator.fitting.hmm import LognormalHMM, fit_lognormal_hmm

__all__ = [
    "BlockLength",
    "Drift",
    "LognormalHMM",
    "MovingBlockBootstrap",
    "OrderEffect",
    "Sampler",
    "StationaryBootstrap",
    "autocorrelation",
    "drift",
    "fit_lognormal_hmm",
    "optimal_block_length",
    "order_matters",
]


class Sampler(Protocol):
    """Anything that produces a sequence of service times (ms) of any length."""

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray: ...


def autocorrelation(samples_ms: ArrayLike, max_lag: int = 20) -> np.ndarray:
    """Sample autocorrelations at lags 1..max_lag (the usual estimator, normalized by the lag-0 sum)."""
    values = validated_samples(samples_ms)
    check_count(max_lag, "max_lag", 1)
    if max_lag >= values.size:
        raise ValueError(f"max_lag must be below the number of samples ({values.size}), got {max_lag}")
    centered = values - values.mean()
    denominator = float(centered @ centered)
    return np.array([centered[:-lag] @ centered[lag:] / denominator for lag in range(1, max_lag + 1)])


@dataclass(frozen=True)
class Drift:
    """Trend of a sequence: robust slope, the change it implies over the run, and half-vs-half medians."""

    slope_ms_per_sample: float
    relative_change: float
    half_median_ratio: float
    trend_pvalue: float
    blocks: int


def drift(samples_ms: ArrayLike, blocks: int = 50) -> Drift:
    """Theil–Sen slope and Kendall trend test over the medians of ``blocks`` equal consecutive blocks.

    Block medians make the estimate robust to outliers and keep it O(n) (Theil–Sen on all n points
    needs n² pairs). ``relative_change`` is slope × n / median: the fitted change across the whole
    sequence as a fraction of its median; ``half_median_ratio`` is median(2nd half)/median(1st half).
    """
    import scipy.stats

    values = validated_samples(samples_ms)
    count = min(check_count(blocks, "blocks", 3), values.size // 3)
    chunks = np.array_split(values, count)
    medians = np.array([np.median(chunk) for chunk in chunks])
    centers = np.cumsum([0] + [chunk.size for chunk in chunks[:-1]]) + np.array([chunk.size for chunk in chunks]) / 2.0
    slope = float(scipy.stats.theilslopes(medians, centers).slope)
    tau = scipy.stats.kendalltau(centers, medians)
    pvalue = float(tau.pvalue) if math.isfinite(tau.pvalue) else 1.0
    half = values.size // 2
    first, second = float(np.median(values[:half])), float(np.median(values[half:]))
    return Drift(
        slope_ms_per_sample=slope,
        relative_change=_ratio(slope * values.size, float(np.median(values))),
        half_median_ratio=_ratio(second, first, equal=1.0),
        trend_pvalue=pvalue,
        blocks=count,
    )


def _ratio(numerator: float, denominator: float, equal: float = 0.0) -> float:
    """numerator / denominator, with a zero denominator giving ±inf (or ``equal`` when both are 0), never NaN."""
    if denominator > 0:
        return numerator / denominator
    return equal if numerator == denominator else math.copysign(math.inf, numerator - denominator)


@dataclass(frozen=True)
class BlockLength:
    """Politis–White optimal (expected) block lengths, in samples."""

    stationary: float
    moving: float


def optimal_block_length(samples_ms: ArrayLike) -> BlockLength:
    """Politis & White (2004) automatic block length with the Patton–Politis–White (2009) correction.

    The bandwidth M = 2·m̂, where m̂ is the smallest lag after which K_n = max(5, ⌈√log10 n⌉)
    consecutive autocorrelations are all below 2·√(log10 n / n); with the flat-top window λ,
    Ĝ = Σ_{|k|≤M} λ(k/M)|k|R̂(k) and ĝ = Σ_{|k|≤M} λ(k/M)R̂(k), the optimal lengths are
    b = (2Ĝ²/D)^{1/3} n^{1/3} with D = 2ĝ² for the stationary bootstrap and D = (4/3)ĝ² for the
    moving-block (and circular) bootstrap — the 4/3 is the 2009 correction. Lengths are kept in
    [1, min(3√n, n/3)].
    """
    values = validated_samples(samples_ms)
    n = values.size
    centered = values - values.mean()
    upper = math.ceil(min(3 * math.sqrt(n), n / 3))
    window = max(5, math.ceil(math.sqrt(math.log10(n))))
    max_lag = min(math.ceil(math.sqrt(n)) + window, n - 1)
    autocovariance = np.array([centered[: n - lag] @ centered[lag:] / n for lag in range(max_lag + 1)])
    correlation = np.abs(autocovariance / autocovariance[0])
    threshold = 2 * math.sqrt(math.log10(n) / n)
    first_quiet = next(
        (lag for lag in range(1, max_lag - window + 2) if np.all(correlation[lag : lag + window] < threshold)),
        None,
    )
    bandwidth = max_lag if first_quiet is None else min(2 * max(first_quiet - 1, 1), max_lag)
    lags = np.arange(1, bandwidth + 1)
    ratio = lags / bandwidth
    flat_top = np.where(ratio <= 0.5, 1.0, 2 * (1 - ratio))
    g_hat = 2 * np.sum(flat_top * lags * autocovariance[1 : bandwidth + 1])
    long_run = autocovariance[0] + 2 * np.sum(flat_top * autocovariance[1 : bandwidth + 1])

    def length(d: float) -> float:
        if d <= 0:
            return 1.0
        return float(min(max((2 * g_hat**2 / d) ** (1 / 3) * n ** (1 / 3), 1.0), upper))

    return BlockLength(stationary=length(2 * long_run**2), moving=length(4 / 3 * long_run**2))


class MovingBlockBootstrap:
    """Künsch's moving-block bootstrap: concatenated blocks of ``block_length`` consecutive samples.

    Every block starts at a fresh uniform position, so a sequence of any length is a new random
    arrangement (nothing is tiled). ``block_length`` defaults to the Politis–White choice.
    """

    def __init__(self, samples_ms: ArrayLike, block_length: int | None = None) -> None:
        self.samples_ms = validated_samples(samples_ms)
        if block_length is None:
            block_length = max(1, round(optimal_block_length(self.samples_ms).moving))
        self.block_length = check_count(block_length, "block_length", 1)
        if self.block_length > self.samples_ms.size:
            raise ValueError(f"block_length {block_length} exceeds the {self.samples_ms.size} samples")

    def sample_indices(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Indices into the measured samples for a sequence of ``size``."""
        size = check_count(size, "size", 0)
        blocks = -(-size // self.block_length)
        starts = rng.integers(0, self.samples_ms.size - self.block_length + 1, size=blocks)
        return (starts[:, None] + np.arange(self.block_length)).ravel()[:size]

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return self.samples_ms[self.sample_indices(rng, size)]


class StationaryBootstrap:
    """Politis & Romano's stationary bootstrap: blocks of geometric length, wrapping around the record.

    Block lengths have mean ``mean_block_length`` (default: the Politis–White choice); each block
    starts at a fresh uniform position, so long sequences are never a tiled chunk.
    """

    def __init__(self, samples_ms: ArrayLike, mean_block_length: float | None = None) -> None:
        self.samples_ms = validated_samples(samples_ms)
        if mean_block_length is None:
            mean_block_length = optimal_block_length(self.samples_ms).stationary
        mean_block_length = float(mean_block_length)
        if not 1.0 <= mean_block_length <= self.samples_ms.size:
            raise ValueError(f"mean_block_length must lie in [1, {self.samples_ms.size}], got {mean_block_length!r}")
        self.mean_block_length = mean_block_length

    def sample_indices(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Indices into the measured samples for a sequence of ``size``."""
        size = check_count(size, "size", 0)
        if size == 0:
            return np.zeros(0, dtype=int)
        new_block = rng.random(size) < 1.0 / self.mean_block_length
        new_block[0] = True
        block_of = np.cumsum(new_block) - 1
        block_positions = np.flatnonzero(new_block)
        starts = rng.integers(0, self.samples_ms.size, size=block_positions.size)
        offsets = np.arange(size) - block_positions[block_of]
        return (starts[block_of] + offsets) % self.samples_ms.size

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return self.samples_ms[self.sample_indices(rng, size)]


@dataclass(frozen=True)
class OrderEffect:
    """p99 sojourn of an M/G/1 queue fed i.i.d. resamples vs the order-keeping sampler, and their difference."""

    utilization: float
    p99_iid_ms: float
    p99_process_ms: float
    relative_difference: float
    ci_low: float
    ci_high: float
    confidence: float
    replications: int
    jobs_per_replication: int


def _sojourn_times(service_ms: np.ndarray, interarrival_ms: np.ndarray) -> np.ndarray:
    """Lindley's recursion in closed form: W_n = C_n − min_{k≤n} C_k, C = cumulative (S_i − A_{i+1})."""
    increments = np.concatenate([[0.0], service_ms[:-1] - interarrival_ms[1:]])
    cumulative = np.cumsum(increments)
    waits = cumulative - np.minimum.accumulate(np.minimum(cumulative, 0.0))
    return waits + service_ms


def order_matters(
    samples_ms: ArrayLike,
    rho: float = 0.7,
    process: Sampler | None = None,
    replications: int = 20,
    jobs_per_replication: int = 200_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> OrderEffect:
    """Does the order of service times change the tail? p99 sojourn of an M/G/1 queue at utilization ρ.

    Each replication feeds the same Poisson arrivals (common random numbers, rate ρ / mean) to
    (a) i.i.d. resamples of the data and (b) ``process`` (default: the moving-block bootstrap with
    the Politis–White block length), drops the first 10% of jobs as warm-up, and records
    p99(b)/p99(a) − 1. The result gives its mean over replications with a Student-t interval.
    """
    import scipy.stats

    values = validated_samples(samples_ms)
    rho = check_probability(rho, "rho")
    check_probability(confidence, "confidence")
    replications = check_count(replications, "replications", 2)
    jobs = check_count(jobs_per_replication, "jobs_per_replication", 1000)
    sampler = MovingBlockBootstrap(values) if process is None else process
    rng = np.random.default_rng(seed)
    mean_interarrival_ms = values.mean() / rho
    warmup = jobs // 10
    iid_p99, process_p99 = np.empty(replications), np.empty(replications)
    for replication in range(replications):
        interarrival = rng.exponential(mean_interarrival_ms, size=jobs)
        iid = values[rng.integers(0, values.size, size=jobs)]
        ordered = np.asarray(sampler.sample(rng, jobs), dtype=float)
        iid_p99[replication] = np.quantile(_sojourn_times(iid, interarrival)[warmup:], 0.99)
        process_p99[replication] = np.quantile(_sojourn_times(ordered, interarrival)[warmup:], 0.99)
    differences = process_p99 / iid_p99 - 1.0
    half_width = (
        scipy.stats.t.ppf(0.5 + confidence / 2, replications - 1) * differences.std(ddof=1) / math.sqrt(replications)
    )
    mean_difference = float(differences.mean())
    return OrderEffect(
        utilization=rho,
        p99_iid_ms=float(iid_p99.mean()),
        p99_process_ms=float(process_p99.mean()),
        relative_difference=mean_difference,
        ci_low=mean_difference - float(half_width),
        ci_high=mean_difference + float(half_width),
        confidence=confidence,
        replications=replications,
        jobs_per_replication=jobs,
    )
