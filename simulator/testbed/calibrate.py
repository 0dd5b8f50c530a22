"""Calibration: what a campaign measured about the machine, written as scenario settings, so that the
next prediction from a profile starts from calibrated inputs.

From the valid runs of a campaign (the requests after each run's first 10 %):

- **overhead** (all runs together) — the worker's time outside the kernel per call (its hand-off
  included), as a monotone curve of the requests at the server when the call started, counted as
  the model counts them (``server_occupancy``; fitted by ``fitting.overhead.fit_overhead``; here it
  falls: an idle worker pays a wake-up that a busy one skips), sampled at occupancies spaced
  geometrically over those seen, with a lognormal spread; with more than one worker, of the calls
  with their concurrency slowdown divided out (the node slows the whole call, overhead included);
- per load level, from that level's runs together and from each run alone:
  **concurrency slowdown** (more than one worker) — how much slower a kernel runs while k kernels
  run at once (they share the cores with each other, the event loop and the load generator): a
  non-negative least-squares fit of each kernel's time to the shares of it spent with 1, 2, ...
  kernels running, written as a ``device.concurrency_slowdown`` (the node then slows its calls by
  the kernels running, as they come and go);
  **speed** — the machine's slow and fast stretches under that load: a two-state lognormal hidden
  Markov model of the kernel times in call order (``fitting.hmm``) with the concurrency slowdown
  divided out, its states' means divided by the mean kernel time of the campaign's closed-loop
  profile (so they carry the slowdown under load onto the next profile's kernel times), and each
  state's log-spread beyond the profile's own as the state's ``variation_sigma``; and
  **outside** — each request's time outside the queue and the worker (the sender's lateness, the
  network both ways, the event loop reading the request and writing the reply), as measured.

And the **profile's drift**: a profile snapshot is a second or two of the machine, and the
machine's speed drifts. The kernel times of the campaign's runs, cut into windows as long as a
snapshot of its profile, give the 5th and 95th percentiles of a window's mean over its run's mean:
how far a profile's mean may sit from the machine's usual speed. Not narrowed for a profile of
several snapshots: taken within a minute, they share the machine's slower changes (measured: the
profile-to-run speed ratio moved 11–33 % between campaigns minutes apart, as far as one window's
drift and twice that of five independent windows). A prediction's band includes the calibrated
machine with its speed divided by each (a profile taken in a fast or a slow stretch).

A prediction at a rate takes the calibration of the measured level whose rate is nearest: the
slowdown comes from the work the machine does (the event loop and the load generator share the
CPU with the kernels), not from a fraction of a capacity that itself drifts between campaigns. The
level's runs one by one give the prediction band its share of the machine's drift from run to run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
import yaml
from pydantic import Field, ValidationError
from scipy.optimize import nnls

from simulator.files import check_output_not_input, write_atomically, write_text_atomically
from simulator.fitting.hmm import fit_lognormal_hmm
from simulator.fitting.overhead import fit_overhead
from simulator.scenario.bounds import RatePerS
from simulator.scenario.loader import read_yaml
from simulator.scenario.nodes import DeviceSpec, OverheadSpec, SpeedSpec
from simulator.settings import Settings
from simulator.testbed.campaign_file import RUN_TABLE, campaign_inputs, profile_file, profile_snapshots, read_campaign
from simulator.testbed.errors import TestbedError, invalid
from simulator.testbed.scenario import MIN_TIME_MS, WARMUP_FRACTION

OVERHEAD_POINTS = 16
SPEED_STATES = 2
HMM_SAMPLES = 20_000  # the kernel sequence a speed model is fitted on (the latest calls)
MACHINE_SETTINGS = ("speed", "device")  # the node settings a level's calibration gives (besides the overhead)
DRIFT_QUANTILES = (0.05, 0.95)
MIN_WINDOW_CALLS = 20  # a window with fewer calls says nothing of the machine's speed
MAX_CALIBRATION_RUNS = 1000  # levels in a calibration file, and runs per level
MIN_CONCURRENCY_SHARE = 0.01  # a concurrency k seen for less than this share of the kernel time keeps k − 1's factor


@dataclass(frozen=True)
class MachineAt:
    """The calibrated machine at one load level (its mean offered rate): ``main`` from its runs together,
    ``variants`` by source of uncertainty: ``runs`` one per run, ``drift`` one per end of the profile's
    drift. Each is scenario settings:
    ``overhead``, ``speed``, ``outside`` (a response-leg delay model) and, with more than one worker,
    ``device`` (the concurrency slowdown)."""

    level: float
    rate_per_s: float
    main: dict[str, Any]
    variants: dict[str, list[dict[str, Any]]]


@dataclass(frozen=True)
class _Run:
    """One valid run's served requests after its first 10 % (in dequeue order), its calls (one row per
    batch) and each call's concurrency shares."""

    requests: pd.DataFrame
    calls: pd.DataFrame
    shares: np.ndarray


