"""The report of one run (``latsim run SCENARIO --report DIR``): a self-contained HTML page and its Markdown twin.

It renders plain data: the run's summary (``RunResult.summary``), the monitoring time series of one
replication and the scenario's text, with the machinery of every report (``render.write_pages``):
figures embedded in the HTML, user text escaped by Jinja2's autoescaping and the ``md`` filter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from simulator.metrics.collector import ALL, QUANTILES
from simulator.report.plots import timeseries_figures
from simulator.report.render import write_pages
from simulator.report.table import slo_verdict

FIGURES = {  # time-series figure name → (title, caption)
    "throughput": ("Throughput and drops", "Arrivals, completions and drops per second in each monitoring window."),
    "latency": ("Latency over time", "p50 and p99 of the requests completed in each window, all classes and per class; "
                "dashed (or an arrow at the edge when it lies beyond the data): each class's deadline."),
    "queue_length": ("Queue length", "Mean number of requests waiting at each node in each window."),
    "utilization": ("Utilisation", "Busy fraction of each node's workers in each window."),
    "cache_hit_ratio": ("Cache hit ratio", "Cache hits per arrival in each window."),
}
STATISTICS = ("mean", *QUANTILES, "max")


def _verdict_sentence(summary: dict[str, Any], judged: list[dict[str, Any]]) -> tuple[str, str]:
    """The run's answer in one sentence, and its overall verdict (met, violated, inconclusive, or none)."""
    verdicts = {row["verdict"] for row in judged if row["verdict"] is not None}
    overall = next((verdict for verdict in ("violated", "inconclusive", "met") if verdict in verdicts), "none")
    setting = (
        f"At offered load {summary['offered_load']:.3f} ({summary['replications']} replication(s) of "
        f"{summary['requests_per_replication']:,} measured requests, {summary['engine']} engine)"
    )
    if overall == "none":
        return f"{setting}, no class has an SLO to judge (a deadline with a target share).", overall
    parts = "; ".join(f"{row['name']}: {row['verdict'] or 'not judged'} ({row['grounds']})" for row in judged)
    answer = {"met": "every class with an SLO meets it", "violated": "an SLO is violated",
              "inconclusive": "no SLO is violated, but one is inconclusive at this precision"}[overall]
    return f"{setting}, {answer}: {parts}.", overall


def run_report_context(summary: dict[str, Any], scenario: dict[str, Any], figure_names: list[str]) -> dict[str, Any]:
    """Everything both templates show. ``scenario``: its ``name``, ``description``, ``source``, ``text`` (the file as written,
    or None), ``parameters_yaml`` (as validated) and ``command`` (how this run was started)."""
    classes = [{"name": name, **entry} for name, entry in summary["classes"].items()]
    judged = []
    for entry in classes:
        verdict, grounds = slo_verdict(entry)
        entry["verdict"], entry["grounds"] = verdict, grounds
        if grounds and entry["name"] != ALL:
            judged.append(entry)
    sentence, overall = _verdict_sentence(summary, judged)
    return {
        "title": f"Run: {scenario['name']}", "scenario": scenario, "summary": summary, "classes": classes, "judged": judged,
        "sentence": sentence, "overall": overall, "statistics": STATISTICS, "with_cache": "cache_hit_ratio" in summary["classes"][ALL],
        "with_loads": any("model_loads" in entry for entry in summary["nodes"].values()),
        "figures": [{"name": name, "title": FIGURES[name][0], "caption": FIGURES[name][1]} for name in figure_names],
    }


def write_run_report(
    summary: dict[str, Any], timeseries: pd.DataFrame | None, scenario: dict[str, Any], deadlines_ms: dict[str, float], out: Path
) -> list[Path]:
    """Write ``report.html``, ``report.md`` and ``plots/*.png`` of one run into ``out``; returns the files.

    ``timeseries``: the monitoring windows of one replication (None or empty: a report without figures);
    ``deadlines_ms``: each class's deadline, marked on the latency figure."""
    figures = {}
    if timeseries is not None and not timeseries.empty:
        drawn = timeseries_figures(timeseries, f"{scenario['name']} (replication 0)", deadlines_ms)
        figures = {Path(name).stem: image for name, image in drawn.items()}
    return write_pages(out, "run", run_report_context(summary, scenario, list(figures)), figures)
