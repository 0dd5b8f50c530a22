"""Parametric and empirical service-time models."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import scipy.stats
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, field_validator, model_validator

from simulator.errors import ScenarioError
from simulator.service.base import SERVICE_MODELS, ServiceTimeModel


class BatchScaling(BaseModel):
    """Affine batch cost: a batch of b takes (1 + per_extra_item·(b−1)) times a single call.

    A fixed per-call overhead plus a per-item cost; 0 means a batch is as fast as one request,
    1 means batching saves nothing. Profile-backed models use measured batch times instead.
    """

    model_config = ConfigDict(extra="forbid")
    per_extra_item: float = Field(ge=0, description="cost of each extra item, as a fraction of a single call")


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

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid")
        distribution: Literal["deterministic"]
        value_ms: PositiveFloat
        batch_scaling: BatchScaling | None = None

    def draw_block(self, rng, size, batch_size=1):
        return np.full(size, self.mean_ms(batch_size))

    def mean_ms(self, batch_size=1):
        return self.config.value_ms * _batch_factor("deterministic", self.config.batch_scaling, batch_size)

    def second_moment_ms2(self, batch_size=1):
        return self.mean_ms(batch_size) ** 2


@SERVICE_MODELS.register
class ScipyDistribution(ServiceTimeModel):
    """Any continuous distribution of scipy.stats by name, parameters in ms (scale, loc, shapes)."""

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid")
        distribution: Literal["scipy"]
        name: str = Field(description="a continuous distribution of scipy.stats, e.g. expon, lognorm, gamma")
        params: dict[str, float] = Field(default_factory=dict, description="its parameters, times in ms")
        batch_scaling: BatchScaling | None = None

        @field_validator("name")
        @classmethod
        def _known_distribution(cls, name: str) -> str:
            if not isinstance(getattr(scipy.stats, name, None), scipy.stats.rv_continuous):
                raise ValueError(
                    f"{name!r} is not a continuous distribution of scipy.stats "
                    "(e.g. expon, lognorm, gamma, weibull_min, pareto, uniform, truncnorm)"
                )
            return name

        @model_validator(mode="after")
        def _usable_as_service_time(self) -> "ScipyDistribution.Config":
            try:
                frozen = getattr(scipy.stats, self.name)(**self.params)
                lower, _ = frozen.support()
                mean = float(frozen.mean())
            except (TypeError, ValueError) as error:
                raise ValueError(f"params {self.params} do not fit scipy.stats.{self.name}: {error}") from None
            if not lower >= 0:
                raise ValueError(
                    f"scipy.stats.{self.name}{self.params} can draw negative service times "
                    f"(support starts at {lower}); use a non-negative distribution or set loc"
                )
            if not math.isfinite(mean):
                raise ValueError(f"scipy.stats.{self.name}{self.params} has no finite mean")
            return self

    def __init__(self, config, base_dir):
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


def read_sample_column(path: Path, column: str | None, what: str) -> np.ndarray:
    """Read one numeric column of a CSV or parquet file (the only column, or the one named)."""
    if not path.is_file():
        raise ScenarioError(f"{what}: file {path} does not exist")
    try:
        frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except Exception as error:  # pandas raises many parser error types
        raise ScenarioError(f"{what}: cannot read {path} as CSV/parquet: {error}") from None
    if column is None:
        if frame.shape[1] != 1:
            raise ScenarioError(f"{what}: {path} has columns {list(frame.columns)}; name one with 'column'")
        column = frame.columns[0]
    if column not in frame.columns:
        raise ScenarioError(f"{what}: {path} has no column {column!r}; it has {list(frame.columns)}")
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
    if len(values) == 0 or not np.all(np.isfinite(values)):
        raise ScenarioError(f"{what}: column {column!r} of {path} must hold only numbers (and at least one)")
    return values


@SERVICE_MODELS.register
class Empirical(ServiceTimeModel):
    """Resamples measured service times (ms) from a CSV/parquet column, with replacement."""

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid")
        distribution: Literal["empirical"]
        file: str = Field(description="CSV or parquet file, relative to the scenario file")
        column: str | None = Field(None, description="column of service times in ms (default: the only one)")
        batch_scaling: BatchScaling | None = None

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
