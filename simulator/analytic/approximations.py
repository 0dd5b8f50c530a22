"""Approximations and bounds for queues beyond M/M/c and M/G/1: labelled so, never exact.

c² is a squared coefficient of variation (variance / mean²): 1 for exponential, 0 for constant.
Sources: Kingman (1961), "The single server queue in heavy traffic", and (1962), "Some
inequalities for the queue GI/G/1", Biometrika 49; Lee & Longton (1959), "Queueing processes
associated with airline passenger check-in", Oper. Res. Quarterly 10; Allen (1990), *Probability,
Statistics and Queueing Theory*, 2nd ed.; Gross & Harris, *Fundamentals of Queueing Theory*,
3rd ed. (1998), ch. 7 (bounds and approximations); Bolch et al., *Queueing Networks and Markov
Chains*, 2nd ed. (2006), ch. 6 (G/G/m approximations).
"""

from __future__ import annotations

from simulator.analytic.arguments import non_negative, positive, stable_utilization
from simulator.analytic.queueing import mmc_mean_wait_ms


def allen_cunneen_mean_wait_ms(
    servers: int, arrival_per_ms: float, mean_service_ms: float, arrival_scv: float, service_scv: float
) -> float:
    """Allen–Cunneen G/G/c approximation: Wq ≈ Wq(M/M/c) · (c_a² + c_s²) / 2 (exact for M/M/c and M/G/1)."""
    mean_service_ms = positive("mean_service_ms", mean_service_ms)
    variability = (non_negative("arrival_scv", arrival_scv) + non_negative("service_scv", service_scv)) / 2
    return mmc_mean_wait_ms(servers, arrival_per_ms, 1 / mean_service_ms) * variability


def kingman_mean_wait_ms(arrival_per_ms: float, mean_service_ms: float, arrival_scv: float, service_scv: float) -> float:
    """Kingman's G/G/1 approximation: Wq ≈ ρ/(1 − ρ) · (c_a² + c_s²)/2 · E[S] (exact for M/G/1, good as ρ → 1)."""
    return allen_cunneen_mean_wait_ms(1, arrival_per_ms, mean_service_ms, arrival_scv, service_scv)


def lee_longton_mean_wait_ms(servers: int, arrival_per_ms: float, mean_service_ms: float, service_scv: float) -> float:
    """Lee–Longton M/G/c approximation: Wq ≈ (1 + c_s²)/2 · Wq(M/M/c) (Poisson arrivals; exact for c = 1 by P–K).

    Allen–Cunneen with c_a² = 1; it errs most for small c with very variable service.
    """
    return allen_cunneen_mean_wait_ms(servers, arrival_per_ms, mean_service_ms, 1.0, service_scv)


def kingman_gg1_wait_upper_bound_ms(
    arrival_per_ms: float, mean_service_ms: float, interarrival_variance_ms2: float, service_variance_ms2: float
) -> float:
    """Kingman's upper bound on the G/G/1 mean wait: Wq ≤ λ (σ_a² + σ_s²) / (2 (1 − ρ)).

    A rigorous bound for any independent, identically distributed interarrival (variance σ_a²)
    and service (variance σ_s²) times; it exceeds Kingman's approximation by exactly λ(1 + ρ)σ_a²/2,
    so the two agree in heavy traffic.
    """
    rho = stable_utilization(arrival_per_ms, mean_service_ms, "G/G/1")
    spread_ms2 = non_negative("interarrival_variance_ms2", interarrival_variance_ms2) + non_negative(
        "service_variance_ms2", service_variance_ms2
    )
    return arrival_per_ms * spread_ms2 / (2 * (1 - rho))
