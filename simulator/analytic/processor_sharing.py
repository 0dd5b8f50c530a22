"""M/G/1 processor sharing (PS): the server splits its rate equally among all jobs present.

PS models a device that time-slices its requests (a GPU running concurrent kernels, round-robin
with a small quantum). Its mean sojourn is insensitive to the service distribution beyond its
mean, and a job's expected sojourn grows linearly with its own size (Kleinrock, *Queueing
Systems* Vol. 2 (1976), ch. 4 (processor sharing); Harchol-Balter, *Performance Modeling and
Design of Computer Systems* (2013), ch. 30 (PS)). Poisson arrivals, any service distribution.
"""

from __future__ import annotations

from simulator.analytic.arguments import non_negative, stable_utilization


def mg1_ps_sojourn_given_size_ms(arrival_per_ms: float, mean_service_ms: float, size_ms: float) -> float:
    """Mean sojourn of a job of size x under M/G/1-PS: E[T(x)] = x / (1 − ρ) — fair: slowdown 1/(1 − ρ) for all."""
    rho = stable_utilization(arrival_per_ms, mean_service_ms, "M/G/1-PS")
    return non_negative("size_ms", size_ms) / (1 - rho)


def mg1_ps_mean_sojourn_ms(arrival_per_ms: float, mean_service_ms: float) -> float:
    """Mean sojourn under M/G/1-PS: E[T] = E[S] / (1 − ρ), the M/M/1 value whatever the service distribution."""
    return mg1_ps_sojourn_given_size_ms(arrival_per_ms, mean_service_ms, mean_service_ms)
