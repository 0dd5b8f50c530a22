"""``latsim calibrate``: a calibration file from any server's request logs and the scenario that plans for it.

Each log is one run at one load level. The speed factors are relative to the scenario node's own
service model (the profile a plan uses), so the calibrated node draws its profile's times and the
machine's measured behaviour under load on top of them. Two methods, and the file says which:

- **server_side** — where every served request carries the server's times (``server_arrival_ms``,
  ``dequeue_ms``, ``service_end_ms``): the overhead by occupancy, the concurrency slowdown, the speed
  process per level and the time outside the server, as :mod:`simulator.fitting.calibration` fits them.
- **client_side** — from the client's latencies alone, by simulation: the node is simulated on each
  level's own arrivals with its service scaled by a factor *s* and a constant time outside the server
  *d*. At the lowest level the factor whose simulated spread of latency (p90 − p50, which *d* does
  not move) is the measured one gives *d* as the measured median less the simulated one; at every
  level *s* is then the factor whose simulated mean latency, plus *d*, is the measured mean
  (bisection: both grow with *s*). A per-call overhead that does not scale with the service looks
  like time outside the server at the lowest level and like a larger *s* under load.

The logs must be able to say what is asked of them: enough served requests per run, a load above
``MIN_TOP_UTILISATION`` somewhere (else the slowdown under load is not identified), and for the
client-side method at least two levels. A CalibrationError says which is missing.
"""

from __future__ import annotations

import datetime
import math
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from simulator.errors import CalibrationError, ScenarioError
from simulator.fitting.calibration import MIN_TIME_MS, WARMUP_FRACTION, call_run, call_table, calibrate_runs, write_calibration_file
from simulator.formats.request_log import RequestLog, read_request_log
from simulator.random_streams import stream
from simulator.scenario.schema import Scenario
from simulator.service.base import build_service_model

REFERENCE_DRAWS = 20_000  # draws of the node's service model that the speed factors are relative to
DRIFT_WINDOW_MS = 2_000.0  # a profile's length, for the profile's drift: about what a closed-loop profile of 1,000 calls takes
MIN_TOP_UTILISATION = 0.5
SEARCH_FACTORS = (0.05, 20.0)  # the service-scale factors a client-side fit searches between
SEARCH_STEPS = 18  # bisection steps: the factor to within 0.05 % of its range's ratio
SIMULATION_SEED = 20261207


def calibrate_from_logs(
    logs: list[Path], scenario: Scenario, node: str | None = None, server: str = "",
    progress: Callable[[str], None] | None = None, time_unit: str = "ms",
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The calibration of the scenario's node ``node`` (the only one by default) from request logs (their times in
    ``time_unit``), and what it was fitted on."""
    say = progress or (lambda _: None)
    index = scenario.node_spec_index(node, "--node")
    spec = scenario.nodes[index]
    read = [read_request_log(path, time_unit) for path in logs]
    if not read:
        raise CalibrationError("give at least one request log")
    _check_classes(read, scenario)
    reference = build_service_model(spec.service, scenario.base_dir)
    reference_ms = np.clip(reference.draw_block(stream(SIMULATION_SEED, 0, "calibration-reference"), REFERENCE_DRAWS, 1), MIN_TIME_MS, None)
    server_side = all(log.server_side for log in read)
    if server_side:
        say(f"fitting the server's own times of {len(read)} run(s)")
        calibration = _server_side(read, spec.workers, reference_ms)
    else:
        say(f"fitting {len(read)} run(s) from the client's latencies, by simulation")
        calibration = _client_side(read, scenario, index, reference_ms, say)
    top = max(level["level"] for level in calibration["levels"])
    if top < MIN_TOP_UTILISATION:
        raise CalibrationError(
            f"the busiest run kept the server {top:.0%} busy; a calibration needs a run above {MIN_TOP_UTILISATION:.0%} "
            "to identify how the server slows under load: log a run at a higher rate"
        )
    rates = [log.offered_rate_per_s for log in read]
    fitted_on = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "method": "server_side" if server_side else "client_side",
        "server": server,
        "reference": f"{scenario.source}: nodes[{index}].service ({spec.service.distribution}, mean {reference_ms.mean():.4g} ms)",
        "workers": spec.workers,
        "discipline": spec.discipline.policy,
        "batching": spec.batching is not None and spec.batching.max_batch_size > 1,
        "classes": sorted({name for log in read for name in log.table["class"].unique()}),
        "rate_per_s": [float(min(rates)), float(max(rates))],
        "logs": [log.path.name for log in read],
        "requests": int(sum(len(log.served) for log in read)),
    }
    return calibration, fitted_on


def write_calibration_from_logs(logs: list[Path], scenario: Scenario, out: Path, **options: Any) -> tuple[Path, dict[str, Any]]:
    """``calibrate_from_logs`` written as a calibration file (outside times as CSV files beside it)."""
    calibration, fitted_on = calibrate_from_logs(logs, scenario, **options)
    return write_calibration_file(calibration, out, fitted_on), fitted_on


def _check_classes(logs: list[RequestLog], scenario: Scenario) -> None:
    known = {c.name for c in scenario.workload.classes}
    for log in logs:
        unknown = sorted(set(log.table["class"].unique()) - known)
        if unknown:
            raise CalibrationError(
                f"request log {log.path}: class {unknown[0][:100]!r} is not one of the scenario's classes ({', '.join(sorted(known))})"
            )


def _group(logs: list[RequestLog]) -> dict[tuple, list[RequestLog]]:
    """Runs at one load level together: by their logged ``level``, else their ``target_rate_per_s``, else each alone."""
    groups: dict[tuple, list[RequestLog]] = {}
    for log in logs:
        levels, targets = log.table["level"].dropna(), log.table["target_rate_per_s"].dropna()
        key = ("level", round(float(levels.median()), 6)) if len(levels) else ("rate", float(targets.median())) if len(targets) else ("run", str(log.path))
        groups.setdefault(key, []).append(log)
    return groups


def _level(key: tuple, utilisation: float) -> float:
    """A level's value in the file: its logged ``level``, else the utilisation its runs measured or were fitted to."""
    return key[1] if key[0] == "level" else max(round(utilisation, 4), MIN_TIME_MS)


