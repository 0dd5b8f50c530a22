"""The workload halves of a run, built from the scenario: its arrival process and key popularity."""

from __future__ import annotations

from simulator.random_streams import stream
from simulator.registry import ARRIVAL_PROCESSES, KEY_POPULARITY
from simulator.scenario.schema import Scenario
from simulator.workload.arrivals import ArrivalProcess
from simulator.workload.keys import KeyPopularity


def arrival_process(scenario: Scenario, seed: int, replication: int) -> ArrivalProcess:
    """The scenario's arrival process, drawing from the replication's ``arrivals`` stream."""
    return ARRIVAL_PROCESSES.build(scenario.workload.arrival, stream(seed, replication, "arrivals"), scenario.base_dir)


def key_popularity(scenario: Scenario) -> KeyPopularity | None:
    """The scenario's key popularity, or None when requests carry no keys."""
    config = scenario.workload.keys
    return None if config is None else KEY_POPULARITY.build(config, scenario.base_dir)
