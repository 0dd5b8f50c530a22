"""Offered load of a scenario: how close the arrival rates come to what its nodes can serve."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from simulator.model.machine import mean_speed_factor
from simulator.registry import ROUTERS
from simulator.scenario.nodes import NodeSpec
from simulator.scenario.schema import Scenario
from simulator.scenario.workload import RequestClass
from simulator.service.base import ServiceTimeModel
from simulator.units import MS_PER_S


def waiting_bounded(spec: NodeSpec, classes: Sequence[RequestClass]) -> bool:
    """Whether a node's waiting room stays bounded at any load, as a queue capacity keeps it: a queue policy that rejects
    the requests of every priority after a timeout or past a queue size (reneging), or admission that drops every
    class as firm. Such a node is a loss system: it has a steady state however high its offered load."""
    if spec.queue_capacity is not None:
        return True
    if spec.queue_policy is not None:
        policies = [spec.queue_policy.for_priority(c.priority) for c in classes]
        if all(p.max_queue_size is not None or (p.timeout_ms is not None and p.timeout_action == "reject") for p in policies):
            return True
    return spec.admission.policy != "none" and all(c.kind == "firm" for c in classes)


def offered_load(
    scenario: Scenario,
    class_rates_per_s: Sequence[float],
    service_models: Sequence[Sequence[ServiceTimeModel]],
    partition_shares: np.ndarray | None = None,
    copy_ms: Mapping[str, Callable[[int], float]] | None = None,
    concurrency: Mapping[str, float] | None = None,
) -> float:
    """Utilization the load asks of the busiest partition (≥ 1: its queues grow without bound).

    ``class_rates_per_s[k]`` is class k's mean arrival rate; ``service_models[n][k]`` the model of
    class k on node spec n. A batching node is given its best case, always-full batches of
    ``max_batch_size``: if even that cannot keep up, no steady state exists. Routers that ignore
    load split a partition's arrivals evenly over its replicas, so the slowest replica decides;
    load-aware routers can use the partition's pooled capacity, except that ``priority_lanes``
    sends its bulk classes only to the unreserved replicas, which must carry them alone. In a
    pipeline the busiest stage decides. ``copy_ms[spec name](batch size)`` is a device node's mean
    H2D + D2H time per call, which holds its worker too; ``concurrency[spec name]`` is how many
    calls' worth of compute a device node does at once at best, max over k ≤ workers of k / f(k)
    for its slowdown f (1 under processor sharing; default: its workers). A node's speed process
    multiplies its mean service by the chain's mean factor, its occupancy slowdown by its least
    factor, and its overhead adds its least mean (at any occupancy a call is slowed and adds at
    least that: the load is a lower bound). Cold model loads are not counted (they depend on the
    traffic mix).
    """
    partitions = scenario.partitioning.partitions
    shares = np.full(partitions, 1.0 / partitions) if partition_shares is None else partition_shares
    rates = np.asarray(class_rates_per_s, dtype=float) * float(np.max(shares))
    stages = [[name] for name in scenario.pipeline.stages] if scenario.pipeline else [[spec.name for spec in scenario.nodes]]
    router = scenario.router
    load_aware = ROUTERS.policy_class(router).load_aware
    bulk = np.array([c.priority > router.urgent_priority for c in scenario.workload.classes]) if router.policy == "priority_lanes" else None
    loads = []
    for stage in stages:
        replicas = [
            (spec, models) for spec, models in zip(scenario.nodes, service_models) if spec.name in stage for _ in range(spec.replicas)
        ]
        loads.append(_stage_load(replicas, rates, load_aware, copy_ms or {}, concurrency or {}))
        if bulk is not None and bulk.any():
            unreserved = replicas[router.reserved_replicas :] or replicas
            loads.append(_stage_load(unreserved, np.where(bulk, rates, 0.0), load_aware, copy_ms or {}, concurrency or {}))
    return max(loads)


def _stage_load(
    replicas: list[tuple],
    rates_per_s: np.ndarray,
    load_aware: bool,
    copy_ms: Mapping[str, Callable[[int], float]],
    concurrency: Mapping[str, float],
) -> float:
    """Load of one stage's replicas (spec, models per class) under the given class rates."""
    total_per_s = float(rates_per_s.sum())
    if total_per_s == 0:
        return 0.0
    mix = rates_per_s / total_per_s
    capacities_per_s = []
    for spec, models in replicas:
        batch = spec.batching.max_batch_size if spec.batching is not None else 1
        mean_batch_ms = float(sum(weight * model.mean_ms(batch) for weight, model in zip(mix, models)))
        if spec.speed is not None:
            mean_batch_ms *= mean_speed_factor(spec.speed)
        if spec.occupancy_slowdown is not None:
            mean_batch_ms *= min(spec.occupancy_slowdown.factors)  # the least a call is slowed by
        if spec.overhead is not None:
            mean_batch_ms += min(spec.overhead.mean_ms)  # the least a call's overhead can add
        if spec.name in copy_ms:
            mean_batch_ms += copy_ms[spec.name](batch)
        capacities_per_s.append(concurrency.get(spec.name, spec.workers) * batch * MS_PER_S / mean_batch_ms)
    if load_aware:
        return total_per_s / sum(capacities_per_s)
    return max(total_per_s / len(capacities_per_s) / capacity for capacity in capacities_per_s)
