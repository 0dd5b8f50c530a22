"""Closed-form queueing results: instant first answers and cross-checks for the simulation.

Conventions: times in ms, rates per ms (``*_per_ms``), offered load ``a = λ/μ`` in Erlangs.
Multi-class functions take classes in priority order (index 0 is served first) and return
per-class values in the same order. Every function validates its inputs and raises
``ValueError`` naming the offending argument; an unstable system (ρ ≥ 1) is an error, never a
negative or infinite "wait".
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from simulator.analytic.arguments import count, non_negative, positive

def _stable(rho: float, what: str) -> float:
    if rho >= 1:
        raise ValueError(
            f"{what}: utilization ρ = {rho:.4g} ≥ 1, the queue grows without bound and no steady state exists"
        )
    return rho


def _second_moment(name: str, mean_ms: float, second_moment_ms2: float) -> float:
    second_moment_ms2 = non_negative(name, second_moment_ms2)
    if second_moment_ms2 < mean_ms**2 * (1 - 1e-12):
        raise ValueError(f"{name} = {second_moment_ms2!r} is below mean² = {mean_ms**2!r}: not a valid second moment")
    return second_moment_ms2


# -- loss and delay systems with c exponential servers ----------------------------------------


def erlang_b(servers: int, offered_load: float) -> float:
    """Erlang B: blocking probability of M/G/c/c with ``offered_load`` = λE[S] Erlangs (stable recursion)."""
    servers = count("servers", servers)
    offered_load = non_negative("offered_load", offered_load)
    blocking = 1.0
    for k in range(1, servers + 1):
        blocking = offered_load * blocking / (k + offered_load * blocking)
    return blocking


def erlang_c(servers: int, offered_load: float) -> float:
    """Erlang C: probability that an arrival waits in M/M/c with ``offered_load`` = λ/μ Erlangs < c."""
    servers = count("servers", servers)
    offered_load = non_negative("offered_load", offered_load)
    _stable(offered_load / servers, f"M/M/{servers}")
    blocking = erlang_b(servers, offered_load)
    return servers * blocking / (servers - offered_load * (1 - blocking))


def _mmc(servers: int, arrival_per_ms: float, service_per_ms: float) -> tuple[int, float, float, float]:
    """Validated (c, λ, μ, C(c, a)) of an M/M/c queue."""
    servers = count("servers", servers)
    arrival_per_ms = positive("arrival_per_ms", arrival_per_ms)
    service_per_ms = positive("service_per_ms", service_per_ms)
    return servers, arrival_per_ms, service_per_ms, erlang_c(servers, arrival_per_ms / service_per_ms)


def mmc_utilization(servers: int, arrival_per_ms: float, service_per_ms: float) -> float:
    """Utilization ρ = λ/(cμ) of each of the c servers (must be < 1)."""
    servers, arrival_per_ms, service_per_ms, _ = _mmc(servers, arrival_per_ms, service_per_ms)
    return arrival_per_ms / (servers * service_per_ms)


def mmc_mean_wait_ms(servers: int, arrival_per_ms: float, service_per_ms: float) -> float:
    """Mean time in queue of M/M/c: Wq = C(c, a) / (cμ − λ)."""
    servers, arrival_per_ms, service_per_ms, waits = _mmc(servers, arrival_per_ms, service_per_ms)
    return waits / (servers * service_per_ms - arrival_per_ms)


def mm1_mean_wait_ms(arrival_per_ms: float, service_per_ms: float) -> float:
    """Mean time in queue of M/M/1: Wq = ρ / (μ − λ)."""
    return mmc_mean_wait_ms(1, arrival_per_ms, service_per_ms)


def mmc_mean_queue_length(servers: int, arrival_per_ms: float, service_per_ms: float) -> float:
    """Mean number waiting (not in service) in M/M/c: Lq = λ Wq (Little's law)."""
    return arrival_per_ms * mmc_mean_wait_ms(servers, arrival_per_ms, service_per_ms)


def mmc_wait_tail(servers: int, arrival_per_ms: float, service_per_ms: float, t_ms: float) -> float:
    """Waiting-time tail of FIFO M/M/c: P(W > t) = C(c, a) · exp(−(cμ − λ) t)."""
    servers, arrival_per_ms, service_per_ms, waits = _mmc(servers, arrival_per_ms, service_per_ms)
    t_ms = non_negative("t_ms", t_ms)
    return waits * math.exp(-(servers * service_per_ms - arrival_per_ms) * t_ms)


# -- one server, general service ----------------------------------------------------------------


def mg1_mean_wait_ms(arrival_per_ms: float, mean_service_ms: float, second_moment_ms2: float) -> float:
    """Pollaczek–Khinchine mean wait of M/G/1: Wq = λ E[S²] / (2 (1 − ρ))."""
    return priority_mg1_mean_waits_ms([arrival_per_ms], [mean_service_ms], [second_moment_ms2])[0]


def priority_mg1_mean_waits_ms(
    arrival_per_ms: Sequence[float], mean_service_ms: Sequence[float], second_moment_ms2: Sequence[float]
) -> list[float]:
    """Cobham: per-class mean waits of non-preemptive priority M/G/1, W_k = W0 / ((1 − σ_{k−1})(1 − σ_k))."""
    if not len(arrival_per_ms) == len(mean_service_ms) == len(second_moment_ms2) >= 1:
        raise ValueError("arrival_per_ms, mean_service_ms and second_moment_ms2 need one entry per class (≥ 1 class)")
    rates = [positive(f"arrival_per_ms[{k}]", rate) for k, rate in enumerate(arrival_per_ms)]
    means = [positive(f"mean_service_ms[{k}]", mean) for k, mean in enumerate(mean_service_ms)]
    moments = [_second_moment(f"second_moment_ms2[{k}]", m, s) for k, (m, s) in enumerate(zip(means, second_moment_ms2))]
    sigma = np.cumsum(np.multiply(rates, means))
    _stable(float(sigma[-1]), "M/G/1")
    residual_ms = float(np.dot(rates, moments)) / 2  # W0: mean residual work found in service
    before = np.concatenate(([0.0], sigma[:-1]))
    return (residual_ms / ((1 - before) * (1 - sigma))).tolist()


def mmc_priority_mean_waits_ms(servers: int, arrival_per_ms: Sequence[float], service_per_ms: float) -> list[float]:
    """Per-class mean waits of non-preemptive priority M/M/c, one service rate μ for all classes."""
    if len(arrival_per_ms) < 1:
        raise ValueError("arrival_per_ms needs one entry per class (≥ 1 class)")
    rates = [positive(f"arrival_per_ms[{k}]", rate) for k, rate in enumerate(arrival_per_ms)]
    servers, _, service_per_ms, waits = _mmc(servers, sum(rates), service_per_ms)
    sigma = np.cumsum(rates) / (servers * service_per_ms)
    before = np.concatenate(([0.0], sigma[:-1]))
    return (waits / (servers * service_per_ms) / ((1 - before) * (1 - sigma))).tolist()


# -- approximations for general arrivals --------------------------------------------------------


def allen_cunneen_mean_wait_ms(
    servers: int, arrival_per_ms: float, mean_service_ms: float, arrival_scv: float, service_scv: float
) -> float:
    """Allen–Cunneen G/G/c approximation: Wq ≈ Wq(M/M/c) · (c_a² + c_s²) / 2 (exact for M/M/c)."""
    mean_service_ms = positive("mean_service_ms", mean_service_ms)
    variability = (non_negative("arrival_scv", arrival_scv) + non_negative("service_scv", service_scv)) / 2
    return mmc_mean_wait_ms(servers, arrival_per_ms, 1 / mean_service_ms) * variability


def kingman_mean_wait_ms(arrival_per_ms: float, mean_service_ms: float, arrival_scv: float, service_scv: float) -> float:
    """Kingman's G/G/1 approximation: Wq ≈ ρ/(1 − ρ) · (c_a² + c_s²)/2 · E[S] (c² = squared coefficients of variation)."""
    return allen_cunneen_mean_wait_ms(1, arrival_per_ms, mean_service_ms, arrival_scv, service_scv)


# -- caches -------------------------------------------------------------------------------------
