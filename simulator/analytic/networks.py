"""Open Jackson networks of M/M/c stations, and tandems (pipelines) as their simplest case.

Assumptions: Poisson external arrivals, exponential service at every station (rate μ_i per
server, c_i servers, FIFO), Markovian routing independent of everything else, and every job
eventually leaves. Then the stations behave, in steady state, as independent M/M/c queues fed
at the rates λ that solve the traffic equations λ = γ + Pᵀλ (Jackson 1957, 1963; Kleinrock,
*Queueing Systems* Vol. 1 (1975), ch. 4; Gross & Harris, *Fundamentals of Queueing Theory*,
3rd ed. (1998), ch. 4; Harchol-Balter, *Performance Modeling and Design of Computer Systems*
(2013), ch. 17; Bolch et al., *Queueing Networks and Markov Chains*, 2nd ed. (2006), ch. 7).
For a tandem, Burke's theorem gives the same product form with no feedback.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from simulator.analytic.arguments import (
    count,
    each,
    matching_lengths,
    non_negative,
    positive,
)
from simulator.analytic.queueing import mmc_mean_wait_ms


@dataclass(frozen=True)
class JacksonNetwork:
    """Steady state of an open Jackson network, per station in input order, and end to end."""

    throughput_per_ms: tuple[float, ...]  # λ_i: total arrival rate at station i (external + routed)
    utilization: tuple[float, ...]  # ρ_i = λ_i / (c_i μ_i)
    mean_number: tuple[float, ...]  # L_i: jobs at station i, waiting or in service
    mean_sojourn_ms: tuple[float, ...]  # per visit to station i: Wq_i + 1/μ_i
    mean_response_time_ms: float  # external arrival to departure: Σ L_i / Σ γ_i (Little's law)


def _routing(routing: Sequence[Sequence[float]], stations: int) -> np.ndarray:
    """A validated substochastic routing matrix from which every job eventually leaves."""
    matrix = np.asarray(routing, dtype=float)
    if matrix.shape != (stations, stations):
        raise ValueError(
            f"routing must be a {stations}×{stations} matrix (one row and column per station), got shape {matrix.shape}"
        )
    if not np.all(np.isfinite(matrix)) or np.any(matrix < 0):
        raise ValueError("routing entries must be probabilities ≥ 0")
    leaving = 1 - matrix.sum(axis=1)
    if np.any(leaving < -1e-9):
        rows = np.flatnonzero(leaving < -1e-9).tolist()
        raise ValueError(f"routing rows {rows} sum to more than 1: a job can go to at most one next station")
    if np.max(np.abs(np.linalg.eigvals(matrix))) >= 1 - 1e-12:
        raise ValueError("routing traps jobs in a cycle they never leave (spectral radius ≥ 1): not an open network")
    return matrix


def jackson_network(
    external_arrival_per_ms: Sequence[float],
    routing: Sequence[Sequence[float]],
    servers: Sequence[int],
    service_per_ms: Sequence[float],
) -> JacksonNetwork:
    """Solve an open Jackson network: station i has ``servers[i]`` exponential servers of rate ``service_per_ms[i]``.

    ``routing[i][j]`` is the probability that a job leaving station i goes next to j (it leaves the
    network with the row's remaining probability); ``external_arrival_per_ms[i]`` is γ_i. An
    unstable station (ρ_i ≥ 1) is an error that names it; a station no job reaches has λ_i = 0.
    """
    stations = matching_lengths(
        "station", external_arrival_per_ms=external_arrival_per_ms, servers=servers, service_per_ms=service_per_ms
    )
    external = each(non_negative, "external_arrival_per_ms", external_arrival_per_ms)
    if external.sum() <= 0:
        raise ValueError("external_arrival_per_ms must have a positive entry: an open network needs arrivals")
    counts = each(count, "servers", servers)
    rates = each(positive, "service_per_ms", service_per_ms)
    matrix = _routing(routing, stations)

    throughput = np.maximum(np.linalg.solve(np.eye(stations) - matrix.T, external), 0.0)
    utilization = throughput / (counts * rates)
    unstable = np.flatnonzero(utilization >= 1)
    if len(unstable):
        loads = ", ".join(f"station {i}: ρ = {utilization[i]:.4g}" for i in unstable)
        raise ValueError(f"unstable stations, utilization ρ ≥ 1 ({loads}): their queues grow without bound")
    waits = [mmc_mean_wait_ms(int(c), lam, mu) if lam > 0 else 0.0 for c, lam, mu in zip(counts, throughput, rates)]
    sojourn = np.asarray(waits) + 1 / rates
    number = throughput * sojourn
    return JacksonNetwork(
        throughput_per_ms=tuple(throughput.tolist()),
        utilization=tuple(utilization.tolist()),
        mean_number=tuple(number.tolist()),
        mean_sojourn_ms=tuple(sojourn.tolist()),
        mean_response_time_ms=float(number.sum() / external.sum()),
    )


def tandem_mmc_mean_sojourn_ms(servers: Sequence[int], arrival_per_ms: float, service_per_ms: Sequence[float]) -> float:
    """Mean end-to-end time through M/M/c stations in series (a pipeline): Σ_i (Wq_i + 1/μ_i).

    Burke: the departures of a stable M/M/c queue are Poisson at rate λ, so each stage is an
    M/M/c queue fed at λ (Gross & Harris 3rd ed. ch. 4, series queues). Solved as the Jackson
    network whose routing sends stage i to stage i + 1.
    """
    stages = len(servers)
    external = np.zeros(stages)
    external[:1] = positive("arrival_per_ms", arrival_per_ms)
    routing = np.eye(stages, k=1)
    return jackson_network(external, routing, servers, service_per_ms).mean_response_time_ms
