"""Routers: which replica of a partition a request is sent to, by load (and by priority).

One router instance serves one partition's replicas (per pipeline stage). It only ever picks
among the replicas that are up (``available``): failures and rolling updates call ``refresh``.
A router keeps its own account of the requests it sent and that have not come back yet
(``sent`` at choice time, ``completed`` when the answer — or the news of a drop or a failure —
reaches the router), so with a network between router and nodes it sees requests in flight, as a
real load balancer does, instead of the nodes' queues that lag behind by a network delay.
Ties between equally loaded replicas are broken at random (seeded), never towards the first one.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, ClassVar

import numpy as np
from pydantic import BaseModel

from simulator.model.request import Request
from simulator.random_streams import draws
from simulator.registry import ROUTERS
from simulator.scenario.cluster import (
    LeastWorkRouting,
    PeakEwmaRouting,
    PowerOfTwoRouting,
    PriorityLanesRouting,
    RandomRouting,
    RoundRobinRouting,
    ShortestQueueRouting,
)

if TYPE_CHECKING:
    from simulator.model.node import Node


class Router(ABC):
    """Picks a replica for each request among those up; ``in_flight[slot]`` counts its own unanswered sends."""

    Config: ClassVar[type[BaseModel]]
    load_aware: ClassVar[bool] = True  # False: splits load evenly whatever the queues (for stability checks)

    def __init__(self, config: BaseModel, replicas: Sequence[Node], rng: np.random.Generator) -> None:
        self.config = config
        self.replicas = list(replicas)
        self.slot = {node.index: slot for slot, node in enumerate(self.replicas)}
        self.in_flight = [0] * len(self.replicas)
        self.uniforms = draws(rng.random)
        self.refresh()

    def refresh(self) -> None:
        """Re-read which replicas are up."""
        self.nodes = [node for node in self.replicas if node.available]

    @abstractmethod
    def choose(self, request: Request) -> Node:
        """A replica that is up (the caller checks that ``nodes`` is not empty)."""

    def sent(self, node: Node, request: Request, now_ms: float) -> None:
        """``request`` was just sent to ``node``."""
        self.in_flight[self.slot[node.index]] += 1

    def completed(self, node: Node, request: Request, now_ms: float) -> None:
        """The answer to a request sent to ``node`` (served, dropped or failed) reached the router."""
        self.in_flight[self.slot[node.index]] -= 1

    def _least(self, nodes: Sequence[Node], cost: Callable[[Node], float]) -> Node:
        """The node of least cost; among equal costs, one at random."""
        costs = [cost(node) for node in nodes]
        lowest = min(costs)
        tied = [node for node, value in zip(nodes, costs) if value == lowest]
        return tied[0] if len(tied) == 1 else tied[int(next(self.uniforms) * len(tied))]

    def _pending(self, node: Node) -> int:
        return self.in_flight[self.slot[node.index]]


@ROUTERS.register
class RoundRobin(Router):
    """Replicas in turn."""

    Config = RoundRobinRouting
    load_aware = False

    def __init__(self, config, replicas, rng):
        super().__init__(config, replicas, rng)
        self._turn = 0

    def choose(self, request):
        self._turn += 1
        return self.nodes[self._turn % len(self.nodes)]


@ROUTERS.register
class Random(Router):
    """A uniformly random replica (splits a Poisson stream into independent Poisson streams)."""

    Config = RandomRouting
    load_aware = False

    def choose(self, request):
        nodes = self.nodes
        return nodes[int(next(self.uniforms) * len(nodes))]


@ROUTERS.register
class JoinShortestQueue(Router):
    """The replica with the fewest requests this router sent and has not heard back from (least request)."""

    Config = ShortestQueueRouting

    def choose(self, request):
        return self._least(self.nodes, self._pending)


@ROUTERS.register
class PowerOfTwoChoices(Router):
    """Two distinct random replicas; the one with fewer unanswered requests (ties: either, at random)."""

    Config = PowerOfTwoRouting

    def choose(self, request):
        nodes = self.nodes
        count = len(nodes)
        first = int(next(self.uniforms) * count)
        if count == 1:
            return nodes[first]
        second = (first + 1 + int(next(self.uniforms) * (count - 1))) % count
        return self._least([nodes[first], nodes[second]], self._pending)


@ROUTERS.register
class LeastOutstandingWork(Router):
    """The replica with the least expected work (mean service times) sent to it and not yet answered."""

    Config = LeastWorkRouting

    def __init__(self, config, replicas, rng):
        super().__init__(config, replicas, rng)
        self.work_ms = [0.0] * len(self.replicas)

    def sent(self, node, request, now_ms):
        super().sent(node, request, now_ms)
        self.work_ms[self.slot[node.index]] += node.mean_service_ms[request.class_index]

    def completed(self, node, request, now_ms):
        super().completed(node, request, now_ms)
        slot = self.slot[node.index]
        self.work_ms[slot] = max(self.work_ms[slot] - node.mean_service_ms[request.class_index], 0.0)

    def choose(self, request):
        return self._least(self.nodes, lambda node: self.work_ms[self.slot[node.index]])


@ROUTERS.register
class PeakEwma(Router):
    """Finagle's peak-EWMA load balancer: cost = latency EWMA × (unanswered requests + 1), over two random replicas.

    The EWMA of the latency the router observes (send → answer, network included) jumps up to any
    larger sample at once (peak-sensitive) and decays towards smaller samples, and towards 0 while
    idle, with time constant ``decay_ms``; it starts at the replica's mean service time.
    """

    Config = PeakEwmaRouting

    def __init__(self, config, replicas, rng):
        super().__init__(config, replicas, rng)
        self.ewma_ms = [float(np.mean(node.mean_service_ms)) for node in self.replicas]
        self.stamp_ms = [0.0] * len(self.replicas)
        self.now_ms = 0.0

    def _decayed(self, slot: int, now_ms: float) -> float:
        return self.ewma_ms[slot] * math.exp(-(now_ms - self.stamp_ms[slot]) / self.config.decay_ms)

    def completed(self, node, request, now_ms):
        super().completed(node, request, now_ms)
        slot = self.slot[node.index]
        rtt_ms = now_ms - request.sent_ms
        current = self.ewma_ms[slot]
        if rtt_ms > current:
            self.ewma_ms[slot] = rtt_ms
        else:
            weight = math.exp(-(now_ms - self.stamp_ms[slot]) / self.config.decay_ms)
            self.ewma_ms[slot] = current * weight + rtt_ms * (1 - weight)
        self.stamp_ms[slot] = now_ms

    def sent(self, node, request, now_ms):
        super().sent(node, request, now_ms)
        self.now_ms = now_ms

    def _cost(self, node: Node) -> float:
        slot = self.slot[node.index]
        return self._decayed(slot, self.now_ms) * (self.in_flight[slot] + 1)

    def choose(self, request):
        nodes = self.nodes
        count = len(nodes)
        if count <= 2 or self.config.choices == "all":
            return self._least(nodes, self._cost)
        first = int(next(self.uniforms) * count)
        second = (first + 1 + int(next(self.uniforms) * (count - 1))) % count
        return self._least([nodes[first], nodes[second]], self._cost)


@ROUTERS.register
class PriorityLanes(Router):
    """Least request, but the first ``reserved_replicas`` take only urgent requests.

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
        return self._least(self.nodes if urgent else self._bulk, self._pending)
