"""One replication: build the model of a scenario, run it, reduce what it measured.

Time inside the model is simulated milliseconds. The run zone is the planned warm-up plus the
measured requests (the warm-up rounded up to whole fine batches); arrivals continue past it until
every run-zone request has finished. The SimPy model hands every finished request to
``ReplicationRecorder.finished``; the fast engine (``plan.engine == "fast"``, for the scenarios it
serves exactly) hands the same requests over as column chunks at the same points. This module
wires the recorder, the optional record writer and the monitoring time series to either, and
records the nodes' busy integrals at every fine batch's first arrival (so utilization counts
exactly the measured window, whatever the cut).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from simulator.metrics.collector import (
    CHUNK_SIZE,
    FINE_BATCHES,
    ReplicationRecorder,
    RequestChunk,
)
from simulator.metrics.records import RecordWriter
from simulator.metrics.timeseries import TimeSeriesRecorder
from simulator.model.build import build_cluster, requirement_draws, service_models
from simulator.model.cluster import Cluster
from simulator.model.device import StagedExecutor
from simulator.model.node import Marks
from simulator.model.service_draws import RequirementDraws
from simulator.model.simulation import Environment, run_until
from simulator.model.source import CHECK_EVERY, ArrivalSource
from simulator.random_streams import stream
from simulator.registry import DISRUPTIONS
from simulator.runner.inputs import arrival_processes, key_popularity
from simulator.runner.plan import RunPlan
from simulator.units import MS_PER_S

ProgressCallback = Callable[[int], None]


def run_zone(plan: RunPlan, limit: int | None) -> tuple[int, int, int]:
    """(requests in the run zone, fine batch size, planned warm-up rounded up to whole fine batches)."""
    batch_size = max(1, -(-(plan.warmup_requests + plan.requests) // FINE_BATCHES))
    warmup = -(-plan.warmup_requests // batch_size) * batch_size
    total = warmup + plan.requests
    if limit is not None:
        total = min(total, limit)
    return total, batch_size, min(warmup, total)


def simulate_replication(
    plan: RunPlan,
    replication: int,
    records_path: Path | None = None,
    progress: ProgressCallback | None = None,
    monitor: bool = False,
) -> dict:
    """One independent replication: per-fine-batch sums, quantiles, node integrals (and a time series)."""
    scenario = plan.scenario
    classes = scenario.workload.classes
    seed = plan.seed
    env = Environment()
    processes = arrival_processes(scenario, seed, replication)
    limits = [process.max_arrivals() for process, _ in processes]
    total, batch_size, warmup = run_zone(plan, None if None in limits else sum(limits))

    names = scenario.node_names()
    class_names = [c.name for c in classes]
    writer = RecordWriter(records_path, replication, class_names, names) if records_path else None
    sinks = [] if writer is None else [writer]
    monitoring = None
    if monitor:
        monitoring = TimeSeriesRecorder(scenario.run.monitoring_window_s * MS_PER_S, class_names, names, scenario.node_workers())
        sinks.append(monitoring.add)
    recorder = ReplicationRecorder(
        class_names=class_names, relative_deadlines_ms=[c.relative_deadline_ms for c in classes], measured=total,
        batch_size=batch_size, node_count=len(names), chunk_sinks=sinks, with_cache=scenario.cache is not None,
        with_stages=scenario.pipeline is not None, planned_warmup=warmup, extend_warmup=not plan.warmup_fixed,
    )
    recorder.on_chunk = progress
    popularity = key_popularity(scenario)
    models = service_models(scenario)
    cluster = build_cluster(
        env, scenario, models, seed, replication, recorder.finished, None if popularity is None else popularity.catalog_size
    )
    streams = [(process.gaps_ms(), class_draw) for process, class_draw in processes]
    requirements = requirement_draws(scenario, models, seed, replication)
    key_draw = None if popularity is None else popularity.keys(stream(seed, replication, "keys"))
    if plan.engine == "fast":
        from simulator.fastpath.engine import simulate  # numba: imported only when used

        marks, simulated_ms = simulate(
            cluster=cluster, streams=streams, classes=classes, requirements=requirements, measured=total,
            chunk_size=CHUNK_SIZE, check_every=CHECK_EVERY, mark_every=batch_size,
            max_queue_length=scenario.run.max_queue_length, key_draw=key_draw,
            emit=lambda columns, reasons, dropped: recorder.add(RequestChunk.from_columns(columns, reasons, dropped=dropped)),
        )
    else:
        marks, simulated_ms = _simulate_events(
            env, plan, replication, cluster, recorder, streams, requirements, key_draw, total, batch_size
        )
    recorder.flush()
    if recorder.finished_count != total:
        raise RuntimeError(  # an engine bug, never a user error: say so rather than report partial numbers
            f"replication {replication}: {total - recorder.finished_count} of {total} requests "
            "never finished (neither served nor dropped); please report this scenario"
        )
    if writer is not None:
        writer.close()
    cut, transient = recorder.cut()
    nodes = recorder.node_counts(names)
    fine_seconds, node_integrals = _window(marks, cut, batch_size, total, cluster.nodes)
    # rates count the measured requests' completions over the span in which they completed: in steady state
    # the arrivals' span shifted by the lag; after a load spike it runs on while the backlog is served
    arrivals_s, served_s = fine_seconds.sum(), recorder.served_span_ms(cut) / MS_PER_S
    if arrivals_s > 0 and served_s > 0:
        fine_seconds *= served_s / arrivals_s
    for node, integrals in zip(cluster.nodes, node_integrals):
        nodes[node.name].update(integrals, workers=node.workers)
        executor = node.executor
        if isinstance(executor, StagedExecutor) and executor.memory is not None:
            start_ms, end_ms = marks[cut * batch_size][0], marks[total - 1][0]
            nodes[node.name]["model_loads"] = sum(start_ms <= t <= end_ms for t in executor.memory.load_starts_ms)
    return {
        "classes": recorder.class_results(cut),
        "nodes": nodes,
        "fine_seconds": fine_seconds,
        "measured_requests": total - cut * batch_size,
        "warmup_requests": cut * batch_size,
        "transient_requests": transient * batch_size,
        "simulated_s": simulated_ms / MS_PER_S,
        "timeseries": None if monitoring is None else monitoring.frame(),
    }


def _simulate_events(
    env: Environment,
    plan: RunPlan,
    replication: int,
    cluster: Cluster,
    recorder: ReplicationRecorder,
    streams: list[tuple[Iterator[float], Iterator[int]]],
    requirements: RequirementDraws,
    key_draw: Iterator[int] | None,
    total: int,
    batch_size: int,
) -> tuple[Marks, float]:
    """The SimPy model's run: the fine-batch marks and the simulated time at its end (ms)."""
    scenario = plan.scenario
    marks: Marks = {}

    def mark(request_id: int, now_ms: float) -> None:
        marks[request_id] = (now_ms, [node.areas(now_ms) for node in cluster.nodes])

    def measured_done() -> bool:
        recorder.flush()
        return recorder.finished_count == total

    stop = env.event()
    source = ArrivalSource(
        env=env,
        streams=streams,
        measured=total,
        classes=scenario.workload.classes,
        requirements=requirements,
        cluster=cluster,
        finished=recorder.finished,
        flush=recorder.flush,
        chunk_size=CHUNK_SIZE,
        stop=stop,
        measured_done=measured_done,
        mark=mark,
        mark_every=batch_size,
        key_draw=key_draw,
    )
    for index, event in enumerate(scenario.events):
        DISRUPTIONS.build(event, cluster, source, stream(plan.seed, replication, f"events/{index}")).start(env)
    source.start()
    run_until(env, stop)
    return marks, env.now


def _window(marks: Marks, cut: int, batch_size: int, total: int, nodes: list) -> tuple[np.ndarray, list[dict]]:
    """Per measured fine batch: its length in seconds, and every node's busy, queue and in-service integrals (ms)."""
    starts = [batch * batch_size for batch in range(cut, -(-total // batch_size))]
    bounds = [*starts, total - 1]
    times_ms = np.array([marks[request_id][0] for request_id in bounds])
    areas = np.array([marks[request_id][1] for request_id in bounds])  # [bound, node, (busy, queue, down)]
    spans_ms = np.diff(times_ms)
    integrals = [
        {
            "fine_busy_ms": np.diff(areas[:, n, 0]),
            "fine_queue_ms": np.diff(areas[:, n, 1]),
            "fine_up_ms": spans_ms - np.diff(areas[:, n, 2]),
            "fine_ms": spans_ms,
        }
        for n in range(len(nodes))
    ]
    return spans_ms / MS_PER_S, integrals
