"""Calibration: what a campaign measured about the machine, written as scenario settings, so that the
next prediction from a profile starts from calibrated inputs.

From every valid run of a campaign (the requests after each run's first 10 %):

- **overhead** — the worker's time outside the kernel per call, as a mean that grows with the
  number of requests at the server when the call started (``fitting.overhead.fit_overhead``,
  sampled at the occupancies seen, lognormal variation);
- **speed** — the machine's slow and fast stretches under load: a two-state hidden Markov model of
  the kernel times in call order (``fitting.hmm``), its states' means divided by the mean kernel
  time of the campaign's closed-loop profile as speed factors (so they carry the slowdown under
  load onto the next profile's kernel times);
- **transport** — the client–server round trip under load, as measured (an empirical file).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from simulator.files import write_atomically, write_text_atomically
from simulator.fitting.hmm import fit_lognormal_hmm
from simulator.fitting.overhead import fit_overhead
from simulator.testbed.campaign import read_campaign
from simulator.testbed.errors import TestbedError
from simulator.testbed.scenario import MIN_TIME_MS, WARMUP_FRACTION

OVERHEAD_POINTS = 16
SPEED_STATES = 2
HMM_SAMPLES = 20_000  # the kernel sequence the speed model is fitted on (the latest calls)


def _runs(directory: Path) -> list[pd.DataFrame]:
    campaign = read_campaign(directory)
    tables = []
    for entry in campaign["runs"]:
        if entry["valid"]:
            table = pd.read_parquet(Path(directory) / entry["dir"] / "requests.parquet").sort_values("dequeue_ms")
            table = table.iloc[int(len(table) * WARMUP_FRACTION) :]
            tables.append(table[(table["status"] == 200) & table["worker_busy_ms"].notna()])
    if not tables:
        raise TestbedError(f"{directory}: no valid run to calibrate on")
    return tables


def calibrate(directory: Path) -> dict[str, Any]:
    """Overhead, speed and transport settings from a campaign (see the module doc)."""
    tables = _runs(directory)
    calls = pd.concat([table.drop_duplicates("batch_id") for table in tables], ignore_index=True)
    fitted = fit_overhead(
        calls["worker_busy_ms"].to_numpy(), calls["kernel_ms"].to_numpy(), calls["in_system_at_dequeue"].to_numpy(),
        residual="empirical", occupancy_at="start",
    )
    ratios = np.asarray(fitted.residual["quantiles"])
    low, high = fitted.occupancy_range
    points = np.unique(np.round(np.linspace(low, high, OVERHEAD_POINTS)))
    overhead = {
        "occupancy": [float(p) for p in points],
        "mean_ms": [float(m) for m in fitted.mean_ms(points)],
        "variation_sigma": float(np.log(ratios[ratios > 0]).std()),  # the spread around the curve, as a lognormal
    }
    kernels = np.concatenate([table.drop_duplicates("batch_id")["kernel_ms"].to_numpy() for table in tables])[-HMM_SAMPLES:]
    speed_fit = fit_lognormal_hmm(kernels, states=SPEED_STATES)
    model = speed_fit.model
    means = model.state_moments_ms(1)
    profile = pd.read_parquet(Path(directory) / "profile" / "profile.parquet")
    profile_kernel_ms = float(profile.loc[profile["status"] == 200, "kernel_ms"].mean())
    speed = {
        "factors": [float(mean / profile_kernel_ms) for mean in means],
        "transition": [[float(p) for p in row] for row in np.asarray(model.transition)],
    }
    transport = pd.concat([table["transport_ms"] for table in tables]).clip(lower=MIN_TIME_MS)
    return {"overhead": overhead, "speed": speed, "transport_ms": transport.to_numpy()}


def write_calibration(directory: Path, out: Path) -> Path:
    """``calibrate`` written as a YAML file of scenario settings (the transport delays in a CSV beside it)."""
    calibration = calibrate(directory)
    out = Path(out)
    transport_file = out.with_name(out.stem + "-transport-ms.csv")
    write_atomically(
        transport_file, lambda path: pd.DataFrame({"transport_ms": calibration["transport_ms"]}).to_csv(path, index=False)
    )
    document = {
        "overhead": calibration["overhead"],
        "speed": calibration["speed"],
        "transport": {"distribution": "empirical", "file": str(transport_file.resolve())},
    }
    write_text_atomically(out, yaml.safe_dump(document, sort_keys=False))
    return out


def read_calibration(path: Path) -> dict[str, Any]:
    """A calibration file written by ``write_calibration``."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise TestbedError(f"{path}: cannot read the calibration: {error}") from None
    if not isinstance(data, dict) or not {"overhead", "speed", "transport"} <= data.keys():
        raise TestbedError(f"{path}: a calibration holds overhead, speed and transport (write it with latsim testbed calibrate)")
    return data
