"""Calibration: what runs of a real server measured about its machine, as node settings for latsim.

The machine's properties are kept apart from the configuration it served, so that a calibration
from one configuration predicts another on the same hardware: the **overhead** a worker spends
outside the model call, as a curve of the requests at the server when the call starts; the
**concurrency slowdown** of calls that run at once; and per load level the machine's **speed
process** — a two-state lognormal hidden Markov chain of the call times in call order, its state
means divided by the reference's mean (the profile the scenario plans with), so that a profile's
service times carry the slowdown under load — and the **outside time** (everything between the
client and the server's queue: the network both ways, the server reading the request and writing
the reply). Plus the **profile's drift**: how far the mean of a window of calls as long as a
profile (``window_ms``) strays from its run's mean (5th and 95th percentiles): a profile taken in
a fast or a slow stretch of the machine.

The fit works on *call tables*: one row per served request in dequeue order with ``enqueue_ms``,
``dequeue_ms``, ``kernel_start_ms``, ``kernel_end_ms``, ``kernel_ms``, ``worker_done_ms``,
``handoff_ms``, ``service_ms`` (hand-off + dequeue → worker free), ``outside_ms`` and ``batch_id``
— the testbed's own columns, which :func:`call_table` derives from any server's request log.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from scipy.optimize import nnls

from simulator.errors import CalibrationError
from simulator.files import write_atomically, write_text_atomically
from simulator.fitting.hmm import fit_lognormal_hmm
from simulator.fitting.overhead import fit_overhead
from simulator.formats.request_log import RequestLog
from simulator.scenario.calibration import FORMAT_VERSION, machine_settings
from simulator.settings import non_finite_key

OVERHEAD_POINTS = 16
SPEED_STATES = 2
HMM_SAMPLES = 20_000  # the call sequence a speed model is fitted on (the latest calls)
DRIFT_QUANTILES = (0.05, 0.95)
MIN_WINDOW_CALLS = 20  # a window with fewer calls says nothing of the machine's speed
MIN_CONCURRENCY_SHARE = 0.01  # a concurrency k seen for less than this share of the kernel time keeps k − 1's factor
MIN_TIME_MS = 1e-6  # a time below the clock's resolution: clipped so that ratios and logs stay finite
WARMUP_FRACTION = 0.1  # each run's first tenth is left out: a fresh server's first calls are not its steady state
MIN_CALLS = 200  # calls per level (after the warm-up) a speed chain is fitted on


@dataclass(frozen=True)
class CallRun:
    """One run's served requests after its warm-up (in dequeue order), its calls (one row per model call)
    and each call's concurrency shares."""

    requests: pd.DataFrame
    calls: pd.DataFrame
    shares: np.ndarray


def call_run(table: pd.DataFrame, workers: int) -> CallRun:
    """A run's call table (every served request, any order) cut to its steady state, with occupancy and concurrency."""
    table = table.sort_values("dequeue_ms", kind="stable").copy()
    table["occupancy"] = server_occupancy(table)
    table = table.iloc[int(len(table) * WARMUP_FRACTION) :]
    calls = table.drop_duplicates("batch_id")
    return CallRun(table, calls, concurrency_shares(calls, workers))


def call_table(log: RequestLog) -> pd.DataFrame:
    """A request log's served requests as a call table. Without ``service_start_ms`` the whole dequeue → end is
    the call; without ``worker_free_ms`` the worker is free at the call's end; the hand-off (the worker's
    wake-up before the dequeue) is measured where worker ids are logged and requests are not batched."""
    served = log.served
    table = pd.DataFrame({"batch_id": served["batch_id"] if served["batch_id"].notna().all() else served["request_id"]})
    table["enqueue_ms"] = served["server_arrival_ms"]
    table["dequeue_ms"] = served["dequeue_ms"]
    table["kernel_start_ms"] = served["service_start_ms"].fillna(served["dequeue_ms"])
    table["kernel_end_ms"] = served["service_end_ms"]
    table["kernel_ms"] = (table["kernel_end_ms"] - table["kernel_start_ms"]).clip(lower=MIN_TIME_MS)
    table["worker_done_ms"] = served["worker_free_ms"].fillna(served["service_end_ms"])
    batched = served["batch_size"].fillna(1).gt(1).any() or table["batch_id"].duplicated().any()
    table["worker"] = served["worker_id"]
    table["handoff_ms"] = np.nan if batched or served["worker_id"].isna().any() else handoff_ms(table)
    table["service_ms"] = (table["worker_done_ms"] - table["dequeue_ms"] + table["handoff_ms"].fillna(0.0)).clip(lower=MIN_TIME_MS)
    latency = log.latency_ms
    table["outside_ms"] = (latency - (table["worker_done_ms"] - table["enqueue_ms"]).to_numpy()).clip(min=MIN_TIME_MS)
    table["batch_size"] = served["batch_size"].fillna(1)
    return table.reset_index(drop=True)


