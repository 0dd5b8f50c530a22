"""The scenario: what a YAML scenario file may say, validated by pydantic, frozen once valid.

Unknown keys are errors everywhere. Policies (arrival processes, service models, queue
disciplines, admission, batchers, routers, partitioning, failure handling, caches, events) are
looked up in their registries when a scenario is validated, so a policy registered later (a
plug-in) is accepted like a built-in one.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import Field, PrivateAttr, model_validator

from simulator.errors import ScenarioError
from simulator.scenario.cluster import (
    CacheSpec,
    FailureHandlingConfig,
    HashPartitioning,
    NetworkSpec,
    PartitioningConfig,
    PipelineSpec,
    RetryOrphans,
    RoundRobinRouting,
    RouterConfig,
)
from simulator.scenario.bounds import MAX_DESCRIPTION_CHARS, MAX_NODES, MAX_REPLICATIONS, MAX_REQUESTS, Count, CountOrZero, Name
from simulator.scenario.events import EventConfig
from simulator.scenario.nodes import ModelSpec, NodeSpec
from simulator.scenario.plan import PlanSpec
from simulator.scenario.workload import ALL_CLASSES, Workload
from simulator.settings import Settings


class PrecisionSettings(Settings):
    """A stopping rule: add replications until one statistic's interval is as narrow as asked, or the cap is hit."""

    statistic: str = Field(
        min_length=1,
        max_length=200,
        description="the statistic whose interval must be narrow, a path in a class summary: latency_ms.p99, "
        "wait_ms.mean, latency_or_drop_ms.p99.9, deadline_met_ratio, drop_ratio, throughput_per_s, ...",
    )
    scope: str = Field("all", min_length=1, description="the class whose statistic it is, or `all` (every class together)")
    relative_half_width: float = Field(
        gt=0, le=1, description="the wider half of the interval, relative to the estimate, must be at most this (0.02: ±2 %)"
    )
    max_replications: int = Field(
        50, ge=2, le=MAX_REPLICATIONS, description=f"never more replications than this (at most {MAX_REPLICATIONS:,}); a note says when it stopped the run"
    )


class RunSettings(Settings):
    """How long, how often and how precisely to simulate."""

    requests: Count = Field(100_000, description=f"measured requests per replication (after warm-up), at most {MAX_REQUESTS:,}")
    warmup_requests: CountOrZero | None = Field(
        None,
        description="requests ignored at the start; default requests/10, extended when MSER detects a longer "
        "transient (the summary reports the warm-up used and the transient found)",
    )
    replications: int = Field(
        5, ge=1, le=MAX_REPLICATIONS, description="independent replications; confidence intervals come from them"
    )
    seed: int = Field(1, ge=0, lt=2**128, description="random seed, a non-negative integer")
    confidence: float = Field(0.95, ge=0.5, lt=1, description="level of every interval (and of one-sided verdict bounds)")
    monitoring_window_s: float = Field(1.0, ge=1e-3, le=1e9, description="window of the monitoring time series, in seconds")
    max_queue_length: Count = Field(
        100_000, description="a queue longer than this stops the run as unstable instead of growing forever"
    )
    precision: PrecisionSettings | None = Field(
        None,
        description="run `replications` first, then add replications until this statistic's interval is narrow "
        "enough or `max_replications` is reached (e.g. {statistic: latency_ms.p99, relative_half_width: 0.02})",
    )

    @model_validator(mode="after")
    def _precision_fits(self) -> RunSettings:
        if self.precision is not None:
            if self.replications < 2:
                raise ValueError("precision: needs intervals over replications; set run.replications to 2 or more")
            if self.precision.max_replications < self.replications:
                raise ValueError(
                    f"precision.max_replications ({self.precision.max_replications}) is below run.replications ({self.replications})"
                )
        return self

    @property
    def warmup(self) -> int:
        return self.requests // 10 if self.warmup_requests is None else self.warmup_requests


