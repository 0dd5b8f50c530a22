"""The scenario schema: what a YAML scenario file may say, validated by pydantic.

Unknown keys are errors everywhere. Policies (arrival processes, service models, queue
disciplines, admission, routers) come from their registries, so a new policy class appears
here without edits.
"""

from __future__ import annotations

from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    model_validator,
)

from simulator.model.admission import ADMISSION_POLICIES, AdmitAll
from simulator.model.batching import BatchingSpec
from simulator.model.cache_tier import CacheSpec
from simulator.model.disruptions import DISRUPTIONS
from simulator.model.execution import DeviceSpec, ModelCacheSpec, ModelSpec
from simulator.model.partitioning import PartitioningSpec
from simulator.model.pipeline import PipelineSpec
from simulator.model.disciplines import DISCIPLINES, Fifo
from simulator.model.router import ROUTERS, RoundRobin
from simulator.service import SERVICE_MODELS
from simulator.workload.arrivals import ARRIVAL_PROCESSES
from simulator.workload.keys import KEY_POPULARITY

ArrivalConfig = ARRIVAL_PROCESSES.config_type()
ServiceConfig = SERVICE_MODELS.config_type()
DisciplineConfig = DISCIPLINES.config_type()
AdmissionConfig = ADMISSION_POLICIES.config_type()
RouterConfig = ROUTERS.config_type()
EventConfig = DISRUPTIONS.config_type()
KeyConfig = KEY_POPULARITY.config_type()


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RequestClass(_Strict):
    """A class of requests: its share of arrivals, priority, deadline and real-time kind."""

    name: str = Field(min_length=1)
    share: PositiveFloat = Field(1.0, description="relative weight of this class among arrivals")
    priority: NonNegativeInt = Field(0, description="0 is served first under the priority discipline")
    deadline_ms: PositiveFloat = Field(description="relative deadline: arrival to completion")
    kind: Literal["hard", "firm", "soft"] = Field(
        "soft",
        description="hard: no request may miss; firm: a late result is worthless (may be dropped); "
        "soft: at least `target` of requests must meet the deadline",
    )
    target: float | None = Field(None, gt=0, le=1, description="fraction that must meet the deadline")
    service: ServiceConfig | None = Field(None, description="service model of this class (default: the node's)")
    model: str | None = Field(None, description="name of the model (in `models`) this class runs, for model caches")

    @model_validator(mode="after")
    def _target_fits_kind(self) -> "RequestClass":
        if self.kind == "soft" and self.target is None:
            raise ValueError("a soft class needs `target`, the fraction that must meet the deadline (e.g. 0.99)")
        if self.kind == "hard" and self.target not in (None, 1.0):
            raise ValueError("a hard class allows no miss: leave `target` out (it is 1.0)")
        return self

    @property
    def required_met_ratio(self) -> float | None:
        return 1.0 if self.kind == "hard" else self.target


class Workload(_Strict):
    """One arrival process; each arrival belongs to a class drawn by the classes' shares."""

    arrival: ArrivalConfig
    classes: list[RequestClass] = Field(min_length=1)
    keys: KeyConfig | None = Field(
        None, description="which key each request asks for (zipf, uniform, trace); needed by caches and partitions"
    )


class NodeSpec(_Strict):
    """A node kind: workers serving one queue; ``replicas`` identical copies of it."""

    name: str = Field(min_length=1)
    replicas: PositiveInt = 1
    workers: PositiveInt = 1
    service: ServiceConfig
    discipline: DisciplineConfig = Field(default_factory=lambda: Fifo.Config(policy="fifo"))
    queue_capacity: NonNegativeInt | None = Field(
        None, description="waiting places; an arrival finding them full is dropped (0 = a loss system)"
    )
    admission: AdmissionConfig = Field(default_factory=lambda: AdmitAll.Config(policy="none"))
    batching: BatchingSpec | None = Field(None, description="dynamic batching (Triton-style); default: one request per call")
    device: DeviceSpec | None = Field(None, description="accelerator stages: copies around compute, concurrency slowdown")
    model_cache: ModelCacheSpec | None = Field(None, description="models held in memory; a miss pays a cold load")


class NetworkSpec(_Strict):
    """Delay between the router and a node, drawn independently each way."""

    delay: ServiceConfig = Field(description="one-way delay model, in ms (any service-time model)")


