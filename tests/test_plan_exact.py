"""Plan cases with exact answers: tail-event counts, the fewest workers (Erlang C), a maximum load's bracket, costs."""

from __future__ import annotations

import math
from typing import Any

import pytest
import scipy.optimize

from simulator.analytic import mmc_sojourn_quantile_ms
from simulator.errors import ScenarioError
from simulator.planning.api import MIN_TAIL_EVENTS, plan, plan_context
from simulator.planning.api import _document as plan_document
from simulator.planning.points import Evaluator, Point
from simulator.planning.search import PlanContext, Planner
from simulator.planning.space import Configuration
from simulator.planning.verdict import plan_checks, requests_per_replication, tail_events
from simulator.report.capacity import report_context
from simulator.report.render import interval
from simulator.scenario.loader import scenario_from_dict
from tests.test_plan import FAST, answer, plan_scenario


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


class SyntheticEvaluator(Evaluator):
    """Verdicts from a formula, no simulation: the p90 estimate is 40 ms × rate / M (M: the configuration's true maximum
    load), with an interval of ± ``half_width`` × estimate × √(1,000 / requests), so every verdict is known exactly."""

    def __init__(self, context: PlanContext, true_max_per_s: dict[tuple[int, int], float], half_width: float) -> None:
        super().__init__(context.base, context.space, context.seed, store=None, executor=None)
        self.true_max_per_s = true_max_per_s
        self.half_width = half_width

    def evaluate(self, points: list[Point]) -> list[dict[str, Any]]:
        self.simulated += len(points)
        return [self._result(point) for point in points]

    def _result(self, point: Point) -> dict[str, Any]:
        estimate = 40 * point.rate_per_s / self.true_max_per_s[workers_and_replicas(point.config)]
        half = self.half_width * estimate * math.sqrt(1000 / point.requests)
        p90 = {"estimate": estimate, "ci_low": estimate - half, "ci_high": estimate + half}
        return {"status": "ok", "summary": {"classes": {"a": {"latency_or_drop_ms": {"p90": p90}}}}}


def workers_and_replicas(config: Configuration) -> tuple[int, int]:
    return config.params.get("workers", 1), config.replicas


def synthetic_planner(true_max_per_s: dict[tuple[int, int], float], half_width: float, target: float) -> Planner:
    """A planner over the (workers, replicas) given, of a fast node (1 ms: theory rules nothing out), judged by
    :class:`SyntheticEvaluator`; a worker costs as much as a replica."""
    space = {"replicas": sorted({r for _, r in true_max_per_s}), "workers": sorted({w for w, _ in true_max_per_s})}
    data = plan_scenario(space, target=target, cost_per_worker_per_hour=1.0)
    data["nodes"][0]["service"]["params"]["scale"] = 1.0
    data["plan"]["precision"] = {**FAST, "extensions": 0}
    context = plan_context(scenario_from_dict(data))
    return Planner(context, SyntheticEvaluator(context, true_max_per_s, half_width))


@pytest.mark.parametrize("true_max", [325.0, 327.0, 330.0, 340.0, 360.0])
def test_a_met_load_is_the_floor_of_the_bracket_and_the_true_maximum_is_inside(true_max):
    """Met at the target 322.3/s at full length, searched from a screened 317.2/s: the bracket starts at the target,
    holds the true maximum load, and every load left inconclusive lies inside it."""
    planner = synthetic_planner({(1, 1): true_max}, 0.01, 322.3)
    config = Configuration((), 1)
    (outcomes,) = planner.evaluator.drive({0: planner.decide_targets(config, full=True)}).values()
    assert outcomes[-1].verdict == "met"
    search = planner.max_load(config, True, 317.2, 1.06, planner.met_floor_per_s(config, True))
    (found,) = planner.evaluator.drive({0: search}).values()
    assert 322.3 <= found.low_per_s <= true_max <= found.high_per_s
    assert all(found.low_per_s < rate < found.high_per_s for rate in found.inconclusive_per_s)
    assert {o.rate_per_s: o.verdict for o in found.outcomes}[found.high_per_s] == "violated"


@pytest.mark.parametrize("half_width", [0.01, 0.05, 0.15])
def test_inconclusive_loads_are_neither_met_nor_failed_in_a_screened_maximum_load(half_width):
    """However wide the zone of inconclusive loads, the screened bracket runs from a met load to a violated one around M."""
    planner = synthetic_planner({(1, 1): 500.0}, half_width, 100.0)
    config = Configuration((), 1)
    (found,) = planner.evaluator.drive({0: planner.max_load(config, False, 480.0)}).values()
    assert found.low_per_s <= 500.0 <= found.high_per_s
    low_est, high_est = 40 * found.low_per_s / 500, 40 * found.high_per_s / 500
    assert low_est * (1 + half_width) <= 40 < high_est * (1 - half_width)
    tolerance = 2 * planner.ctx.spec.max_load_tolerance
    edges = [found.low_per_s, *found.inconclusive_per_s[:1], *found.inconclusive_per_s[-1:], found.high_per_s]
    assert (edges[1] / edges[0] - 1) <= tolerance and (edges[-1] / edges[-2] - 1) <= tolerance


def run_synthetic_plan(planner: Planner) -> dict[str, Any]:
    """The steps of ``plan()`` over the synthetic evaluator, and its results document."""
    candidates = planner.candidates(exhaustive=False)
    planner.screen_max_loads(candidates)
    finalists = planner.confirm(candidates, exhaustive=False)
    views = planner.winner_views(finalists[0]) if finalists else {}
    return plan_document(planner, finalists, views, 0.0, "synthetic", False, "")


