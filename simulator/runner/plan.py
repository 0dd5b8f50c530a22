"""What one run simulates: the scenario's run settings with the caller's overrides applied."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from simulator.errors import ScenarioError
from simulator.fastpath import compiler_available
from simulator.fastpath.eligibility import ineligibility
from simulator.runner.calibration import calibrated
from simulator.scenario.schema import Scenario

Engine = Literal["simpy", "fast"]
EngineChoice = Literal["auto", "simpy", "fast"]
AUTO_FAST_FROM = 50_000  # simulated requests (all replications) from which auto loads the fast engine: ~0.3 s to load


@dataclass(frozen=True)
class RunPlan:
    """A validated scenario and the seed, replications and lengths one run uses."""

    scenario: Scenario
    seed: int
    replications: int
    requests: int
    warmup_requests: int
    warmup_fixed: bool  # the scenario sets run.warmup_requests: no longer warm-up than that, whatever MSER finds
    engine: Engine = "simpy"  # the SimPy model, or the compiled fast engine (same numbers, for the scenarios it serves)


def plan_run(
    scenario: Scenario,
    seed: int | None = None,
    replications: int | None = None,
    requests: int | None = None,
    engine: EngineChoice = "auto",
) -> RunPlan:
    """Apply overrides to the scenario's run settings (a shorter run keeps a tenth as warm-up unless one is set)
    and choose the engine (``auto``: the fast one wherever it serves the scenario, for runs worth loading it); nodes
    with a calibration file take its machine (``runner.calibration``)."""
    scenario = calibrated(scenario, seed)
    run = scenario.run
    measured = requests or run.requests
    warmup = run.warmup if requests is None or run.warmup_requests is not None else measured // 10
    fixed = run.warmup_requests is not None
    seed = run.seed if seed is None else seed
    replications = replications or run.replications
    if engine == "auto" and replications * (measured + warmup) < AUTO_FAST_FROM:
        engine = "simpy"  # a short run takes less time on the SimPy model than loading the compiled engine
    return RunPlan(scenario, seed, replications, measured, warmup, fixed, choose_engine(scenario, engine))


def choose_engine(scenario: Scenario, engine: EngineChoice) -> Engine:
    """The engine a run uses; asking for ``fast`` where it does not serve the scenario is an error naming why."""
    if engine == "simpy":
        return "simpy"
    if engine not in ("auto", "fast"):
        raise ScenarioError(f"engine: {engine!r} is not one of auto, simpy, fast")
    reason = ineligibility(scenario) or (None if compiler_available() else "numba is not installed (pip install numba)")
    if reason is None:
        return "fast"
    if engine == "fast":
        raise ScenarioError(f"{scenario.source}: the fast engine cannot simulate this scenario: {reason}; use --engine simpy (or auto)")
    return "simpy"
