"""Calibration from a testbed campaign: its valid runs' request tables, relative to the campaign's own closed-loop
profile (the kernel times a user measures before deploying), fitted by :mod:`simulator.fitting.calibration` — the
same fit ``latsim calibrate`` makes of any server's request logs. The profile's drift uses windows as long as one
snapshot of the campaign's profile.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from simulator.files import check_output_not_input
from simulator.fitting.calibration import CallRun, calibrate_runs, call_run, write_calibration_file
from simulator.testbed.campaign_file import RUN_TABLE, campaign_inputs, profile_file, profile_snapshots, read_campaign
from simulator.testbed.errors import TestbedError
from simulator.testbed.scenario import MIN_TIME_MS


def _runs_by_level(directory: Path, campaign: dict[str, Any], workers: int) -> tuple[dict[float, list[CallRun]], dict[float, float]]:
    """The valid runs by level, and each level's mean offered rate."""
    by_level: dict[float, list[CallRun]] = {}
    rates: dict[float, list[float]] = {}
    for entry in campaign["runs"]:
        if entry["valid"]:
            rates.setdefault(float(entry["level"]), []).append(float(entry["rate_per_s"]))
            table = pd.read_parquet(Path(directory) / entry["dir"] / RUN_TABLE)
            served = table[(table["status"] == 200) & table["worker_busy_ms"].notna()]
            by_level.setdefault(float(entry["level"]), []).append(call_run(served, workers))
    if not by_level:
        raise TestbedError(f"{directory}: no valid run to calibrate on")
    return by_level, {level: float(np.mean(values)) for level, values in rates.items()}


def calibrate(directory: Path) -> dict[str, Any]:
    """The overhead, and per level the speed and outside times of its runs together and of each run
    (outside times as arrays; ``write_calibration`` writes them to files), relative to the campaign's profile."""
    campaign = read_campaign(directory)
    workers = int(campaign["testbed"]["workers"])
    by_level, rates = _runs_by_level(directory, campaign, workers)
    profile = pd.read_parquet(profile_file(directory))
    profile_kernel_ms = profile.loc[profile["status"] == 200, "kernel_ms"].clip(lower=MIN_TIME_MS).to_numpy(float)
    snapshots = profile_snapshots(profile)
    spans_ms = profile.groupby(snapshots)["reply_received_ms"].max() - profile.groupby(snapshots)["scheduled_ms"].min()
    return calibrate_runs(by_level, rates, profile_kernel_ms, workers, float(spans_ms.mean()))


def write_calibration(directory: Path, out: Path) -> Path:
    """``calibrate`` written as a calibration file (the outside times go to CSV files beside it)."""
    check_output_not_input(Path(out), campaign_inputs(directory, read_campaign(directory)), "--out")
    return write_calibration_file(calibrate(directory), out, {"method": "testbed", "logs": [str(Path(directory))]})
