"""Where the result cache sits in the cluster, and what a hit costs.

``scope: shared`` is one cache in front of the routers: a hit never reaches a node.
``scope: per_node`` gives every node its own cache, consulted when a request reaches the node;
a node that is down answers nothing, cache included. A hit is served after a draw of
``hit_latency`` and skips the model; a miss goes on to the model, and its result is inserted
when the node has computed it (dropped and failed requests insert nothing).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from simulator.model.request import Request
from simulator.model.simulation import Due, Environment
from simulator.registry import CACHE_POLICIES
from simulator.scenario.cluster import CacheSpec


def _unconnected(_request: Request) -> None:
    raise RuntimeError("cache tier is not connected to a cluster")


class CacheTier:
    """The caches of one replication; ``on_hit_served`` (set by the cluster) receives a hit once its latency is over."""

    def __init__(
        self,
        env: Environment,
        spec: CacheSpec,
        node_count: int,
        hit_latency_ms: Iterator[float],
    ) -> None:
        self.env = env
        self.shared = spec.scope == "shared"
        self.caches = [CACHE_POLICIES.build(spec.policy) for _ in range(1 if self.shared else node_count)]
        self.hit_latency_ms = hit_latency_ms
        self.on_hit_served: Callable[[Request], None] = _unconnected

    def serves(self, request: Request, cache_index: int) -> bool:
        """Look the request's key up; on a hit, schedule its answer and return True."""
        now_ms = self.env.now
        if not self.caches[cache_index].lookup(request.key, now_ms):
            return False
        hit_ms = next(self.hit_latency_ms)
        request.cache_hit = True
        request.cache_ms = hit_ms
        request.start_ms = now_ms
        Due(self.env, hit_ms, request, self._hit_over)
        return True

    def _hit_over(self, event: Due) -> None:
        request: Request = event.payload
        request.end_ms = self.env.now
        self.on_hit_served(request)

    def store(self, request: Request) -> None:
        """Keep the result the model just computed for the request's key."""
        self.caches[0 if self.shared else request.node_index].insert(request.key, self.env.now)
