"""How close latsim's predictions come to a real server: every run of a campaign, predicted two ways.

(a) **from the profile** taken before the runs (what a user has), optionally calibrated on an
earlier campaign (``calibrate``: the machine at the measured rate nearest the run's), with a
*prediction band* from the uncertainty of its inputs: the prediction is repeated on bootstrap
resamples of the profile (over its snapshots; over its requests if it has one) (and, calibrated, with
each calibration run's machine alone — its drift from run to run — and with the profile taken in a
slow or a fast stretch of the machine: the calibration's ``profile_drift``); each source's reach below
and above the estimate is added in quadrature (independent errors), and the band is shown beside the
simulation's confidence interval;
(b) **from the run itself** (its arrivals, its calls' service times in order, its transport delays):
the error left is the queueing model's own.

Statistics are per class and for all classes together. Measured statistics leave out the first
10 % of a run's requests, as the predictions leave out their warm-up. Per level, the measured
*run-to-run band* is the range over the repeats.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from simulator.files import inside_folder
from simulator.metrics.summary import ALL
from simulator.runner.api import run
from simulator.scenario.loader import load_scenario
from simulator.scenario.schema import Scenario
from simulator.metrics.bands import combined_band
from simulator.scenario.calibration import MachineAt, machine_at
from simulator.testbed.campaign_file import PREDICTIONS_DIR, campaign_scenario, profile_snapshots, read_campaign
from simulator.testbed.errors import TestbedError
from simulator.testbed.scenario import (
    WARMUP_FRACTION,
    measured_scenario,
    profile_scenario,
)

QUANTILES = {"p50": 0.5, "p95": 0.95, "p99": 0.99}
UPPER_BOUNDS = {"deadline_met_ratio": 1.0}  # a statistic's band stops at its largest possible value
LATENCY_STATISTICS = ("mean", *QUANTILES)
BAND_RESAMPLES = 5
PREDICTION_REQUESTS = 20_000
PREDICTION_REPLICATIONS = 10
PROFILE, CALIBRATED, MEASURED = "profile", "calibrated", "measured"
RECORDS_FILE = "records.parquet"

Statistics = dict[str, dict[str, float]]  # class → statistic → value


def measured_statistics(run_dir: Path, class_names: list[str]) -> Statistics:
    """Client latency (scheduled send → reply) of the served requests after the first 10 %, and the
    deadline-met ratio, per class and for all classes."""
    table = pd.read_parquet(Path(run_dir) / "requests.parquet").sort_values("scheduled_ms")
    table = table.iloc[int(len(table) * WARMUP_FRACTION) :]
    groups = {ALL: table} | ({name: table[table["class"] == name] for name in class_names} if len(class_names) > 1 else {})
    statistics: Statistics = {}
    for name, group in groups.items():
        latency = group.loc[group["status"] == 200, "latency_ms"].to_numpy()
        values = {"mean": float(latency.mean())} | {key: float(np.quantile(latency, q)) for key, q in QUANTILES.items()}
        statistics[name] = values | {"deadline_met_ratio": float(group["met_deadline"].mean())}
    return statistics


def predicted_statistics(
    path: Path, class_names: list[str], keep_records: bool = False
) -> dict[str, dict[str, dict[str, Any]]]:
    """The same statistics from a latsim run of a scenario file, each with its estimate and interval;
    ``keep_records`` writes the simulated requests beside the file (``RECORDS_FILE``, for the CDF plots)."""
    records_path = Path(path).parent / RECORDS_FILE if keep_records else None
    result = run(load_scenario(path), records_path=records_path, on_unstable="return")
    chosen = [ALL, *class_names] if len(class_names) > 1 else [ALL]
    if result.status == "unstable":  # the inputs say the server cannot keep up: no finite prediction
        unknown = {"estimate": None, "ci_low": None, "ci_high": None}
        return {name: dict.fromkeys((*LATENCY_STATISTICS, "deadline_met_ratio"), unknown) for name in chosen}
    summary = result.summary["classes"]
    return {
        name: {key: summary[name]["latency_ms"][key] for key in LATENCY_STATISTICS}
        | {"deadline_met_ratio": summary[name]["deadline_met_ratio"]}
        for name in chosen
    }


def _resampled_profile(profile_dir: Path, out_dir: Path, seed: int) -> Path:
    """A bootstrap resample of a closed-loop profile, for prediction bands: its snapshots drawn whole with replacement
    (a snapshot's requests share its stretch of the machine), or with one snapshot its rows."""
    profile = pd.read_parquet(Path(profile_dir) / "profile.parquet")
    snapshots = profile_snapshots(profile)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = snapshots.unique()
    if len(names) > 1:
        drawn = np.random.default_rng(seed).choice(names, size=len(names))
        resample = pd.concat([profile[snapshots == name] for name in drawn], ignore_index=True)
    else:
        resample = profile.sample(len(profile), replace=True, random_state=seed)
    resample.to_parquet(out_dir / "profile.parquet", index=False)
    return out_dir


def _with_band(
    scenario: Scenario, profile_dir: Path, rate_per_s: float, out_dir: Path, machine: MachineAt | None,
    class_names: list[str], size: dict[str, int], band_resamples: int,
) -> tuple[dict, dict]:
    """A prediction from the profile, and per statistic its band: how far the estimate moves over bootstrap
    resamples of the profile and over each source of the calibration's variants (its runs one by one, the
    profile's drift), the sources combined as independent (``combined_band``)."""
    main = None if machine is None else machine.main
    stats = predicted_statistics(profile_scenario(scenario, profile_dir, rate_per_s, out_dir, main, **size), class_names, True)
    sources: dict[str, list[dict]] = {"profile": []}
    for resample in range(band_resamples):
        copy_dir = _resampled_profile(profile_dir, _inside(out_dir, out_dir / f"resample-{resample}"), seed=resample)
        sources["profile"].append(predicted_statistics(profile_scenario(scenario, copy_dir, rate_per_s, copy_dir, main, **size), class_names))
    variants = [] if machine is None else [(source, variant) for source, listed in machine.variants.items() for variant in listed]
    for index, (source, variant) in enumerate(variants):
        variant_dir = _inside(out_dir, out_dir / f"calibration-variant-{index}")
        sources.setdefault(source, []).append(
            predicted_statistics(profile_scenario(scenario, profile_dir, rate_per_s, variant_dir, variant, **size), class_names)
        )
    band = {
        name: {
            key: combined_band(estimate["estimate"], [[r[name][key]["estimate"] for r in runs] for runs in sources.values()],
                               UPPER_BOUNDS.get(key))
            for key, estimate in values.items()
        }
        for name, values in stats.items()
    }
    return stats, band


def compare_campaign(
    directory: Path,
    calibration: dict[str, Any] | None = None,
    progress: Callable[[str], None] | None = None,
    *,
    requests: int = PREDICTION_REQUESTS,
    replications: int = PREDICTION_REPLICATIONS,
    band_resamples: int = BAND_RESAMPLES,
) -> pd.DataFrame:
    """One row per (run, prediction, class, statistic): measured, predicted with interval and band, relative error,
    the level's run-to-run band and whether the prediction overlaps it. ``requests`` and ``replications`` size
    the predictions from the profile (a run's own prediction replays the run: its length); ``band_resamples``
    bootstrap resamples of the profile make the band."""
    directory = Path(directory)
    campaign = read_campaign(directory)
    scenario = campaign_scenario(campaign)
    class_names = [c.name for c in scenario.workload.classes]
    predictions = directory / PREDICTIONS_DIR
    from_profile: dict[tuple[float, str], tuple[dict, dict]] = {}
    rows = []
    for entry in (e for e in campaign["runs"] if e["valid"]):
        level, run_dir = entry["level"], directory / entry["dir"]
        if progress:
            progress(f"predicting {entry['dir']}")
        measured_file = measured_scenario(scenario, run_dir, _inside(directory, predictions / entry["dir"]), replications)
        predicted = {MEASURED: (predicted_statistics(measured_file, class_names, entry["repeat"] == 0), None)}
        kinds = {PROFILE: None} | ({CALIBRATED: machine_at(calibration, entry["rate_per_s"])} if calibration else {})
        for kind, calibrating in kinds.items():
            if (level, kind) not in from_profile:
                out_dir = _inside(directory, predictions / f"level-{level:.2f}" / kind)
                from_profile[level, kind] = _with_band(
                    scenario, directory / "profile", entry["rate_per_s"], out_dir, calibrating, class_names,
                    {"requests": requests, "replications": replications}, band_resamples,
                )
            predicted[kind] = from_profile[level, kind]
        for class_name, measured in measured_statistics(run_dir, class_names).items():
            for kind, (stats, band) in predicted.items():
                for key, value in measured.items():
                    estimate = stats[class_name][key]
                    low, high = band[class_name][key] if band else (None, None)
                    rows.append({
                        "level": level, "repeat": entry["repeat"], "prediction": kind, "class": class_name,
                        "statistic": key, "measured": value, "predicted": estimate["estimate"],
                        "ci_low": estimate["ci_low"], "ci_high": estimate["ci_high"], "band_low": low, "band_high": high,
                        "error": _relative(estimate["estimate"], value),
                    })
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    runs = table.groupby(["level", "class", "statistic"])["measured"]
    table["run_low"], table["run_high"] = runs.transform("min"), runs.transform("max")
    low = table[["predicted", "ci_low", "band_low"]].astype(float).min(axis=1)
    high = table[["predicted", "ci_high", "band_high"]].astype(float).max(axis=1)
    table["overlaps_runs"] = (low <= table["run_high"]) & (high >= table["run_low"])  # NaN (unstable): no
    return table


def _inside(root: Path, folder: Path) -> Path:
    """A folder the predictions are written into, refused if a symbolic link there leads out of ``root`` (the campaign's)."""
    inside_folder(root, folder, "a folder of predictions", TestbedError)
    return folder


def _relative(predicted: float | None, measured: float) -> float:
    if predicted is None or not math.isfinite(predicted) or measured == 0:
        return float("nan")
    return predicted / measured - 1


def error_summary(table: pd.DataFrame, max_level: float = 1.0) -> pd.DataFrame:
    """Per prediction, class and statistic over the runs up to ``max_level``: the median |relative error|,
    the share of levels whose prediction (estimate, interval and band) overlaps the run-to-run band, the
    number of levels and of runs."""
    chosen = table[table["level"] <= max_level + 1e-9]
    per_level = chosen.groupby(["prediction", "class", "statistic", "level"])["overlaps_runs"].all().reset_index()
    overlapping = per_level.groupby(["prediction", "class", "statistic"])["overlaps_runs"]
    grouped = chosen.groupby(["prediction", "class", "statistic"])
    return pd.DataFrame({
        "median_abs_error": grouped["error"].apply(lambda errors: float(np.nanmedian(np.abs(errors)))),
        "levels_overlapping": overlapping.mean(),
        "levels": overlapping.size(),
        "runs": grouped.size(),
    }).reset_index()
