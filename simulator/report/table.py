"""The terminal summary of a run: one rich table per classes and nodes."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from simulator.metrics.collector import ALL, QUANTILES


def _value(stat: dict[str, Any] | None, digits: int = 2, percent: bool = False) -> str:
    """``estimate ± half-width`` (half-width of the confidence interval, when there is one)."""
    if stat is None or stat["estimate"] is None:
        return "—"
    scale = 100.0 if percent else 1.0
    text = f"{stat['estimate'] * scale:.{digits}f}"
    if stat["ci_low"] is not None and stat["ci_high"] is not None:
        text += f" ±{(stat['ci_high'] - stat['ci_low']) * scale / 2:.{digits}f}"
    return text


def _verdict(entry: dict[str, Any]) -> str:
    slo = entry.get("slo")
    if not slo or slo["required_met_ratio"] is None:
        return ""
    if slo["met"] and slo["met_with_confidence"]:
        return "[green]met[/]"
    if slo["met"]:
        return "[yellow]met (not with confidence)[/]"
    return f"[red]missed[/] ({slo.get('misses', 0)} late/dropped)"


def print_summary(summary: dict[str, Any], console: Console) -> None:
    """Latency per class (ms), real-time ratios, drops, and node utilization."""
    interval = (
        f"{summary['confidence']:.0%} CI over {summary['replications']} replications"
        if summary["ci_method"] == "replications"
        else f"{summary['confidence']:.0%} batch-means CI (mean-type metrics only)"
    )
    latency = Table(title=f"{escape(summary['scenario'])}: latency in ms (estimate ±half-width, {interval})")
    latency.add_column("class")
    for column in ("done", "dropped", "mean", *QUANTILES, "max", "wait mean"):
        latency.add_column(column, justify="right")
    realtime = Table(title=f"real-time ratios (offered load {summary['offered_load']:.3f})")
    with_cache = "cache_hit_ratio" in summary["classes"][ALL]
    columns = ("class", "kind", "deadline ms", "met deadline %", "processing/e2e %", "throughput /s")
    for column in (*columns, *(["cache hit %"] if with_cache else []), "SLO"):
        realtime.add_column(column, justify="right" if column not in ("class", "kind", "SLO") else "left")
    for name, entry in summary["classes"].items():
        lat = entry["latency_ms"]
        latency.add_row(
            escape(name),
            str(entry["completed"]),
            str(sum(entry["dropped"].values())),
            _value(lat["mean"]),
            *(_value(lat[q]) for q in QUANTILES),
            _value(lat["max"]),
            _value(entry["wait_ms"]["mean"]),
            end_section=name == ALL,
        )
        realtime.add_row(
            escape(name),
            entry.get("kind", ""),
            f"{entry['deadline_ms']:g}" if "deadline_ms" in entry else "",
            _value(entry["deadline_met_ratio"], percent=True),
            _value(entry["processing_ratio"], percent=True),
            _value(entry["throughput_per_s"], digits=1),
            *([_value(entry["cache_hit_ratio"], percent=True)] if with_cache else []),
            _verdict(entry),
        )
    nodes = Table(title="nodes")
    with_loads = any("model_loads" in entry for entry in summary["nodes"].values())
    for column in ("node", "served", "utilization %", "mean queue length", *(["model loads"] if with_loads else [])):
        nodes.add_column(column, justify="right" if column != "node" else "left")
    for name, entry in summary["nodes"].items():
        loads = [str(entry.get("model_loads", "—"))] if with_loads else []
        nodes.add_row(
            escape(name), str(entry["served"]), _value(entry["utilization"], percent=True),
            _value(entry["mean_queue_length"]), *loads,
        )
    console.print(latency)
    console.print(realtime)
    console.print(nodes)
    if not summary["quantiles_exact"]:
        console.print("quantiles above come from a REQ sketch (long run): relative rank error shrinks toward p99.9")
