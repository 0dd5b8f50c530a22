"""The accuracy report of a testbed campaign (``latsim testbed compare``): how close each prediction
came to the measured runs, as ``comparison.csv``, ``report.md``, a self-contained ``report.html``
and PNG plots (p50/p99 against load; measured and predicted latency distributions per level).

It renders plain data (the dict ``simulator.testbed.report_data`` gathers from a campaign folder):
the report knows nothing of testbed files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from simulator.files import make_output_folder, write_atomically
from simulator.report.render import png, write_pages

PALETTE = ("tab:orange", "tab:green", "tab:blue", "tab:purple", "tab:brown")  # one colour per prediction, in the labels' order
CSV_FILE = "comparison.csv"


def _colours(labels: dict[str, str]) -> dict[str, str]:
    return {kind: PALETTE[index % len(PALETTE)] for index, kind in enumerate(labels)}


def _load_figure(table: pd.DataFrame, statistic: str, labels: dict[str, str]) -> bytes:
    """``statistic`` of all classes against load: every measured run, and each prediction with its interval and band."""
    chosen = table[(table["class"] == "all") & (table["statistic"] == statistic)]
    colours = _colours(labels)

    def draw(axes: Axes) -> None:
        measured = chosen.drop_duplicates(["level", "repeat"])
        axes.scatter(measured["level"], measured["measured"], color="black", marker="x", label="measured runs", zorder=3)
        for kind, label in labels.items():
            rows = chosen[chosen["prediction"] == kind]
            if rows.empty:
                continue
            per_level = rows.groupby("level").agg(
                predicted=("predicted", "mean"), low=("ci_low", "min"), high=("ci_high", "max"),
                band_low=("band_low", "min"), band_high=("band_high", "max"),
            ).reset_index()
            axes.plot(per_level["level"], per_level["predicted"], marker="o", color=colours[kind], label=label)
            low = per_level[["low", "band_low"]].min(axis=1)
            high = per_level[["high", "band_high"]].max(axis=1)
            axes.fill_between(per_level["level"], low, high, color=colours[kind], alpha=0.15)

    return png(f"{statistic} latency against load (shaded: interval and band)", "load (fraction of the saturated throughput)",
               "latency (ms)", draw)


def _cdf_figure(level: float, distribution: dict[str, Any], labels: dict[str, str]) -> bytes:
    """Measured latency distributions of a level's runs beside each prediction's simulated one (tail on a log scale)."""
    colours = _colours(labels)

    def tail(axes: Axes, latency_ms: np.ndarray, **style: Any) -> None:
        values = np.sort(latency_ms[np.isfinite(latency_ms)])
        survival = 1.0 - np.arange(1, values.size + 1) / (values.size + 1)
        axes.plot(values, survival, **style)

    def draw(axes: Axes) -> None:
        for index, latency in enumerate(distribution["measured_ms"]):
            tail(axes, np.asarray(latency, dtype=float), color="black", alpha=0.6, label="measured runs" if index == 0 else None)
        for kind, latency in distribution["predicted_ms"].items():
            tail(axes, np.asarray(latency, dtype=float), color=colours[kind], label=labels[kind])
        axes.set_yscale("log")

    return png(f"latency distribution at load {level:.2f}: P(latency > x)", "latency (ms)", "P(latency > x)", draw)


def write_testbed_report(data: dict[str, Any], out: Path) -> list[Path]:
    """Write the comparison table, the report (Markdown and HTML) and its plots into ``out``; returns the files.

    ``data``: the plain data of ``simulator.testbed.report_data.report_data`` (``table``, ``distributions``, ``labels`` and
    what the templates show)."""
    table, labels = data["table"], data["labels"]
    figures = {f"{statistic}-against-load": _load_figure(table, statistic, labels) for statistic in ("p50", "p99")}
    for level, distribution in data["distributions"].items():
        figures[f"distribution-{level:.2f}"] = _cdf_figure(level, distribution, labels)
    context = {key: value for key, value in data.items() if key not in ("table", "distributions")}
    out = make_output_folder(out)
    write_atomically(out / CSV_FILE, lambda path: table.to_csv(path, index=False))
    return [out / CSV_FILE, *write_pages(out, "testbed", context, figures)]
