"""Offered load of a scenario: how close the arrival rate comes to what its nodes can serve."""

from __future__ import annotations

from collections.abc import Sequence

from simulator.scenario.schema import Scenario
from simulator.service.base import ServiceTimeModel

OBLIVIOUS_ROUTERS = {"random", "round_robin"}


def offered_load(
    scenario: Scenario, mean_rate_per_s: float, service_models: Sequence[Sequence[ServiceTimeModel]]
) -> float:
    """Utilization the load asks of the cluster (≥ 1: queues grow without bound).

    ``service_models[n][k]`` is the model of class k on node spec n. Routers that ignore load
    split arrivals evenly over replicas, so the busiest replica decides; load-aware routers can
    use the pooled capacity.
    """
    classes = scenario.workload.classes
    total_share = sum(c.share for c in classes)
    replica_capacities_per_s = []
    for spec, models in zip(scenario.nodes, service_models):
        mean_service_ms = sum(c.share * m.mean_ms() for c, m in zip(classes, models)) / total_share
        replica_capacities_per_s += [spec.workers * 1000.0 / mean_service_ms] * spec.replicas
    if scenario.router.policy in OBLIVIOUS_ROUTERS:
        share_per_replica = mean_rate_per_s / len(replica_capacities_per_s)
        return max(share_per_replica / capacity for capacity in replica_capacities_per_s)
    return mean_rate_per_s / sum(replica_capacities_per_s)
