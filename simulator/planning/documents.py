"""The plan's files as read back: a point's stored result (``points.sqlite``) and the results document (``plan.json``).

Both are written by latsim, but a user (or anyone) can edit them, so every field latsim reads is
checked here before it is used, like a scenario's: types strict (text is no number, true no count),
numbers finite and within bounds, ids that refer to configurations that exist. JSON is parsed with
NaN and infinities refused and deep nesting reported, not crashed on.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, model_validator

from simulator.errors import LatsimError

MAX_MAGNITUDE = 1e18  # of any number in the plan's files: costs, rates, latencies (the largest cost a plan can price is ~1e17 per hour)
MAX_COUNT = 10**15
MAX_PROBLEMS = 10

Number = Annotated[float, Field(ge=-MAX_MAGNITUDE, le=MAX_MAGNITUDE)]
Magnitude = Annotated[float, Field(ge=0, le=MAX_MAGNITUDE)]
Count = Annotated[int, Field(ge=0, le=MAX_COUNT)]
Verdict = Literal["met", "violated", "inconclusive"]


class _Read(BaseModel):
    """A part of a file latsim wrote: strict types, finite numbers; keys latsim does not read are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True, strict=True, allow_inf_nan=False)


def parse_json(text: str, allow_nan: bool) -> Any:
    """JSON as plain data; NaN and ±Infinity refused unless ``allow_nan`` (the models refuse them where they are read),
    and nesting too deep for Python reported: every problem is a ValueError."""

    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not a number JSON allows")

    try:
        return json.loads(text) if allow_nan else json.loads(text, parse_constant=refuse)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def problems(error: ValidationError) -> str:
    """The first problems of a failed validation, each as ``field.path: message``."""
    found = []
    for problem in error.errors()[:MAX_PROBLEMS]:
        where = "".join(f"[{step}]" if isinstance(step, int) else f".{step}" for step in problem["loc"]).lstrip(".")
        found.append(f"{where or '(top level)'}: {problem['msg'].removeprefix('Value error, ')}")
    more = f" (and {error.error_count() - MAX_PROBLEMS} more)" if error.error_count() > MAX_PROBLEMS else ""
    return "; ".join(found) + more


# -- a point's stored result ------------------------------------------------------------------------


class Estimate(_Read):
    """One estimated quantity with its interval (None: unknown, or infinite for a drop counted as infinitely late)."""

    estimate: Number | None
    ci_low: Number | None = None
    ci_high: Number | None = None


class NodeStats(_Read):
    utilization: Estimate
    batch_sizes: dict[Annotated[str, Field(pattern=r"^[0-9]{1,9}$")], Count] = {}


class RunSummary(_Read):
    """The parts of a run's summary the plan reads: per class its metrics (checked against the plan's SLOs), per node its utilisation."""

    replications: Annotated[int, Field(ge=1, le=1_000)]
    offered_load: Magnitude | None = None
    notes: list[str] = []
    classes: dict[str, dict[str, Any]]
    nodes: dict[str, NodeStats]

    @model_validator(mode="after")
    def _has_the_slo_metrics(self, info: ValidationInfo) -> RunSummary:
        for scope, metric in (info.context or {}).get("metrics", []):
            value: Any = self.classes.get(scope)
            if value is None:
                raise ValueError(f"classes.{scope}: missing (a class the plan's SLOs bound)")
            for part in metric.split(".", 1):
                value = value.get(part) if isinstance(value, dict) else None
            if value is None:
                raise ValueError(f"classes.{scope}.{metric}: missing (a metric the plan's SLOs bound)")
            try:
                Estimate.model_validate(value)
            except ValidationError as error:
                raise ValueError(f"classes.{scope}.{metric}: {problems(error)}") from None
        return self


class Series(_Read):
    window_start_s: list[Magnitude | None]
    throughput_per_s: list[Magnitude | None]
    latency_p50_ms: list[Magnitude | None]
    latency_p99_ms: list[Magnitude | None]
    utilization: list[Magnitude | None]


