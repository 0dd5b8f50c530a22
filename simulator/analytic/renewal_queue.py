"""GI/M/1: renewal arrivals at one exponential server, exact through the root σ of σ = A*(μ(1 − σ)).

A* is the Laplace–Stieltjes transform of the gap between arrivals. The number an arrival finds is geometric:
P(n) = (1 − σ) σⁿ, so it waits with probability σ, and its wait given a wait is Exp(μ(1 − σ)):
P(W > t) = σ e^{−μ(1−σ)t}; its sojourn time is Exp(μ(1 − σ)) (FIFO). The gap laws a scenario can make are
given as transforms here: deterministic, Erlang/gamma, hyperexponential, uniform.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

GapTransform = Callable[[float], float]  # s (per ms) → E[e^{−s·gap}]


def deterministic_gaps(gap_ms: float) -> GapTransform:
    """A* of a constant gap."""
    return lambda s: math.exp(-s * gap_ms)


def gamma_gaps(mean_ms: float, shape: float) -> GapTransform:
    """A* of gamma gaps of this mean and shape (Erlang-k for an integer shape k; 1 is exponential)."""
    return lambda s: (1 + s * mean_ms / shape) ** -shape


def hyperexponential_gaps(probabilities: Sequence[float], means_ms: Sequence[float]) -> GapTransform:
    """A* of a mixture of exponential gaps."""
    return lambda s: sum(p / (1 + s * m) for p, m in zip(probabilities, means_ms))


def uniform_gaps(low_ms: float, high_ms: float) -> GapTransform:
    """A* of gaps uniform on [low, high]."""
    def transform(s: float) -> float:
        if s * (high_ms - low_ms) < 1e-9:
            return math.exp(-s * (low_ms + high_ms) / 2)
        return (math.exp(-s * low_ms) - math.exp(-s * high_ms)) / (s * (high_ms - low_ms))

    return transform


def scaled_gaps(transform: GapTransform, factor: float) -> GapTransform:
    """A* of the gaps times ``factor`` (a unit-mean law made into one of mean ``factor``)."""
    return lambda s: transform(s * factor)


def round_robin_gaps(transform: GapTransform, every: int) -> GapTransform:
    """A* of every ``every``-th gap of a renewal stream (one replica's share under round-robin): a sum of that many."""
    return lambda s: transform(s) ** every


def random_split_gaps(transform: GapTransform, share: float) -> GapTransform:
    """A* of the gaps of a renewal stream thinned at random to ``share``: a geometric sum of its gaps."""
    return lambda s: share * transform(s) / (1 - (1 - share) * transform(s))


@dataclass(frozen=True)
class GIM1:
    """The stationary GI/M/1 FIFO queue as arrivals see it."""

    arrival_per_ms: float
    service_per_ms: float
    sigma: float  # P(an arrival waits); the geometric ratio of the number it finds

    @property
    def decay_per_ms(self) -> float:
        """μ(1 − σ): the rate of the conditional wait and of the sojourn time."""
        return self.service_per_ms * (1 - self.sigma)

    @property
    def mean_wait_ms(self) -> float:
        return self.sigma / self.decay_per_ms

    @property
    def mean_queue_length(self) -> float:
        """Mean number waiting (time average, Little's law)."""
        return self.arrival_per_ms * self.mean_wait_ms

    def wait_tail(self, t_ms: float) -> float:
        """P(W > t) = σ e^{−μ(1−σ)t}."""
        return self.sigma * math.exp(-self.decay_per_ms * t_ms)

    def wait_quantile_ms(self, level: float) -> float:
        """The ``level`` quantile of the wait: 0 while ``level`` ≤ 1 − σ (those requests do not wait)."""
        return 0.0 if level <= 1 - self.sigma else math.log(self.sigma / (1 - level)) / self.decay_per_ms

    def sojourn_quantile_ms(self, level: float) -> float:
        """The ``level`` quantile of the sojourn time, Exp(μ(1 − σ))."""
        return -math.log(1 - level) / self.decay_per_ms


def gim1(transform: GapTransform, arrival_per_ms: float, service_per_ms: float) -> GIM1:
    """Solve σ = A*(μ(1 − σ)) for its root in (0, 1) (it exists when λ < μ; σ = 1 is the other root)."""
    from scipy.optimize import brentq, minimize_scalar

    if not arrival_per_ms < service_per_ms:
        raise ValueError(f"GI/M/1 is stable only below load 1; load {arrival_per_ms / service_per_ms:.4g}")

    def excess(sigma: float) -> float:
        return transform(service_per_ms * (1 - sigma)) - sigma

    # excess is convex with excess(0) > 0 and excess(1) = 0, negative just below 1: its minimum brackets the root
    lowest = minimize_scalar(excess, bounds=(0.0, 1.0), method="bounded", options={"xatol": 1e-12}).x
    sigma = brentq(excess, 0.0, lowest, xtol=1e-15) if excess(lowest) < 0 else lowest
    return GIM1(arrival_per_ms, service_per_ms, float(sigma))