def _runs_by_level(directory: Path, campaign: dict[str, Any], workers: int) -> tuple[dict[float, list[_Run]], dict[float, float]]:
    """The valid runs by level, and each level's mean offered rate."""
    by_level: dict[float, list[_Run]] = {}
    rates: dict[float, list[float]] = {}
    for entry in campaign["runs"]:
        if entry["valid"]:
            rates.setdefault(float(entry["level"]), []).append(float(entry["rate_per_s"]))
            table = pd.read_parquet(Path(directory) / entry["dir"] / RUN_TABLE).sort_values("dequeue_ms")
            table["occupancy"] = server_occupancy(table)
            table = table.iloc[int(len(table) * WARMUP_FRACTION) :]
            requests = table[(table["status"] == 200) & table["worker_busy_ms"].notna()]
            calls = requests.drop_duplicates("batch_id")
            by_level.setdefault(float(entry["level"]), []).append(_Run(requests, calls, concurrency_shares(calls, workers)))
    if not by_level:
        raise TestbedError(f"{directory}: no valid run to calibrate on")
    return by_level, {level: float(np.mean(values)) for level, values in rates.items()}


def server_occupancy(table: pd.DataFrame) -> np.ndarray:
    """Per request, the requests at the server when its call started, counted as the model counts a node's: enqueued
    and not yet handed back by their worker, its own included. (The server's ``in_system_at_dequeue`` also counts
    replies still being written, so a call that follows another at once would count one more than in the model.)
    A call starts when its worker could have taken it: its dequeue less its hand-off."""
    through = table.dropna(subset=["enqueue_ms", "worker_done_ms"])
    entered, left = np.sort(through["enqueue_ms"].to_numpy(float)), np.sort(through["worker_done_ms"].to_numpy(float))
    started = (table["dequeue_ms"] - table["handoff_ms"].fillna(0.0)).to_numpy(float)
    return np.searchsorted(entered, started, side="right") - np.searchsorted(left, started, side="right")


def _overhead(calls: pd.DataFrame) -> dict[str, Any]:
    fitted = fit_overhead(
        calls["service_ms"].to_numpy(), calls["kernel_ms"].to_numpy(), calls["occupancy"].to_numpy(),
        residual="empirical", occupancy_at="start",
    )
    low, high = fitted.occupancy_range
    # spaced geometrically: the curve changes most at low occupancy (an idle worker's wake-up, gone once requests wait)
    points = np.unique(np.round(np.concatenate([[low], np.geomspace(max(low, 1.0), max(high, 1.0), OVERHEAD_POINTS)])))
    ratios = np.asarray(fitted.residual["quantiles"])
    return {
        "occupancy": [float(p) for p in points],
        "mean_ms": [float(m) for m in fitted.mean_ms(points)],
        "variation_sigma": float(np.log(ratios[ratios > 0]).std()),  # the spread around the curve, as a lognormal
    }


def concurrency_shares(calls: pd.DataFrame, workers: int) -> np.ndarray:
    """``[call, k − 1]``: the share of a call's kernel time spent with k = 1 … ``workers`` kernels running (its own
    included), from the kernel intervals of one run's calls."""
    starts, ends = calls["kernel_start_ms"].to_numpy(float), calls["kernel_end_ms"].to_numpy(float)
    times = np.concatenate([starts, ends])
    order = np.argsort(times, kind="stable")
    times = times[order]
    running = np.minimum(np.cumsum(np.concatenate([np.ones(starts.size), -np.ones(ends.size)])[order]), workers)
    spans = np.diff(times)  # span i: from times[i] to times[i + 1], with running[i] kernels
    shares = np.empty((starts.size, workers))
    for k in range(1, workers + 1):
        time_at_k = np.concatenate([[0.0], np.cumsum(np.where(running[:-1] == k, spans, 0.0))])
        shares[:, k - 1] = np.interp(ends, times, time_at_k) - np.interp(starts, times, time_at_k)
    return shares / np.maximum(ends - starts, MIN_TIME_MS)[:, None]


