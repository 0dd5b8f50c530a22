"""Parametric, mixture and empirical service-time models."""

from __future__ import annotations

import functools
import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simulator.distributions import Distribution
from simulator.errors import ScenarioError
from simulator.random_streams import DRAW_BLOCK_SIZE
from simulator.registry import SERVICE_MODELS
from simulator.scenario.service import (
    MAX_TIME_MS,
    MIN_TIME_MS,
    BatchScaling,
    DeterministicService,
    EmpiricalService,
    HyperExponentialService,
    MixtureService,
    PhaseTypeService,
    ScipyService,
)
from simulator.service.base import ServiceTimeModel, build_service_model
from simulator.service.sample_backed import SampleBacked, Source

SLOW_SECONDS_PER_BLOCK = 2.0  # CPU seconds per block of DRAW_BLOCK_SIZE draws past which a law is called slow
TIMING_REPEATS = 3  # draws of each size timed; the least CPU time counts


def _batch_factor(model: str, scaling: BatchScaling | None, batch_size: int) -> float:
    if batch_size == 1:
        return 1.0
    if scaling is None:
        raise ScenarioError(
            f"service model {model!r} cannot serve batches of {batch_size}: give it "
            "`batch_scaling: {per_extra_item: ...}` or use a profile-backed service model"
        )
    return 1.0 + scaling.per_extra_item * (batch_size - 1)


@SERVICE_MODELS.register
class Deterministic(ServiceTimeModel):
    """Every call takes exactly ``value_ms`` (M/D/c-style systems)."""

    Config = DeterministicService

    def draw_block(self, rng, size, batch_size=1):
        return np.full(size, self.mean_ms(batch_size))

    def mean_ms(self, batch_size=1):
        return self.config.value_ms * _batch_factor("deterministic", self.config.batch_scaling, batch_size)

    def second_moment_ms2(self, batch_size=1):
        return self.mean_ms(batch_size) ** 2

    def third_moment_ms3(self, batch_size=1):
        return self.mean_ms(batch_size) ** 3


class _LawBacked(ServiceTimeModel):
    """Independent draws from the law its settings give (:meth:`law`), batches by ``batch_scaling``."""

    def __init__(self, config, base_dir):
        super().__init__(config, base_dir)
        self.law: Distribution = config.law()

    def _factor(self, batch_size: int) -> float:
        return _batch_factor(self.config.distribution, self.config.batch_scaling, batch_size)

    def draw_block(self, rng, size, batch_size=1):
        return np.maximum(self.law.sample(rng, size), 0.0) * self._factor(batch_size)

    def mean_ms(self, batch_size=1):
        return self.law.mean() * self._factor(batch_size)

    def second_moment_ms2(self, batch_size=1):
        return self.law.moment(2) * self._factor(batch_size) ** 2

    def third_moment_ms3(self, batch_size=1):
        return self.law.moment(3) * self._factor(batch_size) ** 3


@dataclass(frozen=True)
class DrawTiming:
    """What timing a law's draws found: the projected CPU seconds per block, and whether any draw was not a number."""

    cpu_seconds_per_block: float
    finite: bool


@functools.lru_cache(maxsize=256)
def _time_draws(name: str, params: tuple[tuple[str, float], ...]) -> DrawTiming:
    """Projected CPU time to draw one block from scipy.stats.<name>(params), measured on growing sizes 1, 16, 256, 4096.

    Each size is drawn TIMING_REPEATS times and the least process CPU time kept, so neither a busy machine (wall
    time) nor one slow call makes a law look slow. From the second size on, each step projects the block from the
    cost per extra draw between the last two sizes (a fixed cost per call is not mistaken for a slow draw); the
    measurement stops as soon as a projection passes :data:`SLOW_SECONDS_PER_BLOCK`. The draws are kept to check
    that they are numbers. Only the measurement is cached; what to do about it is decided at every build.
    """
    from simulator.distributions import ScipyFrozen

    law, rng = ScipyFrozen(name, dict(params)), np.random.default_rng(0)
    done: tuple[int, float] | None = None
    finite = True
    for size in (1, 16, 256, DRAW_BLOCK_SIZE):
        elapsed_s = math.inf
        for _ in range(TIMING_REPEATS):
            start = time.process_time()
            values = law.sample(rng, size)
            elapsed_s = min(elapsed_s, time.process_time() - start)
            finite = finite and bool(np.all(np.isfinite(values)))
        projected_s = elapsed_s
        if done is not None:
            projected_s += max(elapsed_s - done[1], 0.0) / (size - done[0]) * (DRAW_BLOCK_SIZE - size)
        if projected_s > SLOW_SECONDS_PER_BLOCK or size == DRAW_BLOCK_SIZE:
            return DrawTiming(projected_s, finite)
        done = (size, elapsed_s)
    raise AssertionError("unreachable: the last size is a whole block")


