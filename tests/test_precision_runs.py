"""``run.precision``: replications are added until one statistic's interval is as narrow as asked, or a cap stops it."""

from __future__ import annotations

import pytest

from simulator import run, scenario_from_dict
from simulator.errors import ScenarioError
from tests.helpers import base_scenario


def _scenario(**precision):
    return scenario_from_dict(base_scenario(run={"requests": 2000, "warmup_requests": 200, "replications": 2, "seed": 7, "precision": precision}))


def _half_width(result, statistic: str) -> float:
    value = result.estimate(statistic)
    return max(value.ci_high - value.estimate, value.estimate - value.ci_low) / value.estimate


@pytest.mark.parametrize("statistic, target", [("latency_ms.mean", 0.04), ("latency_ms.p99", 0.08)])
def test_replications_are_added_until_the_interval_is_narrow_enough(statistic, target):
    result = run(_scenario(statistic=statistic, relative_half_width=target, max_replications=60))
    replications = result.summary["replications"]
    assert 5 < replications < 60 and result.plan.replications == replications
    assert _half_width(result, statistic) <= target
    assert f"run.precision: {statistic} of all is ±" in result.summary["notes"][-1]
    assert f"after {replications} replications (target ±{target:.2%})" in result.summary["notes"][-1]
    # the same replications as a plain run of that many: each replication has its own streams
    plain = run(scenario_from_dict(base_scenario(run={"requests": 2000, "warmup_requests": 200, "replications": replications, "seed": 7})))
    assert plain.estimate(statistic) == result.estimate(statistic)
    assert plain.summary["notes"] == result.summary["notes"][:-1]


def test_the_same_seed_gives_the_same_run_whatever_the_jobs():
    scenario = _scenario(statistic="latency_ms.p99", relative_half_width=0.08, max_replications=60)
    assert run(scenario, jobs=2).summary == run(scenario).summary


def test_the_cap_stops_the_run_and_says_so():
    result = run(_scenario(statistic="wait_ms.mean", relative_half_width=0.001, max_replications=6))
    assert result.summary["replications"] == 6
    note = result.summary["notes"][-1]
    assert "short of the ±0.10% target: run.precision.max_replications (6) stopped it" in note, note
    assert _half_width(result, "wait_ms.mean") > 0.001


@pytest.mark.parametrize(
    "run_settings, message",
    [
        ({"replications": 1, "precision": {"statistic": "latency_ms.p99", "relative_half_width": 0.02}}, "run.replications to 2 or more"),
        ({"replications": 8, "precision": {"statistic": "latency_ms.p99", "relative_half_width": 0.02, "max_replications": 4}},
         r"precision.max_replications \(4\) is below run.replications \(8\)"),
        ({"precision": {"statistic": "latency_ms.p99", "relative_half_width": 0}}, "relative_half_width"),
        ({"precision": {"statistic": "latency_ms.p99", "relative_half_width": 0.02, "scope": "nosuch"}},
         r"run.precision.scope: no class 'nosuch'; the classes are a \(or all\)"),
        ({"precision": {"statistic": "latency_ms.p99", "relative_half_width": 0.02, "typo": 1}}, "typo"),
    ],
)
def test_bad_precision_settings_are_refused_with_the_field(run_settings, message):
    with pytest.raises(ScenarioError, match=message):
        scenario_from_dict(base_scenario(run=run_settings))


def test_a_statistic_without_an_interval_is_refused_before_simulating():
    with pytest.raises(ScenarioError, match=r"run.precision.statistic: 'latency_ms.max' is no statistic with an interval"):
        run(_scenario(statistic="latency_ms.max", relative_half_width=0.02))


def test_a_plan_point_keeps_the_replications_the_plan_gave_it():
    from simulator.planning.points import evaluate_task

    scenario = _scenario(statistic="latency_ms.mean", relative_half_width=0.001, max_replications=60)
    task = {"scenario": scenario.model_dump(mode="json"), "source": "<test>", "base_dir": ".", "seed": 1,
            "replications": 2, "requests": 1000, "detail": False}
    assert evaluate_task(task)["summary"]["replications"] == 2


def test_a_statistic_this_scenario_does_not_have_is_refused_with_the_list():
    with pytest.raises(ScenarioError, match=r"<scenario>: run.precision.statistic: .cache_hit_ratio.: no such statistic of class 'all'; the statistics are .*latency_ms.p99"):
        run(_scenario(statistic="cache_hit_ratio", relative_half_width=0.02))
