"""Hit ratios of result caches in closed form, under the independent reference model (IRM).

IRM: each request asks for key i with a fixed probability p_i, independently of all others.
Che's approximation for LRU, the perfect-LFU limit, and TTL caches; Zipf popularity vectors.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from simulator.analytic.arguments import count, non_negative, positive


def zipf_popularity(items: int, exponent: float) -> np.ndarray:
    """Request probabilities of ``items`` keys under Zipf(exponent): p_i ∝ i^(−exponent), i = 1..items."""
    items = count("items", items)
    exponent = non_negative("exponent", exponent)
    weights = np.arange(1, items + 1, dtype=float) ** -exponent
    return weights / weights.sum()


def _popularity(popularity: Sequence[float]) -> np.ndarray:
    p = np.asarray(popularity, dtype=float)
    if p.ndim != 1 or len(p) == 0 or not np.all(np.isfinite(p)) or np.any(p < 0) or p.sum() <= 0:
        raise ValueError("popularity must be a non-empty 1-d sequence of non-negative finite weights with a positive sum")
    return p / p.sum()


def che_characteristic_time(popularity: Sequence[float], cache_size: float) -> float:
    """Che's characteristic time T (in requests): Σ_i (1 − exp(−p_i T)) = cache_size, solved with brentq."""
    import scipy.optimize

    p = _popularity(popularity)
    cache_size = positive("cache_size", cache_size)
    reachable = int(np.count_nonzero(p))
    if cache_size >= reachable:
        raise ValueError(
            f"cache_size = {cache_size:g} holds every one of the {reachable} requested items: no characteristic time"
        )

    def occupancy_gap(t: float) -> float:
        return float(np.sum(-np.expm1(-p * t))) - cache_size

    upper = cache_size / p.max()
    while occupancy_gap(upper) < 0:
        upper *= 2
    return scipy.optimize.brentq(occupancy_gap, 0.0, upper, xtol=1e-12 * upper, rtol=1e-12)


def che_lru_hit_ratio(popularity: Sequence[float], cache_size: float) -> float:
    """Che approximation of the LRU hit ratio under independent requests: Σ_i p_i (1 − exp(−p_i T))."""
    p = _popularity(popularity)
    if positive("cache_size", cache_size) >= np.count_nonzero(p):
        return 1.0
    t = che_characteristic_time(p, cache_size)
    return float(np.dot(p, -np.expm1(-p * t)))


def lfu_static_hit_ratio(popularity: Sequence[float], capacity: int) -> float:
    """Perfect-LFU limit: the cache holds the ``capacity`` most popular keys, so h = Σ top-C p_i.

    An upper bound for every policy that does not know the future under IRM (in-cache LFU included).
    """
    if capacity < 1:
        raise ValueError(f"capacity must be ≥ 1, got {capacity!r}")
    p = np.sort(_popularity(popularity))[::-1]
    return float(p[:capacity].sum())


def ttl_hit_ratio(popularity: Sequence[float], rate_per_ms: float, ttl_ms: float) -> float:
    """Exact hit ratio of a TTL cache whose entries live ``ttl_ms`` from insertion (hits do not reset it).

    Assumes Poisson requests at ``rate_per_ms`` in total (key i at λ_i = λ p_i) and a capacity
    that never binds. Key i alternates a miss, which inserts it, with the Poisson(λ_i T) hits of
    its lifetime T, so h_i = λ_i T / (1 + λ_i T) and h = Σ p_i h_i. (Were the timer reset on
    every hit, h_i would be 1 − exp(−λ_i T), Che's LRU formula.)
    """
    if not rate_per_ms > 0 or not ttl_ms > 0:
        raise ValueError(f"rate_per_ms and ttl_ms must be positive, got {rate_per_ms!r} and {ttl_ms!r}")
    p = _popularity(popularity)
    hits_per_lifetime = rate_per_ms * p * ttl_ms
    return float(np.dot(p, hits_per_lifetime / (1 + hits_per_lifetime)))
