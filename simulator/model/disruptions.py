"""Events during a run that take capacity away or add load: failures, rolling updates, spikes.

They are rare, so each is an ordinary SimPy process. Nodes are named either exactly or by
their node spec's name (every replica of every partition of that spec).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

import numpy as np
from pydantic import BaseModel

from simulator.errors import ScenarioError
from simulator.model.cluster import Cluster
from simulator.model.node import Node
from simulator.model.simulation import Environment
from simulator.model.source import ArrivalSource
from simulator.registry import DISRUPTIONS
from simulator.scenario.events import (
    LoadSpikeEvent,
    NodeFailureEvent,
    RandomFailuresEvent,
    RollingUpdateEvent,
)
from simulator.units import MS_PER_S


class Disruption(ABC):
    """Starts its SimPy process(es) on a built cluster; ``source`` is the arrival source."""

    Config: ClassVar[type[BaseModel]]

    def __init__(self, config: BaseModel, cluster: Cluster, source: ArrivalSource, rng: np.random.Generator) -> None:
        self.config = config
        self.cluster = cluster
        self.source = source
        self.rng = rng

    @abstractmethod
    def start(self, env: Environment) -> None: ...

    def _targets(self, names: Sequence[str]) -> list[Node]:
        chosen = []
        for name in names:
            matches = [node for node in self.cluster.nodes if node.name == name or node.spec_name == name]
            if not matches:
                known = sorted({node.spec_name for node in self.cluster.nodes} | {node.name for node in self.cluster.nodes})
                raise ScenarioError(f"events: no node or node spec named {name!r}; known: {', '.join(known)}")
            chosen += [node for node in matches if node not in chosen]
        return chosen

    def _set(self, node: Node, up: bool) -> None:
        if up:
            node.recover()
        else:
            node.fail()
        self.cluster.availability_changed()


@DISRUPTIONS.register
class NodeFailure(Disruption):
    """The named nodes fail at ``at_s`` and come back ``duration_s`` later."""

    Config = NodeFailureEvent

    def start(self, env):
        for node in self._targets(self.config.nodes):
            env.process(self._outage(env, node))

    def _outage(self, env, node):
        yield env.timeout(self.config.at_s * MS_PER_S)
        self._set(node, up=False)
        yield env.timeout(self.config.duration_s * MS_PER_S)
        self._set(node, up=True)


@DISRUPTIONS.register
class RandomFailures(Disruption):
    """Each named node fails after exponential up-times (mean ``mtbf_s``) and is repaired after
    exponential down-times (mean ``mttr_s``), for as long as requests keep arriving."""

    Config = RandomFailuresEvent

    def start(self, env):
        for node in self._targets(self.config.nodes):
            env.process(self._lifecycle(env, node))

    def _lifecycle(self, env, node):
        while not self.source.exhausted:
            yield env.timeout(self.rng.exponential(self.config.mtbf_s * MS_PER_S))
            if self.source.exhausted:
                return
            self._set(node, up=False)
            yield env.timeout(self.rng.exponential(self.config.mttr_s * MS_PER_S))
            self._set(node, up=True)


@DISRUPTIONS.register
class RollingUpdate(Disruption):
    """Replicas leave one at a time: each stops taking requests, finishes what it holds, reloads
    the model for ``reload_s`` and returns; the next leaves ``pause_s`` later."""

    Config = RollingUpdateEvent

    def start(self, env):
        env.process(self._roll(env, self._targets(self.config.nodes)))

    def _roll(self, env, nodes):
        yield env.timeout(self.config.start_s * MS_PER_S)
        for node in nodes:
            drained = env.event()
            node.drain(lambda: drained.succeed())
            self.cluster.availability_changed()
            yield drained
            yield env.timeout(self.config.reload_s * MS_PER_S)
            self._set(node, up=True)
            yield env.timeout(self.config.pause_s * MS_PER_S)


@DISRUPTIONS.register
class LoadSpike(Disruption):
    """Arrivals come ``multiplier`` times faster between ``at_s`` and ``at_s + duration_s``."""

    Config = LoadSpikeEvent

    def start(self, env):
        config = self.config
        self.source.add_spike(config.at_s * MS_PER_S, (config.at_s + config.duration_s) * MS_PER_S, config.multiplier)
