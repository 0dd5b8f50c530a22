"""Statistics that mean what they say: intervals around their own estimates, never negative,
verdicts with confidence, drops that cost, common random numbers, warm-up and the run's end."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from simulator import load_scenario, run, scenario_from_dict
from tests.helpers import base_scenario

SCENARIOS = Path(__file__).parent.parent / "scenarios"


def _leaves(tree: dict, prefix: str = ""):
    for key, value in tree.items():
        if isinstance(value, dict) and "estimate" in value:
            yield prefix + key, value
        elif isinstance(value, dict) and key not in ("slo", "dropped"):
            yield from _leaves(value, f"{prefix}{key}.")


@pytest.mark.parametrize("name, replications", [("bursty-edf", 1), ("quickstart", 2), ("theory-mmc", 1)])
def test_every_interval_contains_its_estimate_and_no_interval_of_a_positive_quantity_goes_negative(name, replications):
    result = run(load_scenario(SCENARIOS / f"{name}.yaml"), requests=20000, replications=replications)
    checked = 0
    for scope in ("classes", "nodes"):
        for entry in result.summary[scope].values():
            for metric, value in _leaves(entry):
                if value["ci_low"] is None:
                    continue
                assert value["ci_low"] - 1e-12 <= value["estimate"] <= value["ci_high"] + 1e-12, (metric, value)
                assert value["ci_low"] >= 0, (metric, value)  # every statistic here is non-negative
                checked += 1
    assert checked > 50


def test_two_replications_warn_and_quantile_intervals_stay_positive():
    data = base_scenario()
    data["run"].update(replications=2, requests=3000)
    result = run(scenario_from_dict(data))
    assert any("only 2 replications" in note for note in result.summary["notes"])
    p99 = result.estimate("latency_ms.p99")
    assert 0 < p99.ci_low <= p99.estimate <= p99.ci_high  # the review saw [−224, 638] ms


@pytest.mark.parametrize("requests", [600, 6000, 60000])
def test_a_hard_class_with_rare_misses_is_never_met_with_confidence(requests):
    """M/M/1 at ρ = 0.5 with a deadline its sojourn time exceeds once in 8,000 requests:
    P(T > d) = e^(−(μ−λ)d) = 1/8000 → d = ln(8000)/(μ − λ)."""
    data = base_scenario()
    deadline_ms = math.log(8000) / (0.1 - 0.05)
    data["workload"]["classes"] = [{"name": "hard", "deadline_ms": deadline_ms, "kind": "hard"}]
    data["run"].update(requests=requests, warmup_requests=requests // 10, replications=1)
    slo = run(scenario_from_dict(data)).summary["classes"]["hard"]["slo"]
    assert slo["verdict"] in ("violated", "inconclusive")  # the review: "met with confidence" at every length
    if slo["misses"] == 0:
        assert slo["miss_probability"]["upper_bound"] > 1e-4 and slo["bound_method"] in ("effective_sample", "blocks_correlated")


def test_shedding_load_cannot_look_faster():
    data = base_scenario()
    data["workload"]["arrival"]["rate_per_s"] = 140  # ρ = 1.4 into a bounded queue
    data["nodes"][0]["queue_capacity"] = 5
    everything = run(scenario_from_dict(data)).summary["classes"]["all"]
    assert everything["drop_ratio"]["estimate"] > 0.2
    assert everything["latency_ms"]["p99"]["estimate"] is not None
    assert everything["latency_or_drop_ms"]["p99"]["estimate"] is None  # a drop is an infinitely late answer
    assert everything["latency_or_drop_ms"]["p50"]["estimate"] >= everything["latency_ms"]["p50"]["estimate"]
    assert everything["goodput_per_s"]["estimate"] <= everything["throughput_per_s"]["estimate"]
    by_reason = everything["drop_ratio_by_reason"]["queue_full"]
    assert by_reason["ci_low"] <= by_reason["estimate"] == everything["drop_ratio"]["estimate"] <= by_reason["ci_high"]


def test_processing_ratio_is_per_request_and_leaves_cache_hits_apart():
    """Requests never wait (one every 20 ms, 10 ms service): each computed one spends all its time
    processing, whatever share of the others hit the cache (Σ service / Σ latency would fall)."""
    ratios = []
    for capacity in (10, 900):
        data = base_scenario()
        data["workload"]["arrival"] = {"process": "deterministic", "rate_per_s": 50}
        data["nodes"][0]["service"] = {"distribution": "deterministic", "value_ms": 10}
        data["workload"]["keys"] = {"popularity": "zipf", "catalog_size": 1000, "exponent": 1.0}
        data["cache"] = {"policy": {"policy": "lru", "capacity_entries": capacity},
                         "hit_latency": {"distribution": "deterministic", "value_ms": 1}}
        everything = run(scenario_from_dict(data)).summary["classes"]["all"]
        ratios.append((everything["processing_ratio"]["estimate"], everything["cache_hit_ratio"]["estimate"]))
    (small, small_hits), (large, large_hits) = ratios
    assert large_hits > small_hits + 0.3
    assert small == pytest.approx(1.0) and large == pytest.approx(1.0)


def test_common_random_numbers_give_a_request_the_same_service_whatever_the_configuration(tmp_path):
    times = []
    for replicas, router in ((1, "round_robin"), (2, "jsq"), (3, "random")):
        data = base_scenario(router={"policy": router})
        data["run"].update(warmup_requests=0, requests=5000, replications=1)
        data["nodes"][0]["replicas"] = replicas
        path = tmp_path / f"{replicas}.parquet"
        run(scenario_from_dict(data), records_path=path)
        times.append(pd.read_parquet(path).set_index("request_id")["service_ms"].sort_index())
    assert times[0].equals(times[1]) and times[0].equals(times[2])


def test_wait_probability_and_drops_per_reason_are_statistics_with_intervals():
    data = base_scenario()
    data["workload"]["classes"] = [{"name": "firm", "deadline_ms": 40, "kind": "firm", "target": 0.5}]
    data["workload"]["arrival"]["rate_per_s"] = 90
    data["nodes"][0].update(queue_capacity=8, admission={"policy": "expired"})
    firm = run(scenario_from_dict(data)).summary["classes"]["firm"]
    assert set(firm["drop_ratio_by_reason"]) == {"queue_full", "deadline"}
    for value in (firm["wait_probability"], *firm["drop_ratio_by_reason"].values()):
        assert 0 <= value["ci_low"] <= value["estimate"] <= value["ci_high"] <= 1


def test_arrivals_continue_until_the_last_measured_request_is_done(tmp_path):
    """The run zone's last requests are served while later arrivals keep the system loaded."""
    data = base_scenario()
    data["workload"]["arrival"]["rate_per_s"] = 90  # ρ = 0.9: a long queue at the end
    data["run"].update(replications=1, requests=20000, warmup_requests=2000)
    path = tmp_path / "requests.parquet"
    result = run(scenario_from_dict(data), records_path=path)
    records = pd.read_parquet(path)
    last_arrival_ms = records["arrival_ms"].max()
    simulated_ms = result.replications[0]["simulated_s"] * 1000
    assert simulated_ms >= records["end_ms"].max() > last_arrival_ms
    # arrivals went on during the drain: the node's utilization in its last measured stretch is not a draining one
    tail = records[records["arrival_ms"] > last_arrival_ms - 5000]
    assert tail["wait_ms"].mean() > 0.3 * records["wait_ms"].mean()


