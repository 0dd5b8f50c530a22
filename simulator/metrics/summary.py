"""Summaries of a run: estimates with confidence intervals, SLO verdicts, per class and per node.

The statistical method (docs/methods.md):

- **Units.** With R ≥ 2 replications every interval comes from the replications; with one
  replication from batch means of that run (adjacent batches merged until nearly uncorrelated),
  and not at all when the run is not stationary (events, time-varying arrivals): say so and
  run replications instead.
- **Means, proportions and rates** are ratios of sums, estimated over all units pooled, with a
  delta-method interval around that estimate (``estimators.ratio_interval``).
- **Quantiles** are the quantiles of every measured request pooled; their intervals come from the
  share of requests at or below them in each replication (a ratio of sums), or in one run from the
  tail beyond them counted per batch and bounded on its effective count (``miss_bounds``); long runs
  whose values are streamed: around the geometric mean of the replications' quantiles.
- **Verdicts** compare one-sided bounds on the miss probability with what the class tolerates
  (1 − target; a hard class's ``miss_tolerance``): met (upper bound within), violated (lower bound
  outside) or inconclusive. Misses come in bursts, so the bounds are Clopper–Pearson on an
  effective number of requests (``estimators.miss_bounds``): zero misses in a run short against
  the system's correlation time prove little.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from simulator.metrics.collector import ALL, QUANTILES
from simulator.metrics.estimators import (
    batch_size_for,
    log_interval,
    merge,
    miss_bounds,
    quantile_intervals,
    ratio_interval,
    variance_inflation,
)
from simulator.scenario.schema import Scenario
from simulator.scenario.workload import RequestClass

RATIOS = {  # summary field → (numerator sum, denominator sum)
    "latency_ms.mean": ("latency_sum_ms", "completed"),
    "wait_ms.mean": ("wait_sum_ms", "completed"),
    "service_ms.mean": ("service_sum_ms", "completed"),
    "deadline_met_ratio": ("met", "finished"),
    "wait_probability": ("waited", "completed"),
    "drop_ratio": ("dropped", "finished"),
    "processing_ratio": ("ratio_sum", "ratio_count"),
    "cache_hit_ratio": ("cache_hits", "finished"),
}
RATES = {"throughput_per_s": "completed", "goodput_per_s": "met"}  # per simulated second
PROPORTIONS = {"deadline_met_ratio", "wait_probability", "drop_ratio", "processing_ratio", "cache_hit_ratio"}
DISTRIBUTIONS = {"latency_ms": "latency", "wait_ms": "wait", "latency_or_drop_ms": "latency_or_drop"}
FEW_REPLICATIONS = 5


def is_statistic(path: str) -> bool:
    """Whether ``path`` names a statistic with an interval in a class summary (what ``run.precision`` may ask about)."""
    head, _, tail = path.partition(".")
    return path in RATIOS or path in RATES or head in DISTRIBUTIONS and tail in QUANTILES or head == "drop_ratio_by_reason" and bool(tail)


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


def _set(tree: dict, path: str, value: Any) -> None:
    """Set ``group.name`` (one level of nesting; a name may hold dots: ``latency_ms.p99.9``) or ``name``."""
    head, _, tail = path.partition(".")
    if tail:
        tree.setdefault(head, {})[tail] = value
    else:
        tree[head] = value


class _Units:
    """How one run's intervals are formed: over replications, over batches of one run, or not at all."""

    def __init__(self, results: list[dict], level: float, batch_means: bool) -> None:
        self.results = results
        self.level = level
        self.replicated = len(results) >= 2
        self.batch_means = batch_means and not self.replicated

    def ratio(
        self, numerators: list[np.ndarray], denominators: list[np.ndarray], level: float | None = None, proportion: bool = False
    ) -> Estimate:
        """A ratio of sums; ``numerators[r]`` / ``denominators[r]`` are replication r's per-fine-batch sums."""
        level = self.level if level is None else level
        if self.replicated:
            return Estimate(*ratio_interval([n.sum() for n in numerators], [d.sum() for d in denominators], level, proportion))
        num, den = numerators[0], denominators[0]
        if not self.batch_means:
            total = den.sum()
            return Estimate(float(num.sum() / total) if total > 0 else float("nan"), None, None)
        factor, _ = batch_size_for(num, den)
        return Estimate(*ratio_interval(merge(num, factor), merge(den, factor), level, proportion))

    def quantiles(self, series: list[dict], key: str) -> dict[str, Estimate]:
        """Every quantile of ``latency`` / ``wait`` / ``latency_or_drop`` (drops as +∞), with intervals.

        With the values kept: the estimate is the quantile of all measured values pooled (each
        replication is stationary after its warm-up, so the pooled distribution is the stationary
        one, without the downward bias a short run's own quantile has), with the interval of
        ``estimators.quantile_intervals`` over the sections — the replications, or batches of one run
        (merged for each quantile until its own indicator series looks uncorrelated, and at least as
        long as the latency's batches). Without them (very long runs): the
        geometric mean of the replications' quantiles, with a log-scale interval.
        """
        per_replication = [s[key] for s in series]
        min_batch, inflation = None, math.nan
        if any(s["values"] is None for s in series):
            if self.replicated:
                return {name: Estimate(*log_interval([q[name] for q in per_replication], self.level)) for name in QUANTILES}
            return {name: Estimate(per_replication[0][name], None, None) for name in QUANTILES}
        kept = [s["values"]["wait" if key == "wait" else "latency"] for s in series]
        drops = [s["sums"]["dropped"] for s in series] if key == "latency_or_drop" else None
        if self.replicated:
            values = np.concatenate([values for values, _ in kept])
            sections = np.repeat(np.arange(len(kept)), [len(values) for values, _ in kept])
            extras = [int(d.sum()) for d in drops] if drops else [0] * len(kept)
        elif self.batch_means:
            values, fine = kept[0]
            sums = series[0]["sums"]
            min_batch, _ = batch_size_for(sums["latency_sum_ms"], sums["completed"])
            inflation = _latency_inflation(
                *(merge(sums[name], min_batch) for name in ("latency_sum_ms", "completed", "latency_square_sum_ms2")), self.level
            )
            sections, extras = _sections(fine, len(sums["finished"]), drops[0] if drops else None)
        else:
            values, sections, extras = kept[0][0], np.zeros(len(kept[0][0]), np.int64), [int(drops[0].sum()) if drops else 0]
        intervals = quantile_intervals(values, sections, extras, list(QUANTILES.values()), self.level, min_batch, inflation)
        return {name: Estimate(*interval) for name, interval in zip(QUANTILES, intervals)}


