"""``latsim plan``: the search gives the brute-force answer, its maximum load matches Erlang C, and the plan block is checked.

The scenarios are small M/M/c-like systems with a p90 SLO (few requests per point), so each plan
takes seconds; the precision is lowered accordingly, which the plan then calls INVALID.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
import scipy.optimize

from simulator.analytic import mmc_sojourn_quantile_ms
from simulator.errors import ScenarioError
from simulator.planning.api import plan
from simulator.planning.load import at_rate, target_rates_per_s, with_load_curve
from simulator.planning.space import Configuration, Space
from simulator.scenario.loader import scenario_from_dict
from tests.helpers import base_scenario

ROOT = Path(__file__).resolve().parent.parent
FAST = {"tail_events": 200, "screen_tail_events": 100, "replications": 10, "min_requests": 1000}


def plan_scenario(space: dict[str, Any], slos: dict[str, Any] | None = None, target: float = 150.0, **plan_fields: Any) -> dict[str, Any]:
    """An exponential-service scenario (10 ms) with a plan block over ``space``."""
    scenario = base_scenario(run={"seed": 5})
    scenario["plan"] = {
        "load": {"targets_per_s": [target]},
        "slos": slos or {"a": {"percentile": "p90", "latency_ms": 40}},
        "space": space, "cost_per_hour": 1.0, "precision": FAST, "top": 2, "what_if_loads": [1.25],
        **plan_fields,
    }
    return scenario


def answer(document: dict[str, Any]) -> tuple[list[str], list[str]]:
    """What a plan concludes: the ranked finalists, by id and label."""
    labels = {c["id"]: c["label"] for c in document["configurations"]}
    return document["finalists"], [labels[identifier] for identifier in document["finalists"]]


def test_planner_answer_equals_brute_force(tmp_path):
    """Pruned search and full runs everywhere rank the same configurations first; the search simulates fewer points.

    Both plans share one results folder, so the search reuses the maximum-load points both need
    (identical parameters, identical numbers) and the test stays short.
    """
    space = {"replicas": [1, 2, 3, 4], "workers": [1, 2], "routers": [{"policy": "round_robin"}, {"policy": "jsq"}]}
    scenario = scenario_from_dict(plan_scenario(space, max_load_tolerance=0.1))
    brute = plan(scenario, tmp_path, exhaustive=True)
    searched = plan(scenario, tmp_path)
    assert answer(searched) == answer(brute)
    assert searched["finalists"], "the space has configurations that meet the SLO"
    assert brute["search"]["confirmed_at_target"] == 16
    assert searched["search"]["screened_at_target"] + searched["search"]["confirmed_at_target"] < 16
    assert searched["search"]["not_confirmed"]["theory"] > 0 and searched["search"]["not_confirmed"]["monotonicity"] > 0


def test_max_load_of_an_mmc_node_matches_erlang_c(tmp_path):
    """One M/M/3 node with a p90 ≤ 30 ms SLO: the bisected maximum load brackets Erlang C's answer within the CI."""
    slos = {"a": {"percentile": "p90", "latency_ms": 30, "count_drops": False}}
    data = plan_scenario({"workers": [3]}, slos, target=100.0, max_load_tolerance=0.02)
    data["plan"]["precision"] = {**FAST, "tail_events": 1000}
    document = plan(scenario_from_dict(data), tmp_path)
    found = document["winner"]["max_load"]
    service_per_ms = 0.1

    def p90_ms(rate_per_s: float) -> float:
        return mmc_sojourn_quantile_ms(3, rate_per_s / 1000, service_per_ms, 0.9)

    exact = scipy.optimize.brentq(lambda rate: p90_ms(rate) - 30, 1, 299.9)
    at_low = next(point for point in document["winner"]["curve"] if point["rate_per_s"] == found["low_per_s"])["items"][0]
    slope = (p90_ms(exact * 1.01) - p90_ms(exact * 0.99)) / (0.02 * exact)  # ms per req/s near the answer
    ci_as_load = (at_low["ci_high"] - at_low["ci_low"]) / slope  # the interval's width, in load
    assert exact - ci_as_load - 0.02 * exact <= found["low_per_s"] <= exact
    assert found["high_per_s"] >= exact - ci_as_load


