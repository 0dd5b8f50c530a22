"""The ``plan:`` block of a scenario: the target load, the SLOs, the search space and the objective.

``latsim plan`` reads it to find the cheapest configuration that meets every SLO at the target
load, and each configuration's maximum sustainable load. Pure settings: the search itself is
``simulator.planning``. Times in ms, rates per second, costs per hour (any currency).
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, model_validator

from simulator.scenario.cluster import RouterConfig
from simulator.scenario.nodes import BatcherConfig, DisciplineConfig
from simulator.scenario.workload import RateSegment
from simulator.settings import Settings

MAX_OPTIONS = 1_000  # options of one search dimension
MAX_CONFIGURATIONS = 10_000  # configurations of a whole space (every one is validated, screened by theory and recorded first)
MAX_RATE_PER_S = 1e9


class LoadSpec(Settings):
    """The load a configuration must carry: one or more mean arrival rates, or a load curve.

    Every arrival process of the scenario is scaled so that the total mean rate is the target;
    ``curve`` replaces ``workload.arrival`` by a piecewise (repeating) Poisson profile instead.
    """

    targets_per_s: list[float] | None = Field(
        None, min_length=1, max_length=100, description="total mean arrival rates (req/s); a configuration must meet the SLOs at each"
    )
    curve: list[RateSegment] | None = Field(
        None, min_length=1, max_length=10_000, description="a load curve (segments of duration_s and rate_per_s, repeating)"
    )

    @model_validator(mode="after")
    def _one_kind(self) -> LoadSpec:
        if (self.targets_per_s is None) == (self.curve is None):
            raise ValueError("give either targets_per_s (a list of req/s) or curve (segments), not both and not neither")
        bad = [rate for rate in self.targets_per_s or [] if not 0 < rate <= MAX_RATE_PER_S]
        if bad:
            raise ValueError(f"targets_per_s: {bad} are not rates in (0, {MAX_RATE_PER_S:g}] req/s")
        if self.curve is not None and not any(segment.rate_per_s > 0 for segment in self.curve):
            raise ValueError("curve: at least one segment needs rate_per_s > 0")
        return self


class ClassSlo(Settings):
    """What one class (or ``all``) must achieve; a configuration meets it when every bound holds at the confidence level."""

    percentile: Literal["p50", "p90", "p95", "p99", "p99.9"] | None = Field(None, description="latency percentile bounded by latency_ms")
    latency_ms: float | None = Field(None, gt=0, le=1e9, description="bound on that percentile of end-to-end latency")
    count_drops: bool = Field(True, description="judge the percentile with dropped requests counted as infinitely late")
    min_deadline_met_ratio: float | None = Field(None, gt=0, le=1, description="least fraction of requests that meet their deadline")
    max_drop_ratio: float | None = Field(None, ge=0, lt=1, description="largest fraction of requests dropped")
    min_goodput_per_s: float | None = Field(None, gt=0, le=MAX_RATE_PER_S, description="least requests per second served within the deadline")

    @model_validator(mode="after")
    def _something_bounded(self) -> ClassSlo:
        if (self.percentile is None) != (self.latency_ms is None):
            raise ValueError("percentile and latency_ms go together (e.g. percentile: p99, latency_ms: 50)")
        if self.latency_ms is None and all(
            value is None for value in (self.min_deadline_met_ratio, self.max_drop_ratio, self.min_goodput_per_s)
        ):
            raise ValueError("give at least one bound: percentile + latency_ms, min_deadline_met_ratio, max_drop_ratio or min_goodput_per_s")
        return self


class HardwareOption(Settings):
    """A kind of machine: a profile bundle measured on it, and what one replica costs per hour."""

    name: str = Field(min_length=1, max_length=200)
    bundle: str = Field(description="profile bundle directory, relative to the scenario file")
    device: Literal["cpu", "cuda"] = "cpu"
    cost_per_hour: float = Field(ge=0, le=1e9, description="cost of one replica (node instance) per hour, whatever its workers")
    cost_per_worker_per_hour: float = Field(
        0.0, ge=0, le=1e9, description="cost of each worker (a device or a core) of a replica per hour, added to cost_per_hour"
    )
    threads: int | None = Field(None, ge=1, le=1024, description="intra-op threads of the samples (default: the bundle's serving count)")
    stages: Literal["end_to_end", "device"] | None = Field(
        None,
        description="end_to_end: one measured call per batch (CPU default); device: H2D copy, compute and D2H copy "
        "as separate stages with the measured concurrency slowdown (cuda default)",
    )
    calibration: str | None = Field(
        None, min_length=1, max_length=4096,
        description="calibration file of a real server on this hardware (latsim calibrate), relative to the scenario "
        "file: its speed process, overhead and outside time apply on top of the bundle's profiles; the plan also "
        "reports the answer from the raw profiles beside it",
    )

    @property
    def staged(self) -> bool:
        return (self.stages or ("device" if self.device == "cuda" else "end_to_end")) == "device"


class VariantSpace(Settings):
    """Model variants of one family to try, and the least quality a variant must keep (from the bundle's quality columns)."""

    family: str = Field(min_length=1, max_length=200, description="model family in the bundles, e.g. cnn")
    names: list[str] = Field(min_length=1, max_length=MAX_OPTIONS, description="variants, e.g. [fp32, int8, pruned, distilled]")
    min_accuracy: float | None = Field(None, ge=0, le=1, description="least test accuracy (the bundle's quality.accuracy)")
    min_agreement: float | None = Field(None, ge=0, le=1, description="least agreement with fp32 (quality.agreement_with_fp32)")


class SearchSpace(Settings):
    """The configurations to search: every combination of the options given (left out: as in the scenario)."""

    node: str | None = Field(None, description="the node spec the space varies (default: the only one)")
    replicas: list[int] | None = Field(None, min_length=1, max_length=MAX_OPTIONS, description="replica counts (node instances)")
    workers: list[int] | None = Field(None, min_length=1, max_length=MAX_OPTIONS, description="workers per replica")
    hardware: list[HardwareOption] | None = Field(None, min_length=1, max_length=MAX_OPTIONS)
    variants: VariantSpace | None = None
    batching: list[BatcherConfig | None] | None = Field(
        None, min_length=1, max_length=MAX_OPTIONS, description="dynamic batching settings (null: no batching)"
    )
    cache_capacity_entries: list[int | None] | None = Field(
        None, min_length=1, max_length=MAX_OPTIONS, description="result cache sizes (null: no cache; needs the scenario's cache section)"
    )
    disciplines: list[DisciplineConfig] | None = Field(None, min_length=1, max_length=MAX_OPTIONS)
    routers: list[RouterConfig] | None = Field(None, min_length=1, max_length=MAX_OPTIONS)

    @model_validator(mode="after")
    def _sane_counts(self) -> SearchSpace:
        for name in ("replicas", "workers"):
            values = getattr(self, name) or []
            if any(not 1 <= value <= 10_000 for value in values) or len(set(values)) != len(values):
                raise ValueError(f"{name}: distinct counts from 1 to 10,000")
        sizes = [size for size in self.cache_capacity_entries or [] if size is not None]
        if any(not 1 <= size <= 10_000_000 for size in sizes):
            raise ValueError("cache_capacity_entries: sizes from 1 to 10,000,000 (or null)")
        if self.variants is not None and self.hardware is None:
            raise ValueError("variants: give hardware too (the bundles the variants are measured in)")
        options = [self.replicas, self.workers, self.hardware, self.variants.names if self.variants else None, self.batching,
                   self.cache_capacity_entries, self.disciplines, self.routers]
        size = math.prod(len(values) for values in options if values is not None)
        if size > MAX_CONFIGURATIONS:
            raise ValueError(f"the options make {size:,} configurations; at most {MAX_CONFIGURATIONS:,} (search a smaller space)")
        return self


class Precision(Settings):
    """How much simulation a verdict rests on: enough tail events per replication for the SLO judged."""

    replications: int = Field(10, ge=2, le=1_000, description="replications of every point (common random numbers: the run's seed)")
    tail_events: int = Field(
        1_000, ge=1, le=1_000_000, description="requests beyond the strictest SLO's tail per replication, for full runs"
    )
    screen_tail_events: int = Field(
        100, ge=1, le=1_000_000, description="the same for screening runs (the search; finalists are confirmed at full length)"
    )
    min_requests: int = Field(2_000, ge=100, le=100_000_000, description="fewest measured requests per replication")
    max_requests: int = Field(
        2_000_000, ge=100, le=100_000_000, description="most measured requests per replication, inconclusive extensions included"
    )
    extensions: int = Field(2, ge=0, le=10, description="times an inconclusive point is rerun at twice the length, on fresh streams, before it stays inconclusive")

    @model_validator(mode="after")
    def _ordered(self) -> Precision:
        if self.min_requests > self.max_requests:
            raise ValueError("min_requests must not exceed max_requests")
        return self


class PlanSpec(Settings):
    """A capacity plan: the cheapest configuration of ``space`` that meets ``slos`` at ``load``."""

    load: LoadSpec
    slos: dict[str, ClassSlo] = Field(min_length=1, max_length=1_000, description="SLOs per class name (or all)")
    space: SearchSpace
    cost_per_hour: float | None = Field(
        None, ge=0, le=1e9, description="cost of one replica per hour, whatever its workers, when the space has no hardware options"
    )
    cost_per_worker_per_hour: float | None = Field(
        None, ge=0, le=1e9,
        description="cost of each worker (a device or a core) of a replica per hour, added to cost_per_hour, when the space "
        "has no hardware options: a plan over workers then prefers fewer",
    )
    objective: Literal["cost_per_hour", "cost_per_million_requests"] = Field(
        "cost_per_hour",
        description="cost_per_hour (ties: the larger latency margin), or cost per million requests at the maximum sustainable load",
    )
    top: int = Field(3, ge=1, le=100, description="configurations in the top table (each confirmed by full runs)")
    max_load_tolerance: float = Field(0.03, gt=0, le=0.5, description="relative width of the bracket a maximum load is bisected to")
    what_if_loads: list[float] = Field(
        default_factory=lambda: [1.1, 1.25, 1.5], max_length=20, description="load multipliers of the what-if view"
    )
    precision: Precision = Field(default_factory=Precision)

    @model_validator(mode="after")
    def _costed(self) -> PlanSpec:
        if self.space.hardware is None and self.cost_per_hour is None and self.cost_per_worker_per_hour is None:
            raise ValueError(
                "cost_per_hour: give the cost of one replica per hour and/or cost_per_worker_per_hour (or hardware options with theirs)"
            )
        if self.space.hardware is not None and self.cost_per_worker_per_hour is not None:
            raise ValueError("cost_per_worker_per_hour: the space has hardware options; give each option its cost_per_worker_per_hour")
        if any(not 0 < factor <= 100 for factor in self.what_if_loads):
            raise ValueError("what_if_loads: multipliers in (0, 100]")
        return self
