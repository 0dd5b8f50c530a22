"""What the accuracy report of a campaign shows, gathered from the campaign folder as plain data (a dict of
numbers, strings, the comparison table and latency arrays), so that the report renders it without knowing testbed files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from simulator.testbed.campaign_file import RUN_SUMMARY, RUN_TABLE, read_campaign
from simulator.testbed.compare import CALIBRATED, MEASURED, PROFILE, RECORDS_FILE, error_summary
from simulator.testbed.errors import TestbedError
from simulator.testbed.scenario import WARMUP_FRACTION

LABELS = {
    PROFILE: "(a) from the profile",
    CALIBRATED: "(a) from the profile, calibrated",
    MEASURED: "(b) from the run's own service process",
}
SUMMARY_STATISTICS = ("p50", "p95", "p99", "mean", "deadline_met_ratio")
ORDER = {name: rank for rank, name in enumerate((PROFILE, CALIBRATED, MEASURED, *SUMMARY_STATISTICS))}
BAND_LEVEL = 0.7  # the band must overlap the run-to-run band at every level up to here


def _distributions(campaign_dir: Path, campaign: dict[str, Any], level: float) -> dict[str, Any] | None:
    """A level's measured latencies (one array per valid run the campaign lists, warm-up left out, successes only) and
    each prediction's simulated ones."""
    runs = [campaign_dir / run["dir"] / RUN_TABLE for run in campaign["runs"] if run["valid"] and run["level"] == level]
    if not runs:
        return None
    measured = []
    for path in runs:
        table = pd.read_parquet(path).sort_values("scheduled_ms")
        table = table.iloc[int(len(table) * WARMUP_FRACTION):]
        measured.append(table.loc[table["status"] == 200, "latency_ms"].to_numpy(dtype=float))
    predictions = campaign_dir / "predictions" / f"level-{level:.2f}"
    simulated = {
        MEASURED: predictions / "repeat-0" / RECORDS_FILE,
        PROFILE: predictions / PROFILE / RECORDS_FILE,
        CALIBRATED: predictions / CALIBRATED / RECORDS_FILE,
    }
    predicted = {
        kind: pd.read_parquet(path, columns=["latency_ms"])["latency_ms"].to_numpy(dtype=float)
        for kind, path in simulated.items() if path.is_file()
    }
    return {"measured_ms": measured, "predicted_ms": predicted}


def report_data(campaign_dir: Path, table: pd.DataFrame, calibration: Path | None = None) -> dict[str, Any]:
    """Everything the accuracy report shows: the campaign, the comparison ``table``, error summaries, utilisation, distributions."""
    campaign_dir = Path(campaign_dir)
    campaign = read_campaign(campaign_dir)
    if table.empty:
        raise TestbedError(f"{campaign_dir}: no valid run to compare")
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
    utilization: dict[float, list[float]] = {}
    for run in campaign["runs"]:
        if run["valid"]:
            summary = json.loads((campaign_dir / run["dir"] / RUN_SUMMARY).read_text(encoding="utf-8"))
            utilization.setdefault(run["level"], []).append(summary["load"]["worker_utilization"])
    levels = sorted(everything["level"].unique().tolist())
    distributions = {level: found for level in levels if (found := _distributions(campaign_dir, campaign, level)) is not None}
    return {
        "utilization": {level: float(np.mean(values)) for level, values in sorted(utilization.items())},
        "title": f"How close latsim comes to a real server: {campaign['name']}, {campaign['testbed']['model']['family']}/"
                 f"{campaign['testbed']['model']['variant']}, {campaign['testbed']['workers']} worker(s), "
                 f"{campaign['testbed']['discipline']}",
        "campaign": campaign, "capacity": campaign["capacity"], "calibration": str(calibration) if calibration else None,
        "invalid": [run for run in campaign["runs"] if not run["valid"]],
        "warned": [run for run in campaign["runs"] if run.get("warnings")],
        "summaries": summaries, "per_level": per_level, "levels": levels,
        "labels": LABELS, "band_level": BAND_LEVEL, "warmup_fraction": WARMUP_FRACTION,
        "table": table, "distributions": distributions,
    }
