"""Hostile inputs, schema values: numbers and names that are valid YAML but meaningless for the field.

Each case changes one field of a valid scenario and runs ``latsim validate`` (every check ``run``
makes before it simulates): the answer must be exit 2 naming the field, or a sound ok. Cases
marked xfail are the ones the lead's part of issue 9 still has to refuse (the reason says where).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import pytest

from tests.helpers import base_scenario
from tests.hostile import assert_clean_error, assert_ok, latsim, tiny_run, validate, write_scenario

KEYS = {"popularity": "zipf", "catalog_size": 1000, "exponent": 0.9}


def _set(data: dict[str, Any], path: str, value: Any) -> None:
    """Set ``a.b[0].c`` in plain scenario data, creating mappings on the way."""
    steps: list[str | int] = []
    for part in path.split("."):
        name, *indices = re.split(r"\[(\d+)\]", part)
        steps += [name] if name else []
        steps += [int(index) for index in indices if index]
    node: Any = data
    for step in steps[:-1]:
        node = node.setdefault(step, {}) if isinstance(step, str) else node[step]
    node[steps[-1]] = value


def _lead(what: str) -> pytest.MarkDecorator:
    return pytest.mark.xfail(reason=f"lead: {what}", strict=True)


def case(case_id: str, path: str, value: Any, needle: str | None, *, base: dict | None = None, marks: Any = ()) -> Any:
    """One field set to one value; ``needle`` must appear in the error (None: the scenario is valid)."""
    return pytest.param(path, value, needle, base, id=case_id, marks=marks)


MMPP = {"process": "mmpp", "states": [{"rate_per_s": 80, "mean_duration_s": 5}, {"rate_per_s": 20, "mean_duration_s": 5}]}
DIURNAL = {"process": "diurnal", "mean_rate_per_s": 50, "amplitude": 0.5, "period_s": 60}
PIECEWISE = {"process": "piecewise", "segments": [{"duration_s": 10, "rate_per_s": 60}, {"duration_s": 10, "rate_per_s": 40}]}
WITH_KEYS = {"workload": {**base_scenario()["workload"], "keys": KEYS}}
NODE = base_scenario()["nodes"][0]
CACHE = {"policy": {"policy": "lru", "capacity_entries": 10}, "hit_latency": {"distribution": "deterministic", "value_ms": 0.1}}
FAST_STATE, SLOW_STATE = {"rate_per_s": 80, "mean_duration_s": 1e-12}, MMPP["states"][1]

CASES = [
    # run
    case("requests-zero", "run.requests", 0, "run.requests"),
    case("requests-negative", "run.requests", -5, "run.requests"),
    case("requests-text", "run.requests", "many", "run.requests"),
    case("requests-fraction", "run.requests", 10.5, "run.requests"),
    case("requests-1e20", "run.requests", 10**20, "run.requests"),
    case("warmup-negative", "run.warmup_requests", -1, "run.warmup_requests"),
    case("warmup-1e12", "run.warmup_requests", 10**12, "run.warmup_requests"),
    case("replications-zero", "run.replications", 0, "run.replications"),
    case("seed-negative", "run.seed", -1, "run.seed"),
    case("seed-text", "run.seed", "lucky", "run.seed"),
    case("seed-fraction", "run.seed", 1.5, "run.seed"),
    case("seed-2-to-the-64", "run.seed", 2**64, None),
    case("confidence-one", "run.confidence", 1, "run.confidence"),
    case("confidence-nan", "run.confidence", math.nan, "run.confidence"),
    case("batches-one", "run.batches", 1, "run.batches"),
    case("max-queue-zero", "run.max_queue_length", 0, "run.max_queue_length"),
    case("window-zero", "run.monitoring_window_s", 0, "run.monitoring_window_s"),
    case("window-inf", "run.monitoring_window_s", math.inf, "run.monitoring_window_s"),
    case("window-1e-9", "run.monitoring_window_s", 1e-9, "run.monitoring_window_s"),
    case("run-a-list", "run", [1, 2], "run"),
    # arrivals
    case("rate-inf", "workload.arrival.rate_per_s", math.inf, "workload.arrival.rate_per_s"),
    case("rate-minus-inf", "workload.arrival.rate_per_s", -math.inf, "workload.arrival.rate_per_s"),
    case("rate-nan", "workload.arrival.rate_per_s", math.nan, "workload.arrival.rate_per_s"),
    case("rate-zero", "workload.arrival.rate_per_s", 0, "workload.arrival.rate_per_s"),
    case("rate-negative", "workload.arrival.rate_per_s", -1, "workload.arrival.rate_per_s"),
    case("rate-1e308", "workload.arrival.rate_per_s", 1e308, "workload.arrival.rate_per_s"),
    case("rate-1e-300", "workload.arrival.rate_per_s", 1e-300, "workload.arrival.rate_per_s"),
    case("rate-true", "workload.arrival.rate_per_s", True, "workload.arrival.rate_per_s"),
    case("rate-text", "workload.arrival.rate_per_s", "fast", "workload.arrival.rate_per_s"),
    case("rate-list", "workload.arrival.rate_per_s", [], "workload.arrival.rate_per_s"),
    case("rate-null", "workload.arrival.rate_per_s", None, "workload.arrival.rate_per_s"),
    case("process-unknown", "workload.arrival.process", "telepathy", "workload.arrival"),
    case("arrival-a-string", "workload.arrival", "poisson", "workload.arrival"),
    case("mmpp-state-1e-12-s", "workload.arrival", {**MMPP, "states": [FAST_STATE, SLOW_STATE]}, "mean_duration_s"),
    case("mmpp-all-silent", "workload.arrival", {**MMPP, "states": [{"rate_per_s": 0, "mean_duration_s": 5}] * 2}, "workload.arrival"),
    case("mmpp-duration-nan", "workload.arrival", {**MMPP, "states": [{"rate_per_s": 1, "mean_duration_s": math.nan}] * 2},
         "mean_duration_s"),
    case("mmpp-one-state", "workload.arrival", {**MMPP, "states": MMPP["states"][:1]}, "workload.arrival.states"),
    case("diurnal-phase-nan", "workload.arrival", {**DIURNAL, "phase_s": math.nan}, "phase_s"),
    case("diurnal-amplitude-2", "workload.arrival", {**DIURNAL, "amplitude": 2}, "amplitude"),
    case("diurnal-period-zero", "workload.arrival", {**DIURNAL, "period_s": 0}, "period_s"),
    case("diurnal-ok", "workload.arrival", DIURNAL, None),
    case("piecewise-all-silent", "workload.arrival", {**PIECEWISE, "segments": [{"duration_s": 10, "rate_per_s": 0}]}, "workload.arrival"),
    case("piecewise-no-segments", "workload.arrival", {**PIECEWISE, "segments": []}, "segments"),
    # classes
    case("share-inf", "workload.classes[0].share", math.inf, "workload.classes[0].share"),
    case("share-zero", "workload.classes[0].share", 0, "workload.classes[0].share"),
    case("share-negative", "workload.classes[0].share", -1, "workload.classes[0].share"),
    case("deadline-nan", "workload.classes[0].deadline_ms", math.nan, "workload.classes[0].deadline_ms"),
    case("deadline-inf", "workload.classes[0].deadline_ms", math.inf, "workload.classes[0].deadline_ms"),
    case("deadline-zero", "workload.classes[0].deadline_ms", 0, "workload.classes[0].deadline_ms"),
    case("kind-unknown", "workload.classes[0].kind", "squishy", "workload.classes[0].kind"),
    case("target-above-one", "workload.classes[0].target", 1.5, "workload.classes[0].target"),
    case("target-zero", "workload.classes[0].target", 0, "workload.classes[0].target"),
    case("priority-negative", "workload.classes[0].priority", -1, "workload.classes[0].priority"),
    case("priority-fraction", "workload.classes[0].priority", 2.5, "workload.classes[0].priority"),
    case("class-named-all", "workload.classes[0].name", "all", "workload.classes"),
    case("class-name-empty", "workload.classes[0].name", "", "workload.classes[0].name"),
    case("classes-empty", "workload.classes", [], "workload.classes"),
    case("classes-null", "workload.classes", None, "workload.classes"),
    case("workload-a-list", "workload", [], "workload"),
    case("class-model-unknown", "workload.classes[0].model", "gpt", "workload.classes"),
    # keys, partitions, cache
    case("catalog-zero", "workload.keys", {**KEYS, "catalog_size": 0}, "workload.keys.catalog_size"),
    case("exponent-negative", "workload.keys", {**KEYS, "exponent": -1}, "workload.keys.exponent"),
    case("exponent-nan", "workload.keys", {**KEYS, "exponent": math.nan}, "workload.keys.exponent"),
    case("popularity-unknown", "workload.keys", {"popularity": "viral"}, "workload.keys"),
    case("partitions-zero", "partitioning", {"scheme": "hash", "partitions": 0}, "partitioning.partitions", base=WITH_KEYS),
    case("partitions-without-keys", "partitioning", {"scheme": "hash", "partitions": 2}, "partitioning"),
    case("cache-without-keys", "cache", CACHE, "cache"),
    case("cache-capacity-zero", "cache", {**CACHE, "policy": {"policy": "lru", "capacity_entries": 0}}, "cache.policy.capacity_entries",
         base=WITH_KEYS),
    # nodes
    case("workers-zero", "nodes[0].workers", 0, "nodes[0].workers"),
    case("workers-negative", "nodes[0].workers", -1, "nodes[0].workers"),
    case("workers-fraction", "nodes[0].workers", 2.5, "nodes[0].workers"),
    case("replicas-zero", "nodes[0].replicas", 0, "nodes[0].replicas"),
    case("replicas-100000", "nodes[0].replicas", 100_000, "nodes[0].replicas"),
    case("queue-capacity-negative", "nodes[0].queue_capacity", -1, "nodes[0].queue_capacity"),
    case("discipline-unknown", "nodes[0].discipline", {"policy": "lifo"}, "nodes[0].discipline"),
    case("admission-unknown", "nodes[0].admission", {"policy": "bouncer"}, "nodes[0].admission"),
    case("node-name-collision", "nodes", [{**NODE, "name": "x", "replicas": 2}, {**NODE, "name": "x-1"}], "nodes"),
    case("nodes-empty", "nodes", [], "nodes"),
    case("nodes-a-string", "nodes", "cpu", "nodes"),
    case("node-unknown-key", "nodes[0].wrokers", 2, "nodes[0].wrokers"),
    # service models
    case("value-ms-nan", "nodes[0].service", {"distribution": "deterministic", "value_ms": math.nan}, "nodes[0].service"),
    case("value-ms-inf", "nodes[0].service", {"distribution": "deterministic", "value_ms": math.inf}, "nodes[0].service"),
    case("value-ms-subnormal", "nodes[0].service", {"distribution": "deterministic", "value_ms": 1e-310}, "nodes[0].service"),
    case("value-ms-negative", "nodes[0].service", {"distribution": "deterministic", "value_ms": -1}, "nodes[0].service"),
    case("scipy-unknown", "nodes[0].service", {"distribution": "scipy", "name": "nosuch"}, "nodes[0].service"),
    case("scipy-dunder", "nodes[0].service", {"distribution": "scipy", "name": "__class__"}, "nodes[0].service"),
    case("scipy-negative-support", "nodes[0].service", {"distribution": "scipy", "name": "norm", "params": {"loc": 5, "scale": 1}},
         "nodes[0].service"),
    case("scipy-bad-param", "nodes[0].service", {"distribution": "scipy", "name": "gamma", "params": {"a": -1}}, "nodes[0].service"),
    case("scipy-text-param", "nodes[0].service", {"distribution": "scipy", "name": "gamma", "params": {"a": "x"}}, "nodes[0].service"),
    case("scipy-unknown-param", "nodes[0].service", {"distribution": "scipy", "name": "gamma", "params": {"a": 2, "zeta": 1}},
         "nodes[0].service"),
    case("scipy-infinite-mean", "nodes[0].service", {"distribution": "scipy", "name": "pareto", "params": {"b": 0.5}}, "nodes[0].service"),
    case("distribution-unknown", "nodes[0].service", {"distribution": "magic"}, "nodes[0].service"),
    # events
    case("failure-beyond-horizon", "events", [{"type": "failure", "nodes": ["n"], "at_s": 1e6, "duration_s": 5}], "events[0].at_s"),
    case("failure-at-1e308", "events", [{"type": "failure", "nodes": ["n"], "at_s": 1e308, "duration_s": 5}], "events[0].at_s"),
    case("failure-unknown-node", "events", [{"type": "failure", "nodes": ["ghost"], "at_s": 1, "duration_s": 5}], "events[0].nodes"),
    case("failure-duration-nan", "events", [{"type": "failure", "nodes": ["n"], "at_s": 1, "duration_s": math.nan}], "events[0]"),
    case("random-failures-mtbf-1e-9", "events", [{"type": "random_failures", "nodes": ["n"], "mtbf_s": 1e-9, "mttr_s": 1}],
         "events[0].mtbf_s"),
    case("spike-multiplier-inf", "events", [{"type": "load_spike", "at_s": 1, "duration_s": 1, "multiplier": math.inf}],
         "events[0].multiplier"),
    case("spike-after-the-end", "events", [{"type": "load_spike", "at_s": 1e5, "duration_s": 1, "multiplier": 3}], "events[0].at_s"),
    case("event-type-unknown", "events", [{"type": "meteor", "at_s": 1}], "events[0]"),
    case("events-a-mapping", "events", {"type": "failure"}, "events"),
    # top level
    case("name-empty", "name", "", "name"),
    case("name-a-number", "name", 123, "name"),
    case("description-a-list", "description", [1, 2], "description"),
    case("router-unknown", "router", {"policy": "teleport"}, "router"),
    case("unknown-top-level-key", "nodez", [], "nodez: unknown key"),
]


@pytest.mark.parametrize(("path", "value", "needle", "base"), CASES)
def test_schema_value(tmp_path, path, value, needle, base):
    data = base_scenario(**(base or {}))
    _set(data, path, value)
    scenario = write_scenario(tmp_path, data)
    result = validate(scenario, seconds=10)
    if needle is None:
        assert_ok(result)
    else:
        assert_clean_error(result, str(scenario), needle)


# Cases that could take gigabytes while they are not refused: a subprocess with a memory limit.
MEMORY_CASES = [
    pytest.param("workload.keys", {**KEYS, "catalog_size": 10**12}, "workload.keys.catalog_size", None, id="catalog-1e12"),
    pytest.param("partitioning", {"scheme": "hash", "partitions": 1_000_000}, "partitioning.partitions", WITH_KEYS, id="partitions-1e6"),
]


@pytest.mark.parametrize(("path", "value", "needle", "base"), MEMORY_CASES)
def test_schema_value_bounded_in_memory(tmp_path, path, value, needle, base):
    data = base_scenario(**(base or {}))
    _set(data, path, value)
    scenario = write_scenario(tmp_path, data)
    assert_clean_error(latsim("validate", scenario, timeout=30), str(scenario), needle)


def _run_summary(tmp_path, data: dict) -> dict:
    scenario = write_scenario(tmp_path, data)
    completed = latsim("run", scenario, *tiny_run("--json", tmp_path / "summary.json"), timeout=60)
    assert_ok(completed)
    return json.loads((tmp_path / "summary.json").read_text())


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"events": [{"type": "load_spike", "at_s": 1, "duration_s": 30, "multiplier": 50}]}, id="load-spike-x50"),
        pytest.param(
            {"workload": {**WITH_KEYS["workload"], "arrival": {"process": "poisson", "rate_per_s": 400}},
             "cache": CACHE, "nodes": [{**NODE, "queue_capacity": 20}]},
            id="cache-under-overload",
        ),
    ],
)
def test_utilisation_never_exceeds_one(tmp_path, overrides):
    summary = _run_summary(tmp_path, base_scenario(**overrides))
    for name, node in summary["nodes"].items():
        assert node["utilization"]["estimate"] <= 1.0 + 1e-9, (name, node["utilization"])
