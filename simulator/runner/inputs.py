"""The workload halves of a run, built from the scenario: its arrival processes and key popularity."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from simulator.errors import ScenarioError
from simulator.random_streams import constant, draws, stream
from simulator.registry import ARRIVAL_PROCESSES, KEY_POPULARITY
from simulator.scenario.schema import Scenario
from simulator.workload.arrivals import ArrivalProcess
from simulator.workload.keys import KeyPopularity


def arrival_processes(scenario: Scenario, seed: int, replication: int) -> list[tuple[ArrivalProcess, Iterator[int]]]:
    """Every arrival process with the class of each of its arrivals: ``workload.arrival`` split by share, then
    each class's own process (streams ``arrivals``, ``classes`` and ``arrivals/<class>``)."""
    workload = scenario.workload
    processes = []
    if workload.arrival is not None:
        sharing = workload.sharing_classes
        process = built_policy(scenario, "workload.arrival", ARRIVAL_PROCESSES, workload.arrival, stream(seed, replication, "arrivals"))
        processes.append((process, _class_draws(sharing, [workload.classes[k].share for k in sharing], seed, replication)))
    for index, request_class in enumerate(workload.classes):
        if request_class.arrival is not None:
            rng = stream(seed, replication, f"arrivals/{request_class.name}")
            processes.append((built_policy(scenario, f"workload.classes[{index}].arrival", ARRIVAL_PROCESSES, request_class.arrival, rng), constant(index)))
    return processes


def built_policy(scenario: Scenario, field: str, registry: Any, config: Any, *args: Any) -> Any:
    """A workload policy built from its settings; a bad data file is reported with the scenario and the field."""
    try:
        return registry.build(config, *args, scenario.base_dir)
    except ScenarioError as error:
        raise ScenarioError(f"{scenario.source}: {field}: {error}") from None


def _class_draws(classes: list[int], shares: list[float], seed: int, replication: int) -> Iterator[int]:
    """Endless class indices among ``classes`` by their shares (one class needs no draw)."""
    if len(classes) == 1:
        return constant(classes[0])
    rng = stream(seed, replication, "classes")
    cumulative = np.cumsum([share / sum(shares) for share in shares])
    cumulative /= cumulative[-1]
    indices = np.asarray(classes)

    def draw_block(size: int) -> np.ndarray:
        """The class after the last cumulative share at or below a uniform draw (``Generator.choice``'s own rule,
        without its per-call checks)."""
        uniforms = rng.random(size)
        chosen = np.zeros(size, np.int64)
        for bound in cumulative[:-1]:
            chosen += bound <= uniforms
        return indices[chosen]

    return draws(draw_block)


def class_rates_per_s(scenario: Scenario, seed: int) -> list[float]:
    """Each class's long-run mean arrival rate."""
    workload = scenario.workload
    rates = [0.0] * len(workload.classes)
    if workload.arrival is not None:
        process = built_policy(scenario, "workload.arrival", ARRIVAL_PROCESSES, workload.arrival, stream(seed, 0, "arrivals"))
        sharing = workload.sharing_classes
        total_share = sum(workload.classes[k].share for k in sharing)
        for k in sharing:
            rates[k] = process.mean_rate_per_s() * workload.classes[k].share / total_share
    for index, request_class in enumerate(workload.classes):
        if request_class.arrival is not None:
            process = built_policy(scenario, f"workload.classes[{index}].arrival", ARRIVAL_PROCESSES, request_class.arrival, stream(seed, 0, "arrivals"))
            rates[index] = process.mean_rate_per_s()
    return rates


def key_popularity(scenario: Scenario) -> KeyPopularity | None:
    """The scenario's key popularity, or None when requests carry no keys."""
    config = scenario.workload.keys
    return None if config is None else built_policy(scenario, "workload.keys", KEY_POPULARITY, config)
