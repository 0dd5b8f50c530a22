"""Settings of a serving node: workers, queue discipline, admission, dynamic batching, device, model cache."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, model_validator

from simulator.registry import ADMISSION_POLICIES, BATCHERS, DISCIPLINES, PolicyConfig
from simulator.scenario.bounds import MAX_VARIATION_SIGMA, CountOrZero, Name, TimeMs, TimeMsOrZero
from simulator.scenario.service import ServiceConfig
from simulator.settings import Settings

DisciplineConfig = DISCIPLINES.field()
AdmissionConfig = ADMISSION_POLICIES.field()
BatcherConfig = BATCHERS.field()


# -- queue disciplines (all non-preemptive: a running kernel cannot be interrupted) ----------------


@DISCIPLINES.register_config
class FifoDiscipline(PolicyConfig):
    """First come, first served."""

    policy: Literal["fifo"]


@DISCIPLINES.register_config
class PriorityDiscipline(PolicyConfig):
    """Non-preemptive strict priority: the smallest ``priority`` number goes first (0 = most urgent)."""

    policy: Literal["priority"]


@DISCIPLINES.register_config
class EdfDiscipline(PolicyConfig):
    """Earliest absolute deadline first (non-preemptive EDF)."""

    policy: Literal["edf"]


@DISCIPLINES.register_config
class PreemptivePriorityDiscipline(PolicyConfig):
    """Preemptive strict priority: an arrival of a more urgent class interrupts the least urgent call.

    ``resume``: the interrupted request later continues where it stopped; ``repeat``: it starts its
    whole service again (the same work: preemptive-repeat-identical). Only for nodes that serve
    one request per call on plain workers (no batching, device stages or model cache): a kernel
    on an accelerator cannot be interrupted, which is why the other disciplines never preempt.
    """

    policy: Literal["preemptive_priority"]
    mode: Literal["resume", "repeat"] = "resume"


# -- admission control (only firm classes are ever dropped) ---------------------------------------


@ADMISSION_POLICIES.register_config
class AdmitAllSettings(PolicyConfig):
    """Serve everything, however late."""

    policy: Literal["none"]


@ADMISSION_POLICIES.register_config
class DropExpiredSettings(PolicyConfig):
    """Drop a firm request whose deadline has already passed when a worker could start it."""

    policy: Literal["expired"]


@ADMISSION_POLICIES.register_config
class DropHopelessSettings(PolicyConfig):
    """Drop a firm request that would miss its deadline even with a mean-length service."""

    policy: Literal["predictive"]


# -- dynamic batching ----------------------------------------------------------------------------


@BATCHERS.register_config
class TritonBatching(PolicyConfig):
    """Triton's dynamic batcher: full batches at once, else preferred sizes, else wait up to a delay.

    A free worker takes ``max_batch_size`` waiting requests when that many wait, else the largest
    preferred size that fits, else holds until the *oldest* waiting request has waited
    ``max_queue_delay_ms`` and then takes what is there (in the discipline's order). A batch holds
    requests of one model only (as Triton batches per model). ``policy`` may be left out.
    """

    policy: Literal["triton"]
    max_batch_size: int = Field(1, ge=1, le=100_000)
    preferred_batch_sizes: list[Annotated[int, Field(ge=1, le=100_000)]] = Field(default_factory=list, max_length=1000)
    max_queue_delay_ms: TimeMsOrZero = 0.0

    @model_validator(mode="after")
    def _preferred_fit(self) -> TritonBatching:
        too_large = [size for size in self.preferred_batch_sizes if size > self.max_batch_size]
        if too_large:
            raise ValueError(f"preferred_batch_sizes {too_large} exceed max_batch_size {self.max_batch_size}")
        return self


# -- accelerators and model memory ---------------------------------------------------------------


class ProfileSlowdown(Settings):
    """Slowdown factors measured by a profile bundle's concurrent runs: the mean time of a call at
    batch 1 while k workers share the device, over the mean time alone (interpolated between the
    measured k, the last one held beyond)."""

    bundle: str = Field(description="profile bundle directory, relative to the scenario file")
    family: str
    variant: str = "fp32"
    device: Literal["cpu", "cuda"] = "cpu"
    threads: int | None = Field(None, ge=1, le=4096)
    stage: Literal["compute", "end_to_end"] = "compute"


class DeviceSpec(Settings):
    """An accelerator: copy stages around compute, and slowdown under concurrent compute."""

    h2d: ServiceConfig | None = Field(None, description="host-to-device copy time per call (a service model; batch-size aware); none: no copy")
    d2h: ServiceConfig | None = Field(None, description="device-to-host copy time per call (a service model; batch-size aware); none: no copy")
    copy_engines: int = Field(1, ge=1, le=1000, description="copies in flight at once, per direction")
    concurrency_slowdown: Annotated[list[Annotated[float, Field(gt=0, le=1e6)]], Field(max_length=100_000)] | ProfileSlowdown | Literal["processor_sharing"] = Field(
        default_factory=lambda: [1.0],
        description="compute-time multiplier with 1, 2, ... workers computing at once (last value holds "
        "beyond), a profile bundle whose concurrent runs measured it, or processor_sharing: f(k) = k "
        "(k calls share the device equally)",
    )

    @model_validator(mode="after")
    def _some_factor(self) -> DeviceSpec:
        if isinstance(self.concurrency_slowdown, list) and not self.concurrency_slowdown:
            raise ValueError("concurrency_slowdown: give at least one factor (1.0 for one worker)")
        return self


class ModelCacheSpec(Settings):
    """Models held in node memory; a class whose model is not resident pays a cold load."""

    memory_mb: float = Field(gt=0, le=1e12)


class ModelSpec(Settings):
    """A model that classes name: its memory footprint and its cold-load time from disk."""

    size_mb: float = Field(gt=0, le=1e12)
    load: ServiceConfig = Field(description="time to load the model from disk, in ms (a service model)")


# -- the waiting room: Triton's per-priority queue policy ----------------------------------------


class QueuePolicy(Settings):
    """What a waiting request may do: give up after a timeout (reject: dropped then; delay: served
    after every request that has not timed out), and how many of its priority may wait."""

    timeout_ms: TimeMs | None = Field(None, description="longest wait before the timeout action")
    timeout_action: Literal["reject", "delay"] = "reject"
    max_queue_size: CountOrZero | None = Field(None, description="waiting places for this priority; full: reject the arrival")


class QueuePolicies(Settings):
    """Queue policies per priority level (Triton's ``priority_queue_policy``), else the default."""

    default: QueuePolicy = Field(default_factory=QueuePolicy)
    priorities: dict[Annotated[int, Field(ge=0, le=1_000_000)], QueuePolicy] = Field(
        default_factory=dict, max_length=10_000, description="priority level → its policy"
    )

    def for_priority(self, priority: int) -> QueuePolicy:
        return self.priorities.get(priority, self.default)


# -- what a worker spends beyond the kernel, and how fast the machine runs --------------------------


class _OccupancyCurve(Settings):
    """A curve over the node's occupancy (the requests at the node when a call starts, this call's own
    included): linear between its points, flat beyond them."""

    occupancy: list[Annotated[float, Field(ge=0, le=1e9)]] = Field(
        default_factory=lambda: [1.0], min_length=1, max_length=10_000, description="occupancy points, increasing"
    )
    CURVE: ClassVar[tuple[str, str]]  # (the setting's name, its field of values per point)

    @model_validator(mode="after")
    def _curve(self) -> _OccupancyCurve:
        name, field = self.CURVE
        if len(self.occupancy) != len(getattr(self, field)):
            raise ValueError(f"{name}: occupancy and {field} need one entry each per point")
        if any(later <= earlier for earlier, later in zip(self.occupancy, self.occupancy[1:])):
            raise ValueError(f"{name}.occupancy: points must increase")
        return self


class OverheadSpec(_OccupancyCurve):
    """Worker time outside the kernel per call (dequeue, locks, sending the reply): a mean that may change
    with the node's occupancy, times a mean-1 variation. It adds to the call's service time."""

    CURVE: ClassVar[tuple[str, str]] = ("overhead", "mean_ms")
    mean_ms: list[Annotated[float, Field(ge=0, le=1e9)]] = Field(
        min_length=1, max_length=10_000, description="mean overhead at each occupancy point, in ms"
    )
    variation_sigma: float = Field(
        0.0, ge=0, le=MAX_VARIATION_SIGMA, description="σ of a lognormal mean-1 multiplier (0: the mean exactly)"
    )


class OccupancySlowdownSpec(_OccupancyCurve):
    """How much slower a call runs by the node's occupancy when it starts: a factor on its service time
    (before the overhead), e.g. a kernel that starts while requests wait shares the cores with the server
    receiving them and sending the replies of the calls before it."""

    CURVE: ClassVar[tuple[str, str]] = ("occupancy_slowdown", "factors")
    factors: list[Annotated[float, Field(gt=0, le=1e6)]] = Field(
        min_length=1, max_length=10_000, description="service-time factor at each occupancy point"
    )


class SpeedSpec(Settings):
    """The node's speed as a process: a Markov chain, advanced once per call, whose state's factor
    multiplies every call's service time (slow and fast stretches hit every class alike)."""

    factors: list[Annotated[float, Field(gt=0, le=1e6)]] = Field(min_length=1, max_length=16, description="factor per state")
    transition: list[list[Annotated[float, Field(ge=0, le=1)]]] = Field(
        description="probability of moving from state i (row) to state j (column) at each call"
    )
    variation_sigma: list[Annotated[float, Field(ge=0, le=MAX_VARIATION_SIGMA)]] | None = Field(
        None, description="per state, σ of a mean-1 lognormal multiplier on each call's factor: the spread a "
        "state adds to the service times (none: the factor exactly)"
    )

    @model_validator(mode="after")
    def _stochastic(self) -> SpeedSpec:
        states = len(self.factors)
        if len(self.transition) != states or any(len(row) != states for row in self.transition):
            raise ValueError(f"speed.transition: a {states} × {states} matrix (one row and column per factor)")
        if self.variation_sigma is not None and len(self.variation_sigma) != states:
            raise ValueError(f"speed.variation_sigma: one σ per state ({states})")
        if any(abs(sum(row) - 1) > 1e-9 for row in self.transition):
            raise ValueError("speed.transition: every row must sum to 1")
        return self


class AppliedCalibration(Settings):
    """Where a node's calibration was read, set by latsim when it applies the file (not written by hand)."""

    level: float = Field(gt=0, le=1e3, description="the calibrated load level taken (its measured utilisation or level)")
    level_rate_per_s: float = Field(ge=0, le=1e12, description="that level's offered rate")
    rate_per_s: float = Field(ge=0, le=1e12, description="the rate per node instance the level was chosen for")
    method: str = Field("", max_length=100)
    settings: list[Literal["speed", "overhead", "device", "network"]] = Field(
        default_factory=list, description="the settings the calibration gave"
    )


class NodeCalibration(Settings):
    """A node's calibration: a file ``latsim calibrate`` wrote from a real server's request logs."""

    file: str = Field(min_length=1, max_length=4096, description="calibration YAML (latsim calibrate --out), relative to the scenario file")
    outside: bool = Field(
        True, description="add the measured time outside the server (network, request parsing, reply writing) as the "
        "network's response leg, when the scenario has no network of its own",
    )
    applied: AppliedCalibration | None = Field(None, description="set by latsim when the file is applied; leave it out")


# -- the node ------------------------------------------------------------------------------------


class NodeSpec(Settings):
    """A node kind: workers serving one queue; ``replicas`` identical copies of it."""

    name: Name
    replicas: int = Field(1, ge=1, le=1000)
    workers: int = Field(1, ge=1, le=1_000_000)
    service: ServiceConfig
    discipline: DisciplineConfig = Field(default_factory=lambda: FifoDiscipline(policy="fifo"))
    queue_capacity: CountOrZero | None = Field(
        None,
        description="waiting places (requests held by a batcher included); an arrival finding them full is "
        "dropped, unless a worker is free: then the waiting batch starts at once (0 = a loss system)",
    )
    queue_policy: QueuePolicies | None = Field(None, description="timeouts and queue sizes per priority (reneging)")
    admission: AdmissionConfig = Field(default_factory=lambda: AdmitAllSettings(policy="none"))
    batching: BatcherConfig | None = Field(None, description="dynamic batching (Triton-style); default: one request per call")
    device: DeviceSpec | None = Field(None, description="accelerator stages: copies around compute, concurrency slowdown")
    model_cache: ModelCacheSpec | None = Field(None, description="models held in memory; a miss pays a cold load")
    overhead: OverheadSpec | None = Field(None, description="worker time per call outside the kernel, may change with occupancy")
    speed: SpeedSpec | None = Field(None, description="the machine's speed as a process over calls (a multiplier)")
    occupancy_slowdown: OccupancySlowdownSpec | None = Field(
        None, description="a factor on each call's service time by the requests at the node when it starts"
    )
    calibration: NodeCalibration | None = Field(
        None, description="a calibration file (latsim calibrate): the real server's speed process, overhead, concurrency "
        "slowdown and outside time, on top of this node's service model"
    )

    @model_validator(mode="after")
    def _preemption_fits(self) -> NodeSpec:
        if self.discipline.policy == "preemptive_priority" and (
            self.batching is not None and self.batching.max_batch_size > 1 or self.device is not None or self.model_cache is not None
        ):
            raise ValueError(
                "discipline: preemptive_priority interrupts plain calls only; a node with batching, a device or a "
                "model_cache cannot preempt (use priority)"
            )
        return self
