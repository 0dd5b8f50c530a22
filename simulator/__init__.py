"""latsim: discrete-event latency simulator and capacity planner for real-time model serving.

The public API, imported lazily so that ``import simulator`` (and ``latsim --help``) stays fast:

    from simulator import load_scenario, run
    scenario = load_scenario("scenarios/quickstart.yaml").replace("nodes[0].workers", 6)
    result = run(scenario, seed=1)
    result.estimate("latency_ms.p99", "interactive")
    analyze(scenario).to_frame()  # queueing theory beside it, where a formula applies
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_PUBLIC = {
    "LatsimError": "simulator.errors",
    "ScenarioError": "simulator.errors",
    "UnstableSystemError": "simulator.errors",
    "PolicyConfig": "simulator.registry",
    "Scenario": "simulator.scenario.schema",
    "load_scenario": "simulator.scenario.loader",
    "scenario_from_dict": "simulator.scenario.loader",
    "run": "simulator.runner.api",
    "RunResult": "simulator.runner.result",
    "analyze": "simulator.analysis.analyze",
    "AnalyticReport": "simulator.analysis.analyze",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'simulator' has no attribute {name!r}")
    return getattr(importlib.import_module(_PUBLIC[name]), name)
