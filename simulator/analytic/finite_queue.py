"""M/M/c/K: c exponential servers and K places in all (c serving, K − c waiting), arrivals finding it full are lost.

The number in the system is a birth–death chain: birth rate λ while n < K, death rate min(n, c)·μ; its stationary
law is exact at any load (ρ ≥ 1 too). Arrivals see it (PASTA); an admitted FIFO arrival that finds n ≥ c waits for
n − c + 1 departures at rate cμ, an Erlang time, so the waiting-time tail is a finite mixture of Erlang tails.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MMcK:
    """The stationary M/M/c/K queue: ``probabilities[n]`` of n in the system, and the figures derived from them."""

    servers: int
    places: int
    arrival_per_ms: float
    service_per_ms: float
    probabilities: np.ndarray

    @property
    def blocking_probability(self) -> float:
        """Share of arrivals lost (they find all K places taken)."""
        return float(self.probabilities[-1])

    @property
    def mean_queue_length(self) -> float:
        """Mean number waiting (not in service)."""
        waiting = np.clip(np.arange(self.places + 1) - self.servers, 0, None)
        return float(np.dot(waiting, self.probabilities))

    @property
    def mean_wait_ms(self) -> float:
        """Mean wait of an admitted request (Little's law on the admitted rate)."""
        return self.mean_queue_length / (self.arrival_per_ms * (1 - self.blocking_probability))

    @property
    def utilization(self) -> float:
        """Share of server time busy: carried load / c."""
        return self.arrival_per_ms * (1 - self.blocking_probability) / (self.service_per_ms * self.servers)

    @property
    def wait_probability(self) -> float:
        """Share of admitted requests that wait at all."""
        return float(self.probabilities[self.servers:-1].sum() / (1 - self.blocking_probability))

    def wait_tail(self, t_ms: float) -> float:
        """P(an admitted request waits longer than ``t_ms``) under FIFO."""
        from scipy.stats import gamma

        seen = self.probabilities[self.servers:-1] / (1 - self.blocking_probability)
        stages = np.arange(1, seen.size + 1)
        return float(np.dot(seen, gamma.sf(t_ms, stages, scale=1 / (self.servers * self.service_per_ms))))

    def wait_quantile_ms(self, level: float) -> float:
        """The ``level`` quantile of an admitted request's wait (0 when fewer than 1 − level wait at all)."""
        if self.wait_tail(0.0) <= 1 - level:
            return 0.0
        low, high = 0.0, 1 / (self.servers * self.service_per_ms)
        while self.wait_tail(high) > 1 - level:
            high *= 2
        for _ in range(100):
            middle = (low + high) / 2
            low, high = (middle, high) if self.wait_tail(middle) > 1 - level else (low, middle)
        return high


def mmck(servers: int, places: int, arrival_per_ms: float, service_per_ms: float) -> MMcK:
    """The stationary M/M/c/K queue with ``places`` = K ≥ c places in all (c + the waiting room)."""
    if not 1 <= servers <= places:
        raise ValueError(f"M/M/c/K needs 1 ≤ c ≤ K, got c {servers}, K {places}")
    log_weights = np.zeros(places + 1)  # log of π_n / π_0, built up the chain (no overflow at large K or load)
    for n in range(1, places + 1):
        log_weights[n] = log_weights[n - 1] + math.log(arrival_per_ms / (min(n, servers) * service_per_ms))
    weights = np.exp(log_weights - log_weights.max())
    return MMcK(servers, places, arrival_per_ms, service_per_ms, weights / weights.sum())
