"""Summaries of a run: estimates with confidence intervals, per class and per node.

With two or more replications every interval comes from the replications (Student t over
their estimates). With one replication, mean-type metrics get batch-means intervals and the
rest (quantiles, maxima, utilization) are reported without an interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from simulator.metrics.collector import ALL
from simulator.metrics.confidence import t_interval
from simulator.scenario.schema import Scenario

COUNT_FIELDS = ("finished", "completed")
NODE_COUNTS = ("served", "model_loads")  # summed over replications


@dataclass(frozen=True)
class Estimate:
    """A point estimate and its confidence interval (None where no interval is available)."""

    estimate: float
    ci_low: float | None
    ci_high: float | None

    def as_dict(self) -> dict[str, float | None]:
        return {"estimate": _finite(self.estimate), "ci_low": _finite(self.ci_low), "ci_high": _finite(self.ci_high)}


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _combine(path: str, values: Sequence[float], batches: Sequence[float] | None, level: float) -> dict:
    """Estimate + interval of one metric over replications (or batches, with one replication)."""
    if path.endswith(".max"):
        return Estimate(max(values), None, None).as_dict()
    if len(values) >= 2:
        return Estimate(*t_interval(values, level)).as_dict()
    if batches is not None:
        _, low, high = t_interval(batches, level)
        return Estimate(values[0], low, high).as_dict()
    return Estimate(values[0], None, None).as_dict()


def _combine_tree(trees: Sequence[dict], batch_trees: Sequence[dict] | None, level: float, prefix: str = "") -> dict:
    combined: dict[str, Any] = {}
    for key, first in trees[0].items():
        path = prefix + key
        if isinstance(first, dict):
            combined[key] = _combine_tree([t[key] for t in trees], batch_trees, level, path + ".")
        elif isinstance(first, float) or key == "throughput_per_s":
            batches = batch_trees[0].get(path) if batch_trees else None
            combined[key] = _combine(path, [t[key] for t in trees], batches, level)
    return combined


def summarize(
    scenario: Scenario, seed: int, requests: int, warmup_requests: int, results: list[dict], offered_load: float
) -> dict[str, Any]:
    """Combine the replications' estimates into the run summary (the JSON document described in README)."""
    level = scenario.run.confidence
    single = len(results) == 1
    classes_by_name = {c.name: c for c in scenario.workload.classes}
    classes: dict[str, Any] = {}
    for name in [*classes_by_name, ALL]:
        per_replication = [r["classes"][name] for r in results]
        numeric = [{k: v for k, v in est.items() if k not in (*COUNT_FIELDS, "dropped", "quantiles_exact")} for est in per_replication]
        batch_trees = [results[0]["batches"][name]] if single else None
        stats = _combine_tree(numeric, batch_trees, level)
        dropped: dict[str, int] = {}
        for est in per_replication:
            for reason, count in est["dropped"].items():
                dropped[reason] = dropped.get(reason, 0) + count
        entry: dict[str, Any] = {field: sum(est[field] for est in per_replication) for field in COUNT_FIELDS}
        entry["dropped"] = dropped
        if name in classes_by_name:
            request_class = classes_by_name[name]
            entry.update(kind=request_class.kind, priority=request_class.priority, deadline_ms=request_class.deadline_ms)
            entry["slo"] = _slo(request_class.required_met_ratio, per_replication, stats["deadline_met_ratio"])
        entry.update(stats)
        classes[name] = entry
    nodes = {}
    for name in results[0]["nodes"]:
        per_replication = [r["nodes"][name] for r in results]
        batch_sizes: dict[str, int] = {}
        for replication in per_replication:
            for size, count in replication["batch_sizes"].items():
                batch_sizes[size] = batch_sizes.get(size, 0) + count
        counts = {field: sum(n[field] for n in per_replication) for field in NODE_COUNTS if field in per_replication[0]}
        nodes[name] = {
            **counts,
            "batch_sizes": dict(sorted(batch_sizes.items(), key=lambda item: int(item[0]))),
            **_combine_tree(
                [{k: v for k, v in n.items() if k not in (*NODE_COUNTS, "batch_sizes")} for n in per_replication], None, level
            ),
        }
    return {
        "scenario": scenario.name,
        "seed": seed,
        "replications": len(results),
        "requests_per_replication": requests,
        "warmup_requests": warmup_requests,
        "confidence": level,
        "ci_method": "batch_means" if single else "replications",
        "offered_load": offered_load,
        "simulated_s_per_replication": sum(r["simulated_s"] for r in results) / len(results),
        "quantiles_exact": all(r["classes"][ALL]["quantiles_exact"] for r in results),
        "classes": classes,
        "nodes": nodes,
    }


def _slo(required: float | None, per_replication: list[dict], met_ratio: dict) -> dict:
    """Whether the class meets its real-time requirement (hard: not a single miss)."""
    if required is None:
        return {"required_met_ratio": None, "met": None, "met_with_confidence": None}
    misses = sum(est["finished"] - round(est["deadline_met_ratio"] * est["finished"]) for est in per_replication if est["finished"])
    if required == 1.0:
        return {"required_met_ratio": 1.0, "met": misses == 0, "met_with_confidence": misses == 0, "misses": misses}
    low = met_ratio["ci_low"]
    return {
        "required_met_ratio": required,
        "met": met_ratio["estimate"] is not None and met_ratio["estimate"] >= required,
        "met_with_confidence": low is not None and low >= required,
        "misses": misses,
    }