def test_theory_rules_out_without_simulating(tmp_path):
    """Utilisation ≥ 1 and an Erlang C bound above the SLO are never simulated; the reasons are recorded."""
    data = plan_scenario({"replicas": [1, 2, 3]}, target=150.0, max_load_tolerance=0.1)
    document = plan(scenario_from_dict(data), tmp_path)
    fates = {c["params"]["replicas"]: c["fate"] for c in document["configurations"]}
    assert fates[1]["category"] == "theory" and "utilisation ≥ 1" in fates[1]["reason"]
    assert fates[2]["category"] == "theory" and "Erlang C" in fates[2]["reason"]
    assert [c["screen"] for c in document["configurations"] if c["params"]["replicas"] < 3] == [None, None]


def test_a_plan_block_error_names_the_field():
    data = plan_scenario({"replicas": [1, 2]}, slos={"nope": {"percentile": "p99", "latency_ms": 10}})
    with pytest.raises(ScenarioError, match=r"plan\.slos\.nope: no such class"):
        plan(scenario_from_dict(data), Path("/nonexistent/never-written"))
    broken = plan_scenario({"replicas": [1]}, slos={"a": {"percentile": "p99"}})
    with pytest.raises(ScenarioError, match=r"plan\.slos\.a.*percentile and latency_ms go together"):
        scenario_from_dict(broken)
    unknown = copy.deepcopy(broken)
    unknown["plan"]["slos"] = {"a": {"percentile": "p97", "latency_ms": 5}}
    with pytest.raises(ScenarioError, match=r"plan\.slos\.a\.percentile"):
        scenario_from_dict(unknown)
    huge = plan_scenario({"replicas": list(range(1, 1001)), "workers": list(range(1, 1001))})
    with pytest.raises(ScenarioError, match=r"plan\.space.*1,000,000 configurations; at most 10,000"):
        scenario_from_dict(huge)


def test_hardware_and_variants_make_profile_configurations():
    """Variants below the quality floor are excluded by definition; a cuda option gets measured copy stages."""
    data = plan_scenario({
        "replicas": [1, 2],
        "hardware": [
            {"name": "epyc", "bundle": "profiles/cpu-amd-epyc-2c-avx512/zoo", "cost_per_hour": 0.1},
            {"name": "h100", "bundle": "profiles/cuda-nvidia-h100-80gb-hbm3/zoo", "device": "cuda", "cost_per_hour": 4.0},
        ],
        "variants": {"family": "cnn", "names": ["fp32", "int8", "fp16", "pruned"], "min_accuracy": 0.9},
    })
    scenario = scenario_from_dict(data, base_dir=ROOT).replace("plan", None)
    space = Space(scenario, scenario_from_dict(data, base_dir=ROOT).plan)
    reasons = {(c.params["hardware"], c.params["variant"]): space.exclusion(c) for c in space.configurations() if c.replicas == 1}
    assert reasons[("epyc", "fp32")] is None and reasons[("h100", "fp16")] is None
    assert reasons[("epyc", "fp16")].startswith("not profiled")
    assert reasons[("epyc", "pruned")].startswith("quality floor: pruned has accuracy 0.878")
    gpu = space.apply(scenario, Configuration((("hardware", '"h100"'), ("variant", '"fp16"')), 2))
    node = gpu.nodes[0]
    assert (node.replicas, node.service.stage, node.service.variant, node.device.h2d.stage) == (2, "compute", "fp16", "h2d")
    assert space.cost_per_hour(Configuration((("hardware", '"h100"'), ("variant", '"fp16"')), 2)) == 8.0


def test_the_load_is_scaled_by_one_factor_over_every_arrival_process():
    """A load curve becomes workload.arrival (its target is its mean rate); every process is scaled alike, shapes kept."""
    data = plan_scenario({"replicas": [1]})
    data["plan"]["load"] = {"curve": [{"duration_s": 10, "rate_per_s": 100}, {"duration_s": 30, "rate_per_s": 300}]}
    scenario = scenario_from_dict(data)
    base = with_load_curve(scenario.replace("plan", None), scenario.plan.load)
    assert target_rates_per_s(base, scenario.plan.load) == [250.0]
    assert [s.rate_per_s for s in at_rate(base, 500).workload.arrival.segments] == [200, 600]
    mixed = scenario_from_dict(base_scenario(workload={"classes": [
        {"name": "a", "deadline_ms": 50, "kind": "soft", "target": 0.9, "arrival": {"process": "poisson", "rate_per_s": 30}},
        {"name": "b", "deadline_ms": 50, "kind": "soft", "target": 0.9, "arrival": {"process": "mmpp", "states": [
            {"rate_per_s": 0, "mean_duration_s": 1}, {"rate_per_s": 140, "mean_duration_s": 1}]}},
    ]}))
    doubled = at_rate(mixed, 200)
    assert doubled.workload.classes[0].arrival.rate_per_s == 60 and [s.rate_per_s for s in doubled.workload.classes[1].arrival.states] == [0, 280]
    traced = scenario_from_dict(base_scenario(workload={
        "arrival": {"process": "trace", "file": "data/arrivals_trace.csv"}, "classes": [{"name": "a", "deadline_ms": 50, "kind": "soft", "target": 0.9}],
    }), base_dir=ROOT / "scenarios")
    with pytest.raises(ScenarioError, match=r"workload\.arrival: a plan scales the load by rate, and a 'trace' process"):
        at_rate(traced, 100)


