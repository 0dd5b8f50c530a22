"""``run``: scenario + seed → RunResult, the one entry point the CLI, the planner and programs use."""

from __future__ import annotations

import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Literal

from simulator.errors import UnstableSystemError
from simulator.metrics.bands import combined_band
from simulator.metrics.records import concatenate_parquet
from simulator.metrics.summary import summarize
from simulator.runner.calibration import calibrated, calibration_variants
from simulator.runner.checks import check_stability, finite_arrivals, run_notes
from simulator.runner.executors import available_cpus
from simulator.runner.plan import EngineChoice, RunPlan, plan_run
from simulator.runner.replication import ProgressCallback, simulate_replication
from simulator.runner.result import RunResult
from simulator.scenario.schema import Scenario

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
    says which ran. ``band``: where a node's calibration carries uncertainty (its runs one by one, the profile's
    drift), the summary's ``prediction_band`` gives each class's latency statistics as that uncertainty moves them.
    """
    plan = plan_run(scenario, seed, replications, requests, engine)
    records_path = None if records_path is None else Path(records_path)
    try:
        load = check_stability(plan)
        parts: list[Path | None] = [None] * plan.replications
        with tempfile.TemporaryDirectory(dir=records_path.parent if records_path else None) as scratch:
            if records_path is not None:
                parts = [Path(scratch) / f"replication-{r}.parquet" for r in range(plan.replications)]
            processes = min(jobs, plan.replications, available_cpus())
            if processes > 1:
                with ProcessPoolExecutor(max_workers=processes) as pool:
                    futures = [pool.submit(simulate_replication, plan, r, parts[r], None, monitor) for r in range(plan.replications)]
                    results = []
                    for future in futures:
                        results.append(future.result())
                        if progress is not None:
                            progress(results[-1]["measured_requests"])
            else:
                results = [simulate_replication(plan, r, parts[r], progress, monitor) for r in range(plan.replications)]
            if records_path is not None:
                concatenate_parquet(parts, records_path, [r["warmup_requests"] for r in results])
    except UnstableSystemError as error:
        if on_unstable == "raise":
            raise
        return RunResult(plan, {}, [], status="unstable", message=str(error))
    notes, batch_means = run_notes(plan)
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