def test_a_finalist_inconclusive_at_screening_is_drawn_carrying_the_target_and_a_cheaper_inconclusive_one_is_named():
    """1 worker × 2 replicas (M 160/s) is inconclusive at screening at 150/s and met at full length: as the runner-up
    (2 workers × 1 replica is cheaper) its maximum load starts at the target. With one group whose 2 replicas have M
    152/s, 2 replicas stay inconclusive, 3 win, and the document and the verdict sentence name 2 with its interval."""
    planner = synthetic_planner({(1, 1): 100.0, (1, 2): 160.0, (1, 3): 240.0, (2, 1): 170.0, (2, 2): 300.0, (2, 3): 400.0}, 0.08, 150.0)
    document = run_synthetic_plan(planner)
    by_key = {(c["params"]["workers"], c["params"]["replicas"]): c for c in document["configurations"]}
    assert [by_key[(2, 1)]["id"], by_key[(1, 2)]["id"]] == document["finalists"]
    assert by_key[(1, 2)]["screen"]["verdict"] == "inconclusive" and by_key[(1, 2)]["full"]["verdict"] == "met"
    for identifier in document["finalists"]:
        config = next(c for c in document["configurations"] if c["id"] == identifier)
        found = config["max_load"]["full"] or config["max_load"]["screen"]
        assert found["low_per_s"] >= 150.0 and found["headroom_percent"] >= 0
        key = (config["params"]["workers"], config["params"]["replicas"])
        assert found["low_per_s"] <= planner.evaluator.true_max_per_s[key] <= found["high_per_s"]
    assert document["inconclusive_cheaper"] == []
    winner = document["winner"]["max_load"]
    assert winner["headroom_percent"] == pytest.approx(100 * (winner["low_per_s"] / 150 - 1))

    close = run_synthetic_plan(synthetic_planner({(1, 1): 100.0, (1, 2): 152.0, (1, 3): 240.0, (1, 4): 320.0}, 0.08, 150.0))
    assert answer(close)[1][0] == "1 worker · 3 replicas"
    (cheaper,) = close["inconclusive_cheaper"]
    assert cheaper["label"] == "1 worker · 2 replicas" and cheaper["verdict"] == "inconclusive" and cheaper["full"]
    assert cheaper["items"][0]["ci_low"] < 40 < cheaper["items"][0]["ci_high"]
    sentence = report_context(close)["sentence"]
    assert "Cheaper, but left inconclusive" in sentence and "1 worker · 2 replicas" in sentence and interval(cheaper["items"][0]) in sentence


def test_a_cost_per_worker_makes_a_plan_prefer_fewer_workers():
    """With a cost per worker, 1 replica × 4 workers costs more than 1 × 3; without it they cost the same."""
    data = plan_scenario({"replicas": [1, 2], "workers": [3, 4]}, cost_per_worker_per_hour=0.5)
    context = plan_context(scenario_from_dict(data))
    costs = {(c.replicas, c.params["workers"]): context.space.cost_per_hour(c) for c in context.space.configurations()}
    assert costs == {(1, 3): 2.5, (1, 4): 3.0, (2, 3): 5.0, (2, 4): 6.0}
    flat = plan_context(scenario_from_dict(plan_scenario({"replicas": [1], "workers": [3, 4]})))
    assert {flat.space.cost_per_hour(c) for c in flat.space.configurations()} == {1.0}
    with pytest.raises(ScenarioError, match=r"cost_per_worker_per_hour: the space has hardware options"):
        scenario_from_dict(plan_scenario({"replicas": [1], "hardware": [{"name": "x", "bundle": "b", "cost_per_hour": 1}]},
                                         cost_per_worker_per_hour=0.5))


@pytest.mark.parametrize("slo", [{"percentile": "p90", "latency_ms": 30, "count_drops": False}, {"min_deadline_met_ratio": 0.9}])
def test_the_fewest_workers_meeting_a_p90_slo_is_erlang_cs_and_the_plan_is_valid(tmp_path, slo):
    """M/M/c at 150/s, 10 ms: p90 sojourn 50.7 ms with 2 workers, 26.0 ms with 3 (Erlang C), so with a cost per worker
    the plan picks 3 workers, VALID at the default 1,000 tail events (10,000 requests per replication)."""
    assert mmc_sojourn_quantile_ms(2, 0.15, 0.1, 0.9) > 30 > mmc_sojourn_quantile_ms(3, 0.15, 0.1, 0.9)
    data = plan_scenario({"replicas": [1], "workers": [2, 3, 4, 5]}, {"a": slo}, cost_per_worker_per_hour=1.0)
    data["workload"]["classes"][0]["deadline_ms"] = 30
    data["plan"]["precision"] = {**FAST, "tail_events": 1000}
    document = plan(scenario_from_dict(data), tmp_path)
    assert answer(document)[1][0] == "3 workers · 1 replica"
    assert document["valid"], document["invalid_reasons"]
    assert document["inputs"]["precision"]["full_requests"] == 10_000 and document["inputs"]["precision"]["full_tail_events"] == 1000
    exact = scipy.optimize.brentq(lambda rate: mmc_sojourn_quantile_ms(3, rate / 1000, 0.1, 0.9) - 30, 150, 299.9)
    found = document["winner"]["max_load"]
    assert found["low_per_s"] >= 150 and found["headroom_percent"] == pytest.approx(100 * (found["low_per_s"] / 150 - 1))
    assert found["low_per_s"] <= exact <= found["high_per_s"], (found, exact)  # met below it, violated above it