def test_a_cache_warmup_longer_than_planned_is_detected_and_cut():
    data = base_scenario()
    data["run"] = {"requests": 100000, "replications": 4, "seed": 3}
    data["workload"]["arrival"]["rate_per_s"] = 60
    data["workload"]["keys"] = {"popularity": "zipf", "catalog_size": 200000, "exponent": 0.8}
    data["cache"] = {"policy": {"policy": "lru", "capacity_entries": 20000},
                     "hit_latency": {"distribution": "deterministic", "value_ms": 0.1}}
    from simulator.analytic import che_lru_hit_ratio, zipf_popularity

    che = che_lru_hit_ratio(zipf_popularity(200000, 0.8), 20000)
    auto = run(scenario_from_dict(data))
    assert min(auto.summary["warmup_requests"]) > 10_062  # the planned tenth, rounded to whole fine batches
    hits = auto.estimate("cache_hit_ratio")
    assert hits.ci_low <= che <= hits.ci_high
    data["run"]["warmup_requests"] = 10000  # a warm-up the user fixes is kept, with a note
    fixed = run(scenario_from_dict(data))
    assert any("MSER finds a transient" in note for note in fixed.summary["notes"])
    assert fixed.estimate("cache_hit_ratio").ci_high < che  # too short a warm-up biases the hit ratio low


