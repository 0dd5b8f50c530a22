"""One replication: build the SimPy model of a scenario, run it, reduce what it measured.

Time inside the model is simulated milliseconds. The model hands every finished request to
``ReplicationRecorder.finished``; this module wires the recorder, the optional record writer and
the monitoring time series to it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from simulator.metrics.collector import CHUNK_SIZE, ReplicationRecorder
from simulator.metrics.records import RecordWriter
from simulator.metrics.timeseries import TimeSeriesRecorder
from simulator.model.build import (
    build_cluster,
    node_names,
    node_workers,
    service_models,
)
from simulator.model.device import StagedExecutor
from simulator.model.node import Node
from simulator.model.simulation import Environment
from simulator.model.source import ArrivalSource
from simulator.random_streams import draws, stream
from simulator.registry import DISRUPTIONS
from simulator.runner.inputs import arrival_process, key_popularity
from simulator.runner.plan import RunPlan
from simulator.units import MS_PER_S

ProgressCallback = Callable[[int], None]


def simulate_replication(
    plan: RunPlan,
    replication: int,
    records_path: Path | None = None,
    progress: ProgressCallback | None = None,
    monitor: bool = False,
) -> dict:
    """One independent replication: its point estimates, node statistics and batch sums (and time series)."""
    scenario = plan.scenario
    classes = scenario.workload.classes
    seed = plan.seed
    env = Environment()
    process = arrival_process(scenario, seed, replication)
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
        window_ms = scenario.run.monitoring_window_s * MS_PER_S
        monitoring = TimeSeriesRecorder(window_ms, class_names, names, node_workers(scenario))
        sinks.append(monitoring.add)
    recorder = ReplicationRecorder(
        class_names, [c.deadline_ms for c in classes], plan.warmup_requests, measured, scenario.run.batches,
        len(names), sinks, with_cache=scenario.cache is not None, with_stages=scenario.pipeline is not None,
    )
    recorder.on_chunk = progress
    popularity = key_popularity(scenario)
    cluster = build_cluster(
        env, scenario, service_models(scenario), seed, replication, recorder.finished,
        None if popularity is None else popularity.catalog_size,
    )
    class_rng = stream(seed, replication, "classes")
    shares = [c.share for c in classes]
    probabilities = [share / sum(shares) for share in shares]
    source = ArrivalSource(
        env=env,
        gaps_ms=process.gaps_ms(),
        total=total,
        class_draw=draws(lambda size: class_rng.choice(len(classes), size, p=probabilities)),
        classes=classes,
        cluster=cluster,
        warmup=plan.warmup_requests,
        finished=recorder.finished,
        flush=recorder.flush,
        chunk_size=CHUNK_SIZE,
        key_draw=None if popularity is None else popularity.keys(stream(seed, replication, "keys")),
    )
    for index, event in enumerate(scenario.events):
        DISRUPTIONS.build(event, cluster, source, stream(seed, replication, f"events/{index}")).start(env)
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
    window_s = window_ms / MS_PER_S
    return {
        "classes": recorder.estimates(window_s),
        "nodes": _with_model_loads(
            recorder.node_estimates(names, [node.workers for node in cluster.nodes], window_ms),
            cluster.nodes, source.window_start_ms, source.window_end_ms,
        ),
        "batches": recorder.batch_estimates(),
        "window_s": window_s,
        "measured_requests": measured,
        "simulated_s": env.now / MS_PER_S,
        "timeseries": None if monitoring is None else monitoring.frame(),
    }


def _with_model_loads(estimates: dict[str, dict], nodes: list[Node], start_ms: float, end_ms: float) -> dict[str, dict]:
    """Cold loads that began in the measurement window, for nodes with a model cache."""
    for node in nodes:
        executor = node.executor
        if isinstance(executor, StagedExecutor) and executor.memory is not None:
            starts = executor.memory.load_starts_ms
            estimates[node.name]["model_loads"] = sum(start_ms <= t <= end_ms for t in starts)
    return estimates
