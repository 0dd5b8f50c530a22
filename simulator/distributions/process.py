"""Service time as a process: samplers whose draws keep the order of a measured sequence.

Under sustained load a kernel's times come in slow and fast stretches; i.i.d. draws shuffle them
away and understate queueing. The samplers here keep that dependence:

* :class:`MovingBlockBootstrap` (Künsch 1989): blocks of ``block_length`` consecutive measured
  times, each block from a fresh uniform start; ``block_length`` = the record's length replays it
  in order, from its first value, over and over;
* :class:`StationaryBootstrap` (Politis & Romano 1994): blocks of geometric length, wrapping
  around the record;
* :class:`LognormalHMM`: a hidden Markov chain of a few states, lognormal times in each.

Each has ``path(rng)``: a :class:`SamplePath` whose successive ``take(size)`` calls continue one
sequence, so a simulation drawing in chunks of any size sees one unbroken process (a block longer
than a chunk carries on into the next chunk). :func:`optimal_block_length` is the Politis–White
automatic block length. Fitting these models is :mod:`simulator.fitting`'s job.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from simulator.distributions.base import check_size


def time_samples(samples_ms: ArrayLike, name: str = "samples_ms") -> np.ndarray:
    """A float copy of a non-empty 1-D array of finite times ≥ 0 ms, or a ValueError naming ``name``."""
    values = np.array(samples_ms, dtype=float, copy=True)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence of times in ms, got shape {values.shape}")
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ValueError(f"{name}: times must be finite and ≥ 0 ms")
    return values


class SamplePath(ABC):
    """One sequence of times being drawn: each :meth:`take` continues where the last one stopped."""

    @abstractmethod
    def take(self, size: int) -> np.ndarray:
        """The next ``size`` times of the sequence, in ms."""


class ServiceProcess(ABC):
    """A source of ordered service times (ms): independent paths, each continuing across draws."""

    @abstractmethod
    def path(self, rng: np.random.Generator) -> SamplePath:
        """A fresh sequence drawn with ``rng``."""

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """The first ``size`` times of a fresh sequence."""
        return self.path(rng).take(size)


class _IndexPath(SamplePath):
    """A path of indices into measured samples; ``take`` maps them to times."""

    def __init__(self, samples_ms: np.ndarray) -> None:
        self.samples_ms = samples_ms

    @abstractmethod
    def take_indices(self, size: int) -> np.ndarray:
        """The next ``size`` indices into the samples."""

    def take(self, size: int) -> np.ndarray:
        return self.samples_ms[self.take_indices(size)]


class _MovingBlockPath(_IndexPath):
    def __init__(self, samples_ms: np.ndarray, block_length: int, rng: np.random.Generator) -> None:
        super().__init__(samples_ms)
        self.block_length = block_length
        self.rng = rng
        self.next_index = 0
        self.left_in_block = 0

    def take_indices(self, size: int) -> np.ndarray:
        size = check_size(size)
        carried = min(self.left_in_block, size)
        head = np.arange(self.next_index, self.next_index + carried)
        self.next_index += carried
        self.left_in_block -= carried
        needed = size - carried
        if needed == 0:
            return head
        length = self.block_length
        blocks = -(-needed // length)
        starts = self.rng.integers(0, self.samples_ms.size - length + 1, size=blocks)
        tail = (starts[:, None] + np.arange(length)).ravel()[:needed]
        used = needed - (blocks - 1) * length
        self.next_index = int(starts[-1]) + used
        self.left_in_block = length - used
        return np.concatenate([head, tail])


class MovingBlockBootstrap(ServiceProcess):
    """Künsch's moving-block bootstrap: concatenated blocks of ``block_length`` consecutive samples.

    Every block starts at a fresh uniform position, so a sequence of any length is a new random
    arrangement (nothing is tiled). ``block_length`` defaults to the Politis–White choice.
    """

    def __init__(self, samples_ms: ArrayLike, block_length: int | None = None) -> None:
        self.samples_ms = time_samples(samples_ms)
        if block_length is None:
            block_length = max(1, round(optimal_block_length(self.samples_ms).moving))
        if isinstance(block_length, bool) or not isinstance(block_length, (int, np.integer)) or block_length < 1:
            raise ValueError(f"block_length must be an integer ≥ 1, got {block_length!r}")
        if block_length > self.samples_ms.size:
            raise ValueError(f"block_length {block_length} exceeds the {self.samples_ms.size} samples")
        self.block_length = int(block_length)

    def path(self, rng: np.random.Generator) -> _MovingBlockPath:
        return _MovingBlockPath(self.samples_ms, self.block_length, rng)

    def sample_indices(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Indices into the measured samples for a fresh sequence of ``size``."""
        return self.path(rng).take_indices(size)