@pytest.mark.parametrize(
    "arrival, note",
    [
        ({"process": "diurnal", "mean_rate_per_s": 50, "amplitude": 0.5, "period_s": 600}, "time-varying arrivals"),
        ({"process": "trace", "file": "data/arrivals_trace.csv"}, "conditional on the trace"),
    ],
)
def test_non_stationary_input_is_said(arrival, note):
    data = base_scenario()
    data["workload"]["arrival"] = arrival
    data["nodes"][0]["service"]["params"]["scale"] = 1.0
    data["run"].update(requests=5000, replications=2)
    summary = run(scenario_from_dict(data, base_dir=SCENARIOS)).summary
    assert any(note in text for text in summary["notes"])


def test_one_replication_of_a_trace_gets_no_batch_means():
    data = base_scenario()
    data["workload"]["arrival"] = {"process": "trace", "file": "data/arrivals_trace.csv"}
    data["nodes"][0]["service"]["params"]["scale"] = 1.0
    data["run"].update(requests=5000, replications=1)
    result = run(scenario_from_dict(data, base_dir=SCENARIOS))
    assert result.summary["ci_method"] == "none"
    assert np.isnan(result.estimate("latency_ms.mean").ci_low or np.nan)


def test_estimate_reads_every_statistic_the_summary_holds():
    """Every statistic of every class and node summary (found by walking the summary, not from a list) through
    ``estimate``/``node_estimate``: percentiles with dots (p99.9), latency_or_drop_ms and drop ratios per reason."""
    data = base_scenario(run={"requests": 4000, "warmup_requests": 500, "replications": 2, "seed": 3})
    data["workload"]["arrival"]["rate_per_s"] = 90
    data["nodes"][0]["queue_policy"] = {"default": {"timeout_ms": 30, "max_queue_size": 4}}
    result = run(scenario_from_dict(data))
    checked = set()
    for scope, entries, read in (("classes", result.summary["classes"], result.estimate), ("nodes", result.summary["nodes"], None)):
        for name, stats in entries.items():
            for metric, value in _leaves(stats):
                got = read(metric, name) if read is not None else result.node_estimate(metric, name)
                assert (got.estimate, got.ci_low, got.ci_high) == (value["estimate"], value["ci_low"], value["ci_high"]), metric
                checked.add(f"{scope}.{metric}")
    reasons = {metric.rsplit(".", 1)[1] for metric in checked if metric.startswith("classes.drop_ratio_by_reason.")}
    assert len(reasons) >= 2, checked  # timeouts and a full queue both drop here
    assert {"classes.latency_or_drop_ms.p99", "classes.latency_ms.p99.9", "nodes.utilization"} <= checked
    with pytest.raises(KeyError, match=r"'latency_ms\.p42': no such statistic of class 'all'; the statistics are .*latency_ms\.p99"):
        result.estimate("latency_ms.p42")
