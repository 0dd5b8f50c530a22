"""``run``: scenario + seed → RunResult, the one entry point the CLI, the planner and programs use."""

from __future__ import annotations

import dataclasses
import math
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Literal

from simulator.errors import ScenarioError, UnstableSystemError
from simulator.metrics.bands import combined_band
from simulator.metrics.records import concatenate_parquet
from simulator.metrics.summary import FEW_REPLICATIONS, is_statistic, summarize
from simulator.runner.calibration import calibrated, calibration_variants
from simulator.runner.checks import check_stability, finite_arrivals, run_notes
from simulator.runner.executors import available_cpus
from simulator.runner.plan import EngineChoice, RunPlan, plan_run
from simulator.runner.replication import ProgressCallback, simulate_replication
from simulator.runner.result import RunResult, find_statistic
from simulator.scenario.schema import PrecisionSettings, Scenario

BAND_REPLICATIONS = 3  # replications of each calibration variant a band is made of
BAND_STATISTICS = ("mean", "p50", "p90", "p99")


def run(
    scenario: Scenario,
    *,
    seed: int | None = None,
    replications: int | None = None,
    requests: int | None = None,
    jobs: int = 1,
    records_path: Path | str | None = None,
    progress: ProgressCallback | None = None,
    monitor: bool = False,
    on_unstable: Literal["raise", "return"] = "raise",
    engine: EngineChoice = "auto",
    band: bool = False,
) -> RunResult:
    """Simulate every replication of a scenario and summarize with confidence intervals.

    ``jobs`` replications run in parallel processes (at most one per replication and CPU).
    Same scenario + seed → identical results, whatever ``jobs`` is: each replication draws
    from its own random streams. ``records_path`` writes per-request records as parquet.
    ``progress`` is called with the number of newly finished measured requests. ``monitor``
    gathers the time series per window (``RunResult.timeseries``). An unstable system raises
    UnstableSystemError, or with ``on_unstable="return"`` comes back as a result whose
    ``status`` is ``"unstable"``. ``engine``: ``auto`` simulates with the compiled fast engine wherever it
    serves the scenario (the same numbers, request by request, much sooner), else with the SimPy model;
    ``simpy`` or ``fast`` force one (``fast`` raises ScenarioError naming what rules it out). The summary
    says which ran. With ``run.precision`` in the scenario, replications are added (each from its own streams)
    until that statistic's interval is narrow enough or its cap is reached; a note says which.
    ``band``: where a node's calibration carries uncertainty (its runs one by one, the profile's drift), the
    summary's ``prediction_band`` gives each class's latency statistics as that uncertainty moves them.
    """
    plan = plan_run(scenario, seed, replications, requests, engine)
    precision = plan.scenario.run.precision
    if precision is not None and not is_statistic(precision.statistic):
        raise ScenarioError(
            f"{plan.scenario.source}: run.precision.statistic: {precision.statistic!r} is no statistic with an interval; "
            "give a path like latency_ms.p99, wait_ms.mean, latency_or_drop_ms.p99.9, deadline_met_ratio, drop_ratio, "
            "throughput_per_s or drop_ratio_by_reason.<reason>"
        )
    records_path = None if records_path is None else Path(records_path)
    try:
        load = check_stability(plan)
        with tempfile.TemporaryDirectory(dir=records_path.parent if records_path else None) as scratch:
            parts: list[Path | None] = []

            def simulate(count: int) -> list[dict]:
                """Replications ``len(parts) .. count − 1`` (each from its own streams, so adding some later changes none)."""
                first = len(parts)
                parts.extend(Path(scratch) / f"replication-{r}.parquet" if records_path else None for r in range(first, count))
                return _simulate(plan, range(first, count), parts, jobs, progress, monitor)

            results = simulate(plan.replications)
            notes, batch_means = run_notes(plan)
            while precision is not None:
                checked = summarize(plan.scenario, plan.seed, plan.requests, results, load, (), batch_means)
                wanted = _replications_for(precision, checked, len(results), plan.scenario.source)
                if wanted == len(results):
                    plan = dataclasses.replace(plan, replications=wanted)
                    break
                results += simulate(wanted)
            if records_path is not None:
                concatenate_parquet(parts, records_path, [r["warmup_requests"] for r in results])
    except UnstableSystemError as error:
        if on_unstable == "raise":
            raise
        return RunResult(plan, {}, [], status="unstable", message=str(error))
    if load >= 1 and finite_arrivals(plan.scenario):
        notes.append(
            f"offered load {load:.3f} of capacity (≥ 1): the trace overloads the system, so its queues grow over the "
            "trace; simulated as it is (the statistics are of this finite trace, not of a steady state)"
        )
    longest_transient = max(r["transient_requests"] for r in results)
    if plan.warmup_fixed and longest_transient > min(r["warmup_requests"] for r in results):
        notes.append(
            f"MSER finds a transient of up to {longest_transient} requests, longer than run.warmup_requests = "
            f"{plan.warmup_requests}: raise it (or leave it out to let the run extend the warm-up itself)"
        )
    summary = summarize(plan.scenario, plan.seed, plan.requests, results, load, notes, batch_means)
    if precision is not None:
        summary["notes"].append(_precision_note(precision, summary, plan.scenario.source))
    summary = {"scenario": summary.pop("scenario"), "engine": plan.engine, **summary}
    if band:
        summary["prediction_band"] = _calibration_band(scenario, summary, plan, engine)
    return RunResult(plan, summary, results)


