"""Loss systems (blocked requests are cleared, never queued): Erlang B and Engset.

Both are birth–death chains on the number of busy servers k = 0..c whose stationary law is
insensitive to the service-time distribution beyond its mean (Gross & Harris, *Fundamentals of
Queueing Theory*, 3rd ed., 1998, ch. 2: Erlang's loss system, finite-source queues; Bolch et al.,
*Queueing Networks and Markov Chains*, 2nd ed., 2006, ch. 6). Both are computed by a recursion
on c that never forms a^c/c!, so it neither overflows nor loses precision for thousands of servers.
"""

from __future__ import annotations

from collections.abc import Callable

from simulator.analytic.arguments import count, non_negative


def _all_busy_probability(servers: int, offered_at: Callable[[int], float]) -> float:
    """P(k = c) of a loss chain with birth/death ratio offered_at(k)/k into state k.

    With π_k ∝ Π_{j≤k} offered_at(j)/j, the blocking of c − 1 servers gives that of c by
    B_c = r B_{c−1} / (c + r B_{c−1}), r = offered_at(c) (Erlang's recursion, B_0 = 1).
    """
    blocking = 1.0
    for k in range(1, servers + 1):
        offered = offered_at(k)
        blocking = offered * blocking / (k + offered * blocking)
    return blocking


def erlang_b(servers: int, offered_load: float) -> float:
    """Erlang B: blocking probability of M/G/c/c with ``offered_load`` = λE[S] Erlangs (stable recursion).

    Poisson arrivals (so time and call congestion coincide), any service distribution with that mean.
    """
    servers = count("servers", servers)
    offered_load = non_negative("offered_load", offered_load)
    return _all_busy_probability(servers, lambda k: offered_load)


def _engset(servers: int, sources: int, idle_source_load: float) -> float:
    """P(all c busy) with N ≥ 0 sources: π_k ∝ C(N, k) β^k, so state k's birth/death ratio is (N − k + 1)β / k."""
    return _all_busy_probability(servers, lambda k: max(sources - k + 1, 0) * idle_source_load)


def engset_time_congestion(servers: int, sources: int, idle_source_load: float) -> float:
    """Engset time congestion: the fraction of time all ``servers`` are busy with ``sources`` finite sources.

    Each idle source requests at rate γ, a request holds a server for a mean E[S] and a blocked
    one is lost; ``idle_source_load`` β = γ E[S] Erlangs. E = C(N, c) β^c / Σ_{k≤c} C(N, k) β^k
    (Engset 1918; Gross & Harris 3rd ed. ch. 2, finite-source queues). Insensitive to the
    holding-time distribution; zero when c > N, as no more than N requests can be in service.
    """
    return _engset(count("servers", servers), count("sources", sources), non_negative("idle_source_load", idle_source_load))


def engset_call_congestion(servers: int, sources: int, idle_source_load: float) -> float:
    """Engset call congestion: the fraction of *requests* that are blocked (what a client sees).

    An arriving request sees the system as it would be with the other N − 1 sources only, so
    B(N) = E(N − 1) (the arrival theorem for finite sources). B < E, because busy sources do not
    request; as N → ∞ with Nβ = a fixed, both tend to Erlang B(c, a).
    """
    sources = count("sources", sources)
    return _engset(count("servers", servers), sources - 1, non_negative("idle_source_load", idle_source_load))
