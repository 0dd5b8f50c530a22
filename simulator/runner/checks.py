"""Checks before a run: every batch size can be priced, and the offered load has a steady state."""

from __future__ import annotations

from simulator.errors import ScenarioError, UnstableSystemError
from simulator.model.build import service_models
from simulator.model.capacity import offered_load
from simulator.registry import PARTITIONERS
from simulator.runner.inputs import class_rates_per_s, key_popularity
from simulator.runner.plan import RunPlan
from simulator.scenario.schema import Scenario
from simulator.service.base import build_service_model
from simulator.service.slowdown import slowdown_factors


def check_batch_sizes(scenario: Scenario) -> None:
    """Every service model a batching node uses must price its largest batch: fail before the run."""
    for index, spec in enumerate(scenario.nodes):
        if spec.batching is None:
            continue
        largest = spec.batching.max_batch_size
        configs = {
            f"workload.classes[{k}].service" if c.service else f"nodes[{index}].service": c.service or spec.service
            for k, c in enumerate(scenario.workload.classes)
        }
        if spec.device is not None:
            copies = {"h2d": spec.device.h2d, "d2h": spec.device.d2h}
            configs |= {f"nodes[{index}].device.{name}": config for name, config in copies.items() if config is not None}
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
    shares = None
    popularity = key_popularity(scenario)
    if popularity is not None and scenario.partitioning.partitions > 1:
        shares = PARTITIONERS.build(scenario.partitioning, popularity.catalog_size).shares(popularity.probabilities())
    copy_ms, concurrency = {}, {}
    for spec in scenario.nodes:
        if spec.device is not None:
            copies = [build_service_model(c, scenario.base_dir) for c in (spec.device.h2d, spec.device.d2h) if c is not None]
            copy_ms[spec.name] = lambda batch, copies=copies: sum(copy.mean_ms(batch) for copy in copies)
            concurrency[spec.name] = _device_concurrency(slowdown_factors(spec.device, scenario.base_dir), spec.workers)
    load = offered_load(scenario, class_rates_per_s(scenario, plan.seed), service_models(scenario), shares, copy_ms, concurrency)
    if load >= 1 and scenario.cache is None and all(spec.queue_capacity is None for spec in scenario.nodes):
        raise UnstableSystemError(
            f"{scenario.source}: offered load is {load:.3f} of capacity (≥ 1): queues grow without "
            "bound and no steady state exists. Add workers/nodes, lower the arrival rate, or set "
            "nodes[].queue_capacity to simulate a loss system."
        )
    return load


def _device_concurrency(factors: list[float] | str, workers: int) -> float:
    """Calls' worth of compute a device does at once at best: max over k ≤ workers of k / f(k)."""
    if factors == "processor_sharing":
        return 1.0
    return max(k / factors[min(k, len(factors)) - 1] for k in range(1, workers + 1))


STATIONARY_PROCESSES = {"poisson", "deterministic", "mmpp"}


def run_notes(scenario: Scenario) -> tuple[list[str], bool]:
    """What a reader of the results must know about how the scenario's input shapes them, and
    whether a single replication may give batch-means intervals (only a stationary run may)."""
    notes = []
    processes = [scenario.workload.arrival] if scenario.workload.arrival is not None else []
    processes += [c.arrival for c in scenario.workload.classes if c.arrival is not None]
    kinds = {process.process for process in processes}
    if "trace" in kinds:
        notes.append("arrivals replay a trace: every replication sees the same arrivals, so intervals are conditional on the trace")
    if kinds & {"diurnal", "piecewise"}:
        notes.append(
            "time-varying arrivals: the results average over the part of the load cycle the run covers; "
            "cover whole cycles (or look at the time series per phase)"
        )
    stationary = kinds <= STATIONARY_PROCESSES and not scenario.events
    return notes, stationary
