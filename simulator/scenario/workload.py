"""Settings of the offered load: the arrival process, the request classes, and the keys requests ask for."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from simulator.registry import ARRIVAL_PROCESSES, KEY_POPULARITY, PolicyConfig
from simulator.scenario.bounds import MAX_CATALOG, DurationS, RatePerS, RatePerSOrZero, TimeMs, Weight, Name
from simulator.scenario.service import ServiceConfig

ALL_CLASSES = "all"  # the results' name for every class together
from simulator.settings import Settings

ArrivalConfig = ARRIVAL_PROCESSES.field()
KeyConfig = KEY_POPULARITY.field()


# -- arrival processes ---------------------------------------------------------------------------


@ARRIVAL_PROCESSES.register_config
class PoissonArrivals(PolicyConfig):
    """Exponential gaps at a constant rate."""

    process: Literal["poisson"]
    rate_per_s: RatePerS


@ARRIVAL_PROCESSES.register_config
class DeterministicArrivals(PolicyConfig):
    """Evenly spaced arrivals (a fixed-rate client)."""

    process: Literal["deterministic"]
    rate_per_s: RatePerS


class MarkovState(Settings):
    """One state of a Markov-modulated process."""

    rate_per_s: RatePerSOrZero
    mean_duration_s: DurationS = Field(description="mean (exponential) time spent in this state, 1e-6 s to 1e9 s")


@ARRIVAL_PROCESSES.register_config
class MarkovModulatedArrivals(PolicyConfig):
    """Markov-modulated Poisson process: states visited in cycle, each with its own rate."""

    process: Literal["mmpp"]
    states: list[MarkovState] = Field(min_length=2)

    @model_validator(mode="after")
    def _some_state_sends(self) -> MarkovModulatedArrivals:
        if not any(state.rate_per_s > 0 for state in self.states):
            raise ValueError("at least one state needs rate_per_s > 0")
        return self


class RateSegment(Settings):
    """A stretch of constant Poisson rate in a piecewise load profile."""

    duration_s: DurationS
    rate_per_s: RatePerSOrZero


@ARRIVAL_PROCESSES.register_config
class PiecewiseArrivals(PolicyConfig):
    """Poisson arrivals whose rate steps through segments (a load profile), repeating."""

    process: Literal["piecewise"]
    segments: list[RateSegment] = Field(min_length=1)

    @model_validator(mode="after")
    def _some_segment_sends(self) -> PiecewiseArrivals:
        if not any(segment.rate_per_s > 0 for segment in self.segments):
            raise ValueError("at least one segment needs rate_per_s > 0")
        return self


@ARRIVAL_PROCESSES.register_config
class DiurnalArrivals(PolicyConfig):
    """Poisson arrivals with a sinusoidal rate: mean·(1 + amplitude·sin(2πt/period))."""

    process: Literal["diurnal"]
    mean_rate_per_s: RatePerS
    amplitude: float = Field(ge=0, le=1, description="relative swing around the mean, 0..1")
    period_s: DurationS = 86400.0
    phase_s: float = Field(0.0, ge=-1e9, le=1e9, description="shift of the cycle, in seconds")


@ARRIVAL_PROCESSES.register_config
class TraceArrivals(PolicyConfig):
    """Replays arrival timestamps (ms) from a CSV/parquet column; the run ends with the trace."""

    process: Literal["trace"]
    file: str = Field(description="CSV or parquet file of arrival timestamps, relative to the scenario file")
    column: str | None = Field(None, description="column of timestamps in ms (default: the only one)")
    time_scale: float = Field(1.0, ge=1e-9, le=1e9, description="multiply timestamps by this (e.g. 1000 for seconds)")


# -- key popularity ------------------------------------------------------------------------------


@KEY_POPULARITY.register_config
class ZipfKeys(PolicyConfig):
    """Finite Zipf: key i (rank i + 1) has probability ∝ (i + 1)^(−exponent); 0 is uniform."""

    popularity: Literal["zipf"]
    catalog_size: int = Field(ge=1, le=MAX_CATALOG, description=f"number of distinct keys (at most {MAX_CATALOG:,})")
    exponent: float = Field(ge=0, le=10, description="skew s; typical request logs have 0.6–1.2")


@KEY_POPULARITY.register_config
class UniformKeys(PolicyConfig):
    """Every key equally likely (no locality: the worst case for a cache)."""

    popularity: Literal["uniform"]
    catalog_size: int = Field(ge=1, le=MAX_CATALOG, description=f"number of distinct keys (at most {MAX_CATALOG:,})")


@KEY_POPULARITY.register_config
class TraceKeys(PolicyConfig):
    """Replays recorded keys (non-negative integers) from a CSV/parquet column in order, cycling."""

    popularity: Literal["trace"]
    file: str = Field(description="CSV or parquet file of request keys, relative to the scenario file")
    column: str | None = Field(None, description="column of integer keys (default: the only one)")


# -- classes and the workload --------------------------------------------------------------------


class RequestClass(Settings):
    """A class of requests: its arrivals, priority, deadline and real-time kind."""

    name: Name
    share: Weight = Field(1.0, description="relative weight of this class among the arrivals of workload.arrival")
    arrival: ArrivalConfig | None = Field(
        None, description="this class's own arrival process (then it takes no share of workload.arrival)"
    )
    priority: int = Field(0, ge=0, le=1_000_000, description="0 is served first under the priority disciplines")
    deadline_ms: TimeMs | None = Field(None, description="relative deadline: arrival to completion (none: no real-time requirement)")
    kind: Literal["hard", "firm", "soft"] | None = Field(
        None,
        description="hard: no request may miss (judged as a miss probability within `miss_tolerance`); firm: a late "
        "result is worthless (may be dropped); soft: at least `target` of requests must meet the deadline; none: "
        "no requirement (nothing is judged)",
    )
    target: float | None = Field(None, gt=0, le=1, description="fraction that must meet the deadline")
    miss_tolerance: float = Field(
        1e-4,
        gt=0,
        lt=1,
        description="hard classes: the miss probability the run must show to be below (one-sided bound, counting "
        "bursts of misses as fewer independent requests) to call the class met, and above to call it violated; no "
        "finite run proves a probability of 0",
    )
    service: ServiceConfig | None = Field(None, description="service model of this class (default: the node's)")
    model: str | None = Field(None, description="name of the model (in `models`) this class runs, for model caches")

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, name: str) -> str:
        if name == ALL_CLASSES:
            raise ValueError(f"the name {ALL_CLASSES!r} is reserved for all classes together in the results")
        return name

    @model_validator(mode="after")
    def _target_fits_kind(self) -> RequestClass:
        if self.kind is not None and self.deadline_ms is None:
            raise ValueError(f"a {self.kind} class needs `deadline_ms`, the deadline it is judged by")
        if self.kind is None and self.target is not None:
            raise ValueError("`target` goes with a real-time kind: give `kind: soft` (and `deadline_ms`)")
        if self.kind == "soft" and self.target is None:
            raise ValueError("a soft class needs `target`, the fraction that must meet the deadline (e.g. 0.99)")
        if self.kind == "hard" and self.target not in (None, 1.0):
            raise ValueError("a hard class allows no miss: leave `target` out (it is 1.0)")
        return self

    @property
    def relative_deadline_ms(self) -> float:
        """The deadline in ms, or +∞ for a class without one (every served request is in time)."""
        return float("inf") if self.deadline_ms is None else self.deadline_ms

    @property
    def required_met_ratio(self) -> float | None:
        return 1.0 if self.kind == "hard" else self.target

    @property
    def miss_allowance(self) -> float | None:
        """The miss probability the class tolerates: 1 − target, or ``miss_tolerance`` for a hard class."""
        if self.kind == "hard":
            return self.miss_tolerance
        return None if self.target is None else 1.0 - self.target


class Workload(Settings):
    """Arrival processes and classes: classes without their own ``arrival`` split ``workload.arrival`` by share."""

    arrival: ArrivalConfig | None = Field(None, description="the arrival process shared by classes without their own")
    classes: list[RequestClass] = Field(min_length=1)
    keys: KeyConfig | None = Field(
        None, description="which key each request asks for (zipf, uniform, trace); needed by caches and partitions"
    )

    @model_validator(mode="after")
    def _every_class_has_arrivals(self) -> Workload:
        sharing = [c.name for c in self.classes if c.arrival is None]
        if sharing and self.arrival is None:
            raise ValueError(
                f"classes {sharing} have no arrival process of their own: give workload.arrival (shared by share) "
                "or an `arrival` to each class"
            )
        if not sharing and self.arrival is not None:
            raise ValueError("workload.arrival: every class has its own arrival process, so this one would send nothing")
        return self

    @property
    def sharing_classes(self) -> list[int]:
        """Indices of the classes that split ``workload.arrival`` by their shares."""
        return [index for index, c in enumerate(self.classes) if c.arrival is None]
