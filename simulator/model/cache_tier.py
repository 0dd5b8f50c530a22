"""Where the result cache sits in the cluster, and what a hit costs.

``scope: shared`` is one cache in front of the routers: a hit never reaches a node.
``scope: per_node`` gives every node its own cache, consulted when a request reaches the node;
a node that is down answers nothing, cache included. A hit is served after a draw of
``hit_latency`` and skips the model; a miss goes on to the model, and its result is inserted
when the node has computed it (dropped and failed requests insert nothing).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Literal

import simpy
from pydantic import BaseModel, ConfigDict, Field

from simulator.model.cache import CACHE_POLICIES
from simulator.model.events import Due
from simulator.model.request import Request
from simulator.service import SERVICE_MODELS

CachePolicyConfig = CACHE_POLICIES.config_type()
ServiceConfig = SERVICE_MODELS.config_type()


class CacheSpec(BaseModel):
    """The scenario's ``cache`` section (requests need keys: ``workload.keys``)."""

    model_config = ConfigDict(extra="forbid")
    scope: Literal["shared", "per_node"] = Field(
        "shared", description="shared: one cache in front of the routers; per_node: one cache on every node"
    )
    policy: CachePolicyConfig = Field(description="eviction policy and capacity: lru, lfu or ttl")
    hit_latency: ServiceConfig = Field(description="time to serve a hit, in ms (a service model)")


def _unconnected(_request: Request) -> None:
    raise RuntimeError("cache tier is not connected to a cluster")


class CacheTier:
    """The caches of one replication; ``on_hit_served`` (set by the cluster) receives a hit once its latency is over."""

    def __init__(
        self,
        env: simpy.Environment,
        spec: CacheSpec,
        node_count: int,
        hit_latency_ms: Iterator[float],
    ) -> None:
        self.env = env
        self.shared = spec.scope == "shared"
        policy = CACHE_POLICIES.policy_class(spec.policy)
        self.caches = [policy(spec.policy) for _ in range(1 if self.shared else node_count)]
        self.hit_latency_ms = hit_latency_ms
        self.on_hit_served: Callable[[Request], None] = _unconnected

    def serves(self, request: Request, cache_index: int) -> bool:
        """Look the request's key up; on a hit, schedule its answer and return True."""
        now_ms = self.env._now
        if not self.caches[cache_index].lookup(request.key, now_ms):
            return False
        hit_ms = next(self.hit_latency_ms)
        request.cache_hit = True
        request.cache_ms = hit_ms
        request.start_ms = now_ms
        Due(self.env, hit_ms, request, self._hit_over)
        return True

    def _hit_over(self, event: Due) -> None:
        request: Request = event._value
        request.end_ms = self.env._now
        self.on_hit_served(request)

    def store(self, request: Request) -> None:
        """Keep the result the model just computed for the request's key."""
        self.caches[0 if self.shared else request.node_index].insert(request.key, self.env._now)