def handoff_ms(table: pd.DataFrame) -> pd.Series:
    """Per request, its call's wait that no queue explains: from the moment the call's worker could have taken
    it (the call's last request enqueued, or the worker's previous call ended) to its dequeue."""
    calls = table.dropna(subset=["dequeue_ms", "worker_done_ms"]).drop_duplicates("batch_id").sort_values("dequeue_ms")
    previous_done = calls.groupby("worker")["worker_done_ms"].shift()
    last_enqueue = calls["batch_id"].map(table.groupby("batch_id")["enqueue_ms"].max())
    handoff = (calls["dequeue_ms"] - np.fmax(last_enqueue, previous_done)).clip(lower=0.0)
    return table["batch_id"].map(pd.Series(handoff.to_numpy(), index=calls["batch_id"].to_numpy())).astype("float64")


def server_occupancy(table: pd.DataFrame) -> np.ndarray:
    """Per request, the requests at the server when its call started, counted as the model counts a node's: enqueued
    and not yet handed back by their worker, its own included. A call starts when its worker could have taken
    it: its dequeue less its hand-off."""
    through = table.dropna(subset=["enqueue_ms", "worker_done_ms"])
    entered, left = np.sort(through["enqueue_ms"].to_numpy(float)), np.sort(through["worker_done_ms"].to_numpy(float))
    started = (table["dequeue_ms"] - table["handoff_ms"].fillna(0.0)).to_numpy(float)
    return np.searchsorted(entered, started, side="right") - np.searchsorted(left, started, side="right")


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


def calibrate_runs(
    by_level: dict[float, list[CallRun]],
    rates_per_s: dict[float, float],
    reference_kernel_ms: np.ndarray,
    workers: int,
    window_ms: float,
) -> dict[str, Any]:
    """The overhead, the profile's drift, and per level the speed and outside times of its runs together and of each
    run alone (outside times as arrays). ``reference_kernel_ms``: the profile's call times the speed factors scale."""
    reference = np.clip(np.asarray(reference_kernel_ms, dtype=float), MIN_TIME_MS, None)
    levels, solo_calls = [], []
    for level, runs in sorted(by_level.items()):
        machine = _machine(runs, reference, workers)
        factors = np.asarray(machine.get("device", {}).get("concurrency_slowdown", [1.0]))
        solo_calls += [_solo(run, factors) for run in runs]
        levels.append({
            "level": level,
            "rate_per_s": rates_per_s[level],
            **machine,
            "outside_ms": _outside(runs),
            "runs": [_machine([run], reference, workers) | {"outside_ms": _outside([run])} for run in runs],
        })
    drift = _drift([run.calls for runs in by_level.values() for run in runs], window_ms)
    return {"overhead": _overhead(pd.concat(solo_calls, ignore_index=True)), "profile_drift": drift, "levels": levels}


def _overhead(calls: pd.DataFrame) -> dict[str, Any]:
    """The worker's time outside the kernel as a curve of occupancy, spaced geometrically (the curve changes most at
    low occupancy: an idle worker's wake-up, gone once requests wait); zero where the log has no separate call times."""
    if not (calls["service_ms"] - calls["kernel_ms"]).gt(MIN_TIME_MS).any():
        return {"occupancy": [1.0], "mean_ms": [0.0], "variation_sigma": 0.0}
    fitted = fit_overhead(
        calls["service_ms"].to_numpy(), calls["kernel_ms"].to_numpy(), calls["occupancy"].to_numpy(),
        residual="empirical", occupancy_at="start",
    )
    low, high = fitted.occupancy_range
    points = np.unique(np.round(np.concatenate([[low], np.geomspace(max(low, 1.0), max(high, 1.0), OVERHEAD_POINTS)])))
    ratios = np.asarray(fitted.residual["quantiles"])
    return {
        "occupancy": [float(p) for p in points],
        "mean_ms": [float(m) for m in fitted.mean_ms(points)],
        "variation_sigma": float(np.log(ratios[ratios > 0]).std()),  # the spread around the curve, as a lognormal
    }


