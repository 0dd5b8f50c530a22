"""Exact results for one FIFO station: M/M/c (Erlang C) and M/G/1 (Pollaczek–Khinchine, Takács).

Conventions: times in ms, rates per ms (``*_per_ms``), offered load ``a = λ/μ`` in Erlangs.
Every function validates its inputs and raises ``ValueError`` naming the offending argument; an
unstable system (ρ ≥ 1) is an error, never a negative or infinite "wait". Poisson arrivals see
the time-stationary state (PASTA), which is why P(wait > 0) is a time fraction below.
Sources: Kleinrock, *Queueing Systems* Vol. 1 (1975), ch. 3 (M/M/c) and ch. 5 (M/G/1);
Gross & Harris, *Fundamentals of Queueing Theory*, 3rd ed. (1998), ch. 2 (M/M/c waiting- and
sojourn-time distributions) and ch. 5 (M/G/1); Harchol-Balter, *Performance Modeling and Design of
Computer Systems* (2013), ch. 14 (M/M/k) and ch. 23 (M/G/1).
"""

from __future__ import annotations

import math

from simulator.analytic.arguments import (
    count,
    non_negative,
    positive,
    probability,
    second_moment,
    stable,
    stable_utilization,
    third_moment,
)
from simulator.analytic.loss import erlang_b

# -- M/M/c: c exponential servers, FIFO ----------------------------------------------------------


def erlang_c(servers: int, offered_load: float) -> float:
    """Erlang C: probability that an arrival waits in M/M/c with ``offered_load`` = λ/μ Erlangs < c."""
    servers = count("servers", servers)
    offered_load = non_negative("offered_load", offered_load)
    stable(offered_load / servers, f"M/M/{servers}")
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


def mmc_wait_probability(servers: int, arrival_per_ms: float, service_per_ms: float) -> float:
    """P(wait > 0) of M/M/c: the Erlang C probability C(c, λ/μ) that all c servers are busy."""
    return _mmc(servers, arrival_per_ms, service_per_ms)[3]


def mmc_mean_wait_ms(servers: int, arrival_per_ms: float, service_per_ms: float) -> float:
    """Mean time in queue of M/M/c: Wq = C(c, a) / (cμ − λ)."""
    servers, arrival_per_ms, service_per_ms, waits = _mmc(servers, arrival_per_ms, service_per_ms)
    return waits / (servers * service_per_ms - arrival_per_ms)


def mm1_mean_wait_ms(arrival_per_ms: float, service_per_ms: float) -> float:
    """Mean time in queue of M/M/1: Wq = ρ / (μ − λ)."""
    return mmc_mean_wait_ms(1, arrival_per_ms, service_per_ms)


def mmc_mean_sojourn_ms(servers: int, arrival_per_ms: float, service_per_ms: float) -> float:
    """Mean sojourn (response) time of M/M/c: T = Wq + 1/μ."""
    return mmc_mean_wait_ms(servers, arrival_per_ms, service_per_ms) + 1 / service_per_ms


def mmc_mean_queue_length(servers: int, arrival_per_ms: float, service_per_ms: float) -> float:
    """Mean number waiting (not in service) in M/M/c: Lq = λ Wq (Little's law)."""
    return arrival_per_ms * mmc_mean_wait_ms(servers, arrival_per_ms, service_per_ms)


def mmc_wait_tail(servers: int, arrival_per_ms: float, service_per_ms: float, t_ms: float) -> float:
    """Waiting-time tail of FIFO M/M/c: P(W > t) = C(c, a) · exp(−(cμ − λ) t)."""
    servers, arrival_per_ms, service_per_ms, waits = _mmc(servers, arrival_per_ms, service_per_ms)
    t_ms = non_negative("t_ms", t_ms)
    return waits * math.exp(-(servers * service_per_ms - arrival_per_ms) * t_ms)


def mmc_wait_quantile_ms(servers: int, arrival_per_ms: float, service_per_ms: float, level: float) -> float:
    """``level``-quantile of the FIFO M/M/c wait: 0 while level ≤ 1 − C, else ln(C / (1 − level)) / (cμ − λ).

    The wait has an atom 1 − C at zero and an exponential tail of rate cμ − λ (inverse of
    :func:`mmc_wait_tail`), so a high percentile can be exactly zero on a lightly loaded pool.
    """
    servers, arrival_per_ms, service_per_ms, waits = _mmc(servers, arrival_per_ms, service_per_ms)
    level = probability("level", level)
    return max(0.0, math.log(waits / (1 - level)) / (servers * service_per_ms - arrival_per_ms))


def _hypoexponential_tail(rate_a: float, rate_b: float, t_ms: float) -> float:
    """P(X_a + X_b > t) for independent exponentials, as e^{−st}(1 + s t (1 − e^{−x})/x), x = (f − s)t.

    s ≤ f are the slower and faster rate; this form is exact at s = f (Erlang-2) and never
    subtracts two nearly equal exponentials, unlike (a e^{−bt} − b e^{−at})/(a − b).
    """
    slow, fast = sorted((rate_a, rate_b))
    x = (fast - slow) * t_ms
    ratio = -math.expm1(-x) / x if x > 0 else 1.0
    return math.exp(-slow * t_ms) * (1 + slow * t_ms * ratio)


