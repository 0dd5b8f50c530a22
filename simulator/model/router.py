"""Routers: which replica of a partition a request is sent to, by load (and by priority).

One router instance serves one partition's replicas. It only ever picks among the replicas
that are up (``available``): failures and rolling updates call ``refresh`` when that changes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

import numpy as np
from pydantic import BaseModel

from simulator.model.request import Request
from simulator.random_streams import draws
from simulator.registry import ROUTERS
from simulator.scenario.cluster import (
    LeastWorkRouting,
    PowerOfTwoRouting,
    PriorityLanesRouting,
    RandomRouting,
    RoundRobinRouting,
    ShortestQueueRouting,
)

if TYPE_CHECKING:
    from simulator.model.node import Node


class Router(ABC):
    """Picks a replica for each request among those up; ties break towards the lower index."""

    Config: ClassVar[type[BaseModel]]
    load_aware: ClassVar[bool] = True  # False: splits load evenly whatever the queues (for stability checks)

    def __init__(self, config: BaseModel, replicas: Sequence["Node"], rng: np.random.Generator) -> None:
        self.config = config
        self.replicas = list(replicas)
        self.uniforms = draws(rng.random)
        self.refresh()

    def refresh(self) -> None:
        """Re-read which replicas are up."""
        self.nodes = [node for node in self.replicas if node.available]

    @abstractmethod
    def choose(self, request: Request) -> "Node":
        """A replica that is up (the caller checks that ``nodes`` is not empty)."""


def _fewest_outstanding(nodes: Sequence["Node"]) -> "Node":
    return min(nodes, key=_outstanding)


def _outstanding(node: "Node") -> int:
    return node.outstanding


@ROUTERS.register
class RoundRobin(Router):
    """Replicas in turn."""

    load_aware = False

    Config = RoundRobinRouting

    def __init__(self, config, replicas, rng):
        super().__init__(config, replicas, rng)
        self._turn = 0

    def choose(self, request):
        self._turn += 1
        return self.nodes[self._turn % len(self.nodes)]


@ROUTERS.register
class Random(Router):
    """A uniformly random replica (splits a Poisson stream into independent Poisson streams)."""

    load_aware = False

    Config = RandomRouting

    def choose(self, request):
        nodes = self.nodes
        return nodes[int(next(self.uniforms) * len(nodes))]


@ROUTERS.register
class JoinShortestQueue(Router):
    """The replica with the fewest requests waiting or in service."""

    Config = ShortestQueueRouting

    def choose(self, request):
        return _fewest_outstanding(self.nodes)


@ROUTERS.register
class PowerOfTwoChoices(Router):
    """Two distinct random replicas; the one with fewer outstanding requests."""

    Config = PowerOfTwoRouting

    def choose(self, request):
        nodes = self.nodes
        count = len(nodes)
        first = int(next(self.uniforms) * count)
        if count == 1:
            return nodes[first]
        second = (first + 1 + int(next(self.uniforms) * (count - 1))) % count
        if nodes[second].outstanding < nodes[first].outstanding:
            return nodes[second]
        return nodes[first]


@ROUTERS.register
class LeastOutstandingWork(Router):
    """The replica with the least expected work (mean service time) waiting or in service."""

    Config = LeastWorkRouting

    def choose(self, request):
        return min(self.nodes, key=_outstanding_work)


def _outstanding_work(node: "Node") -> float:
    return node.outstanding_work_ms


@ROUTERS.register
class PriorityLanes(Router):
    """Join-shortest-queue, but the first ``reserved_replicas`` take only urgent requests.

    Urgent means ``priority <= urgent_priority``; keeping a lane free bounds their wait even
    when bulk traffic saturates the other replicas.
    """

    Config = PriorityLanesRouting

    def refresh(self):
        super().refresh()
        reserved = self.replicas[: self.config.reserved_replicas]
        self._bulk = [node for node in self.nodes if node not in reserved] or self.nodes

    def choose(self, request):
        urgent = request.priority <= self.config.urgent_priority
        return _fewest_outstanding(self.nodes if urgent else self._bulk)