def _machine(runs: list[CallRun], reference_kernel_ms: np.ndarray, workers: int) -> dict[str, Any]:
    """The speed process (and with more than one worker the concurrency slowdown) of some runs."""
    kernel_ms = np.concatenate([run.calls["kernel_ms"].to_numpy(float) for run in runs])  # call order, run after run
    if kernel_ms.size < MIN_CALLS:
        raise CalibrationError(
            f"{kernel_ms.size} model calls at a level after each run's warm-up; a speed process needs at least {MIN_CALLS}: "
            "log longer runs"
        )
    shares = np.concatenate([run.shares for run in runs])
    factors = concurrency_slowdown(shares, kernel_ms)
    machine = {"speed": _speed(kernel_ms / (shares @ np.asarray(factors)), reference_kernel_ms)}
    if workers > 1:
        machine["device"] = {"concurrency_slowdown": factors}
    return machine


def _speed(solo_kernel_ms: np.ndarray, reference_kernel_ms: np.ndarray) -> dict[str, Any]:
    """The chain's factors are its states' means over the reference's mean; a state's spread is what its
    log-σ has beyond the reference's own (the reference's times keep theirs when the node draws them)."""
    model = fit_lognormal_hmm(np.clip(solo_kernel_ms[-HMM_SAMPLES:], MIN_TIME_MS, None), states=SPEED_STATES).model
    reference_sigma = float(np.log(reference_kernel_ms).std())
    return {
        "factors": [float(mean / reference_kernel_ms.mean()) for mean in model.state_moments_ms(1)],
        "transition": [[float(p) for p in row] for row in np.asarray(model.transition)],
        "variation_sigma": [float(np.sqrt(max(sigma**2 - reference_sigma**2, 0.0))) for sigma in model.sigma_log],
    }


def _outside(runs: list[CallRun]) -> np.ndarray:
    return pd.concat([run.requests["outside_ms"] for run in runs]).clip(lower=MIN_TIME_MS).to_numpy()


def _drift(runs_calls: list[pd.DataFrame], window_ms: float) -> list[float]:
    """The 5th and 95th percentiles of a ``window_ms`` window's mean kernel time over its run's mean."""
    ratios = []
    for calls in runs_calls:
        windows = calls.groupby((calls["kernel_start_ms"] // window_ms).astype(int))["kernel_ms"].agg(["mean", "size"])
        ratios.append(windows.loc[windows["size"] >= MIN_WINDOW_CALLS, "mean"] / calls["kernel_ms"].mean())
    ratios = pd.concat(ratios)
    return [float(q) for q in np.quantile(ratios, DRIFT_QUANTILES)] if len(ratios) else [1.0, 1.0]


def _solo(run: CallRun, factors: np.ndarray) -> pd.DataFrame:
    """A run's calls with their service and kernel times divided by their concurrency slowdown: the node
    applies it to the whole call (overhead included), so the overhead is fitted as it would be alone."""
    calls = run.calls.copy()
    slowdown = run.shares @ factors if len(factors) > 1 else 1.0
    calls["service_ms"] /= slowdown
    calls["kernel_ms"] /= slowdown
    return calls


def write_calibration_file(calibration: dict[str, Any], out: Path, fitted_on: dict[str, Any]) -> Path:
    """A fitted calibration as YAML, its outside times as CSV files beside it (named relative to it)."""
    out = Path(out)
    outside_tables: dict[Path, np.ndarray] = {}

    def outside_file(values: np.ndarray, suffix: str) -> dict[str, str]:
        path = out.with_name(f"{out.stem}-outside-{suffix}.csv")
        outside_tables[path] = np.asarray(values, dtype=float)
        return {"distribution": "empirical", "file": path.name}

    levels = []
    for entry in calibration["levels"]:
        name = f"{entry['level']:.2f}"
        levels.append({
            "level": entry["level"],
            "rate_per_s": entry["rate_per_s"],
            **machine_settings(entry),
            "outside": outside_file(entry["outside_ms"], name),
            "runs": [
                machine_settings(run) | {"outside": outside_file(run["outside_ms"], f"{name}-run{index}")}
                for index, run in enumerate(entry["runs"])
            ],
        })
    document = {
        "format_version": FORMAT_VERSION,
        "fitted_on": fitted_on,
        "overhead": calibration["overhead"],
        "profile_drift": calibration["profile_drift"],
        "levels": levels,
    }
    bad = non_finite_key(document) or next(
        (f"{path.name} (outside times)" for path, values in outside_tables.items() if not np.isfinite(values).all()), None)
    if bad is not None:
        raise CalibrationError(f"{out}: not written: the fit gave {bad} no finite value (too few or too noisy runs?)")
    out.parent.mkdir(parents=True, exist_ok=True)
    for path, values in outside_tables.items():
        write_atomically(path, lambda temporary, values=values: pd.DataFrame({"outside_ms": values}).to_csv(temporary, index=False))
    write_text_atomically(out, yaml.safe_dump(document, sort_keys=False))
    return out