class Scenario(Settings):
    """A whole scenario file, validated and frozen; ``base_dir`` resolves the files it names.

    Change a copy with :meth:`replace`, which validates the result like a file would be.
    """

    name: Name
    description: str = Field("", max_length=MAX_DESCRIPTION_CHARS)
    run: RunSettings = Field(default_factory=RunSettings)
    workload: Workload
    nodes: list[NodeSpec] = Field(min_length=1)
    router: RouterConfig = Field(default_factory=lambda: RoundRobinRouting(policy="round_robin"))
    partitioning: PartitioningConfig = Field(default_factory=lambda: HashPartitioning(scheme="hash"))
    network: NetworkSpec | None = None
    failure_handling: FailureHandlingConfig = Field(default_factory=lambda: RetryOrphans(in_flight="retry"))
    events: list[EventConfig] = Field(default_factory=list, max_length=10_000, description="failures, rolling updates, load spikes")
    models: dict[str, ModelSpec] = Field(default_factory=dict, description="models classes can name (for model caches)")
    cache: CacheSpec | None = Field(None, description="result cache in front of the model (needs workload.keys)")
    pipeline: PipelineSpec | None = Field(None, description="model-parallel stages: node specs a request visits in order")
    plan: PlanSpec | None = Field(None, description="a capacity plan for `latsim plan`: target load, SLOs, search space, objective")

    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)
    _source: str = PrivateAttr("<scenario>")

    @property
    def base_dir(self) -> Path:
        """The folder relative file paths (data files, profile bundles) are resolved against."""
        return self._base_dir

    @property
    def source(self) -> str:
        """Where the scenario came from (its file), for error messages."""
        return self._source

    def path(self, relative: str) -> Path:
        """A file the scenario names, resolved against ``base_dir``."""
        return self._base_dir / relative

    def replace(self, field: str, value: Any) -> Scenario:
        """A validated copy with ``field`` (a path like ``nodes[0].workers``) set to ``value``.

        Raises ScenarioError naming the field if the result is not a valid scenario.
        """
        from simulator.scenario.loader import scenario_from_dict

        data = self.model_dump(mode="python")
        _assign(data, field, value, self._source)
        return scenario_from_dict(data, source=self._source, base_dir=self._base_dir)

    def node_spec_index(self, name: str | None, what: str) -> int:
        """The index of the node spec ``name`` (None: the only one); ``what`` names the option or field that chose it."""
        names = [spec.name for spec in self.nodes]
        if name is None:
            if len(names) > 1:
                raise ScenarioError(f"{self._source}: {what}: the scenario has several node specs ({', '.join(names)}); name one")
            return 0
        if name not in names:
            raise ScenarioError(f"{self._source}: {what}: no node spec {name!r}; the node specs are {', '.join(names)}")
        return names.index(name)

    def node_names(self) -> list[str]:
        """Every node instance's name, in node-index order: partition, then node spec, then replica."""
        partitions = self.partitioning.partitions
        return [
            node_name(spec.name, spec.replicas, replica, partitions, partition)
            for partition in range(partitions)
            for spec in self.nodes
            for replica in range(spec.replicas)
        ]

    def node_workers(self) -> list[int]:
        """Every node instance's worker count, in node-index order."""
        return [spec.workers for _ in range(self.partitioning.partitions) for spec in self.nodes for _ in range(spec.replicas)]

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        instances = self.partitioning.partitions * sum(spec.replicas for spec in self.nodes)
        if instances > MAX_NODES:
            raise ValueError(
                f"nodes: {instances:,} node instances (partitions × replicas of every spec); at most {MAX_NODES:,}"
            )
        names = self.node_names()
        clashes = sorted({name for name in names if names.count(name) > 1})
        if clashes:
            raise ValueError(
                f"nodes: node specs give instances the same name ({', '.join(clashes)}): a spec named "
                "'x' with replicas is 'x-0', 'x-1', …; rename the specs"
            )
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
        precision = self.run.precision
        if precision is not None and precision.scope != ALL_CLASSES and precision.scope not in [c.name for c in self.workload.classes]:
            raise ValueError(
                f"run.precision.scope: no class {precision.scope!r}; the classes are "
                f"{', '.join(c.name for c in self.workload.classes)} (or {ALL_CLASSES})"
            )
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


def node_name(spec_name: str, replicas: int, replica: int, partitions: int, partition: int) -> str:
    """A node instance's name: ``<spec>`` (``-p<partition>`` with partitions) (``-<replica>`` with replicas)."""
    name = spec_name if partitions == 1 else f"{spec_name}-p{partition}"
    return name if replicas == 1 else f"{name}-{replica}"


_STEP = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)((?:\[\d+\])*)$")


def _assign(data: dict, field: str, value: Any, source: str) -> None:
    """Set ``field`` (``a.b[2].c``) inside plain scenario data; the containers on the way must exist."""
    from simulator.errors import ScenarioError

    if not isinstance(field, str):
        raise ScenarioError(f"{source}: a field path is text like nodes[0].workers, not {type(field).__name__} {field!r:.80}")
    steps: list[str | int] = []
    for part in field.split("."):
        match = _STEP.match(part)
        if match is None:
            raise ScenarioError(f"{source}: {field!r} is not a field path (e.g. nodes[0].workers, workload.arrival.rate_per_s)")
        steps.append(match.group(1))
        steps.extend(int(index) for index in re.findall(r"\[(\d+)\]", match.group(2)))
    node: Any = data
    for depth, step in enumerate(steps[:-1]):
        where = _path_text(steps[: depth + 1])
        if isinstance(step, int):
            if not isinstance(node, list) or step >= len(node):
                raise ScenarioError(f"{source}: {where}: no such list entry")
        elif not isinstance(node, dict) or step not in node:
            raise ScenarioError(f"{source}: {where}: no such field")
        node = node[step]
        if node is None:
            raise ScenarioError(f"{source}: {where} is not set; replace the whole section instead")
    last = steps[-1]
    if isinstance(last, int):
        if not isinstance(node, list) or last >= len(node):
            raise ScenarioError(f"{source}: {_path_text(steps)}: no such list entry")
    elif not isinstance(node, dict):
        raise ScenarioError(f"{source}: {_path_text(steps)}: no such field")
    node[last] = value


def _path_text(steps: list[str | int]) -> str:
    return "".join(f"[{step}]" if isinstance(step, int) else (f".{step}" if index else step) for index, step in enumerate(steps))
