"""Parametric and empirical service-time models."""

from __future__ import annotations

import numpy as np

from simulator.errors import ScenarioError
from simulator.formats.samples import read_sample_column
from simulator.registry import SERVICE_MODELS
from simulator.scenario.service import (
    BatchScaling,
    DeterministicService,
    EmpiricalService,
    ScipyService,
)
from simulator.service.base import ServiceTimeModel


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


@SERVICE_MODELS.register
class ScipyDistribution(ServiceTimeModel):
    """Any continuous distribution of scipy.stats by name, parameters in ms (scale, loc, shapes)."""

    Config = ScipyService

    def __init__(self, config, base_dir):
        import scipy.stats

        super().__init__(config, base_dir)
        self._frozen = getattr(scipy.stats, config.name)(**config.params)

    def _factor(self, batch_size: int) -> float:
        return _batch_factor(f"scipy.{self.config.name}", self.config.batch_scaling, batch_size)

    def draw_block(self, rng, size, batch_size=1):
        return np.maximum(self._frozen.rvs(size=size, random_state=rng), 0.0) * self._factor(batch_size)

    def mean_ms(self, batch_size=1):
        return float(self._frozen.mean()) * self._factor(batch_size)

    def second_moment_ms2(self, batch_size=1):
        return float(self._frozen.moment(2)) * self._factor(batch_size) ** 2


@SERVICE_MODELS.register
class Empirical(ServiceTimeModel):
    """Resamples measured service times (ms) from a CSV/parquet column, with replacement."""

    Config = EmpiricalService

    def __init__(self, config, base_dir):
        super().__init__(config, base_dir)
        samples = read_sample_column(base_dir / config.file, config.column, "service.empirical")
        if np.any(samples < 0):
            raise ScenarioError(f"service.empirical: {config.file} holds negative service times")
        self._samples = samples

    def _factor(self, batch_size: int) -> float:
        return _batch_factor("empirical", self.config.batch_scaling, batch_size)

    def draw_block(self, rng, size, batch_size=1):
        return self._samples[rng.integers(0, len(self._samples), size)] * self._factor(batch_size)

    def mean_ms(self, batch_size=1):
        return float(self._samples.mean()) * self._factor(batch_size)

    def second_moment_ms2(self, batch_size=1):
        return float(np.mean(self._samples**2)) * self._factor(batch_size) ** 2