class FailureHandling(_Strict):
    """What happens to requests queued or running on a node when it fails."""

    in_flight: Literal["retry", "fail"] = Field("retry", description="retry on another replica, or count as failed")
    max_retries: NonNegativeInt = 2


class RunSettings(_Strict):
    """How long, how often and how precisely to simulate."""

    requests: PositiveInt = Field(100_000, description="measured requests per replication (after warm-up)")
    warmup_requests: NonNegativeInt | None = Field(None, description="requests ignored at the start (default requests/10)")
    replications: PositiveInt = Field(5, description="independent replications; confidence intervals come from them")
    seed: int = 1
    confidence: float = Field(0.95, gt=0, lt=1)
    batches: int = Field(20, ge=2, le=1000, description="batches for batch-means intervals when replications = 1")
    monitoring_window_s: PositiveFloat = Field(1.0, description="window of the monitoring time series, in seconds")
    max_queue_length: PositiveInt = Field(
        100_000, description="a queue longer than this stops the run as unstable instead of growing forever"
    )

    @property
    def warmup(self) -> int:
        return self.requests // 10 if self.warmup_requests is None else self.warmup_requests


class Scenario(_Strict):
    """A whole scenario file."""

    name: str = Field(min_length=1)
    description: str = ""
    run: RunSettings = Field(default_factory=RunSettings)
    workload: Workload
    nodes: list[NodeSpec] = Field(min_length=1)
    router: RouterConfig = Field(default_factory=lambda: RoundRobin.Config(policy="round_robin"))
    partitioning: PartitioningSpec = Field(default_factory=PartitioningSpec)
    network: NetworkSpec | None = None
    failure_handling: FailureHandling = Field(default_factory=FailureHandling)
    events: list[EventConfig] = Field(default_factory=list, description="failures, rolling updates, load spikes")
    models: dict[str, ModelSpec] = Field(default_factory=dict, description="models classes can name (for model caches)")
    cache: CacheSpec | None = Field(None, description="result cache in front of the model (needs workload.keys)")
    pipeline: PipelineSpec | None = Field(None, description="model-parallel stages: node specs a request visits in order")

    @model_validator(mode="after")
    def _consistent(self) -> "Scenario":
        if self.workload.keys is None:
            if self.cache is not None:
                raise ValueError("cache: a result cache needs request keys; add workload.keys (e.g. popularity: zipf)")
            if self.partitioning.partitions > 1:
                raise ValueError(
                    "partitioning: requests are split over partitions by key; add workload.keys (e.g. popularity: zipf)"
                )
        for what, names in (
            ("workload.classes", [c.name for c in self.workload.classes]),
            ("nodes", [n.name for n in self.nodes]),
        ):
            duplicates = sorted({name for name in names if names.count(name) > 1})
            if duplicates:
                raise ValueError(f"{what}: names must be unique; repeated: {', '.join(duplicates)}")
        if self.pipeline is not None:
            names = [spec.name for spec in self.nodes]
            stages = self.pipeline.stages
            if sorted(stages) != sorted(names):
                raise ValueError(
                    f"pipeline.stages: {stages} must name every node spec exactly once, in visiting order; "
                    f"the node specs are {names}"
                )
            if self.cache is not None and self.cache.scope == "per_node":
                raise ValueError("cache.scope: per_node caches are not supported with a pipeline; use scope: shared")
        for request_class in self.workload.classes:
            if request_class.model is not None and request_class.model not in self.models:
                raise ValueError(
                    f"workload.classes: class {request_class.name!r} names model {request_class.model!r}, "
                    f"which is not in `models` ({', '.join(sorted(self.models)) or 'none defined'})"
                )
        for spec in self.nodes:
            if spec.model_cache is None:
                continue
            unnamed = [c.name for c in self.workload.classes if c.model is None]
            if unnamed:
                raise ValueError(f"nodes: {spec.name!r} has a model_cache, so every class needs `model`; missing for {unnamed}")
            too_large = [m for m, model in self.models.items() if model.size_mb > spec.model_cache.memory_mb]
            if too_large:
                raise ValueError(f"nodes: models {too_large} do not fit in {spec.name!r}'s model_cache.memory_mb")
        spikes = sorted((e.at_s, e.at_s + e.duration_s) for e in self.events if e.type == "load_spike")
        for (_, first_end), (second_start, _) in zip(spikes, spikes[1:]):
            if second_start < first_end:
                raise ValueError("events: load spikes must not overlap")
        return self
