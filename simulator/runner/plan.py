"""What one run simulates: the scenario's run settings with the caller's overrides applied."""

from __future__ import annotations

from dataclasses import dataclass

from simulator.scenario.schema import Scenario


@dataclass(frozen=True)
class RunPlan:
    """A validated scenario and the seed, replications and lengths one run uses."""

    scenario: Scenario
    seed: int
    replications: int
    requests: int
    warmup_requests: int
    warmup_fixed: bool  # the scenario sets run.warmup_requests: no longer warm-up than that, whatever MSER finds


def plan_run(
    scenario: Scenario, seed: int | None = None, replications: int | None = None, requests: int | None = None
) -> RunPlan:
    """Apply overrides to the scenario's run settings (a shorter run keeps a tenth as warm-up unless one is set)."""
    run = scenario.run
    measured = requests or run.requests
    warmup = run.warmup if requests is None or run.warmup_requests is not None else measured // 10
    fixed = run.warmup_requests is not None
    return RunPlan(scenario, run.seed if seed is None else seed, replications or run.replications, measured, warmup, fixed)