def _calibration_band(scenario: Scenario, summary: dict, plan: RunPlan, engine: EngineChoice) -> dict | None:
    """Per class and latency statistic, [low, high]: the estimate as each of the calibration's sources of uncertainty
    moves it (each variant simulated on the same streams with up to ``BAND_REPLICATIONS``), the sources combined as
    independent (``metrics.bands.combined_band``); None without a calibration that carries any."""
    variants = calibration_variants(scenario, plan.seed)
    if not variants:
        return None
    sources: dict[str, list[dict]] = {}
    for source, index in variants:
        varied = run(calibrated(scenario, plan.seed, (source, index)), seed=plan.seed, requests=plan.requests,
                     replications=min(plan.replications, BAND_REPLICATIONS), on_unstable="return", engine=engine)
        sources.setdefault(source, []).append(varied.summary.get("classes", {}))
    band = {}
    for name, entry in summary["classes"].items():
        band[name] = {}
        for statistic in BAND_STATISTICS:
            estimate = entry["latency_ms"][statistic]["estimate"]
            per_source = [[variant[name]["latency_ms"][statistic]["estimate"] if name in variant else None for variant in listed]
                          for listed in sources.values()]
            band[name][statistic] = list(combined_band(estimate, per_source))
    return {"sources": {source: len(listed) for source, listed in sources.items()}, "classes": band}


def _simulate(
    plan: RunPlan, indices: range, parts: list[Path | None], jobs: int, progress: ProgressCallback | None, monitor: bool
) -> list[dict]:
    """The replications ``indices`` of ``plan``, in ``jobs`` processes at most (one per replication and CPU)."""
    processes = min(jobs, len(indices), available_cpus())
    if processes <= 1:
        return [simulate_replication(plan, r, parts[r], progress, monitor) for r in indices]
    results = []
    with ProcessPoolExecutor(max_workers=processes) as pool:
        futures = [pool.submit(simulate_replication, plan, r, parts[r], None, monitor) for r in indices]
        for future in futures:
            results.append(future.result())
            if progress is not None:
                progress(results[-1]["measured_requests"])
    return results


def _relative_half_width(precision: PrecisionSettings, summary: dict, source: str) -> float:
    """The wider half of the statistic's interval relative to its estimate (+∞ without an interval); a statistic the
    summary lacks is an error naming the scenario ``source``."""
    try:
        value = find_statistic(summary["classes"][precision.scope], precision.statistic, f"class {precision.scope!r}")
    except KeyError as error:
        if precision.statistic.startswith("drop_ratio_by_reason."):
            return math.inf  # a drop reason no request has had yet
        raise ScenarioError(f"{source}: run.precision.statistic: {error.args[0]}") from None  # cache_hit_ratio without a cache
    estimate, low, high = value["estimate"], value["ci_low"], value["ci_high"]
    if estimate is None or low is None or high is None or estimate == 0:
        return math.inf
    return max(high - estimate, estimate - low) / abs(estimate)


def _replications_for(precision: PrecisionSettings, summary: dict, done: int, source: str) -> int:
    """How many replications the run should have: ``done`` once the interval is narrow enough (or at the cap), else
    the count a half-width shrinking as 1/√R predicts (one more at least), within ``max_replications``. Fewer than
    ``FEW_REPLICATIONS`` never stop the run: an interval on one or two degrees of freedom is narrow by chance too often."""
    if done < FEW_REPLICATIONS <= precision.max_replications:
        return FEW_REPLICATIONS
    half_width = _relative_half_width(precision, summary, source)
    if half_width <= precision.relative_half_width or done >= precision.max_replications:
        return done
    predicted = done * (half_width / precision.relative_half_width) ** 2 if math.isfinite(half_width) else 2 * done
    return min(precision.max_replications, max(done + 1, math.ceil(predicted)))


def _precision_note(precision: PrecisionSettings, summary: dict, source: str) -> str:
    """What the stopping rule reached: the target, or the cap and how far from the target it stopped."""
    half_width = _relative_half_width(precision, summary, source)
    what = f"run.precision: {precision.statistic} of {precision.scope}"
    reached = "no interval" if not math.isfinite(half_width) else f"±{half_width:.2%}"
    if half_width <= precision.relative_half_width:
        return f"{what} is {reached} after {summary['replications']} replications (target ±{precision.relative_half_width:.2%})"
    return (
        f"{what} is {reached} after {summary['replications']} replications, short of the ±{precision.relative_half_width:.2%} "
        f"target: run.precision.max_replications ({precision.max_replications}) stopped it; raise it or run.requests"
    )
