"""Calibrated nodes: a node's calibration file turned into its settings for one run.

A calibration holds the machine at each load level it measured; a run takes the level whose
offered rate is nearest the rate each instance of the node gets (the scenario's mean arrival rate
over the node's instances: partitions × replicas), so a plan that changes the load or the
replicas takes the level that fits. The file gives the node its ``speed`` process, its
``overhead`` by occupancy and, with more than one worker, its ``device`` concurrency slowdown —
a node that sets one of these itself cannot also take it from a calibration — and, when the
scenario has no network, the measured time outside the server as the network's response leg.
Applying marks the node (``calibration.applied``), so a scenario is calibrated once.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from simulator.errors import CalibrationError, ScenarioError
from simulator.runner.inputs import class_rates_per_s
from simulator.scenario.calibration import machine_at, read_calibration
from simulator.scenario.schema import Scenario

RANGE_SLACK = 0.1  # a rate this far beyond the logged range (relative) is warned about
MEASURED_SERVICE = ("profile", "fitted")  # service models measured one call at a time, before any load
RAW_PROFILE_NOTE = (
    "on a real server (latsim's testbed, a CPU CNN, FIFO and priority, 1 and 2 workers) predictions from the profile "
    "alone were 43-58 % low at p50 and 59-85 % low at p99 (benchmarks/results/2026-12-03-testbed.json); "
    "calibrate from the server's logs (latsim calibrate) for an answer that holds"
)


def calibrated(scenario: Scenario, seed: int | None = None, variant: tuple[str, int] | None = None) -> Scenario:
    """The scenario with every node's calibration applied (the scenario itself when none is pending); ``variant``
    (source, index) takes one of the first calibrated node's variants instead of its main machine (for bands)."""
    pending = [i for i, spec in enumerate(scenario.nodes) if spec.calibration is not None and spec.calibration.applied is None]
    if not pending:
        return scenario
    data = scenario.model_dump(mode="python")
    for index in pending:
        spec = scenario.nodes[index]
        field = f"nodes[{index}].calibration"
        calibration = _read(scenario.path(spec.calibration.file))
        rate_per_s = _rate_per_instance(scenario, index, seed)
        at = machine_at(calibration, rate_per_s)
        machine = at.variants[variant[0]][variant[1]] if variant is not None and index == pending[0] else at.main
        node = data["nodes"][index]
        given = []
        for name in ("speed", "overhead"):
            if node[name] is not None:
                raise ScenarioError(f"{scenario.source}: nodes[{index}].{name} is set, and {field} sets it too: keep one")
            node[name] = machine[name]
            given.append(name)
        if "device" in machine:
            node["device"] = _with_slowdown(node["device"], machine["device"], scenario.source, index)
            given.append("device")
        if spec.calibration.outside and data["network"] is None:
            data["network"] = {"response": machine["outside"]}
            given.append("network")
        node["calibration"]["applied"] = {
            "level": at.level, "level_rate_per_s": at.rate_per_s, "rate_per_s": rate_per_s,
            "method": calibration["fitted_on"]["method"], "settings": given,
        }
    from simulator.scenario.loader import scenario_from_dict

    return scenario_from_dict(data, scenario.source, scenario.base_dir)


def calibration_variants(scenario: Scenario, seed: int | None = None) -> list[tuple[str, int]]:
    """The first calibrated node's sources of uncertainty, one (source, index) per variant: each calibration run's
    machine alone (``runs``), and the profile taken in a fast or slow stretch of the machine (``drift``)."""
    for node_index, spec in enumerate(scenario.nodes):
        if spec.calibration is not None:
            variants = machine_at(_read(scenario.path(spec.calibration.file)), _rate_per_instance(scenario, node_index, seed)).variants
            return [(source, index) for source, listed in variants.items() for index in range(len(listed))]
    return []


def _rate_per_instance(scenario: Scenario, index: int, seed: int | None) -> float:
    """The mean arrival rate one instance of node spec ``index`` gets: the scenario's, over partitions × replicas."""
    total_rate_per_s = float(sum(class_rates_per_s(scenario, scenario.run.seed if seed is None else seed)))
    return total_rate_per_s / (scenario.partitioning.partitions * scenario.nodes[index].replicas)


def calibration_notes(scenario: Scenario) -> list[str]:
    """Per calibrated node, where its machine came from, and a warning where the run leaves what it was fitted on; per
    node on a raw profile, how optimistic raw profiles were measured to be."""
    notes = []
    for index, spec in enumerate(scenario.nodes):
        if spec.calibration is None and spec.service.distribution in MEASURED_SERVICE:
            notes.append(f"node {spec.name!r} runs on its raw profile: {RAW_PROFILE_NOTE}")
        if spec.calibration is None or spec.calibration.applied is None:
            continue
        applied = spec.calibration.applied
        fitted = _read(scenario.path(spec.calibration.file))["fitted_on"]
        notes.append(
            f"node {spec.name!r} calibrated from {spec.calibration.file} ({fitted['method'].replace('_', '-')}"
            f"{', ' + fitted['server'] if fitted['server'] else ''}): the level measured at {applied.level_rate_per_s:.4g}/s "
            f"for {applied.rate_per_s:.4g}/s per instance; gives {', '.join(applied.settings)}"
        )
        low, high = fitted["rate_per_s"] or [applied.level_rate_per_s, applied.level_rate_per_s]
        if not low * (1 - RANGE_SLACK) <= applied.rate_per_s <= high * (1 + RANGE_SLACK):
            notes.append(
                f"node {spec.name!r}: {applied.rate_per_s:.4g}/s per instance lies outside the rates its calibration was "
                f"fitted on ({low:.4g}–{high:.4g}/s): the nearest level's machine is an extrapolation"
            )
    return notes


def _with_slowdown(device: dict[str, Any] | None, calibrated_device: dict[str, Any], source: str, index: int) -> dict[str, Any]:
    """The node's device with the calibrated concurrency slowdown (a device's own measured slowdown may not be set too)."""
    if device is None:
        return {"concurrency_slowdown": calibrated_device["concurrency_slowdown"]}
    if device.get("concurrency_slowdown") not in (None, [1.0]):
        raise ScenarioError(f"{source}: nodes[{index}].device.concurrency_slowdown is set, and nodes[{index}].calibration sets it too: keep one")
    return device | {"concurrency_slowdown": calibrated_device["concurrency_slowdown"]}


def _read(path: Path) -> dict[str, Any]:
    resolved = Path(path).resolve()
    try:
        stamp = os.stat(resolved).st_mtime_ns
    except OSError:
        stamp = 0
    try:
        return _read_cached(resolved, stamp)
    except CalibrationError as error:
        raise ScenarioError(str(error)) from None


@lru_cache(maxsize=32)
def _read_cached(path: Path, _stamp: int) -> dict[str, Any]:
    return read_calibration(path)
