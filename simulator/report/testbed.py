"""The accuracy report of a testbed campaign (``latsim testbed compare``): how close each prediction
came to the measured runs, as ``comparison.csv``, ``report.md``, a self-contained ``report.html``
and PNG plots (p50/p99 against load; measured and predicted latency distributions per level)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from markupsafe import Markup
from matplotlib.axes import Axes

from simulator.files import make_output_folder, write_atomically, write_text_atomically
from simulator.report.render import environment, png
from simulator.testbed.campaign_file import RUN_SUMMARY, RUN_TABLE, read_campaign
from simulator.testbed.compare import (
    CALIBRATED,
    MEASURED,
    PROFILE,
    RECORDS_FILE,
    error_summary,
)
from simulator.testbed.errors import TestbedError
from simulator.testbed.scenario import WARMUP_FRACTION

LABELS = {
    PROFILE: "(a) from the profile",
    CALIBRATED: "(a) from the profile, calibrated",
    MEASURED: "(b) from the run's own service process",
}
COLORS = {PROFILE: "tab:orange", CALIBRATED: "tab:green", MEASURED: "tab:blue"}
SUMMARY_STATISTICS = ("p50", "p95", "p99", "mean", "deadline_met_ratio")
ORDER = {name: rank for rank, name in enumerate((PROFILE, CALIBRATED, MEASURED, *SUMMARY_STATISTICS))}
BAND_LEVEL = 0.7  # the band must overlap the run-to-run band at every level up to here
CSV_FILE, HTML_FILE, MARKDOWN_FILE, PLOTS_FOLDER = "comparison.csv", "report.html", "report.md", "plots"


def _load_figure(table: pd.DataFrame, statistic: str) -> bytes:
    """``statistic`` of all classes against load: every measured run, and each prediction with its interval and band."""
    chosen = table[(table["class"] == "all") & (table["statistic"] == statistic)]

    def draw(axes: Axes) -> None:
        measured = chosen.drop_duplicates(["level", "repeat"])
        axes.scatter(measured["level"], measured["measured"], color="black", marker="x", label="measured runs", zorder=3)
        for kind in (PROFILE, CALIBRATED, MEASURED):
            rows = chosen[chosen["prediction"] == kind]
            if rows.empty:
                continue
            per_level = rows.groupby("level").agg(
                predicted=("predicted", "mean"), low=("ci_low", "min"), high=("ci_high", "max"),
                band_low=("band_low", "min"), band_high=("band_high", "max"),
            ).reset_index()
            axes.plot(per_level["level"], per_level["predicted"], marker="o", color=COLORS[kind], label=LABELS[kind])
            low = per_level[["low", "band_low"]].min(axis=1)
            high = per_level[["high", "band_high"]].max(axis=1)
            axes.fill_between(per_level["level"], low, high, color=COLORS[kind], alpha=0.15)

    return png(f"{statistic} latency against load (shaded: interval and band)", "load (fraction of the saturated throughput)",
               "latency (ms)", draw)


def _cdf_figure(campaign_dir: Path, campaign: dict[str, Any], level: float) -> bytes | None:
    """Measured latency distributions of a level's valid runs beside each prediction's simulated one (tail on a log scale)."""
    runs = [campaign_dir / run["dir"] / RUN_TABLE for run in campaign["runs"] if run["valid"] and run["level"] == level]
    predictions = campaign_dir / "predictions" / f"level-{level:.2f}"
    simulated = {
        MEASURED: predictions / "repeat-0" / RECORDS_FILE,
        PROFILE: predictions / PROFILE / RECORDS_FILE,
        CALIBRATED: predictions / CALIBRATED / RECORDS_FILE,
    }
    if not runs:
        return None

    def tail(axes: Axes, latency_ms: np.ndarray, **style: Any) -> None:
        values = np.sort(latency_ms[np.isfinite(latency_ms)])
        survival = 1.0 - np.arange(1, values.size + 1) / (values.size + 1)
        axes.plot(values, survival, **style)

    def draw(axes: Axes) -> None:
        for index, path in enumerate(runs):
            table = pd.read_parquet(path).sort_values("scheduled_ms")
            table = table.iloc[int(len(table) * WARMUP_FRACTION):]
            tail(axes, table.loc[table["status"] == 200, "latency_ms"].to_numpy(), color="black", alpha=0.6,
                 label="measured runs" if index == 0 else None)
        for kind, path in simulated.items():
            if path.is_file():
                latency = pd.read_parquet(path, columns=["latency_ms"])["latency_ms"].to_numpy(dtype=float)
                tail(axes, latency, color=COLORS[kind], label=LABELS[kind])
        axes.set_yscale("log")

    return png(f"latency distribution at load {level:.2f}: P(latency > x)", "latency (ms)", "P(latency > x)", draw)


def _context(campaign_dir: Path, campaign: dict[str, Any], table: pd.DataFrame, calibration: Path | None) -> dict[str, Any]:
    everything = table[table["class"] == "all"]
    summaries = []
    for max_level, label in ((BAND_LEVEL, f"levels ≤ {BAND_LEVEL}"), (1.0, "all levels")):
        summary = error_summary(table, max_level)
        summary = summary[summary["statistic"].isin(SUMMARY_STATISTICS)]
        ranks = (summary["prediction"].map(ORDER), summary["class"] != "all", summary["class"], summary["statistic"].map(ORDER))
        summary = summary.iloc[sorted(range(len(summary)), key=lambda row: tuple(rank.iloc[row] for rank in ranks))]
        summaries.append({"label": label, "rows": summary.to_dict("records")})
    per_level = []
    for (level, class_name, statistic), rows in table.groupby(["level", "class", "statistic"]):
        entry = {"level": level, "class": class_name, "statistic": statistic,
                 "run_low": rows["run_low"].iloc[0], "run_high": rows["run_high"].iloc[0], "predictions": []}
        for kind, group in rows.groupby("prediction", sort=False):
            entry["predictions"].append({
                "kind": LABELS[kind], "predicted": group["predicted"].mean(), "ci_low": group["ci_low"].min(),
                "ci_high": group["ci_high"].max(), "band_low": group["band_low"].min(), "band_high": group["band_high"].max(),
                "median_error": float(np.nanmedian(np.abs(group["error"]))), "overlaps": bool(group["overlaps_runs"].all()),
            })
        per_level.append(entry)
    capacity = campaign["capacity"]
    utilization: dict[float, list[float]] = {}
    for run in campaign["runs"]:
        if run["valid"]:
            summary = json.loads((campaign_dir / run["dir"] / RUN_SUMMARY).read_text(encoding="utf-8"))
            utilization.setdefault(run["level"], []).append(summary["load"]["worker_utilization"])
    return {
        "utilization": {level: float(np.mean(values)) for level, values in sorted(utilization.items())},
        "title": f"How close latsim comes to a real server: {campaign['name']}, {campaign['testbed']['model']['family']}/"
                 f"{campaign['testbed']['model']['variant']}, {campaign['testbed']['workers']} worker(s), "
                 f"{campaign['testbed']['discipline']}",
        "campaign": campaign, "capacity": capacity, "calibration": str(calibration) if calibration else None,
        "invalid": [run for run in campaign["runs"] if not run["valid"]],
        "warned": [run for run in campaign["runs"] if run.get("warnings")],
        "summaries": summaries, "per_level": per_level, "levels": sorted(everything["level"].unique().tolist()),
        "labels": LABELS, "band_level": BAND_LEVEL, "warmup_fraction": WARMUP_FRACTION,
    }


def write_testbed_report(campaign_dir: Path, table: pd.DataFrame, out: Path, calibration: Path | None = None) -> list[Path]:
    """Write the comparison table, the report (Markdown and HTML) and its plots into ``out``; returns the files."""
    campaign_dir = Path(campaign_dir)
    campaign = read_campaign(campaign_dir)
    if table.empty:
        raise TestbedError(f"{campaign_dir}: no valid run to compare")
    out = make_output_folder(out)
    figures = {f"{statistic}-against-load": _load_figure(table, statistic) for statistic in ("p50", "p99")}
    for level in sorted(table["level"].unique()):
        figure = _cdf_figure(campaign_dir, campaign, level)
        if figure is not None:
            figures[f"distribution-{level:.2f}"] = figure
    context = _context(campaign_dir, campaign, table, calibration)
    html_images = {name: Markup("data:image/png;base64," + base64.b64encode(data).decode()) for name, data in figures.items()}
    markdown_images = {name: f"{PLOTS_FOLDER}/{name}.png" for name in figures}
    html = environment(html=True).get_template("testbed.html.j2").render(**context, images=html_images)
    markdown = environment(html=False).get_template("testbed.md.j2").render(**context, images=markdown_images)
    write_atomically(out / CSV_FILE, lambda path: table.to_csv(path, index=False))
    write_text_atomically(out / MARKDOWN_FILE, markdown)
    write_text_atomically(out / HTML_FILE, html)
    plots = make_output_folder(out / PLOTS_FOLDER)
    written = [out / CSV_FILE, out / MARKDOWN_FILE, out / HTML_FILE]
    for name, data in figures.items():
        write_atomically(plots / f"{name}.png", lambda path, data=data: path.write_bytes(data))
        written.append(plots / f"{name}.png")
    return written
