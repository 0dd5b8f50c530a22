"""The service-time model protocol every model (parametric, empirical, profile-backed) follows."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

import numpy as np
from pydantic import BaseModel

from simulator.registry import SERVICE_MODELS


class ServiceTimeModel(ABC):
    """Draws service times in ms; knows its moments so analytic checks can use them.

    ``batch_size`` is the number of requests served together by one call; models that cannot
    say how batching changes the time reject batch sizes above 1 with a clear error.
    """

    Config: ClassVar[type[BaseModel]]

    @property
    def ordered(self) -> bool:
        """True when successive draws form a process (their order matters): drawn at the node, in service order."""
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


def build_service_model(config: BaseModel, base_dir: Path) -> ServiceTimeModel:
    """The service-time model that validated settings name; files resolve against ``base_dir``."""
    return SERVICE_MODELS.build(config, base_dir)