def _sections(fine: np.ndarray, batches: int, dropped: np.ndarray | None) -> tuple[np.ndarray, list[int]]:
    """One run's ``batches`` fine batches as sections: the section of each value (from its fine batch) and each one's drops."""
    first = int(fine.min()) if len(fine) else 0
    return fine.astype(np.int64) - first, np.round(dropped).astype(int).tolist() if dropped is not None else [0] * batches


def _series_stats(units: _Units, series: list[dict], seconds: list[np.ndarray], with_cache: bool) -> dict[str, Any]:
    """Every statistic of one class (or of all), combined over the replications."""
    stats: dict[str, Any] = {}
    for field, (numerator, denominator) in RATIOS.items():
        if field == "cache_hit_ratio" and not with_cache:
            continue
        estimate = units.ratio(
            [s["sums"][numerator] for s in series], [s["sums"][denominator] for s in series], proportion=field in PROPORTIONS
        )
        _set(stats, field, estimate.as_dict())
    for field, numerator in RATES.items():
        stats[field] = units.ratio([s["sums"][numerator] for s in series], seconds).as_dict()
    estimates: dict[str, dict[str, Estimate]] = {}
    for field, key in DISTRIBUTIONS.items():
        if key == "latency_or_drop" and not any(s["sums"]["dropped"].any() for s in series):
            estimates[key] = estimates["latency"]  # nothing dropped: the same values
        else:
            estimates[key] = units.quantiles(series, key)
        for name, estimate in estimates[key].items():
            _set(stats, f"{field}.{name}", estimate.as_dict())
        _set(stats, f"{field}.max", Estimate(max(s[key]["max"] for s in series), None, None).as_dict())
    reasons = sorted({reason for s in series for reason in s["dropped"]})
    stats["drop_ratio_by_reason"] = {
        reason: units.ratio(
            [s["dropped"].get(reason, np.zeros_like(s["sums"]["finished"])) for s in series],
            [s["sums"]["finished"] for s in series],
            proportion=True,
        ).as_dict()
        for reason in reasons
    }
    return stats