def test_a_calibrated_plan_sizes_for_the_real_server_and_shows_the_raw_answer(tmp_path):
    """A calibration that says the real server takes 1.5× the profile's time needs 5 replicas where the raw profile's
    M/M/1 replicas need 3 (p90 of the sojourn ln 10 / (μ − λ) ≤ 70 ms at 150/s split at random: 62.8 ms at 5, 78.9 at
    4; raw 46.1 at 3, 92.1 at 2); the plan reports the raw profiles' cheaper, optimistic answer beside its own."""
    calibration = {
        "fitted_on": {"method": "server_side", "rate_per_s": [40.0, 80.0]},
        "overhead": {"occupancy": [1.0], "mean_ms": [0.0]},
        "levels": [{"level": 0.8, "rate_per_s": 80.0, "speed": {"factors": [1.5], "transition": [[1.0]]},
                    "outside": {"distribution": "deterministic", "value_ms": 0.5}}],
    }
    (tmp_path / "cal.yaml").write_text(yaml.safe_dump(calibration))
    slos = {"a": {"percentile": "p90", "latency_ms": 70}}
    data = plan_scenario({"replicas": [1, 2, 3, 4, 5, 6, 7, 8]}, slos, max_load_tolerance=0.1)
    data["router"] = {"policy": "random"}
    data["nodes"][0]["calibration"] = {"file": "cal.yaml"}
    document = plan(scenario_from_dict(data, base_dir=tmp_path), tmp_path / "plan")
    costs = {c["id"]: c["cost_per_hour"] for c in document["configurations"]}
    assert document["calibration"]["calibrated"] and document["calibration"]["files"] == ["cal.yaml"]
    assert costs[document["winner"]["id"]] == 5.0  # 5 replicas at 1.0 per hour
    assert document["calibration"]["raw_profile"]["cost_per_hour"] == 3.0
    uncalibrated = plan(scenario_from_dict(plan_scenario({"replicas": [1, 2, 3]}, max_load_tolerance=0.1)), tmp_path / "raw")
    assert not uncalibrated["calibration"]["calibrated"] and "43-58 % low at p50" in uncalibrated["calibration"]["note"]


def test_an_inconclusive_verdict_is_rerun_longer_on_fresh_streams():
    """Each rerun of an inconclusive point is twice as long and on a seed of its own (the first on the plan's seed), so
    the rerun judges new draws rather than the same ones again plus more; the seeds are the same on every run."""
    from simulator.planning.api import plan_context
    from simulator.planning.points import attempt_seed
    from simulator.planning.search import Planner

    data = plan_scenario({"workers": [1, 2]})
    data["plan"]["precision"] = {**FAST, "extensions": 2}
    context = plan_context(scenario_from_dict(data))
    config = next(iter(context.space.configurations()))
    straddling = {"status": "ok", "summary": {"classes": {"a": {"latency_or_drop_ms": {"p90": {"estimate": 40.0, "ci_low": 38.0, "ci_high": 42.0}}}}}}
    search = Planner(context, None).decide(config, 150.0, full=False)
    points = [next(search)]
    with pytest.raises(StopIteration) as finished:
        while True:
            points.append(search.send([straddling]))
    assert [point.attempt for (point,) in points] == [0, 1, 2]
    assert [point.requests for (point,) in points] == [context.screen_requests * 2**k for k in range(3)]
    assert finished.value.value.verdict == "inconclusive"
    seeds = [attempt_seed(5, point.attempt) for (point,) in points]
    assert seeds[0] == 5 and len(set(seeds)) == 3 and seeds == [attempt_seed(5, k) for k in range(3)]
    assert all(0 <= seed < 2**63 for seed in seeds)
