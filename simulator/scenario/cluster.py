"""Settings of the cluster around the nodes: routing, partitions, network, pipeline, failures, result cache."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from simulator.registry import (
    CACHE_POLICIES,
    FAILURE_HANDLING,
    PARTITIONERS,
    ROUTERS,
    PolicyConfig,
)
from simulator.scenario.bounds import MAX_CATALOG, TimeMs
from simulator.scenario.service import ServiceConfig
from simulator.settings import Settings

RouterConfig = ROUTERS.field()
PartitioningConfig = PARTITIONERS.field()
FailureHandlingConfig = FAILURE_HANDLING.field()
CachePolicyConfig = CACHE_POLICIES.field()


# -- routers: which replica of a partition a request is sent to ----------------------------------


@ROUTERS.register_config
class RoundRobinRouting(PolicyConfig):
    """Replicas in turn."""

    policy: Literal["round_robin"]


@ROUTERS.register_config
class RandomRouting(PolicyConfig):
    """A uniformly random replica (splits a Poisson stream into independent Poisson streams)."""

    policy: Literal["random"]


@ROUTERS.register_config
class ShortestQueueRouting(PolicyConfig):
    """The replica with the fewest requests sent to it and not yet answered (least request)."""

    policy: Literal["jsq"]


@ROUTERS.register_config
class PowerOfTwoRouting(PolicyConfig):
    """Two distinct random replicas; the one with fewer requests sent to it and not yet answered."""

    policy: Literal["power_of_two"]


@ROUTERS.register_config
class LeastWorkRouting(PolicyConfig):
    """The replica with the least expected work (mean service times) sent to it and not yet answered."""

    policy: Literal["least_work"]


@ROUTERS.register_config
class PeakEwmaRouting(PolicyConfig):
    """Finagle's peak-EWMA: latency EWMA × (unanswered requests + 1), least of two random replicas."""

    policy: Literal["peak_ewma"]
    decay_ms: float = Field(10_000.0, ge=1e-3, le=1e12, description="time constant of the latency EWMA's decay")
    choices: Literal["two", "all"] = Field("two", description="compare two random replicas, or all of them")


@ROUTERS.register_config
class PriorityLanesRouting(PolicyConfig):
    """Join-shortest-queue, but the first ``reserved_replicas`` take only urgent requests."""

    policy: Literal["priority_lanes"]
    urgent_priority: int = Field(0, ge=0, le=1_000_000, description="requests with priority ≤ this may use every replica")
    reserved_replicas: int = Field(1, ge=1, le=1000, description="replicas (per partition) kept for urgent requests")


# -- partitioning: which partition owns a request's key ------------------------------------------


@PARTITIONERS.register_config
class HashPartitioning(PolicyConfig):
    """Keys spread over partitions by a hash (hot neighbouring keys land apart); ``scheme`` may be left out."""

    scheme: Literal["hash"]
    partitions: int = Field(1, ge=1, le=1000)


@PARTITIONERS.register_config
class RangePartitioning(PolicyConfig):
    """Contiguous key ranges, one per partition."""

    scheme: Literal["range"]
    partitions: int = Field(1, ge=1, le=1000)


# -- what happens to the requests of a node that fails --------------------------------------------


@FAILURE_HANDLING.register_config
class RetryOrphans(PolicyConfig):
    """Requests queued or running on a failed node are sent to another replica, up to ``max_retries`` times."""

    in_flight: Literal["retry"]
    max_retries: int = Field(2, ge=0, le=1000)


@FAILURE_HANDLING.register_config
class FailOrphans(PolicyConfig):
    """Requests queued or running on a failed node are counted as failed (dropped: node_failure)."""

    in_flight: Literal["fail"]


# -- result cache --------------------------------------------------------------------------------


class _CacheCapacity(PolicyConfig):
    capacity_entries: int = Field(ge=1, le=MAX_CATALOG, description="how many results the cache holds at most")


@CACHE_POLICIES.register_config
class LruCache(_CacheCapacity):
    """LRU: a full cache evicts the key whose last use is oldest."""

    policy: Literal["lru"]


@CACHE_POLICIES.register_config
class LfuCache(_CacheCapacity):
    """In-cache LFU: a full cache evicts the key used least often since it entered; ties: least recent."""

    policy: Literal["lfu"]


@CACHE_POLICIES.register_config
class TtlCache(_CacheCapacity):
    """TTL: a result is served for ``ttl_ms`` after its insertion (hits do not extend it), then dropped."""

    policy: Literal["ttl"]
    ttl_ms: TimeMs = Field(description="how long a result stays valid after it is computed")


class CacheSpec(Settings):
    """The scenario's ``cache`` section (requests need keys: ``workload.keys``)."""

    scope: Literal["shared", "per_node"] = Field(
        "shared", description="shared: one cache in front of the routers; per_node: one cache on every node"
    )
    policy: CachePolicyConfig = Field(description="eviction policy and capacity: lru, lfu or ttl")
    hit_latency: ServiceConfig = Field(description="time to serve a hit, in ms (a service model)")


# -- network and pipeline ------------------------------------------------------------------------


class NetworkSpec(Settings):
    """Delay between the router and a node: ``delay`` drawn independently each way, or a leg alone —
    ``request`` (router → node: routers see it) and/or ``response`` (node → client: it only adds to
    latency; a measured client round trip goes here, e.g. from ``latsim testbed``)."""

    delay: ServiceConfig | None = Field(None, description="one-way delay model, in ms (any service-time model), drawn each way")
    request: ServiceConfig | None = Field(None, description="delay from the router to the node only, in ms")
    response: ServiceConfig | None = Field(None, description="delay from the node back to the client only, in ms")

    @model_validator(mode="after")
    def _legs(self) -> NetworkSpec:
        if self.delay is not None and (self.request is not None or self.response is not None):
            raise ValueError("give `delay` (each way) or `request`/`response` (one leg each), not both")
        if self.delay is None and self.request is None and self.response is None:
            raise ValueError("a network needs `delay` (each way), or `request` and/or `response`")
        return self

    def legs(self) -> dict[str, ServiceConfig | None]:
        """The delay model of each leg, ``request`` and ``response`` (None: no delay on that leg)."""
        if self.delay is not None:
            return {"request": self.delay, "response": self.delay}
        return {"request": self.request, "response": self.response}


class PipelineSpec(Settings):
    """Model-parallel stages: node specs a request visits in order, and the hop between them."""

    stages: list[str] = Field(min_length=2, description="node spec names, first stage first; every node spec is a stage")
    transfer: ServiceConfig = Field(description="time to move a request's activations to the next stage, in ms")
