"""The service-time model protocol every model (parametric, empirical, profile-backed) follows."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

import numpy as np
from pydantic import BaseModel

from simulator.registry import SERVICE_MODELS
from simulator.scenario.service import ServiceSettings


class ServiceTimeModel(ABC):
    """Draws service times in ms; knows its moments so analytic checks can use them.

    ``batch_size`` is the number of requests served together by one call; models that cannot
    say how batching changes the time reject batch sizes above 1 with a clear error.
    """

    Config: ClassVar[type[BaseModel]]

    @property
    def ordered(self) -> bool:
        """True when successive draws form a process (their order matters): drawn at the node, in service order.

        Successive ``draw_block`` calls with one generator (and batch size) then continue one sequence.
        """
        return False

    def __init__(self, config: BaseModel, base_dir: Path) -> None:
        self.config = config
        self.base_dir = base_dir

    @abstractmethod
    def draw_block(self, rng: np.random.Generator, size: int, batch_size: int = 1) -> np.ndarray:
        """``size`` service times in ms for calls of ``batch_size`` requests, in the order served."""

    @abstractmethod
    def mean_ms(self, batch_size: int = 1) -> float:
        """Expected service time in ms."""

    @abstractmethod
    def second_moment_ms2(self, batch_size: int = 1) -> float:
        """E[S²] in ms², for Pollaczek–Khinchine-style analytic predictions."""

    def third_moment_ms3(self, batch_size: int = 1) -> float | None:
        """E[S³] in ms³ (Takács' second moment of the M/G/1 wait needs it); None where the model does not know it."""
        return None


class ScaledAndShifted(ServiceTimeModel):
    """``scale`` × another model's time + ``shift_ms``: where every model's ``scale`` and ``shift_ms`` are applied."""

    def __init__(self, inner: ServiceTimeModel, scale: float, shift_ms: float) -> None:
        super().__init__(inner.config, inner.base_dir)
        self.inner = inner
        self.scale = scale
        self.shift_ms = shift_ms

    @property
    def ordered(self) -> bool:
        return self.inner.ordered

    def draw_block(self, rng: np.random.Generator, size: int, batch_size: int = 1) -> np.ndarray:
        return self.inner.draw_block(rng, size, batch_size) * self.scale + self.shift_ms

    def mean_ms(self, batch_size: int = 1) -> float:
        return self.scale * self.inner.mean_ms(batch_size) + self.shift_ms

    def second_moment_ms2(self, batch_size: int = 1) -> float:
        """E[(aS + c)²] = a²E[S²] + 2acE[S] + c²."""
        a, c = self.scale, self.shift_ms
        return a * a * self.inner.second_moment_ms2(batch_size) + 2 * a * c * self.inner.mean_ms(batch_size) + c * c

    def third_moment_ms3(self, batch_size: int = 1) -> float | None:
        """E[(aS + c)³] = a³E[S³] + 3a²cE[S²] + 3ac²E[S] + c³."""
        third = self.inner.third_moment_ms3(batch_size)
        if third is None:
            return None
        a, c, inner = self.scale, self.shift_ms, self.inner
        return a**3 * third + 3 * a * a * c * inner.second_moment_ms2(batch_size) + 3 * a * c * c * inner.mean_ms(batch_size) + c**3


def build_service_model(config: BaseModel, base_dir: Path) -> ServiceTimeModel:
    """The service-time model that validated settings name; files resolve against ``base_dir``."""
    model = SERVICE_MODELS.build(config, base_dir)
    if isinstance(config, ServiceSettings) and (config.scale != 1.0 or config.shift_ms != 0.0):
        return ScaledAndShifted(model, config.scale, config.shift_ms)
    return model
