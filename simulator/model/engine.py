"""The run loop: build the SimPy model of a scenario, simulate replications, summarize.

``run_scenario`` is the one entry point other layers (CLI, planner, tests) use:
scenario + seed → RunResult. Time inside the model is simulated milliseconds.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import simpy

from simulator.errors import ScenarioError, UnstableSystemError
from simulator.metrics.collector import ReplicationRecorder
from simulator.metrics.records import RecordWriter, concatenate_parquet
from simulator.metrics.summary import RunResult, summarize
from simulator.metrics.timeseries import TimeSeriesRecorder
from simulator.model.build import build_cluster, node_names, node_workers, service_models
from simulator.model.capacity import offered_load
from simulator.model.disruptions import DISRUPTIONS
from simulator.model.partitioning import Partitioner
from simulator.model.source import ArrivalSource
from simulator.random_streams import draws, stream
from simulator.scenario.loader import LoadedScenario
from simulator.service.base import build_service_model
from simulator.workload.arrivals import ARRIVAL_PROCESSES, ArrivalProcess
from simulator.workload.keys import KEY_POPULARITY, KeyPopularity

ProgressCallback = Callable[[int], None]


@dataclass(frozen=True)
class RunPlan:
    """What one run simulates, after command-line overrides."""

    loaded: LoadedScenario
    seed: int
    replications: int
    requests: int
    warmup_requests: int


def _arrival_process(loaded: LoadedScenario, seed: int, replication: int) -> ArrivalProcess:
    config = loaded.scenario.workload.arrival
    rng = stream(seed, replication, "arrivals")
    return ARRIVAL_PROCESSES.policy_class(config)(config, rng, loaded.base_dir)


def _key_popularity(loaded: LoadedScenario) -> KeyPopularity | None:
    config = loaded.scenario.workload.keys
    return None if config is None else KEY_POPULARITY.policy_class(config)(config, loaded.base_dir)


def simulate_replication(
    plan: RunPlan,
    replication: int,
    records_path: Path | None = None,
    progress: ProgressCallback | None = None,
    monitor: bool = False,
) -> dict:
    """One independent replication: its point estimates, node statistics and batch sums (and time series)."""
    scenario = plan.loaded.scenario
    classes = scenario.workload.classes
    seed = plan.seed
    env = simpy.Environment()
    process = _arrival_process(plan.loaded, seed, replication)
    total = plan.warmup_requests + plan.requests
    limit = process.max_arrivals()
    if limit is not None:
        total = min(total, limit)
    measured = max(total - plan.warmup_requests, 0)

    names = node_names(scenario)
    class_names = [c.name for c in classes]
    writer = RecordWriter(records_path, replication, class_names, names) if records_path else None
    sinks = [] if writer is None else [writer]
    monitoring = None
    if monitor:
        window_ms = scenario.run.monitoring_window_s * 1000.0
        monitoring = TimeSeriesRecorder(window_ms, class_names, names, node_workers(scenario))
        sinks.append(monitoring.add)
    recorder = ReplicationRecorder(
        class_names, [c.deadline_ms for c in classes], plan.warmup_requests, measured, scenario.run.batches,
        len(names), sinks, with_cache=scenario.cache is not None, with_stages=scenario.pipeline is not None,
    )
    recorder.on_chunk = progress
    popularity = _key_popularity(plan.loaded)
    cluster = build_cluster(
        env, plan.loaded, service_models(plan.loaded), seed, replication, recorder.finished,
        None if popularity is None else popularity.catalog_size,
    )
    class_rng = stream(seed, replication, "classes")
    shares = [c.share for c in classes]
    probabilities = [share / sum(shares) for share in shares]
    class_draw = draws(lambda size: class_rng.choice(len(classes), size, p=probabilities))
    key_draw = None if popularity is None else popularity.keys(stream(seed, replication, "keys"))
    source = ArrivalSource(
        env, process.gaps_ms(), total, class_draw, classes, cluster, plan.warmup_requests, recorder, key_draw
    )
    for index, event in enumerate(scenario.events):
        disruption = DISRUPTIONS.policy_class(event)(event, cluster, source, stream(seed, replication, f"events/{index}"))
        disruption.start(env)
    source.start()
    env.run()
    recorder.flush()
    if recorder.finished_count != source.next_id:
        raise RuntimeError(  # an engine bug, never a user error: say so rather than report partial numbers
            f"replication {replication}: {source.next_id - recorder.finished_count} of {source.next_id} requests "
            "never finished (neither served nor dropped); please report this scenario"
        )
    if writer is not None:
        writer.close()

    window_ms = source.window_end_ms - source.window_start_ms
    window_s = window_ms / 1000.0
    return {
        "classes": recorder.estimates(window_s),
        "nodes": _with_model_loads(
            recorder.node_estimates(names, [node.workers for node in cluster.nodes], window_ms),
            cluster.nodes, source.window_start_ms, source.window_end_ms,
        ),
        "batches": recorder.batch_estimates(),
        "window_s": window_s,
        "measured_requests": measured,
        "simulated_s": env.now / 1000.0,
        "timeseries": None if monitoring is None else monitoring.frame(),
    }


def _with_model_loads(estimates: dict[str, dict], nodes, start_ms: float, end_ms: float) -> dict[str, dict]:
    """Cold loads that began in the measurement window, for nodes with a model cache."""
    for node in nodes:
        if node.executor is not None and node.executor.memory is not None:
            starts = node.executor.memory.load_starts_ms
            estimates[node.name]["model_loads"] = sum(start_ms <= t <= end_ms for t in starts)
    return estimates


def plan_run(
    loaded: LoadedScenario, seed: int | None = None, replications: int | None = None, requests: int | None = None
) -> RunPlan:
    """Apply command-line overrides to the scenario's run settings."""
    run = loaded.scenario.run
    measured = requests or run.requests
    warmup = run.warmup if requests is None or run.warmup_requests is not None else measured // 10
    return RunPlan(loaded, run.seed if seed is None else seed, replications or run.replications, measured, warmup)


