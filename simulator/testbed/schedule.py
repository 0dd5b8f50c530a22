"""Open-loop send schedules, computed before the first request is sent.

A schedule is the send offset (ns from the run's start) and the class of every request: Poisson
at a rate, a Markov-modulated Poisson process (bursts: states visited in cycle, each with a rate
and an exponential mean duration, as the simulator's ``mmpp`` arrival process), or a trace of
timestamps. Classes are drawn independently by their shares. Seeded: the same seed, the same schedule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from simulator.random_streams import stream
from simulator.testbed.errors import TestbedError

NS_PER_S = 1_000_000_000
BLOCK = 4096  # gaps drawn at a time


@dataclass(frozen=True)
class MmppState:
    """One state of a Markov-modulated Poisson process."""

    rate_per_s: float
    mean_duration_s: float


@dataclass(frozen=True)
class Schedule:
    """When each request is due (ns after the start, non-decreasing) and its class index."""

    offsets_ns: np.ndarray
    class_indices: np.ndarray

    def __len__(self) -> int:
        return len(self.offsets_ns)

    @property
    def span_s(self) -> float:
        return float(self.offsets_ns[-1]) / NS_PER_S if len(self) else 0.0


def _rng(seed: int, purpose: str) -> np.random.Generator:
    return stream(seed, 0, f"testbed/{purpose}")


def _truncated(times_s: np.ndarray, duration_s: float | None, requests: int | None) -> np.ndarray:
    if duration_s is not None:
        times_s = times_s[times_s < duration_s]
    return times_s if requests is None else times_s[:requests]


def _check_extent(duration_s: float | None, requests: int | None) -> None:
    if (duration_s is None) == (requests is None):
        raise TestbedError("give exactly one of duration_s and requests")
    if (duration_s is not None and duration_s <= 0) or (requests is not None and requests <= 0):
        raise TestbedError(f"duration_s and requests must be positive (got {duration_s}, {requests})")


def poisson_times_s(
    rate_per_s: float, seed: int, duration_s: float | None = None, requests: int | None = None
) -> np.ndarray:
    """Arrival times (s) of a Poisson process at ``rate_per_s``, for ``duration_s`` or ``requests`` arrivals."""
    _check_extent(duration_s, requests)
    if rate_per_s <= 0:
        raise TestbedError(f"rate_per_s must be positive, not {rate_per_s}")
    rng = _rng(seed, "arrivals")
    if requests is not None:
        return np.cumsum(rng.exponential(1 / rate_per_s, requests))
    blocks, last_s = [], 0.0
    while last_s < duration_s:
        blocks.append(last_s + np.cumsum(rng.exponential(1 / rate_per_s, BLOCK)))
        last_s = float(blocks[-1][-1])
    return _truncated(np.concatenate(blocks), duration_s, None)


def mmpp_times_s(
    states: Sequence[MmppState], seed: int, duration_s: float | None = None, requests: int | None = None
) -> np.ndarray:
    """Arrival times (s) of an MMPP whose states are visited in cycle (start in state 0)."""
    _check_extent(duration_s, requests)
    if len(states) < 2 or any(s.rate_per_s < 0 or s.mean_duration_s <= 0 for s in states):
        raise TestbedError("an MMPP needs at least 2 states, rates >= 0 and positive mean durations")
    if not any(s.rate_per_s > 0 for s in states):
        raise TestbedError("at least one MMPP state needs rate_per_s > 0")
    rng = _rng(seed, "arrivals")
    chunks: list[np.ndarray] = []
    start_s, state, produced = 0.0, 0, 0
    while (duration_s is None or start_s < duration_s) and (requests is None or produced < requests):
        spec = states[state]
        stay_s = rng.exponential(spec.mean_duration_s)
        count = rng.poisson(spec.rate_per_s * stay_s)  # given the count, Poisson arrivals are uniform in the stay
        chunks.append(start_s + np.sort(rng.uniform(0.0, stay_s, count)))
        produced += count
        start_s += stay_s
        state = (state + 1) % len(states)
    return _truncated(np.concatenate(chunks), duration_s, requests)


def schedule(times_s: np.ndarray, shares: Sequence[float], seed: int) -> Schedule:
    """A schedule from arrival times (s, any origin: shifted to start at 0) and class shares."""
    times_s = np.sort(np.asarray(times_s, dtype=np.float64))
    if len(times_s) == 0:
        raise TestbedError("the schedule is empty: no arrival in the requested span")
    probabilities = np.asarray(shares, dtype=np.float64) / float(np.sum(shares))
    classes = _rng(seed, "classes").choice(len(probabilities), len(times_s), p=probabilities)
    offsets_ns = np.round((times_s - times_s[0]) * NS_PER_S).astype(np.int64)
    return Schedule(offsets_ns, classes.astype(np.int64))
