"""Arrival processes: each yields successive inter-arrival times in ms.

A process is built per replication from its config and a random stream; ``gaps_ms`` is an
iterator of the gaps between successive arrivals, which ends when the process does (a trace).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np
from pydantic import BaseModel

from simulator.errors import ScenarioError
from simulator.random_streams import constant, draws
from simulator.registry import ARRIVAL_PROCESSES
from simulator.scenario.workload import (
    DeterministicArrivals,
    DiurnalArrivals,
    MarkovModulatedArrivals,
    PiecewiseArrivals,
    PoissonArrivals,
    TraceArrivals,
)
from simulator.units import MS_PER_S

MAX_TRACE_MS = 1e15  # about 30,000 years of timestamps


class ArrivalProcess(ABC):
    """One arrival stream; ``mean_rate_per_s`` is its long-run rate, used for stability checks."""

    Config: ClassVar[type[BaseModel]]

    def __init__(self, config: BaseModel, rng: np.random.Generator, base_dir: Path) -> None:
        self.config = config
        self.rng = rng

    @abstractmethod
    def gaps_ms(self) -> Iterator[float]:
        """Times from each arrival to the next (the first from time 0)."""

    @abstractmethod
    def mean_rate_per_s(self) -> float:
        """Long-run average arrival rate."""

    def peak_rate_per_s(self) -> float:
        """Highest instantaneous rate (equal to the mean for stationary processes)."""
        return self.mean_rate_per_s()

    def max_arrivals(self) -> int | None:
        """How many arrivals the process can produce at most (None: unbounded)."""
        return None


@ARRIVAL_PROCESSES.register
class Poisson(ArrivalProcess):
    """Exponential gaps at a constant rate."""

    Config = PoissonArrivals

    def gaps_ms(self):
        mean_gap_ms = MS_PER_S / self.config.rate_per_s
        return draws(lambda size: self.rng.exponential(mean_gap_ms, size))

    def mean_rate_per_s(self):
        return self.config.rate_per_s


@ARRIVAL_PROCESSES.register
class Deterministic(ArrivalProcess):
    """Evenly spaced arrivals (a fixed-rate client)."""

    Config = DeterministicArrivals

    def gaps_ms(self):
        return constant(MS_PER_S / self.config.rate_per_s)

    def mean_rate_per_s(self):
        return self.config.rate_per_s


@ARRIVAL_PROCESSES.register
class MarkovModulated(ArrivalProcess):
    """Markov-modulated Poisson process: states visited in cycle, each with its own rate.

    An on/off source is the two-state case with one rate 0; bursts come from slow switching.
    """

    Config = MarkovModulatedArrivals

    def gaps_ms(self):
        states, rng = self.config.states, self.rng
        unit_exponential = draws(rng.standard_exponential)
        state = 0
        state_left_ms = next(unit_exponential) * states[0].mean_duration_s * MS_PER_S
        gap_ms = 0.0
        while True:
            rate_per_ms = states[state].rate_per_s / MS_PER_S
            candidate_ms = next(unit_exponential) / rate_per_ms if rate_per_ms > 0 else math.inf
            if candidate_ms <= state_left_ms:
                state_left_ms -= candidate_ms
                yield gap_ms + candidate_ms
                gap_ms = 0.0
            else:
                gap_ms += state_left_ms
                state = (state + 1) % len(states)
                state_left_ms = next(unit_exponential) * states[state].mean_duration_s * MS_PER_S

    def mean_rate_per_s(self):
        states = self.config.states
        total_time = sum(state.mean_duration_s for state in states)
        return sum(state.rate_per_s * state.mean_duration_s for state in states) / total_time

    def peak_rate_per_s(self):
        return max(state.rate_per_s for state in self.config.states)


class _ThinnedPoisson(ArrivalProcess):
    """Non-homogeneous Poisson arrivals by thinning (Lewis–Shedler) against the peak rate."""

    @abstractmethod
    def rate_per_s_at(self, time_ms: float) -> float:
        """Instantaneous arrival rate at a simulated time."""

    def gaps_ms(self):
        peak = self.peak_rate_per_s()
        candidate_gaps_ms = draws(lambda size: self.rng.exponential(MS_PER_S / peak, size))
        uniforms = draws(self.rng.random)
        now_ms = last_ms = 0.0
        while True:
            now_ms += next(candidate_gaps_ms)
            if next(uniforms) * peak <= self.rate_per_s_at(now_ms):
                yield now_ms - last_ms
                last_ms = now_ms


@ARRIVAL_PROCESSES.register
class Piecewise(_ThinnedPoisson):
    """Poisson arrivals whose rate steps through segments (a load profile), repeating."""

    Config = PiecewiseArrivals

    def __init__(self, config, rng, base_dir):
        ends_s = np.cumsum([segment.duration_s for segment in config.segments])
        self._ends_ms = ends_s * MS_PER_S
        self._period_ms = float(self._ends_ms[-1])
        self._rates = [segment.rate_per_s for segment in config.segments]
        super().__init__(config, rng, base_dir)

    def rate_per_s_at(self, time_ms):
        index = int(np.searchsorted(self._ends_ms, time_ms % self._period_ms, side="right"))
        return self._rates[min(index, len(self._rates) - 1)]

    def mean_rate_per_s(self):
        segments = self.config.segments
        return sum(s.rate_per_s * s.duration_s for s in segments) / sum(s.duration_s for s in segments)

    def peak_rate_per_s(self):
        return max(self._rates)


@ARRIVAL_PROCESSES.register
class Diurnal(_ThinnedPoisson):
    """Poisson arrivals with a sinusoidal rate: mean·(1 + amplitude·sin(2πt/period))."""

    Config = DiurnalArrivals

    def rate_per_s_at(self, time_ms):
        config = self.config
        angle = 2 * math.pi * (time_ms / MS_PER_S + config.phase_s) / config.period_s
        return config.mean_rate_per_s * (1 + config.amplitude * math.sin(angle))

    def mean_rate_per_s(self):
        return self.config.mean_rate_per_s

    def peak_rate_per_s(self):
        return self.config.mean_rate_per_s * (1 + self.config.amplitude)


@ARRIVAL_PROCESSES.register
class TraceReplay(ArrivalProcess):
    """Replays arrival timestamps (ms) from a CSV/parquet column; the run ends with the trace."""

    Config = TraceArrivals

    def __init__(self, config, rng, base_dir):
        super().__init__(config, rng, base_dir)
        path = base_dir / config.file
        from simulator.formats.samples import read_sample_column, require_within  # pandas: only for a trace

        raw = read_sample_column(path, config.column, "arrival.trace")
        require_within(raw, -MAX_TRACE_MS / config.time_scale, MAX_TRACE_MS / config.time_scale, path, config.column, "arrival.trace")
        timestamps_ms = np.sort(raw) * config.time_scale
        span_ms = timestamps_ms[-1] - timestamps_ms[0]
        if len(timestamps_ms) < 2 or span_ms <= 0:
            raise ScenarioError(
                f"arrival.trace: {path} needs at least two different timestamps (it has {len(timestamps_ms)} "
                f"arrival(s) spanning {span_ms:g} ms): a rate cannot be told from fewer"
            )
        self._gaps_ms = np.diff(timestamps_ms - timestamps_ms[0], prepend=0.0).tolist()
        self._mean_rate_per_s = (len(timestamps_ms) - 1) / (span_ms / MS_PER_S)

    def gaps_ms(self):
        return iter(self._gaps_ms)

    def mean_rate_per_s(self):
        return self._mean_rate_per_s

    def max_arrivals(self):
        return len(self._gaps_ms)