def _server_side(logs: list[RequestLog], workers: int, reference_ms: np.ndarray) -> dict[str, Any]:
    by_level: dict[float, list] = {}
    rates: dict[float, float] = {}
    for key, group in _group(logs).items():
        runs = [call_run(call_table(log), workers) for log in group]
        level = _level(key, float(np.mean([_utilisation(run, workers) for run in runs])))
        by_level.setdefault(level, []).extend(runs)
        rates[level] = float(np.mean([log.offered_rate_per_s for log in group]))
    return calibrate_runs(by_level, rates, reference_ms, workers, DRIFT_WINDOW_MS)


def _utilisation(run: Any, workers: int) -> float:
    """The share of the run's span its workers were busy (dequeue → free again)."""
    span_ms = float(run.calls["worker_done_ms"].max() - run.calls["dequeue_ms"].min())
    return float((run.calls["worker_done_ms"] - run.calls["dequeue_ms"]).sum() / (workers * span_ms)) if span_ms > 0 else 0.0


# -- the client-side method: simulation --------------------------------------------------------------


def _client_side(
    logs: list[RequestLog], scenario: Scenario, index: int, reference_ms: np.ndarray, say: Callable[[str], None]
) -> dict[str, Any]:
    if len(logs) < 2:
        raise CalibrationError(
            "the logs have no server-side times, and one run cannot tell the server's speed from the time outside it: "
            "log at least two load levels (or the server's own times: server_arrival_ms, dequeue_ms, service_end_ms)"
        )
    spec = scenario.nodes[index]
    ordered = sorted(logs, key=lambda log: log.offered_rate_per_s)
    with tempfile.TemporaryDirectory(prefix="latsim-calibrate-") as folder:
        simulate = _Simulator(scenario, index, Path(folder))
        lowest = ordered[0]
        measured = _statistics(lowest.latency_ms)
        spread = _bisect_factor(lambda s: _spread(simulate(lowest, s, 0.0)), measured["p90"] - measured["p50"], "the spread of")
        outside_ms = max(0.0, measured["p50"] - simulate(lowest, spread, 0.0)["p50"])
        say(f"time outside the server: {outside_ms:.3g} ms (from the lowest level)")
        outside = np.full(1000, max(outside_ms, MIN_TIME_MS))
        levels = []
        for key, group in _group(ordered).items():
            factors = []
            for log in group:
                factors.append(_bisect_factor(lambda s, log=log: simulate(log, s, outside_ms)["mean"], float(log.latency_ms.mean())))
                say(f"run {log.path.name}: service × {factors[-1]:.4g}")
            rate_per_s = float(np.mean([log.offered_rate_per_s for log in group]))
            utilisation = rate_per_s * float(np.mean(factors)) * float(reference_ms.mean()) / (1000.0 * spec.workers)
            levels.append({
                "level": _level(key, utilisation), "rate_per_s": rate_per_s,
                "speed": _constant_speed(float(np.mean(factors))), "outside_ms": outside,
                "runs": [{"speed": _constant_speed(f), "outside_ms": outside} for f in factors],
            })
    levels.sort(key=lambda entry: entry["rate_per_s"])
    return {"overhead": {"occupancy": [1.0], "mean_ms": [0.0], "variation_sigma": 0.0}, "profile_drift": [], "levels": levels}