class _StationaryPath(_IndexPath):
    def __init__(self, samples_ms: np.ndarray, mean_block_length: float, rng: np.random.Generator) -> None:
        super().__init__(samples_ms)
        self.new_block_probability = 1.0 / mean_block_length
        self.rng = rng
        self.next_index: int | None = None  # None: no block begun yet

    def take_indices(self, size: int) -> np.ndarray:
        size = check_size(size)
        if size == 0:
            return np.zeros(0, dtype=int)
        n = self.samples_ms.size
        new_block = self.rng.random(size) < self.new_block_probability
        if self.next_index is None:
            new_block[0] = True
        block_positions = np.flatnonzero(new_block)
        starts = np.concatenate([[self.next_index or 0], self.rng.integers(0, n, size=block_positions.size)])
        block_of = np.cumsum(new_block)  # 0: the block carried over from the last take
        first_position = np.concatenate([[0], block_positions])
        indices = (starts[block_of] + np.arange(size) - first_position[block_of]) % n
        self.next_index = int(indices[-1] + 1) % n
        return indices


class StationaryBootstrap(ServiceProcess):
    """Politis & Romano's stationary bootstrap: blocks of geometric length, wrapping around the record.

    Block lengths have mean ``mean_block_length`` (default: the Politis–White choice); each block
    starts at a fresh uniform position, so long sequences are never a tiled chunk.
    """

    def __init__(self, samples_ms: ArrayLike, mean_block_length: float | None = None) -> None:
        self.samples_ms = time_samples(samples_ms)
        if mean_block_length is None:
            mean_block_length = optimal_block_length(self.samples_ms).stationary
        mean_block_length = float(mean_block_length)
        if not 1.0 <= mean_block_length <= self.samples_ms.size:
            raise ValueError(f"mean_block_length must lie in [1, {self.samples_ms.size}], got {mean_block_length!r}")
        self.mean_block_length = mean_block_length

    def path(self, rng: np.random.Generator) -> _StationaryPath:
        return _StationaryPath(self.samples_ms, self.mean_block_length, rng)

    def sample_indices(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Indices into the measured samples for a fresh sequence of ``size``."""
        return self.path(rng).take_indices(size)


@dataclass(frozen=True)
class BlockLength:
    """Politis–White optimal (expected) block lengths, in samples."""

    stationary: float
    moving: float


def optimal_block_length(samples_ms: ArrayLike) -> BlockLength:
    """Politis & White (2004) automatic block length with the Patton–Politis–White (2009) correction.

    The bandwidth M = 2·m̂, where m̂ is the smallest lag after which K_n = max(5, ⌈√log10 n⌉)
    consecutive autocorrelations are all below 2·√(log10 n / n); with the flat-top window λ,
    Ĝ = Σ_{|k|≤M} λ(k/M)|k|R̂(k) and ĝ = Σ_{|k|≤M} λ(k/M)R̂(k), the optimal lengths are
    b = (2Ĝ²/D)^{1/3} n^{1/3} with D = 2ĝ² for the stationary bootstrap and D = (4/3)ĝ² for the
    moving-block (and circular) bootstrap — the 4/3 is the 2009 correction. Lengths are kept in
    [1, min(3√n, n/3)]; a constant record (or one of fewer than 3 values) gets 1.
    """
    values = time_samples(samples_ms)
    n = values.size
    centered = values - values.mean()
    if n < 3 or not np.any(centered):
        return BlockLength(stationary=1.0, moving=1.0)
    upper = math.ceil(min(3 * math.sqrt(n), n / 3))
    window = max(5, math.ceil(math.sqrt(math.log10(n))))
    max_lag = min(math.ceil(math.sqrt(n)) + window, n - 1)
    autocovariance = np.array([centered[: n - lag] @ centered[lag:] / n for lag in range(max_lag + 1)])
    correlation = np.abs(autocovariance / autocovariance[0])
    threshold = 2 * math.sqrt(math.log10(n) / n)
    first_quiet = next(
        (lag for lag in range(1, max_lag - window + 2) if np.all(correlation[lag : lag + window] < threshold)),
        None,
    )
    bandwidth = max_lag if first_quiet is None else min(2 * max(first_quiet - 1, 1), max_lag)
    lags = np.arange(1, bandwidth + 1)
    ratio = lags / bandwidth
    flat_top = np.where(ratio <= 0.5, 1.0, 2 * (1 - ratio))
    g_hat = 2 * np.sum(flat_top * lags * autocovariance[1 : bandwidth + 1])
    long_run = autocovariance[0] + 2 * np.sum(flat_top * autocovariance[1 : bandwidth + 1])

    def length(d: float) -> float:
        if d <= 0:
            return 1.0
        return float(min(max((2 * g_hat**2 / d) ** (1 / 3) * n ** (1 / 3), 1.0), upper))

    return BlockLength(stationary=length(2 * long_run**2), moving=length(4 / 3 * long_run**2))


def _stochastic_matrix(values: ArrayLike, states: int, name: str) -> np.ndarray:
    matrix = np.asarray(values, dtype=float)
    if matrix.shape != (states, states) or not np.all(np.isfinite(matrix)) or np.any(matrix < 0):
        raise ValueError(f"{name} must be a {states}×{states} matrix of probabilities ≥ 0, got {matrix.tolist()}")
    if not np.allclose(matrix.sum(axis=1), 1.0, atol=1e-9):
        raise ValueError(f"every row of {name} must sum to 1, got row sums {matrix.sum(axis=1).tolist()}")
    return matrix / matrix.sum(axis=1, keepdims=True)


class _StatePath:
    """A Markov chain's state path, drawn run by run (a geometric sojourn, then a jump to another state)."""

    def __init__(self, model: LognormalHMM, rng: np.random.Generator) -> None:
        self.model = model
        self.rng = rng
        self.state = int(rng.choice(model.states, p=model.stationary_distribution()))
        self.left_in_run = self._run_length()

    def _run_length(self) -> float:
        stay = self.model.transition[self.state, self.state]
        return math.inf if stay >= 1.0 else int(self.rng.geometric(1.0 - stay))

    def take_states(self, size: int) -> np.ndarray:
        path = np.empty(check_size(size), dtype=int)
        position = 0
        while position < path.size:
            run = int(min(self.left_in_run, path.size - position))
            path[position : position + run] = self.state
            position += run
            self.left_in_run -= run
            if self.left_in_run == 0:
                leave = self.model.transition[self.state].copy()
                leave[self.state] = 0.0
                self.state = int(self.rng.choice(self.model.states, p=leave / leave.sum()))
                self.left_in_run = self._run_length()
        return path


class _HMMPath(SamplePath):
    def __init__(self, model: LognormalHMM, rng: np.random.Generator) -> None:
        self.model = model
        self.rng = rng
        self.states = _StatePath(model, rng)

    def take(self, size: int) -> np.ndarray:
        path = self.states.take_states(size)
        return np.exp(self.model.mu_log[path] + self.model.sigma_log[path] * self.rng.standard_normal(path.size))


class LognormalHMM(ServiceProcess):
    """Hidden states with transition matrix ``transition``; in state s a time (ms) is lognormal.

    Its log is normal with mean ``mu_log[s]`` and standard deviation ``sigma_log[s]``. A path starts
    from the stationary distribution.
    """

    def __init__(self, transition: ArrayLike, mu_log: ArrayLike, sigma_log: ArrayLike) -> None:
        mu = np.asarray(mu_log, dtype=float)
        sigma = np.asarray(sigma_log, dtype=float)
        if mu.ndim != 1 or mu.size < 1 or not np.all(np.isfinite(mu)):
            raise ValueError(f"mu_log must be a non-empty 1-D list of finite log-ms means, got {mu.tolist()}")
        if sigma.shape != mu.shape or not np.all(np.isfinite(sigma)) or np.any(sigma <= 0):
            raise ValueError(f"sigma_log must have one finite value > 0 per state, got {sigma.tolist()}")
        self.transition = _stochastic_matrix(transition, mu.size, "transition")
        self.mu_log = mu
        self.sigma_log = sigma

    @property
    def states(self) -> int:
        return self.mu_log.size

    def stationary_distribution(self) -> np.ndarray:
        """π with π P = π (the left eigenvector of eigenvalue 1), normalized."""
        values, vectors = np.linalg.eig(self.transition.T)
        vector = np.real(vectors[:, np.argmin(np.abs(values - 1.0))])
        return np.abs(vector) / np.abs(vector).sum()

    def state_moments_ms(self, k: int) -> np.ndarray:
        """E[time^k | state] = exp(kμ + k²σ²/2)."""
        return np.exp(k * self.mu_log + k**2 * self.sigma_log**2 / 2)

    def moment(self, k: int) -> float:
        """The stationary raw moment E[X^k] (ms^k)."""
        return float(self.stationary_distribution() @ self.state_moments_ms(k))

    def mean_ms(self) -> float:
        return self.moment(1)

    def path(self, rng: np.random.Generator) -> _HMMPath:
        return _HMMPath(self, rng)

    def sample_states(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """A state path of ``size`` steps started from the stationary distribution."""
        return _StatePath(self, rng).take_states(size)

    def log_likelihood(self, samples_ms: ArrayLike) -> float:
        """log p(x_1..x_n) of the times (ms, all > 0), starting from the stationary distribution."""
        values = time_samples(samples_ms)
        if np.any(values <= 0):
            raise ValueError("samples_ms: a lognormal HMM needs every time > 0 ms")
        logs = np.log(values)
        from simulator.distributions.hmm_passes import hmm_forward

        emissions, offsets = hmm_emissions(logs, self.mu_log, self.sigma_log)
        _, scales = hmm_forward(emissions, self.stationary_distribution(), self.transition)
        return float(np.sum(np.log(scales)) + offsets.sum() - logs.sum())

    def to_dict(self) -> dict[str, Any]:
        return {
            "family": "lognormal_hmm",
            "transition": self.transition.tolist(),
            "mu_log": self.mu_log.tolist(),
            "sigma_log": self.sigma_log.tolist(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LognormalHMM:
        missing = [key for key in ("transition", "mu_log", "sigma_log") if key not in data]
        if missing:
            raise ValueError(f"lognormal_hmm dict is missing {missing}")
        return cls(data["transition"], data["mu_log"], data["sigma_log"])

    def __repr__(self) -> str:
        return f"LognormalHMM({self.to_dict()!r})"


def hmm_emissions(logs: np.ndarray, mu: np.ndarray, sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n, S) Gaussian densities of log times, each row divided by its largest; and the log of that divisor."""
    log_density = -0.5 * ((logs[:, None] - mu) / sigma) ** 2 - np.log(sigma) - 0.5 * math.log(2 * math.pi)
    offsets = log_density.max(axis=1)
    return np.exp(log_density - offsets[:, None]), offsets
