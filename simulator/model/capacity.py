"""Offered load of a scenario: how close the arrival rate comes to what its nodes can serve."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from simulator.registry import ROUTERS
from simulator.scenario.schema import Scenario
from simulator.service.base import ServiceTimeModel
from simulator.units import MS_PER_S


def offered_load(
    scenario: Scenario,
    mean_rate_per_s: float,
    service_models: Sequence[Sequence[ServiceTimeModel]],
    partition_shares: np.ndarray | None = None,
    copy_ms: Mapping[str, Callable[[int], float]] | None = None,
) -> float:
    """Utilization the load asks of the busiest partition (≥ 1: its queues grow without bound).

    ``service_models[n][k]`` is the model of class k on node spec n. A batching node is given
    its best case, always-full batches of ``max_batch_size``: if even that cannot keep up, no
    steady state exists. Routers that ignore load split a partition's
    arrivals evenly over its replicas, so the slowest replica decides; load-aware routers can
    use the partition's pooled capacity. In a pipeline the busiest stage decides.
    ``copy_ms[spec name](batch size)`` is a device node's mean H2D + D2H time per call, which
    holds its worker too; cold model loads are not counted (they depend on the traffic mix).
    """
    classes = scenario.workload.classes
    total_share = sum(c.share for c in classes)
    replica_capacities_per_s: dict[str, list[float]] = {}
    for spec, models in zip(scenario.nodes, service_models):
        batch = spec.batching.max_batch_size if spec.batching is not None else 1
        mean_batch_ms = sum(c.share * m.mean_ms(batch) for c, m in zip(classes, models)) / total_share
        if copy_ms is not None and spec.name in copy_ms:
            mean_batch_ms += copy_ms[spec.name](batch)
        replica_capacities_per_s[spec.name] = [spec.workers * batch * MS_PER_S / mean_batch_ms] * spec.replicas
    partitions = scenario.partitioning.partitions
    shares = np.full(partitions, 1.0 / partitions) if partition_shares is None else partition_shares
    busiest_rate_per_s = mean_rate_per_s * float(np.max(shares))
    # every request visits each pipeline stage, so each stage must keep up on its own
    stages = [[name] for name in scenario.pipeline.stages] if scenario.pipeline else [list(replica_capacities_per_s)]
    load_aware = ROUTERS.policy_class(scenario.router).load_aware
    loads = []
    for stage in stages:
        capacities = [capacity for name in stage for capacity in replica_capacities_per_s[name]]
        if load_aware:
            loads.append(busiest_rate_per_s / sum(capacities))
        else:
            loads.append(max(busiest_rate_per_s / len(capacities) / capacity for capacity in capacities))
    return max(loads)
