"""Routers: which node (replica) a request is sent to, by load."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from simulator.model.request import Request
from simulator.random_streams import draws
from simulator.registry import Registry

if TYPE_CHECKING:
    from simulator.model.node import Node


class Router(ABC):
    """Picks a node index for each request; ties break towards the lower index."""

    Config: ClassVar[type[BaseModel]]

    def __init__(self, config: BaseModel, nodes: Sequence["Node"], rng: np.random.Generator) -> None:
        self.config = config
        self.nodes = list(nodes)
        self.rng = rng

    @abstractmethod
    def choose(self, request: Request) -> int: ...


ROUTERS: Registry[Router] = Registry("router", "policy")


def _config() -> ConfigDict:
    return ConfigDict(extra="forbid")


@ROUTERS.register
class RoundRobin(Router):
    """Nodes in turn."""

    class Config(BaseModel):
        model_config = _config()
        policy: Literal["round_robin"]

    def __init__(self, config, nodes, rng):
        super().__init__(config, nodes, rng)
        self._next = 0

    def choose(self, request):
        index = self._next
        self._next = (index + 1) % len(self.nodes)
        return index


@ROUTERS.register
class Random(Router):
    """A uniformly random node (splits a Poisson stream into independent Poisson streams)."""

    class Config(BaseModel):
        model_config = _config()
        policy: Literal["random"]

    def __init__(self, config, nodes, rng):
        super().__init__(config, nodes, rng)
        self._draw = draws(lambda size: rng.integers(0, len(self.nodes), size))

    def choose(self, request):
        return next(self._draw)


@ROUTERS.register
class JoinShortestQueue(Router):
    """The node with the fewest requests waiting or in service."""

    class Config(BaseModel):
        model_config = _config()
        policy: Literal["jsq"]

    def choose(self, request):
        loads = [node.outstanding for node in self.nodes]
        return loads.index(min(loads))


@ROUTERS.register
class PowerOfTwoChoices(Router):
    """Two distinct random nodes; the one with fewer outstanding requests."""

    class Config(BaseModel):
        model_config = _config()
        policy: Literal["power_of_two"]

    def __init__(self, config, nodes, rng):
        super().__init__(config, nodes, rng)
        count = len(self.nodes)
        self._first = draws(lambda size: rng.integers(0, count, size))
        self._offset = draws(lambda size: rng.integers(1, max(count, 2), size))

    def choose(self, request):
        count = len(self.nodes)
        first = next(self._first)
        if count == 1:
            return first
        second = (first + next(self._offset)) % count
        if self.nodes[second].outstanding < self.nodes[first].outstanding:
            return second
        return first


@ROUTERS.register
class LeastOutstandingWork(Router):
    """The node with the least expected work (mean service time) waiting or in service."""

    class Config(BaseModel):
        model_config = _config()
        policy: Literal["least_work"]

    def choose(self, request):
        work = [node.outstanding_work_ms for node in self.nodes]
        return work.index(min(work))
