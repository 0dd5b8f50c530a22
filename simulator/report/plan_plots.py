"""The figures of a capacity report, drawn from a plan's results document (``plan.json``) as PNG bytes.

Each function takes the document and returns the PNG, or None when the plan has no data for it
(no configuration met the SLOs, so there is no winner to draw). ``render.png`` draws each one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from matplotlib.axes import Axes

from simulator.report.render import mark_limit, plain_log_ticks, png

PARTS = {  # latency parts of the breakdown: record column → label
    "network_ms": "network", "cache_ms": "cache", "queue_ms": "wait", "batch_wait_ms": "batch wait",
    "load_ms": "model load", "copy_ms": "copy", "compute_ms": "compute",
}


def _latency_bounds(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [slo for slo in document["inputs"]["slos"] if slo["metric"].startswith(("latency_ms.", "latency_or_drop_ms."))]


def _detail(document: dict[str, Any]) -> dict[str, Any] | None:
    winner = document.get("winner")
    return None if winner is None else winner.get("detail")


def _latency_distribution(document: dict[str, Any], tail: bool) -> bytes | None:
    """The winner's latency distribution at the target load per class, P(latency ≤ x) or its tail on a log scale."""
    detail = _detail(document)
    if detail is None:
        return None

    def draw(axes: Axes) -> None:
        for scope, cdf in detail["cdf"].items():
            points = [(x, 1 - level if tail else level) for x, level in zip(cdf["latency_ms"], cdf["levels"])]
            points = [(x, y) for x, y in points if y > 0 or not tail]
            axes.plot([x for x, _ in points], [y for _, y in points], label=scope, linewidth=1.8 if scope == "all" else 1.0)
        if tail:
            axes.set_yscale("log")
        for slo in _latency_bounds(document):
            mark_limit(axes, slo["bound"], slo["label"], axis="x")

    if tail:
        return png("Latency tail (log scale)", "latency (ms)", "P(latency > x)", draw)
    return png("Latency CDF of the chosen configuration at the target load", "latency (ms)", "P(latency ≤ x)", draw)


def latency_cdf(document: dict[str, Any]) -> bytes | None:
    """The winner's latency distribution at the target load, per class, with the SLO bounds."""
    return _latency_distribution(document, tail=False)


def latency_ccdf(document: dict[str, Any]) -> bytes | None:
    """The same distribution's tail, P(latency > x) on a log scale."""
    return _latency_distribution(document, tail=True)


def latency_vs_load(document: dict[str, Any]) -> bytes | None:
    """The winner's latency percentiles against offered load, each with its SLO line, the maximum load and the knee."""
    winner = document.get("winner")
    bounds = _latency_bounds(document)
    if winner is None or not bounds:
        return None

    def draw(axes: Axes) -> None:
        for index, slo in enumerate(bounds):
            color = f"C{index}"
            points = [(point["rate_per_s"], item) for point in winner["curve"] for item in point["items"]
                      if item["label"] == slo["label"] and item["estimate"] is not None]
            estimates = [item["estimate"] for _, item in points]
            below = [item["estimate"] - (item["ci_low"] if item["ci_low"] is not None else item["estimate"]) for _, item in points]
            above = [(item["ci_high"] if item["ci_high"] is not None else item["estimate"]) - item["estimate"] for _, item in points]
            axes.errorbar([rate for rate, _ in points], estimates, yerr=[below, above], marker="o", capsize=3, color=color, label=slo["label"])
        axes.axvline(winner["target_per_s"], color="0.4", linestyle=":", linewidth=1, label="target load")
        if winner["max_load"] is not None:
            axes.axvline(winner["max_load"]["low_per_s"], color="green", linewidth=1.2, label="max sustainable load")
        if winner["knee_per_s"] is not None:
            axes.axvline(winner["knee_per_s"], color="orange", linewidth=1.2, linestyle="-.", label="knee")
        axes.set_yscale("log")
        plain_log_ticks(axes)
        for index, slo in enumerate(bounds):
            mark_limit(axes, slo["bound"], f"{slo['label']} bound", color=f"C{index}")

    return png("Latency percentiles against offered load (dashed: each SLO bound)", "offered load (requests/s)", "latency (ms)", draw)


def cost_frontier(document: dict[str, Any]) -> bytes | None:
    """Cost per hour against maximum sustainable load of every candidate, the Pareto frontier and the winner."""
    points = []
    for config in document["configurations"]:
        found = config["max_load"]["full"] or config["max_load"]["screen"]
        if found is not None:
            points.append((found["low_per_s"], config["cost_per_hour"], config["id"]))
    if not points:
        return None
    winner = document.get("winner")

    def draw(axes: Axes) -> None:
        axes.scatter([p[0] for p in points], [p[1] for p in points], s=18, color="steelblue", label="candidates")
        frontier, best_load = [], -math.inf
        for load, cost, _ in sorted(points, key=lambda p: (p[1], -p[0])):
            if load > best_load:
                frontier.append((load, cost))
                best_load = load
        axes.plot([p[0] for p in frontier], [p[1] for p in frontier], drawstyle="steps-post", marker="s", fillstyle="none",
                  color="0.3", linewidth=1, label="frontier")
        if winner is not None:
            chosen = [p for p in points if p[2] == winner["id"]]
            axes.scatter([p[0] for p in chosen], [p[1] for p in chosen], s=80, marker="*", color="crimson", label="chosen", zorder=3)
        axes.axvline(document["inputs"]["targets_per_s"][-1], color="0.4", linestyle=":", linewidth=1, label="target load")

    return png("Cost against maximum sustainable load", "maximum sustainable load (requests/s)", "cost per hour", draw)


