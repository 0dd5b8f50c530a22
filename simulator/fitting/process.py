"""Service time as a process: how much the order of measured times matters, and how they drift.

Under sustained load a kernel's times come in slow and fast stretches; an i.i.d. model of them
understates queueing. This module measures that dependence (autocorrelation, drift) and asks an
M/G/1 queue whether it changes the p99 (:func:`order_matters`). The samplers that keep the order
(moving-block and stationary bootstraps, the Politis–White block length, the lognormal HMM) live
in :mod:`simulator.distributions.process`, where service models use them; they are re-exported
here, beside :func:`simulator.fitting.hmm.fit_lognormal_hmm`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from simulator.distributions.process import (
    BlockLength,
    LognormalHMM,
    MovingBlockBootstrap,
    ServiceProcess,
    StationaryBootstrap,
    optimal_block_length,
)
from simulator.fitting._validation import (
    check_count,
    check_probability,
    validated_samples,
)
from simulator.fitting.hmm import fit_lognormal_hmm

__all__ = [
    "BlockLength",
    "Drift",
    "LognormalHMM",
    "MovingBlockBootstrap",
    "OrderEffect",
    "ServiceProcess",
    "StationaryBootstrap",
    "autocorrelation",
    "drift",
    "fit_lognormal_hmm",
    "optimal_block_length",
    "order_matters",
]


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
    process: ServiceProcess | None = None,
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