def concurrency_slowdown(shares: np.ndarray, kernel_ms: np.ndarray) -> list[float]:
    """Factors f(1) = 1, f(2), …: kernel time ≈ solo time × Σₖ share(k) f(k), fitted by non-negative least squares;
    non-decreasing, and a concurrency seen too rarely keeps the factor below it."""
    coefficients, _ = nnls(shares, kernel_ms)
    seen = shares.sum(axis=0) >= MIN_CONCURRENCY_SHARE * len(kernel_ms)
    if not seen[0] or coefficients[0] <= 0:
        return [1.0] * shares.shape[1]
    factors = [1.0]
    for k in range(1, shares.shape[1]):
        factors.append(max(factors[-1], float(coefficients[k] / coefficients[0])) if seen[k] else factors[-1])
    return factors


def _machine(runs: list[_Run], profile_kernel_ms: np.ndarray, workers: int) -> dict[str, Any]:
    """The speed process (and with more than one worker the concurrency slowdown) of some runs."""
    kernel_ms = np.concatenate([run.calls["kernel_ms"].to_numpy(float) for run in runs])  # call order, run after run
    shares = np.concatenate([run.shares for run in runs])
    factors = concurrency_slowdown(shares, kernel_ms)
    machine = {"speed": _speed(kernel_ms / (shares @ np.asarray(factors)), profile_kernel_ms)}
    if workers > 1:
        machine["device"] = {"concurrency_slowdown": factors}
    return machine


def _speed(solo_kernel_ms: np.ndarray, profile_kernel_ms: np.ndarray) -> dict[str, Any]:
    """The chain's factors are its states' means over the profile's mean; a state's spread is what its
    log-σ has beyond the profile's own (the profile's times keep theirs when the node draws them)."""
    model = fit_lognormal_hmm(solo_kernel_ms[-HMM_SAMPLES:], states=SPEED_STATES).model
    profile_sigma = float(np.log(profile_kernel_ms).std())
    return {
        "factors": [float(mean / profile_kernel_ms.mean()) for mean in model.state_moments_ms(1)],
        "transition": [[float(p) for p in row] for row in np.asarray(model.transition)],
        "variation_sigma": [float(np.sqrt(max(sigma**2 - profile_sigma**2, 0.0))) for sigma in model.sigma_log],
    }


def _outside(runs: list[_Run]) -> np.ndarray:
    return pd.concat([run.requests["outside_ms"] for run in runs]).clip(lower=MIN_TIME_MS).to_numpy()


def calibrate(directory: Path) -> dict[str, Any]:
    """The overhead, and per level the speed and outside times of its runs together and of each run
    (outside times as arrays; ``write_calibration`` writes them to files)."""
    campaign = read_campaign(directory)
    workers = int(campaign["testbed"]["workers"])
    by_level, rates = _runs_by_level(directory, campaign, workers)
    profile = pd.read_parquet(profile_file(directory))
    profile_kernel_ms = profile.loc[profile["status"] == 200, "kernel_ms"].clip(lower=MIN_TIME_MS).to_numpy(float)
    levels, solo_calls = [], []
    for level, runs in sorted(by_level.items()):
        machine = _machine(runs, profile_kernel_ms, workers)
        factors = np.asarray(machine.get("device", {}).get("concurrency_slowdown", [1.0]))
        solo_calls += [_solo(run, factors) for run in runs]
        levels.append({
            "level": level,
            "rate_per_s": rates[level],
            **machine,
            "outside_ms": _outside(runs),
            "runs": [_machine([run], profile_kernel_ms, workers) | {"outside_ms": _outside([run])} for run in runs],
        })
    snapshots = profile_snapshots(profile)
    spans_ms = profile.groupby(snapshots)["reply_received_ms"].max() - profile.groupby(snapshots)["scheduled_ms"].min()
    drift = _drift([run.calls for runs in by_level.values() for run in runs], float(spans_ms.mean()))
    return {"overhead": _overhead(pd.concat(solo_calls, ignore_index=True)), "profile_drift": drift, "levels": levels}


