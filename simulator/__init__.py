"""latsim: discrete-event latency simulator and capacity planner for real-time model serving."""

from simulator.errors import ScenarioError, UnstableSystemError
from simulator.model.engine import run_scenario
from simulator.scenario.loader import load_scenario, scenario_from_dict

__all__ = [
    "ScenarioError",
    "UnstableSystemError",
    "load_scenario",
    "run_scenario",
    "scenario_from_dict",
]
__version__ = "0.1.0"