@SERVICE_MODELS.register
class ScipyDistribution(_LawBacked):
    """Any continuous distribution of scipy.stats by name, parameters in ms (scale, loc, shapes).

    Building it draws from it: a law whose draws are not numbers (NaN, ±∞) is refused; one whose draws take more
    than :data:`SLOW_SECONDS_PER_BLOCK` of CPU time per block of 4,096 (numerical inversion, e.g.
    studentized_range) is accepted with a warning that runs will be slow.
    """

    Config = ScipyService

    def __init__(self, config, base_dir):
        super().__init__(config, base_dir)
        timing = _time_draws(config.name, tuple(sorted(config.params.items())))
        if not timing.finite:
            raise ScenarioError(
                f"service: scipy.stats.{config.name} with params {dict(config.params)} draws values that are not numbers "
                "(NaN or infinite); check the parameters, or fit a law to the times (latsim fit)"
            )
        if timing.cpu_seconds_per_block > SLOW_SECONDS_PER_BLOCK:
            warnings.warn(
                f"service: scipy.stats.{config.name} draws slowly: about {timing.cpu_seconds_per_block:.3g} CPU s per "
                f"{DRAW_BLOCK_SIZE:,} draws, so a run spends about that per {DRAW_BLOCK_SIZE:,} requests drawing service "
                "times; fit a faster law to it (latsim fit) or use an empirical sample of it",
                SlowDrawWarning, stacklevel=2,
            )


class SlowDrawWarning(UserWarning):
    """A service-time law that is correct but slow to draw from (runs will take long)."""


@SERVICE_MODELS.register
class HyperExponentialModel(_LawBacked):
    """With probability ``weights[i]`` an exponential time of mean ``means_ms[i]``."""

    Config = HyperExponentialService


@SERVICE_MODELS.register
class PhaseTypeModel(_LawBacked):
    """Time to absorption of a Markov chain with initial probabilities ``alpha`` and sub-generator ``T``."""

    Config = PhaseTypeService


@SERVICE_MODELS.register
class MixtureModel(ServiceTimeModel):
    """With probability ``weights[i]`` a call takes a time of ``components[i]``; ordered when a component is."""

    Config = MixtureService

    def __init__(self, config, base_dir):
        super().__init__(config, base_dir)
        total = sum(config.weights)
        self.weights = np.array(config.weights) / total
        self.components = [build_service_model(component, base_dir) for component in config.components]

    @property
    def ordered(self) -> bool:
        return any(component.ordered for component in self.components)

    def draw_block(self, rng, size, batch_size=1):
        chosen = rng.choice(self.weights.size, size=size, p=self.weights)
        times = np.empty(size)
        for index, component in enumerate(self.components):
            where = np.flatnonzero(chosen == index)
            if where.size:
                times[where] = component.draw_block(rng, where.size, batch_size)
        return times

    def mean_ms(self, batch_size=1):
        return float(sum(w * c.mean_ms(batch_size) for w, c in zip(self.weights, self.components)))

    def second_moment_ms2(self, batch_size=1):
        return float(sum(w * c.second_moment_ms2(batch_size) for w, c in zip(self.weights, self.components)))

    def third_moment_ms3(self, batch_size=1):
        thirds = [component.third_moment_ms3(batch_size) for component in self.components]
        return None if None in thirds else float(sum(w * third for w, third in zip(self.weights, thirds)))


def read_service_times(path: Path, column: str | None, expression: str | None, what: str) -> np.ndarray:
    """Measured service times (ms) of a column or expression: each 0 or in [1e-6, 1e9] ms, not all 0."""
    from simulator.formats.samples import read_sample_column, read_sample_expression, require_within  # pandas: only for files

    samples = read_sample_column(path, column, what) if expression is None else read_sample_expression(path, expression, what)
    require_within(samples, MIN_TIME_MS, MAX_TIME_MS, path, column if expression is None else expression, what, zero_allowed=True)
    if not np.any(samples):
        raise ScenarioError(f"{what}: {path} holds only zeros; service times need a mean of at least {MIN_TIME_MS:g} ms")
    return samples


@SERVICE_MODELS.register
class Empirical(SampleBacked):
    """Measured service times (ms) from a CSV/parquet column or expression, drawn i.i.d. or in order (``process``)."""

    Config = EmpiricalService

    def __init__(self, config, base_dir):
        super().__init__(config, base_dir)
        self.samples = read_service_times(base_dir / config.file, config.column, config.expression, "service.empirical")

    def source(self, batch_size: int) -> tuple[Source, float]:
        return self.samples, _batch_factor("empirical", self.config.batch_scaling, batch_size)