def mmc_sojourn_tail(servers: int, arrival_per_ms: float, service_per_ms: float, t_ms: float) -> float:
    """Sojourn-time tail of FIFO M/M/c: P(T > t), T = W + S with W and the own service S independent.

    W is 0 with probability 1 − C and Exp(cμ − λ) otherwise; S is Exp(μ), so
    P(T > t) = (1 − C) e^{−μt} + C · P(Exp(μ) + Exp(cμ − λ) > t) — equal to Gross & Harris's
    e^{−μt}[1 + C (1 − e^{−μt(c−1−a)})/(c − 1 − a)] (3rd ed. ch. 2, M/M/c), stable also at a = c − 1.
    """
    servers, arrival_per_ms, service_per_ms, waits = _mmc(servers, arrival_per_ms, service_per_ms)
    t_ms = non_negative("t_ms", t_ms)
    drain_per_ms = servers * service_per_ms - arrival_per_ms
    return (1 - waits) * math.exp(-service_per_ms * t_ms) + waits * _hypoexponential_tail(
        service_per_ms, drain_per_ms, t_ms
    )


def mmc_sojourn_quantile_ms(servers: int, arrival_per_ms: float, service_per_ms: float, level: float) -> float:
    """``level``-quantile of the FIFO M/M/c sojourn time: the root of P(T > t) = 1 − level (brentq).

    The tail is continuous and strictly decreasing from 1, so the root is unique; it is bracketed
    by doubling from the mean service time.
    """
    import scipy.optimize

    level = probability("level", level)
    target = 1 - level

    def gap(t_ms: float) -> float:
        return mmc_sojourn_tail(servers, arrival_per_ms, service_per_ms, t_ms) - target

    upper = 1 / positive("service_per_ms", service_per_ms)
    while gap(upper) > 0:
        upper *= 2
    return scipy.optimize.brentq(gap, 0.0, upper, xtol=1e-12 * upper, rtol=1e-12)


# -- M/G/1: one server, general service, FIFO ----------------------------------------------------


def _mg1(arrival_per_ms: float, mean_service_ms: float, second_moment_ms2: float) -> tuple[float, float, float]:
    """Validated (λ, E[S²], ρ) of an M/G/1 queue."""
    rho = stable_utilization(arrival_per_ms, mean_service_ms, "M/G/1")
    return float(arrival_per_ms), second_moment("second_moment_ms2", float(mean_service_ms), second_moment_ms2), rho


def mg1_mean_wait_ms(arrival_per_ms: float, mean_service_ms: float, second_moment_ms2: float) -> float:
    """Pollaczek–Khinchine mean wait of M/G/1: Wq = λ E[S²] / (2 (1 − ρ)).

    Also covers M/D/1 (E[S²] = D²) and M/E_k/1 (E[S²] = (1 + 1/k) E[S]²): no separate helpers.
    """
    arrival_per_ms, second_moment_ms2, rho = _mg1(arrival_per_ms, mean_service_ms, second_moment_ms2)
    return arrival_per_ms * second_moment_ms2 / (2 * (1 - rho))


def mg1_wait_probability(arrival_per_ms: float, mean_service_ms: float) -> float:
    """P(wait > 0) of M/G/1 = ρ: the server is busy a fraction ρ of the time and arrivals see time averages."""
    return stable_utilization(arrival_per_ms, mean_service_ms, "M/G/1")


def mg1_mean_queue_length(arrival_per_ms: float, mean_service_ms: float, second_moment_ms2: float) -> float:
    """Mean number waiting (not in service) in M/G/1: Lq = λ Wq (Little's law); add ρ for the number in system."""
    return arrival_per_ms * mg1_mean_wait_ms(arrival_per_ms, mean_service_ms, second_moment_ms2)


def mg1_wait_second_moment_ms2(
    arrival_per_ms: float, mean_service_ms: float, second_moment_ms2: float, third_moment_ms3: float
) -> float:
    """Takács: E[W²] = 2 E[W]² + λ E[S³] / (3 (1 − ρ)) for FIFO M/G/1 (needs a finite E[S³]).

    Takács (1962), *Introduction to the Theory of Queues*; Kleinrock Vol. 1 ch. 5 (moments of the
    M/G/1 waiting time). Gives the variance E[W²] − E[W]², which a tail estimate needs.
    """
    wait_ms = mg1_mean_wait_ms(arrival_per_ms, mean_service_ms, second_moment_ms2)
    third_moment_ms3 = third_moment("third_moment_ms3", float(mean_service_ms), float(second_moment_ms2), third_moment_ms3)
    rho = arrival_per_ms * mean_service_ms
    return 2 * wait_ms**2 + arrival_per_ms * third_moment_ms3 / (3 * (1 - rho))


def mg1_sojourn_second_moment_ms2(
    arrival_per_ms: float, mean_service_ms: float, second_moment_ms2: float, third_moment_ms3: float
) -> float:
    """E[T²] of FIFO M/G/1, T = W + S with W independent of the own service S: E[W²] + 2 E[W] E[S] + E[S²]."""
    wait_second_ms2 = mg1_wait_second_moment_ms2(arrival_per_ms, mean_service_ms, second_moment_ms2, third_moment_ms3)
    wait_ms = mg1_mean_wait_ms(arrival_per_ms, mean_service_ms, second_moment_ms2)
    return wait_second_ms2 + 2 * wait_ms * mean_service_ms + second_moment_ms2
