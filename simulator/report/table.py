"""The terminal summary of a run: one rich table per classes and nodes."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from simulator.metrics.collector import ALL, QUANTILES
from simulator.terminal import plain


def _value(stat: dict[str, Any] | None, digits: int = 2, percent: bool = False) -> str:
    """``estimate ±half-width``, or ``estimate +above/−below`` when the interval is lopsided (log-scale
    and quantile intervals are); a dash when there is no estimate."""
    if stat is None or stat["estimate"] is None:
        return "—"
    scale = 100.0 if percent else 1.0
    estimate = stat["estimate"] * scale
    text = f"{estimate:.{digits}f}"
    if stat["ci_low"] is not None and stat["ci_high"] is not None:
        above, below = stat["ci_high"] * scale - estimate, estimate - stat["ci_low"] * scale
        if abs(above - below) <= 0.25 * max(above, below, 1e-300):
            text += f" ±{(above + below) / 2:.{digits}f}"
        else:
            text += f" +{above:.{digits}f}/−{below:.{digits}f}"
    return text


def _verdict(entry: dict[str, Any]) -> str:
    slo = entry.get("slo")
    if not slo or slo["verdict"] is None:
        return ""
    bounds = slo["miss_probability"]
    allowance = f"miss ≤ {slo['miss_allowance']:.2g}"
    seen = f"{slo['misses']} of {slo['finished']} missed, P(miss) ≤ {bounds['upper_bound']:.2g}"
    colour = {"met": "green", "violated": "red", "inconclusive": "yellow"}[slo["verdict"]]
    return f"[{colour}]{slo['verdict']}[/] ({allowance}; {seen})"


def print_summary(summary: dict[str, Any], console: Console) -> None:
    """Latency per class (ms), real-time ratios, drops, and node utilization."""
    interval = {
        "replications": f"{summary['confidence']:.0%} CI over {summary['replications']} replications",
        "batch_means": f"{summary['confidence']:.0%} batch-means CI of one replication",
        "none": "no intervals",
    }[summary["ci_method"]]
    latency = Table(title=f"{plain(summary['scenario'])}: latency in ms (estimate and the interval's reach, {interval})")
    latency.add_column("class")
    for column in ("done", "dropped", "mean", *QUANTILES, "max", "wait mean"):
        latency.add_column(column, justify="right")
    realtime = Table(title=f"real-time ratios (offered load {summary['offered_load']:.3f})")
    with_cache = "cache_hit_ratio" in summary["classes"][ALL]
    columns = ("class", "kind", "deadline ms", "met deadline %", "processing/e2e %", "throughput /s", "goodput /s", "dropped %")
    for column in (*columns, *(["cache hit %"] if with_cache else []), "SLO"):
        realtime.add_column(column, justify="right" if column not in ("class", "kind", "SLO") else "left")
    for name, entry in summary["classes"].items():
        lat = entry["latency_ms"]
        latency.add_row(
            plain(name),
            str(entry["completed"]),
            str(sum(entry["dropped"].values())),
            _value(lat["mean"]),
            *(_value(lat[q]) for q in QUANTILES),
            _value(lat["max"]),
            _value(entry["wait_ms"]["mean"]),
            end_section=name == ALL,
        )
        realtime.add_row(
            plain(name),
            entry.get("kind") or "",
            f"{entry['deadline_ms']:g}" if entry.get("deadline_ms") is not None else "",
            _value(entry["deadline_met_ratio"], percent=True),
            _value(entry["processing_ratio"], percent=True),
            _value(entry["throughput_per_s"], digits=1),
            _value(entry["goodput_per_s"], digits=1),
            _value(entry["drop_ratio"], percent=True),
            *([_value(entry["cache_hit_ratio"], percent=True)] if with_cache else []),
            _verdict(entry),
        )
    nodes = Table(title="nodes")
    with_loads = any("model_loads" in entry for entry in summary["nodes"].values())
    for column in ("node", "served", "utilization %", "mean queue length", "available %", *(["model loads"] if with_loads else [])):
        nodes.add_column(column, justify="right" if column != "node" else "left")
    for name, entry in summary["nodes"].items():
        loads = [str(entry.get("model_loads", "—"))] if with_loads else []
        nodes.add_row(
            plain(name), str(entry["served"]), _value(entry["utilization"], percent=True),
            _value(entry["mean_queue_length"]), _value(entry["availability"], percent=True), *loads,
        )
    console.print(latency)
    console.print(realtime)
    console.print(nodes)
    for note in summary.get("notes", []):
        console.print(plain(f"note: {note}"), soft_wrap=True, highlight=False)
    console.print(
        plain(
            f"warm-up per replication: {summary['warmup_requests']} requests "
            f"(transient found by MSER: {summary['transient_requests']})"
        ),
        highlight=False,
    )
    if not summary["quantiles_exact"]:
        console.print("quantiles above come from a REQ sketch (long run): relative rank error shrinks toward p99.9")