class Distribution(_Read):
    levels: list[Annotated[float, Field(ge=0, le=1)]]
    latency_ms: list[Magnitude]

    @model_validator(mode="after")
    def _paired(self) -> Distribution:
        if len(self.levels) != len(self.latency_ms):
            raise ValueError("levels and latency_ms differ in length")
        return self


class Breakdown(_Read):
    network_ms: Magnitude
    cache_ms: Magnitude
    queue_ms: Number
    batch_wait_ms: Magnitude
    load_ms: Magnitude
    copy_ms: Magnitude
    compute_ms: Magnitude


class Detail(_Read):
    """What the report draws of the winner's records: its latency distribution per class, latency parts, time series."""

    cdf: dict[str, Distribution]
    breakdown_ms: dict[str, Breakdown]
    timeseries: Series
    requests: Count


class PointResult(_Read):
    """A point's result as stored: a stable run's summary (and detail), or an unstable run and why."""

    status: Literal["ok", "unstable"]
    message: str | None = None
    summary: dict[str, Any]
    detail: Detail | None = None

    @model_validator(mode="after")
    def _summary_of_a_stable_run(self, info: ValidationInfo) -> PointResult:
        if self.status == "ok":
            try:
                RunSummary.model_validate(self.summary, context=info.context)
            except ValidationError as error:
                raise ValueError(f"summary.{problems(error)}") from None
        return self


def check_point_result(result: Any, metrics: list[tuple[str, str]]) -> str | None:
    """None when ``result`` is a point's result with every ``(class, metric)`` the plan reads; else what is wrong."""
    try:
        PointResult.model_validate(result, context={"metrics": metrics})
    except ValidationError as error:
        return problems(error)
    return None


# -- plan.json ----------------------------------------------------------------------------------


class Item(Estimate):
    label: str
    verdict: Verdict
    margin: Number | None


class Slo(_Read):
    label: str
    scope: str
    metric: str
    bound: Number
    upper: bool


class Precision(_Read):
    replications: Count
    tail_events: Count
    screen_tail_events: Count
    min_requests: Count
    max_requests: Count
    extensions: Count
    full_requests: Count
    screen_requests: Count
    full_tail_events: Magnitude | None
    screen_tail_events_expected: Magnitude | None
    max_load_tolerance: Magnitude


class Hardware(_Read):
    name: str
    cost_per_hour: Magnitude
    hardware_id: str | None = None
    path: str | None = None
    samples_sha256: str | None = None
    created_utc: str | None = None
    cpu_model: str | None = None
    gpu: str | None = None
    torch: str | None = None


class Inputs(_Read):
    targets_per_s: list[Annotated[float, Field(gt=0, le=MAX_MAGNITUDE)]] = Field(min_length=1)
    curve: list[Any] | None
    objective: str
    seed: Count
    confidence: Annotated[float, Field(gt=0, lt=1)]
    slos: list[Slo]
    precision: Precision
    node: str
    space: dict[str, list[Any]]
    space_size: Count
    hardware: list[Hardware]
    versions: dict[str, str]
    executor: str
    command: str
    exhaustive: bool


class Search(_Read):
    seconds: Magnitude
    points_simulated: Count
    points_reused: Count
    point_seconds: Magnitude
    screened_at_target: Count
    confirmed_at_target: Count
    not_confirmed: dict[str, Count]


class Outcome(_Read):
    """A verdict of one configuration at one load, with each bound's numbers."""

    rate_per_s: Magnitude
    requests: Count
    replications: Count
    full: bool
    verdict: Verdict
    items: list[Item]
    margin: Number | None
    reason: str
    utilization: Magnitude | None
    notes: list[str]


class MaxLoad(_Read):
    low_per_s: Magnitude
    high_per_s: Magnitude | None
    full: bool
    headroom_percent: Number | None
    inconclusive_per_s: list[Magnitude]
    evaluations: Count
    limit: str


