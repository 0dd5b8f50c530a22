"""The load a plan judges at: a scenario's arrival processes scaled to a total mean rate, or a load curve.

Load is one number, the total mean arrival rate in requests per second: scaling it multiplies every
arrival process of the scenario (a load curve's every segment) by the same factor, so the class mix
and the shape of the traffic (bursts, cycles) are kept while the rate changes.
"""

from __future__ import annotations

import copy
from typing import Any

from simulator.errors import ScenarioError
from simulator.runner.inputs import class_rates_per_s
from simulator.scenario.plan import LoadSpec
from simulator.scenario.schema import Scenario

SIGNIFICANT_DIGITS = 4  # rates the search tries are rounded so (readable, and the same on every run)


def rounded_rate(rate_per_s: float) -> float:
    """``rate_per_s`` to SIGNIFICANT_DIGITS significant digits."""
    return float(f"{rate_per_s:.{SIGNIFICANT_DIGITS}g}")


def with_load_curve(scenario: Scenario, load: LoadSpec) -> Scenario:
    """The scenario with ``workload.arrival`` replaced by the plan's load curve (unchanged without a curve)."""
    if load.curve is None:
        return scenario
    own = [c.name for c in scenario.workload.classes if c.arrival is not None]
    if own:
        raise ScenarioError(
            f"{scenario.source}: plan.load.curve: classes {own} have their own arrival process; a load curve "
            "replaces workload.arrival, which every class must share"
        )
    segments = [segment.model_dump(mode="json") for segment in load.curve]
    return scenario.replace("workload.arrival", {"process": "piecewise", "segments": segments})


def mean_rate_per_s(scenario: Scenario) -> float:
    """Total long-run mean arrival rate of the scenario, all classes."""
    return float(sum(class_rates_per_s(scenario, scenario.run.seed)))


def target_rates_per_s(scenario: Scenario, load: LoadSpec) -> list[float]:
    """The target loads, ascending: the listed rates, or the mean rate of the curve (``scenario`` has the curve applied)."""
    return sorted(load.targets_per_s) if load.targets_per_s is not None else [rounded_rate(mean_rate_per_s(scenario))]


def at_rate(scenario: Scenario, rate_per_s: float) -> Scenario:
    """A copy whose arrival processes are all scaled by one factor so that the total mean rate is ``rate_per_s``."""
    factor = rate_per_s / mean_rate_per_s(scenario)
    data = scenario.workload.model_dump(mode="python")
    if data["arrival"] is not None:
        data["arrival"] = _scaled(data["arrival"], factor, scenario.source, "workload.arrival")
    for index, request_class in enumerate(data["classes"]):
        if request_class["arrival"] is not None:
            request_class["arrival"] = _scaled(request_class["arrival"], factor, scenario.source, f"workload.classes[{index}].arrival")
    return scenario.replace("workload", data)


def _scaled(process: dict[str, Any], factor: float, source: str, field: str) -> dict[str, Any]:
    """One arrival process's settings with every rate multiplied by ``factor``."""
    scaled = copy.deepcopy(process)
    kind = scaled["process"]
    if kind in ("poisson", "deterministic"):
        scaled["rate_per_s"] *= factor
    elif kind == "diurnal":
        scaled["mean_rate_per_s"] *= factor
    elif kind in ("mmpp", "piecewise"):
        for part in scaled["states" if kind == "mmpp" else "segments"]:
            part["rate_per_s"] *= factor
    else:
        raise ScenarioError(
            f"{source}: {field}: a plan scales the load by rate, and a {kind!r} process has no rate to scale; "
            "use poisson, deterministic, mmpp, piecewise or diurnal arrivals (or plan.load.curve)"
        )
    return scaled
