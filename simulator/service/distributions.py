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


def _single_call_only(model: str, batch_size: int) -> None:
    if batch_size != 1:
        raise ScenarioError(
            f"service model {model!r} has no batch-size model, so it cannot serve batches of "
            f"{batch_size}; use a profile-backed service model for batching"
        )


@SERVICE_MODELS.register
class Deterministic(ServiceTimeModel):
    """Every call takes exactly ``value_ms`` (M/D/c-style systems)."""

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid")
        distribution: Literal["deterministic"]
        value_ms: PositiveFloat

    def draw_block(self, rng, size, batch_size=1):
        _single_call_only("deterministic", batch_size)
        return np.full(size, self.config.value_ms)

    def mean_ms(self, batch_size=1):
        return self.config.value_ms

    def second_moment_ms2(self, batch_size=1):
        return self.config.value_ms**2


@SERVICE_MODELS.register
class ScipyDistribution(ServiceTimeModel):
    """Any continuous distribution of scipy.stats by name, parameters in ms (scale, loc, shapes)."""

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid")
        distribution: Literal["scipy"]
        name: str = Field(description="a continuous distribution of scipy.stats, e.g. expon, lognorm, gamma")
        params: dict[str, float] = Field(default_factory=dict, description="its parameters, times in ms")

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

    def draw_block(self, rng, size, batch_size=1):
        _single_call_only(f"scipy.{self.config.name}", batch_size)
        return np.maximum(self._frozen.rvs(size=size, random_state=rng), 0.0)

    def mean_ms(self, batch_size=1):
        return float(self._frozen.mean())

    def second_moment_ms2(self, batch_size=1):
        return float(self._frozen.moment(2))


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

    def __init__(self, config, base_dir):
        super().__init__(config, base_dir)
        samples = read_sample_column(base_dir / config.file, config.column, "service.empirical")
        if np.any(samples < 0):
            raise ScenarioError(f"service.empirical: {config.file} holds negative service times")
        self._samples = samples

    def draw_block(self, rng, size, batch_size=1):
        _single_call_only("empirical", batch_size)
        return self._samples[rng.integers(0, len(self._samples), size)]

    def mean_ms(self, batch_size=1):
        return float(self._samples.mean())

    def second_moment_ms2(self, batch_size=1):
        return float(np.mean(self._samples**2))
