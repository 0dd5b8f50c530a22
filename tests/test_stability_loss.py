"""Stability counts every bound on waiting like a queue capacity: reneging (a reject timeout), a maximum queue size,
admission of firm classes. Overloaded M/M/1 systems so bounded run, and lose what theory says they lose."""

from __future__ import annotations

import math

import pytest

from simulator import run, scenario_from_dict
from simulator.errors import UnstableSystemError
from simulator.runner.checks import check_stability
from simulator.runner.plan import plan_run
from tests.helpers import base_scenario

RATE_PER_MS, SERVICE_PER_MS = 0.15, 0.1  # ρ = 1.5


def overloaded(**node: object) -> dict:
    """M/M/1 at ρ 1.5 (150/s, 10 ms), the node's settings updated with ``node``."""
    data = base_scenario(run={"requests": 40000, "warmup_requests": 4000, "replications": 4, "seed": 11})
    data["workload"]["arrival"]["rate_per_s"] = 1000 * RATE_PER_MS
    data["nodes"][0].update(node)
    return data


def mm1_deterministic_patience_abandonment(rate: float, service: float, patience: float) -> float:
    """M/M/1+D (FIFO, patience ``patience`` in the queue): P(the workload met on arrival exceeds the patience).

    The workload has an atom p0 at 0, density λ p0 e^{(λ−μ)v} up to τ and f(τ) e^{−μ(v−τ)} beyond (level crossing),
    so P(abandon) = λ p0 e^{(λ−μ)τ} / μ with p0 from normalisation."""
    theta = rate - service
    growth = math.expm1(theta * patience) / theta if theta != 0 else patience
    p0 = 1 / (1 + rate * growth + rate * math.exp(theta * patience) / service)
    return rate * p0 * math.exp(theta * patience) / service


def mm1k_blocking(rho: float, system: int) -> float:
    """M/M/1/K: the share of arrivals that find all ``system`` places taken."""
    return (1 - rho) * rho**system / (1 - rho ** (system + 1))


def test_the_unbounded_overload_is_still_refused():
    with pytest.raises(UnstableSystemError, match=r"offered load is 1\.500.*queue_policy that rejects"):
        check_stability(plan_run(scenario_from_dict(overloaded())))
    delayed = overloaded(queue_policy={"default": {"timeout_ms": 20, "timeout_action": "delay"}})  # late, but still served
    with pytest.raises(UnstableSystemError):
        check_stability(plan_run(scenario_from_dict(delayed)))
    one_priority = overloaded(queue_policy={"default": {}, "priorities": {0: {"timeout_ms": 20}}})
    one_priority["workload"]["classes"].append({"name": "b", "priority": 1, "deadline_ms": 50, "kind": "soft", "target": 0.9})
    with pytest.raises(UnstableSystemError):  # priority 1 waits without bound
        check_stability(plan_run(scenario_from_dict(one_priority)))


@pytest.mark.parametrize("node", [
    {"queue_policy": {"default": {"timeout_ms": 20}}},
    {"queue_policy": {"default": {"max_queue_size": 5}}},
    {"queue_capacity": 5},
    {"admission": {"policy": "expired"}},
])
def test_an_overload_with_bounded_waiting_is_accepted(node):
    data = overloaded(**node)
    if "admission" in node:
        data["workload"]["classes"][0]["kind"] = "firm"
    assert check_stability(plan_run(scenario_from_dict(data))) == pytest.approx(1.5)


def test_reneging_at_rho_1_5_loses_what_mm1_with_deterministic_patience_loses():
    """20 ms reject timeout: P(abandon) = 0.3985 (M/M/1+D), inside the run's interval."""
    exact = mm1_deterministic_patience_abandonment(RATE_PER_MS, SERVICE_PER_MS, 20.0)
    assert exact == pytest.approx(0.3985, abs=1e-4)
    drops = run(scenario_from_dict(overloaded(queue_policy={"default": {"timeout_ms": 20}}))).estimate("drop_ratio")
    assert drops.ci_low <= exact <= drops.ci_high, drops


def test_a_maximum_queue_size_at_rho_1_5_loses_what_mm1k_loses():
    """5 waiting places (6 in the system): the blocking probability of M/M/1/6, inside the run's interval."""
    exact = mm1k_blocking(1.5, 6)
    drops = run(scenario_from_dict(overloaded(queue_policy={"default": {"max_queue_size": 5}}))).estimate("drop_ratio")
    assert drops.ci_low <= exact <= drops.ci_high, drops