def _miss_blocks(series: list[dict], level: float) -> tuple[np.ndarray, np.ndarray, float, bool]:
    """Misses and finished requests per block (each replication's fine batches merged until its latency and its
    misses look uncorrelated), the latency's variance inflation over the same blocks, and whether any
    replication's batch means are still correlated."""
    misses, finished, latency, served, squares = [], [], [], [], []
    for s in series:
        sums = s["sums"]
        fine_misses = sums["finished"] - sums["met"]
        factor = max(batch_size_for(sums["latency_sum_ms"], sums["completed"])[0], batch_size_for(fine_misses, sums["finished"])[0])
        for blocks, fine in zip(
            (misses, finished, latency, served, squares),
            (fine_misses, sums["finished"], sums["latency_sum_ms"], sums["completed"], sums["latency_square_sum_ms2"]),
        ):
            blocks.append(merge(fine, factor))
    misses, finished, latency, served, squares = map(np.concatenate, (misses, finished, latency, served, squares))
    inflation = _latency_inflation(latency, served, squares, level)
    return misses, finished, inflation, any(s["batches_correlated"] for s in series)


def _latency_inflation(latency_ms: np.ndarray, served: np.ndarray, squares_ms2: np.ndarray, level: float) -> float:
    """The latency's variance inflation (``estimators.variance_inflation``) over blocks of its sums and squares."""
    completed = served.sum()
    variance = squares_ms2.sum() / completed - (latency_ms.sum() / completed) ** 2 if completed > 0 else 0.0
    return variance_inflation(latency_ms, served, variance, level)


def _slo(request_class: RequestClass, series: list[dict], level: float) -> dict[str, Any]:
    """The class's verdict: met / violated / inconclusive, from one-sided bounds (at the run's confidence) on its
    miss probability that count correlated requests as fewer independent ones (``estimators.miss_bounds``);
    while the batch means are still correlated, each block counts as one trial."""
    allowance = request_class.miss_allowance
    finished = int(sum(s["sums"]["finished"].sum() for s in series))
    misses = finished - int(round(sum(s["sums"]["met"].sum() for s in series)))
    if allowance is None:
        return {"required_met_ratio": None, "verdict": None, "misses": misses, "finished": finished}
    block_misses, block_finished, inflation, correlated = _miss_blocks(series, level)
    lower, upper, effective = miss_bounds(block_misses, block_finished, math.inf if correlated else inflation, level)
    verdict = "met" if upper <= allowance else "violated" if lower > allowance else "inconclusive"
    return {
        "required_met_ratio": request_class.required_met_ratio,
        "miss_allowance": allowance,
        "misses": misses,
        "finished": finished,
        "miss_probability": {"estimate": misses / finished if finished else None, "lower_bound": lower, "upper_bound": upper},
        "effective_requests": effective,
        "bound_method": "blocks_correlated" if correlated else "effective_sample",
        "verdict": verdict,
    }


def _node_stats(units: _Units, nodes: list[dict]) -> dict[str, Any]:
    busy = [n["fine_busy_ms"] for n in nodes]
    queued = [n["fine_queue_ms"] for n in nodes]
    capacity = [n["fine_ms"] * n["workers"] for n in nodes]
    spans = [n["fine_ms"] for n in nodes]
    return {
        "utilization": units.ratio(busy, capacity, proportion=True).as_dict(),
        "mean_queue_length": units.ratio(queued, spans).as_dict(),
        "availability": units.ratio([n["fine_up_ms"] for n in nodes], spans, proportion=True).as_dict(),
    }


