"""Parametric, mixture and empirical service-time models."""

from __future__ import annotations

import functools
import time
from pathlib import Path

import numpy as np

from simulator.distributions import Distribution
from simulator.errors import ScenarioError
from simulator.formats.samples import (
    read_sample_column,
    read_sample_expression,
    require_within,
)
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

MAX_SECONDS_PER_BLOCK = 2.0  # drawing one block of DRAW_BLOCK_SIZE times may take at most this long


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


@functools.lru_cache(maxsize=256)
def _seconds_per_block(name: str, params: tuple[tuple[str, float], ...]) -> float:
    """Projected time to draw one block from scipy.stats.<name>(params), measured on growing sizes 1, 16, 256, 4096.

    From the second size on, each step projects the block from the cost per extra draw between
    the last two sizes (so a fixed cost per call, or a first call's setup, is not mistaken for a
    slow draw); the measurement stops as soon as a projection (or one call) passes
    :data:`MAX_SECONDS_PER_BLOCK`, so a law that takes minutes per block is refused within seconds.
    """
    from simulator.distributions import ScipyFrozen

    law, rng = ScipyFrozen(name, dict(params)), np.random.default_rng(0)
    done: tuple[int, float] | None = None
    for size in (1, 16, 256, DRAW_BLOCK_SIZE):
        start = time.perf_counter()
        law.sample(rng, size)
        elapsed_s = time.perf_counter() - start
        projected_s = elapsed_s
        if done is not None:
            projected_s += max(elapsed_s - done[1], 0.0) / (size - done[0]) * (DRAW_BLOCK_SIZE - size)
        if projected_s > MAX_SECONDS_PER_BLOCK or size == DRAW_BLOCK_SIZE:
            return projected_s
        done = (size, elapsed_s)
    raise AssertionError("unreachable: the last size is a whole block")


@SERVICE_MODELS.register
class ScipyDistribution(_LawBacked):
    """Any continuous distribution of scipy.stats by name, parameters in ms (scale, loc, shapes).

    Building it times its sampling: a law whose draws would take longer than
    :data:`MAX_SECONDS_PER_BLOCK` per block of 4,096 (numerical inversion, e.g. studentized_range)
    is refused rather than left to run for hours.
    """

    Config = ScipyService

    def __init__(self, config, base_dir):
        super().__init__(config, base_dir)
        seconds = _seconds_per_block(config.name, tuple(sorted(config.params.items())))
        if seconds > MAX_SECONDS_PER_BLOCK:
            raise ScenarioError(
                f"service: scipy.stats.{config.name} draws too slowly to simulate with: about {seconds:.3g} s per "
                f"{DRAW_BLOCK_SIZE:,} draws (the limit is {MAX_SECONDS_PER_BLOCK:g} s); fit a faster law to it "
                "(latsim fit) or use an empirical sample of it"
            )


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