def _constant_speed(factor: float) -> dict[str, Any]:
    return {"factors": [factor], "transition": [[1.0]], "variation_sigma": [0.0]}


def _spread(statistics: dict[str, float]) -> float:
    return statistics["p90"] - statistics["p50"]


def _bisect_factor(simulated: Callable[[float], float], target_ms: float, what: str = "the mean") -> float:
    """The factor (in ``SEARCH_FACTORS``) whose simulated statistic is ``target_ms``, by bisection on its log (the
    statistic grows with the factor)."""
    low, high = (math.log(bound) for bound in SEARCH_FACTORS)
    if simulated(math.exp(low)) >= target_ms:
        raise CalibrationError(
            f"even a server {1 / SEARCH_FACTORS[0]:g}× faster than the scenario's service model has a larger {what} "
            f"latency than the logs ({target_ms:.4g} ms): is the scenario's node the one that served these requests?"
        )
    for _ in range(SEARCH_STEPS):
        middle = (low + high) / 2
        if simulated(math.exp(middle)) < target_ms:
            low = middle
        else:
            high = middle
    return math.exp((low + high) / 2)


def _statistics(latency_ms: np.ndarray) -> dict[str, float]:
    steady = latency_ms[int(len(latency_ms) * WARMUP_FRACTION) :]
    return {"mean": float(steady.mean()), "p50": float(np.quantile(steady, 0.5)), "p90": float(np.quantile(steady, 0.9))}


class _Simulator:
    """The scenario's node alone on one run's own arrivals (a trace per class), its service scaled, a constant
    time outside it; the latency statistics of all classes (infinite where the scaled node cannot keep up)."""

    def __init__(self, scenario: Scenario, index: int, folder: Path) -> None:
        self.scenario, self.index, self.folder = scenario, index, folder
        self.traces: dict[Path, dict[str, Any]] = {}

    def _arrivals(self, log: RequestLog) -> dict[str, Any]:
        if log.path not in self.traces:
            served = log.served
            sends = served["scheduled_send_ms"].fillna(served["client_send_ms"])
            origin = float(sends.min())
            classes = {}
            for number, (name, group) in enumerate(served.groupby("class")):
                file = self.folder / f"run{len(self.traces)}-class{number}.csv"
                pd.DataFrame({"arrival_ms": np.sort(sends[group.index].to_numpy(float) - origin)}).to_csv(file, index=False)
                classes[name] = {"process": "trace", "file": str(file)}
            self.traces[log.path] = {"classes": classes, "requests": len(served)}
        return self.traces[log.path]

    def __call__(self, log: RequestLog, factor: float, outside_ms: float) -> dict[str, float]:
        from simulator.runner.api import run
        from simulator.scenario.loader import scenario_from_dict

        arrivals = self._arrivals(log)
        spec = self.scenario.nodes[self.index].model_dump(mode="json", exclude={"replicas", "calibration"})
        spec["speed"] = _constant_speed(factor)
        classes = [
            c.model_dump(mode="json", include={"name", "priority", "deadline_ms", "kind", "target", "service"}, exclude_none=True)
            | {"arrival": arrivals["classes"][c.name]}
            for c in self.scenario.workload.classes if c.name in arrivals["classes"]
        ]
        total = arrivals["requests"]
        data = {
            "name": f"{self.scenario.name}-calibration",
            "run": {"requests": total - int(total * WARMUP_FRACTION), "warmup_requests": int(total * WARMUP_FRACTION),
                    "replications": 1, "seed": SIMULATION_SEED},
            "workload": {"classes": classes},
            "nodes": [spec],
        }
        if outside_ms > MIN_TIME_MS:
            data["network"] = {"response": {"distribution": "deterministic", "value_ms": outside_ms}}
        try:
            result = run(scenario_from_dict(data, self.scenario.source, self.scenario.base_dir), on_unstable="return", engine="simpy")
        except ScenarioError as error:
            raise CalibrationError(f"simulating the logged runs: {error}") from None
        if result.status == "unstable":
            return dict.fromkeys(("mean", "p50", "p90"), math.inf)
        latency = result.summary["classes"]["all"]["latency_ms"]
        return {key: float(latency[key]["estimate"]) for key in ("mean", "p50", "p90")}