def summarize(
    scenario: Scenario,
    seed: int,
    requests: int,
    results: list[dict],
    offered_load: float,
    notes: Sequence[str] = (),
    batch_means: bool = True,
) -> dict[str, Any]:
    """Combine the replications into the run summary (the JSON document described in docs/outputs.md).

    ``batch_means``: whether one replication may give batch-means intervals (a stationary run).
    """
    level = scenario.run.confidence
    units = _Units(results, level, batch_means)
    notes = list(notes)
    if len(results) < FEW_REPLICATIONS and units.replicated:
        notes.append(
            f"only {len(results)} replications: intervals rest on {len(results) - 1} degrees of freedom and are wide; "
            f"use {FEW_REPLICATIONS} or more"
        )
    with_cache = scenario.cache is not None
    seconds = [r["fine_seconds"] for r in results]
    classes_by_name = {c.name: c for c in scenario.workload.classes}
    classes: dict[str, Any] = {}
    computed: dict[tuple[int, ...], dict[str, Any]] = {}  # one class's series are those of all classes: once
    for name in [*classes_by_name, ALL]:
        series = [r["classes"][name] for r in results]
        identity = tuple(map(id, series))
        if identity not in computed:
            computed[identity] = _series_stats(units, series, seconds, with_cache)
        stats = copy.deepcopy(computed[identity])
        entry: dict[str, Any] = {
            "finished": int(sum(s["sums"]["finished"].sum() for s in series)),
            "completed": int(sum(s["sums"]["completed"].sum() for s in series)),
            "dropped": {
                reason: int(sum(s["dropped"][reason].sum() for s in series if reason in s["dropped"]))
                for reason in sorted({reason for s in series for reason in s["dropped"]})
            },
        }
        if name in classes_by_name:
            request_class = classes_by_name[name]
            entry.update(kind=request_class.kind, priority=request_class.priority, deadline_ms=request_class.deadline_ms)
            entry["slo"] = _slo(request_class, series, level)
        entry.update(stats)
        classes[name] = entry
    if not units.replicated and not units.batch_means:
        notes.append("no intervals: batch means need a stationary run; run 2 or more replications for intervals")
    elif units.batch_means and results[0]["classes"][ALL]["batches_correlated"]:
        notes.append("batch means of this run are still correlated at 10 batches: intervals may be too narrow; run longer or replicate")
    nodes = {}
    for name in results[0]["nodes"]:
        per_replication = [r["nodes"][name] for r in results]
        batch_sizes: dict[str, int] = {}
        for replication in per_replication:
            for size, count in replication["batch_sizes"].items():
                batch_sizes[size] = batch_sizes.get(size, 0) + count
        nodes[name] = {
            "served": sum(n["served"] for n in per_replication),
            **({"model_loads": sum(n["model_loads"] for n in per_replication)} if "model_loads" in per_replication[0] else {}),
            "batch_sizes": dict(sorted(batch_sizes.items(), key=lambda item: int(item[0]))),
            **_node_stats(units, per_replication),
        }
    return {
        "scenario": scenario.name,
        "seed": seed,
        "replications": len(results),
        "requests_per_replication": requests,
        "measured_requests": [r["measured_requests"] for r in results],
        "warmup_requests": [r["warmup_requests"] for r in results],
        "transient_requests": [r["transient_requests"] for r in results],
        "confidence": level,
        "ci_method": "replications" if units.replicated else "batch_means" if units.batch_means else "none",
        "offered_load": offered_load,
        "simulated_s_per_replication": sum(r["simulated_s"] for r in results) / len(results),
        "quantiles_exact": all(r["classes"][ALL]["quantiles_exact"] for r in results),
        "notes": notes,
        "classes": classes,
        "nodes": nodes,
    }
