"""Plan cases with exact answers: tail-event counts, the fewest workers (Erlang C), a maximum load's bracket, costs."""

from __future__ import annotations

import pytest

from simulator.planning.api import MIN_TAIL_EVENTS
from simulator.planning.verdict import plan_checks, requests_per_replication, tail_events
from simulator.scenario.loader import scenario_from_dict
from tests.test_plan import plan_scenario


@pytest.mark.parametrize(("slo", "requests"), [
    ({"percentile": "p90", "latency_ms": 40}, 10_000),
    ({"min_deadline_met_ratio": 0.9}, 10_000),
    ({"min_deadline_met_ratio": 0.8}, 5_000),
    ({"percentile": "p99.9", "latency_ms": 40}, 1_000_000),
    ({"min_deadline_met_ratio": 0.7}, 3_334),
])
def test_tail_event_counts_are_exact(slo, requests):
    """1,000 tail events of a p90 (or a met ratio of 0.9, 0.8) take exactly 10,000 (5,000) requests and count as 1,000, not 999.99…."""
    scenario = scenario_from_dict(plan_scenario({"replicas": [1]}, {"a": slo}))
    checks = plan_checks(scenario.replace("plan", None), scenario.plan)
    assert requests_per_replication(checks, MIN_TAIL_EVENTS, 100, 10**8) == requests
    assert tail_events(checks, requests) >= MIN_TAIL_EVENTS
    assert tail_events(checks, requests - 1) < MIN_TAIL_EVENTS