def utilization_vs_load(document: dict[str, Any]) -> bytes | None:
    """The winner's simulated utilisation against offered load, beside the offered load of theory."""
    winner = document.get("winner")
    if winner is None:
        return None
    curve = [point for point in winner["curve"] if point["utilization"] is not None]

    def draw(axes: Axes) -> None:
        rates = [point["rate_per_s"] for point in curve]
        axes.plot(rates, [point["utilization"] for point in curve], marker="o", label="simulated utilisation")
        theory = [(point["rate_per_s"], point["theory"]["offered_load"]) for point in curve if point.get("theory")]
        if theory:
            axes.plot([t[0] for t in theory], [t[1] for t in theory], linestyle="--", label="offered load (theory)")
        axes.axhline(1.0, color="crimson", linewidth=0.8)

    return png("Utilisation against offered load (chosen configuration)", "offered load (requests/s)", "utilisation", draw)


def latency_breakdown(document: dict[str, Any]) -> bytes | None:
    """Mean latency of the winner's served requests, by part (network, cache, wait, batch wait, load, copy, compute)."""
    detail = _detail(document)
    if detail is None:
        return None
    scopes = list(detail["breakdown_ms"])

    def draw(axes: Axes) -> None:
        left = [0.0] * len(scopes)
        for part, label in PARTS.items():
            values = [detail["breakdown_ms"][scope][part] for scope in scopes]
            if any(value > 0 for value in values):
                axes.barh(scopes, values, left=left, label=label)
                left = [a + b for a, b in zip(left, values)]

    return png("Where the time goes: mean latency by part", "mean latency (ms)", "class", draw)


def percentiles_over_time(document: dict[str, Any]) -> bytes | None:
    """p50 and p99 per monitoring window of the winner's first replication, warm-up included."""
    detail = _detail(document)
    if detail is None:
        return None
    series = detail["timeseries"]

    def draw(axes: Axes) -> None:
        for column, label in (("latency_p50_ms", "p50"), ("latency_p99_ms", "p99")):
            axes.plot(series["window_start_s"], series[column], label=label, linewidth=1)
        for slo in _latency_bounds(document):
            mark_limit(axes, slo["bound"], slo["label"])

    return png("Latency percentiles over time (chosen configuration, replication 0)", "simulated time (s)", "latency (ms)", draw)


def batch_sizes(document: dict[str, Any]) -> bytes | None:
    """How many batches of each size the winner's nodes served at the target load."""
    detail = _detail(document)
    if detail is None or not detail.get("batch_sizes"):
        return None
    sizes = detail["batch_sizes"]

    def draw(axes: Axes) -> None:
        axes.bar([int(size) for size in sizes], list(sizes.values()), color="steelblue")

    return png("Batch sizes served (chosen configuration)", "batch size", "batches", draw)


FIGURES: dict[str, tuple[str, str, Callable[[dict[str, Any]], bytes | None]]] = {  # name → (title, caption, drawing)
    "latency-cdf": ("Latency CDF", "Distribution of end-to-end latency of served requests for the chosen configuration at the "
                    "target load (its first replications, full length), per class; dashed: the SLO bounds.", latency_cdf),
    "latency-ccdf": ("Latency tail (log CCDF)", "The same distribution's tail on a log scale: how often a request is later than x.",
                     latency_ccdf),
    "latency-vs-load": ("Latency against load", "Each latency SLO's percentile against offered load for the chosen configuration "
                        "(full runs, with their intervals; dashed in the same colour: its bound), the target load, the maximum "
                        "sustainable load and the knee (the lowest load where the first bound's percentile reaches twice its value "
                        "at the lowest load simulated).", latency_vs_load),
    "cost-frontier": ("Cost against sustainable load", "Each candidate's (each group's fewest replicas that meet the SLOs) cost per "
                      "hour against its maximum sustainable load; the step line is the frontier (nothing cheaper sustains more).",
                      cost_frontier),
    "utilization-vs-load": ("Utilisation against load", "Mean utilisation of the chosen configuration's nodes against offered load, "
                            "beside the offered load of theory.", utilization_vs_load),
    "latency-breakdown": ("Latency breakdown", "Mean latency of served requests split into network, cache, wait, batch wait, model "
                          "load, copies and compute.", latency_breakdown),
    "percentiles-over-time": ("Percentiles over time", "p50 and p99 per monitoring window of the chosen configuration's first "
                              "replication, warm-up included.", percentiles_over_time),
    "batch-sizes": ("Batch-size histogram", "How many batches of each size the chosen configuration's nodes served at the target load.",
                    batch_sizes),
}


def draw_all(document: dict[str, Any]) -> dict[str, bytes]:
    """Every figure the document has data for, by name (the names of ``FIGURES``)."""
    drawn = {name: draw(document) for name, (_, _, draw) in FIGURES.items()}
    return {name: png for name, png in drawn.items() if png is not None}