def _drift(runs_calls: list[pd.DataFrame], window_ms: float) -> list[float]:
    """The 5th and 95th percentiles of a ``window_ms`` window's mean kernel time over its run's mean."""
    ratios = []
    for calls in runs_calls:
        windows = calls.groupby((calls["kernel_start_ms"] // window_ms).astype(int))["kernel_ms"].agg(["mean", "size"])
        ratios.append(windows.loc[windows["size"] >= MIN_WINDOW_CALLS, "mean"] / calls["kernel_ms"].mean())
    ratios = pd.concat(ratios)
    return [float(q) for q in np.quantile(ratios, DRIFT_QUANTILES)] if len(ratios) else [1.0, 1.0]


def _solo(run: _Run, factors: np.ndarray) -> pd.DataFrame:
    """A run's calls with their service and kernel times divided by their concurrency slowdown: the node
    applies it to the whole call (overhead included), so the overhead is fitted as it would be alone."""
    calls = run.calls.copy()
    slowdown = run.shares @ factors if len(factors) > 1 else 1.0
    calls["service_ms"] /= slowdown
    calls["kernel_ms"] /= slowdown
    return calls


def write_calibration(directory: Path, out: Path) -> Path:
    """``calibrate`` written as a YAML file of scenario settings; the outside times go to CSV files beside it."""
    out = Path(out)
    check_output_not_input(out, campaign_inputs(directory, read_campaign(directory)), "--out")
    calibration = calibrate(directory)
    out.parent.mkdir(parents=True, exist_ok=True)

    def outside_file(values: np.ndarray, suffix: str) -> dict[str, str]:
        path = out.with_name(f"{out.stem}-outside-{suffix}.csv")
        write_atomically(path, lambda temporary: pd.DataFrame({"outside_ms": values}).to_csv(temporary, index=False))
        return {"distribution": "empirical", "file": str(path.resolve())}

    levels = []
    for entry in calibration["levels"]:
        name = f"{entry['level']:.2f}"
        levels.append({
            "level": entry["level"],
            "rate_per_s": entry["rate_per_s"],
            **_settings(entry),
            "outside": outside_file(entry["outside_ms"], name),
            "runs": [
                _settings(run) | {"outside": outside_file(run["outside_ms"], f"{name}-run{index}")}
                for index, run in enumerate(entry["runs"])
            ],
        })
    document = {"overhead": calibration["overhead"], "profile_drift": calibration["profile_drift"], "levels": levels}
    write_text_atomically(out, yaml.safe_dump(document, sort_keys=False))
    return out


def _settings(machine: dict[str, Any]) -> dict[str, Any]:
    return {key: machine[key] for key in MACHINE_SETTINGS if key in machine}


class _MachineSettings(Settings):
    """A calibrated machine as a calibration file holds it: node settings and the time outside the server."""

    speed: SpeedSpec
    device: DeviceSpec | None = None
    outside: dict[str, Any] = Field(description="a service-time model (the network's response leg)")


class _Level(_MachineSettings):
    level: float = Field(gt=0, le=1e3)
    rate_per_s: RatePerS
    runs: list[_MachineSettings] = Field(default_factory=list, max_length=MAX_CALIBRATION_RUNS)


class _CalibrationFile(Settings):
    overhead: OverheadSpec
    profile_drift: list[Annotated[float, Field(gt=0, le=1e3)]] = Field(default_factory=list, max_length=len(DRIFT_QUANTILES))
    levels: list[_Level] = Field(min_length=1, max_length=MAX_CALIBRATION_RUNS)


def read_calibration(path: Path) -> dict[str, Any]:
    """A calibration file written by ``write_calibration`` (read as untrusted data: a TestbedError names the file
    and the field of any problem)."""
    data = read_yaml(Path(path), "calibration", TestbedError)
    try:
        return _CalibrationFile.model_validate(data).model_dump(exclude_unset=True)
    except ValidationError as error:
        raise invalid(error, f"{path}: not a calibration (write it with latsim testbed calibrate)") from None


def machine_at(calibration: dict[str, Any], rate_per_s: float) -> MachineAt:
    """The calibration of the measured level whose offered rate is nearest ``rate_per_s``."""
    nearest = min(calibration["levels"], key=lambda entry: abs(entry["rate_per_s"] - rate_per_s))
    overhead = calibration["overhead"]
    main = {"overhead": overhead, **_settings(nearest), "outside": nearest["outside"]}
    drifted = [
        main | {"speed": main["speed"] | {"factors": [factor / ratio for factor in main["speed"]["factors"]]}}
        for ratio in calibration.get("profile_drift", [])
    ]
    return MachineAt(
        level=nearest["level"],
        rate_per_s=nearest["rate_per_s"],
        main=main,
        variants={
            "runs": [{"overhead": overhead, **_settings(run), "outside": run["outside"]} for run in nearest["runs"]],
            "drift": drifted,
        },
    )
