"""Several request classes, each a separate Poisson stream, at one station: FIFO and priority.

Classes come in priority order (index 0 is served first) and results come back per class in the
same order. σ_k = Σ_{i≤k} ρ_i is the load of class k and every class above it (σ_0 = 0).
Sources: Cobham (1954), "Priority assignment in waiting line problems", Oper. Res. 2;
Kleinrock, *Queueing Systems* Vol. 2 (1976), ch. 3 (priority queueing); Harchol-Balter,
*Performance Modeling and Design of Computer Systems* (2013), ch. 31 (non-preemptive priority)
and ch. 32 (preemptive priority).

Preemptive-*repeat* priority (an interrupted job restarts, with the same or a resampled size)
is deliberately absent: its mean response time depends on the service-time Laplace transform at
the higher classes' arrival rate, not on moments alone, so it cannot be given from the moments
this package takes as inputs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from simulator.analytic.arguments import (
    each,
    matching_lengths,
    positive,
    second_moment,
    stable,
)
from simulator.analytic.queueing import mmc_mean_wait_ms, mmc_utilization


def _mg1_classes(
    arrival_per_ms: Sequence[float], mean_service_ms: Sequence[float], second_moment_ms2: Sequence[float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Validated per-class λ_k, E[S_k], E[S_k²] and the cumulative loads σ_k, σ_{k−1} (total < 1)."""
    matching_lengths(
        "class", arrival_per_ms=arrival_per_ms, mean_service_ms=mean_service_ms, second_moment_ms2=second_moment_ms2
    )
    rates = each(positive, "arrival_per_ms", arrival_per_ms)
    means = each(positive, "mean_service_ms", mean_service_ms)
    moments = np.array(
        [second_moment(f"second_moment_ms2[{k}]", m, s) for k, (m, s) in enumerate(zip(means, second_moment_ms2))]
    )
    sigma = np.cumsum(rates * means)
    stable(float(sigma[-1]), "M/G/1")
    return rates, means, moments, sigma, np.concatenate(([0.0], sigma[:-1]))


def priority_mg1_mean_waits_ms(
    arrival_per_ms: Sequence[float], mean_service_ms: Sequence[float], second_moment_ms2: Sequence[float]
) -> list[float]:
    """Cobham: per-class mean waits of non-preemptive priority M/G/1, W_k = W0 / ((1 − σ_{k−1})(1 − σ_k)).

    W0 = Σ λ_i E[S_i²] / 2 is the mean residual work in service that any arrival finds, of every class,
    since a started job is never interrupted.
    """
    rates, _, moments, sigma, before = _mg1_classes(arrival_per_ms, mean_service_ms, second_moment_ms2)
    residual_ms = float(np.dot(rates, moments)) / 2
    return (residual_ms / ((1 - before) * (1 - sigma))).tolist()


def preemptive_priority_mg1_mean_sojourns_ms(
    arrival_per_ms: Sequence[float], mean_service_ms: Sequence[float], second_moment_ms2: Sequence[float]
) -> list[float]:
    """Per-class mean sojourn (response) times of preemptive-resume priority M/G/1.

    T_k = E[S_k] / (1 − σ_{k−1}) + (Σ_{i≤k} λ_i E[S_i²] / 2) / ((1 − σ_{k−1})(1 − σ_k))
    (Kleinrock Vol. 2 ch. 3; Harchol-Balter 2013 ch. 32). Class k never sees lower classes; its
    service is stretched by the higher classes' arrivals. An interrupted job resumes where it left
    off (no work lost). With one class nothing is preempted and T_1 is the P–K sojourn E[S] + Wq.
    """
    rates, means, moments, sigma, before = _mg1_classes(arrival_per_ms, mean_service_ms, second_moment_ms2)
    residual_ms = np.cumsum(rates * moments) / 2
    return (means / (1 - before) + residual_ms / ((1 - before) * (1 - sigma))).tolist()


def _mmc_classes(
    servers: int, arrival_per_ms: Sequence[float], service_per_ms: float
) -> tuple[np.ndarray, float, float]:
    """Validated per-class rates, the pooled FIFO mean wait and the pooled utilization of M/M/c."""
    rates = each(positive, "arrival_per_ms", arrival_per_ms)
    total = float(rates.sum())
    return rates, mmc_mean_wait_ms(servers, total, service_per_ms), mmc_utilization(servers, total, service_per_ms)


def mmc_fifo_mean_waits_ms(servers: int, arrival_per_ms: Sequence[float], service_per_ms: float) -> list[float]:
    """Per-class mean waits of FIFO M/M/c, all classes at one service rate μ: each is the pooled Wq.

    Merged Poisson streams are one Poisson stream, and by PASTA every class's arrivals see the same
    state, so under FIFO they wait alike (Gross & Harris 3rd ed. ch. 3, priority disciplines).
    """
    rates, wait_ms, _ = _mmc_classes(servers, arrival_per_ms, service_per_ms)
    return [wait_ms] * len(rates)


def mmc_priority_mean_waits_ms(servers: int, arrival_per_ms: Sequence[float], service_per_ms: float) -> list[float]:
    """Per-class mean waits of non-preemptive priority M/M/c, one service rate μ for all classes.

    W_k = C(c, a) / (cμ) / ((1 − σ_{k−1})(1 − σ_k)), σ_k = Σ_{i≤k} λ_i / (cμ) (Cobham 1954;
    Gross & Harris 3rd ed. ch. 3), written here as Wq(FIFO) (1 − ρ) / ((1 − σ_{k−1})(1 − σ_k)).
    """
    rates, wait_ms, rho = _mmc_classes(servers, arrival_per_ms, service_per_ms)
    sigma = rho * np.cumsum(rates) / rates.sum()
    before = np.concatenate(([0.0], sigma[:-1]))
    return (wait_ms * (1 - rho) / ((1 - before) * (1 - sigma))).tolist()