class MaxLoads(_Read):
    screen: MaxLoad | None
    full: MaxLoad | None


class Quality(_Read):
    accuracy: Magnitude | None = None
    agreement_with_fp32: Magnitude | None = None


class Fate(_Read):
    category: str
    reason: str


class Bound(_Read):
    label: str
    lower_bound_ms: Magnitude | None
    method: str
    estimate_ms: Magnitude | None


class Theory(_Read):
    offered_load: Magnitude
    capacity_per_s: Magnitude | None
    bounds: list[Bound]


class Configuration(_Read):
    id: str
    label: str
    params: dict[str, Any]
    cost_per_hour: Magnitude
    quality: Quality | None
    fate: Fate | None
    screen: Outcome | None
    full: Outcome | None
    max_load: MaxLoads
    theory: Theory | None


class CurvePoint(Outcome):
    theory: Theory | None


class WhatIf(Outcome):
    factor: Magnitude


class Variant(Outcome):
    variant: str
    id: str
    quality: Quality | None
    excluded: str | None
    cost_per_hour: Magnitude


class WinnerDetail(Detail):
    batch_sizes: dict[Annotated[str, Field(pattern=r"^[0-9]{1,9}$")], Count]
    replications: Count


class Winner(_Read):
    id: str
    target_per_s: Magnitude
    max_load: MaxLoad | None
    curve: list[CurvePoint]
    knee_per_s: Magnitude | None
    what_if: list[WhatIf]
    variants: list[Variant]
    detail: WinnerDetail | None


class Cheaper(Outcome):
    id: str
    label: str
    cost_per_hour: Magnitude


class ScenarioText(_Read):
    name: str
    description: str | None
    source: str
    text: str | None
    parameters_yaml: str


class RawProfileAnswer(_Read):
    """What the raw profiles alone would have chosen, beside a calibrated plan's answer."""

    winner: str | None
    label: str | None
    cost_per_hour: Magnitude | None
    max_load: MaxLoad | None


class PlanCalibration(_Read):
    """What the plan's answer rests on: calibration files, or raw profiles alone (with a note how optimistic)."""

    calibrated: bool
    files: list[str]
    raw_profile: RawProfileAnswer | None
    note: str | None = None


class PlanDocument(_Read):
    """``plan.json``: the plan's inputs, search, every configuration, the finalists and the winner."""

    scenario: ScenarioText
    inputs: Inputs
    search: Search
    configurations: list[Configuration]
    finalists: list[str]
    winner: Winner | None
    inconclusive_cheaper: list[Cheaper]
    valid: bool
    invalid_reasons: list[str]
    calibration: PlanCalibration | None = None

    @model_validator(mode="after")
    def _ids_refer_to_configurations(self) -> PlanDocument:
        by_id = {config.id: config for config in self.configurations}
        if len(by_id) != len(self.configurations):
            raise ValueError("configurations: two share an id")
        for index, identifier in enumerate(self.finalists):
            if identifier not in by_id:
                raise ValueError(f"finalists[{index}]: {identifier[:80]!r} is no configuration's id")
            if by_id[identifier].full is None:
                raise ValueError(f"finalists[{index}]: configuration {identifier[:80]!r} has no full-length verdict")
        if len(set(self.finalists)) != len(self.finalists):
            raise ValueError("finalists: an id is listed twice")
        if self.winner is not None and self.winner.id not in self.finalists[:1]:
            raise ValueError(f"winner.id: {self.winner.id[:80]!r} is not the first finalist")
        if self.finalists and self.winner is None:
            raise ValueError("winner: missing, though there are finalists")
        return self


def check_plan_document(document: Any) -> str | None:
    """None when ``document`` is a plan's results document the report can read; else what is wrong, field by field."""
    try:
        PlanDocument.model_validate(document)
    except ValidationError as error:
        return problems(error)
    return None