def check_batch_sizes(loaded: LoadedScenario) -> None:
    """Every service model a batching node uses must price its largest batch: fail before the run."""
    scenario = loaded.scenario
    for index, spec in enumerate(scenario.nodes):
        if spec.batching is None:
            continue
        largest = spec.batching.max_batch_size
        configs = {f"nodes[{index}].service": spec.service}
        configs |= {f"workload.classes[{k}].service": c.service for k, c in enumerate(scenario.workload.classes) if c.service}
        if spec.device is not None:
            configs |= {f"nodes[{index}].device.h2d": spec.device.h2d, f"nodes[{index}].device.d2h": spec.device.d2h}
        for field, config in configs.items():
            try:
                build_service_model(config, loaded.base_dir).mean_ms(largest)
            except ScenarioError as error:
                raise ScenarioError(
                    f"{loaded.source}: {field} (node {spec.name!r} batches up to {largest}): {error}"
                ) from None


def check_stability(plan: RunPlan) -> float:
    """Offered load of the scenario; raises UnstableSystemError if queues would grow forever.

    The load counts every request as a model call: cache hits, which lighten it, are not known
    before the run, so with a cache an overload is left to the run's queue-length guard.
    """
    scenario = plan.loaded.scenario
    check_batch_sizes(plan.loaded)
    process = _arrival_process(plan.loaded, plan.seed, 0)
    shares = None
    popularity = _key_popularity(plan.loaded)
    if popularity is not None and scenario.partitioning.partitions > 1:
        partitioner = Partitioner(scenario.partitioning, popularity.catalog_size)
        shares = partitioner.shares(popularity.probabilities())
    copy_ms = {}
    for spec in scenario.nodes:
        if spec.device is not None:
            h2d, d2h = (build_service_model(c, plan.loaded.base_dir) for c in (spec.device.h2d, spec.device.d2h))
            copy_ms[spec.name] = lambda batch, h2d=h2d, d2h=d2h: h2d.mean_ms(batch) + d2h.mean_ms(batch)
    load = offered_load(scenario, process.mean_rate_per_s(), service_models(plan.loaded), shares, copy_ms)
    if load >= 1 and scenario.cache is None and all(spec.queue_capacity is None for spec in scenario.nodes):
        raise UnstableSystemError(
            f"{plan.loaded.source}: offered load is {load:.3f} of capacity (≥ 1): queues grow without "
            "bound and no steady state exists. Add workers/nodes, lower the arrival rate, or set "
            "nodes[].queue_capacity to simulate a loss system."
        )
    return load


def run_scenario(
    loaded: LoadedScenario,
    *,
    seed: int | None = None,
    replications: int | None = None,
    requests: int | None = None,
    jobs: int = 1,
    records_path: Path | None = None,
    progress: ProgressCallback | None = None,
    monitor: bool = False,
) -> RunResult:
    """Simulate every replication of a scenario and summarize with confidence intervals.

    Same scenario + seed → identical results, whatever ``jobs`` is: each replication draws
    from its own random streams. ``records_path`` writes per-request records as parquet.
    ``progress`` is called with the number of newly finished measured requests. ``monitor``
    gathers the time series per window (``RunResult.timeseries``).
    """
    plan = plan_run(loaded, seed, replications, requests)
    load = check_stability(plan)
    parts = [None] * plan.replications
    with tempfile.TemporaryDirectory(dir=records_path.parent if records_path else None) as scratch:
        if records_path is not None:
            parts = [Path(scratch) / f"replication-{r}.parquet" for r in range(plan.replications)]
        if jobs > 1 and plan.replications > 1:
            with ProcessPoolExecutor(max_workers=jobs) as pool:
                futures = [pool.submit(simulate_replication, plan, r, parts[r], None, monitor) for r in range(plan.replications)]
                results = []
                for future in futures:
                    results.append(future.result())
                    if progress is not None:
                        progress(results[-1]["measured_requests"])
        else:
            results = [simulate_replication(plan, r, parts[r], progress, monitor) for r in range(plan.replications)]
        if records_path is not None:
            concatenate_parquet(parts, records_path)
    return summarize(plan, results, load)
