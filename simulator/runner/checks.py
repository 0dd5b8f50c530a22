"""Checks before a run: every batch size can be priced, and the offered load has a steady state."""

from __future__ import annotations

from simulator.errors import ScenarioError, UnstableSystemError
from simulator.model.build import service_models
from simulator.model.capacity import offered_load
from simulator.registry import PARTITIONERS
from simulator.runner.inputs import arrival_process, key_popularity
from simulator.runner.plan import RunPlan
from simulator.scenario.schema import Scenario
from simulator.service.base import build_service_model


def check_batch_sizes(scenario: Scenario) -> None:
    """Every service model a batching node uses must price its largest batch: fail before the run."""
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
                build_service_model(config, scenario.base_dir).mean_ms(largest)
            except ScenarioError as error:
                raise ScenarioError(
                    f"{scenario.source}: {field} (node {spec.name!r} batches up to {largest}): {error}"
                ) from None


def check_stability(plan: RunPlan) -> float:
    """Offered load of the scenario; raises UnstableSystemError if queues would grow forever.

    The load counts every request as a model call: cache hits, which lighten it, are not known
    before the run, so with a cache an overload is left to the run's queue-length guard.
    """
    scenario = plan.scenario
    check_batch_sizes(scenario)
    process = arrival_process(scenario, plan.seed, 0)
    shares = None
    popularity = key_popularity(scenario)
    if popularity is not None and scenario.partitioning.partitions > 1:
        shares = PARTITIONERS.build(scenario.partitioning, popularity.catalog_size).shares(popularity.probabilities())
    copy_ms = {}
    for spec in scenario.nodes:
        if spec.device is not None:
            h2d, d2h = (build_service_model(c, scenario.base_dir) for c in (spec.device.h2d, spec.device.d2h))
            copy_ms[spec.name] = lambda batch, h2d=h2d, d2h=d2h: h2d.mean_ms(batch) + d2h.mean_ms(batch)
    load = offered_load(scenario, process.mean_rate_per_s(), service_models(scenario), shares, copy_ms)
    if load >= 1 and scenario.cache is None and all(spec.queue_capacity is None for spec in scenario.nodes):
        raise UnstableSystemError(
            f"{scenario.source}: offered load is {load:.3f} of capacity (≥ 1): queues grow without "
            "bound and no steady state exists. Add workers/nodes, lower the arrival rate, or set "
            "nodes[].queue_capacity to simulate a loss system."
        )
    return load
