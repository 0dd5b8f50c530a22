"""Admission control: whether a firm-deadline request is still worth serving when a worker frees.

Only firm classes are ever dropped (a late firm result is worthless); hard and soft requests
are always served. Dropped requests are counted as deadline misses, never silently lost.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

from pydantic import BaseModel

from simulator.model.request import Request
from simulator.registry import ADMISSION_POLICIES
from simulator.scenario.nodes import (
    AdmitAllSettings,
    DropExpiredSettings,
    DropHopelessSettings,
)


class AdmissionPolicy(ABC):
    """Decides at dispatch time; ``droppable`` marks the firm classes, by class index."""

    Config: ClassVar[type[BaseModel]]
    drops_nothing: ClassVar[bool] = False  # lets nodes skip the per-dispatch check

    def __init__(self, config: BaseModel, droppable: Sequence[bool], mean_service_ms: Sequence[float]) -> None:
        self.config = config
        self.droppable = list(droppable)
        self.mean_service_ms = list(mean_service_ms)

    @abstractmethod
    def admits(self, request: Request, now_ms: float) -> bool: ...


@ADMISSION_POLICIES.register
class AdmitAll(AdmissionPolicy):
    """Serve everything, however late."""

    Config = AdmitAllSettings

    drops_nothing = True

    def admits(self, request, now_ms):
        return True


@ADMISSION_POLICIES.register
class DropExpired(AdmissionPolicy):
    """Drop a firm request whose deadline has already passed when a worker could start it."""

    Config = DropExpiredSettings

    def admits(self, request, now_ms):
        return now_ms < request.deadline_ms or not self.droppable[request.class_index]


@ADMISSION_POLICIES.register
class DropHopeless(AdmissionPolicy):
    """Drop a firm request that would miss its deadline even with a mean-length service."""

    Config = DropHopelessSettings

    def admits(self, request, now_ms):
        index = request.class_index
        return now_ms + self.mean_service_ms[index] <= request.deadline_ms or not self.droppable[index]
