"""One test per serving-model bug of the sound-numbers review (issue 7), each on the behaviour that was wrong.

Every scenario runs with a fixed seed; statistical comparisons use the run's own intervals.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from simulator import UnstableSystemError, run, scenario_from_dict
from simulator.registry import PARTITIONERS
from simulator.scenario.cluster import HashPartitioning
from tests.helpers import base_scenario


def _records(tmp_path, data: dict, **kwargs) -> tuple[pd.DataFrame, dict]:
    path = tmp_path / "requests.parquet"
    result = run(scenario_from_dict(data), records_path=path, **kwargs)
    records = pd.read_parquet(path)
    return records[records["measured"]], result.summary


def _expon(mean_ms: float) -> dict:
    return {"distribution": "scipy", "name": "expon", "params": {"scale": mean_ms}}


# -- 1. admission applies on every node, plain ones included -------------------------------------


@pytest.mark.parametrize("node_kind", ["plain", "batching", "device"])
def test_predictive_admission_drops_hopeless_requests_on_every_node_kind(node_kind):
    data = base_scenario()
    data["workload"]["classes"] = [{"name": "firm", "deadline_ms": 5, "kind": "firm"}]  # mean service 10 ms
    node = data["nodes"][0]
    node["admission"] = {"policy": "predictive"}
    if node_kind == "batching":
        node["batching"] = {"max_batch_size": 4}
        node["service"] = {**_expon(10.0), "batch_scaling": {"per_extra_item": 0.5}}
    elif node_kind == "device":
        node["device"] = {"concurrency_slowdown": [1.0]}
    summary = run(scenario_from_dict(data)).summary
    firm = summary["classes"]["firm"]
    assert firm["completed"] == 0 and firm["dropped"] == {"deadline": firm["finished"]}


# -- 2. load-aware routers count what they sent, so a network delay does not make them herd -------


def _routed(router: str, delay_ms: float) -> dict:
    data = base_scenario(router={"policy": router})
    data["run"].update(requests=30000, warmup_requests=3000, replications=4)
    data["workload"]["arrival"]["rate_per_s"] = 280  # 4 replicas at 10 ms: ρ = 0.7
    data["nodes"][0]["replicas"] = 4
    data["network"] = {"delay": {"distribution": "deterministic", "value_ms": delay_ms}}
    return data


def test_join_shortest_queue_with_a_network_delay_does_not_herd():
    """With a 20 ms one-way delay (a round trip of four service times) JSQ's view is stale, yet it
    counts its own sends: it spreads load evenly and waits no longer than round robin (the review
    saw it herd onto one replica: 34 ms against round robin's 9 ms), far less than random."""
    jsq = run(scenario_from_dict(_routed("jsq", 20.0)))
    round_robin = run(scenario_from_dict(_routed("round_robin", 20.0))).estimate("wait_ms.mean")
    random = run(scenario_from_dict(_routed("random", 20.0))).estimate("wait_ms.mean")
    wait = jsq.estimate("wait_ms.mean")
    assert wait.estimate <= round_robin.ci_high and wait.ci_high < random.ci_low
    for node in jsq.summary["nodes"].values():
        assert node["utilization"]["ci_low"] <= 0.7 <= node["utilization"]["ci_high"]


@pytest.mark.parametrize("router", ["power_of_two", "least_work", "peak_ewma"])
def test_every_load_aware_router_beats_random_with_a_network_delay(router):
    random = run(scenario_from_dict(_routed("random", 20.0))).estimate("wait_ms.mean")
    aware = run(scenario_from_dict(_routed(router, 20.0))).estimate("wait_ms.mean")
    assert aware.ci_high < random.ci_low


# -- 3. ties between equally loaded replicas are broken at random ---------------------------------


@pytest.mark.parametrize("router", ["jsq", "least_work", "priority_lanes"])
def test_ties_do_not_favour_the_first_replica(router):
    data = base_scenario(router={"policy": router})
    data["run"].update(requests=40000, replications=4)
    data["workload"]["arrival"]["rate_per_s"] = 80  # 4 replicas at 10 ms: ρ = 0.2, mostly all idle
    data["workload"]["classes"][0]["priority"] = 0  # urgent under priority_lanes: may use every replica
    data["nodes"][0]["replicas"] = 4
    nodes = run(scenario_from_dict(data)).summary["nodes"]
    for name in ("n-0", "n-1", "n-2", "n-3"):  # the review saw 0.45 / 0.24 / 0.09 / 0.03
        utilization = nodes[name]["utilization"]
        assert utilization["ci_low"] <= 0.2 <= utilization["ci_high"], (name, utilization)


# -- 4. the batcher's delay runs from the oldest waiting request ---------------------------------


@pytest.mark.parametrize("discipline", ["priority", "edf"])
def test_no_request_waits_for_a_batch_longer_than_the_delay(tmp_path, discipline):
    data = base_scenario()
    data["workload"]["arrival"]["rate_per_s"] = 120
    data["workload"]["classes"] = [
        {"name": "urgent", "share": 0.5, "priority": 0, "deadline_ms": 30, "kind": "soft", "target": 0.5},
        {"name": "bulk", "share": 0.5, "priority": 1, "deadline_ms": 300, "kind": "soft", "target": 0.5},
    ]
    node = data["nodes"][0]
    node.update(workers=2, discipline={"policy": discipline})
    node["batching"] = {"max_batch_size": 8, "max_queue_delay_ms": 6}
    node["service"] = {**_expon(8.0), "batch_scaling": {"per_extra_item": 0.2}}
    records, _ = _records(tmp_path, data)
    held = records[records["batch_wait_ms"] > 0]
    assert len(held) > 100 and held["batch_wait_ms"].max() <= 6.0 + 1e-9  # the review saw up to 2 × 6 ms


# -- 5. a batch holds one model, priced and loaded as that model ----------------------------------


def test_batches_hold_one_model_and_are_priced_and_loaded_by_it(tmp_path):
    data = base_scenario()
    data["workload"]["arrival"]["rate_per_s"] = 60
    det = lambda ms: {"distribution": "deterministic", "value_ms": ms, "batch_scaling": {"per_extra_item": 0.5}}  # noqa: E731
    data["workload"]["classes"] = [
        {"name": "heavy", "share": 0.5, "deadline_ms": 500, "kind": "soft", "target": 0.5, "service": det(20.0), "model": "big"},
        {"name": "light", "share": 0.5, "deadline_ms": 500, "kind": "soft", "target": 0.5, "service": det(1.0), "model": "small"},
    ]
    data["models"] = {
        "big": {"size_mb": 100, "load": {"distribution": "deterministic", "value_ms": 5}},
        "small": {"size_mb": 100, "load": {"distribution": "deterministic", "value_ms": 5}},
    }
    node = data["nodes"][0]
    node.update(workers=2, model_cache={"memory_mb": 150})  # one model fits at a time: the other reloads
    node["batching"] = {"max_batch_size": 8, "max_queue_delay_ms": 10}
    data["run"]["warmup_requests"] = 0  # every request of the run zone then has a record
    records, summary = _records(tmp_path, data)
    served = records[records["dropped"] == ""]
    # never a mixed batch: the requests of one class starting together are whole batches (two workers
    # may start a batch each at the same moment, one per model)
    # (calls at the very end may also hold requests that arrived after the run zone, which have no record)
    early = served[served["start_ms"] < served["arrival_ms"].max()]
    per_class = early.groupby(["node", "start_ms", "class"])["batch_size"]
    assert (per_class.size() % per_class.first() == 0).all() and (early["batch_size"] > 1).any()
    compute = served["compute_ms"]
    heavy = served["class"] == "heavy"
    sizes = served["batch_size"]
    assert np.allclose(compute[heavy], 20.0 * (1 + 0.5 * (sizes[heavy] - 1)))
    assert np.allclose(compute[~heavy], 1.0 * (1 + 0.5 * (sizes[~heavy] - 1)))
    assert (served.loc[heavy, "load_ms"] > 0).any() and (served.loc[~heavy, "load_ms"] > 0).any()  # both models load
    assert summary["nodes"]["n"]["model_loads"] > 0


# -- 6. a waiting room of 0 with a holding batcher is a loss system; drops fall with capacity ------


def test_queue_capacity_bounds_a_batching_node_and_drops_fall_with_it():
    drops = []
    for capacity in (0, 1, 2, 4, 8):
        data = base_scenario()
        data["workload"]["arrival"]["rate_per_s"] = 150
        node = data["nodes"][0]
        node.update(workers=2, queue_capacity=capacity)
        node["batching"] = {"max_batch_size": 4, "max_queue_delay_ms": 5}
        node["service"] = {**_expon(10.0), "batch_scaling": {"per_extra_item": 0.3}}
        drops.append(run(scenario_from_dict(data)).estimate("drop_ratio"))
    ratios = [estimate.estimate for estimate in drops]
    assert all(earlier > later for earlier, later in zip(ratios, ratios[1:])), ratios
    assert ratios[0] > 0.1  # capacity 0 drops whatever finds both workers busy (the review: unbounded)


# -- 7. partitions spread keys with a mixing hash ----------------------------------------------------


@pytest.mark.parametrize("partitions", [2, 4, 8, 16])
def test_hash_partitions_spread_keys_whatever_their_stride(partitions):
    partitioner = PARTITIONERS.build(HashPartitioning(scheme="hash", partitions=partitions), 1 << 20)
    for stride in (1, 4, 16, 1024):
        keys = np.arange(0, 4096 * stride, stride, dtype=np.int64)
        counts = np.bincount(partitioner.owners(keys), minlength=partitions)
        expected = len(keys) / partitions
        chi_square = float(((counts - expected) ** 2 / expected).sum())
        assert chi_square < 3 * partitions + 30, (stride, counts)  # the review: keys 0, 4, 8, … all in partition 0
        assert all(partitioner(int(key)) == owner for key, owner in zip(keys[:64], partitioner.owners(keys[:64])))


# -- 8. failures and updates overlap: counted holds, and the update goes on -----------------------


def test_a_failure_during_an_update_drain_neither_stops_the_update_nor_ends_its_reload():
    data = base_scenario(router={"policy": "jsq"})
    data["run"].update(requests=40000, warmup_requests=0, replications=1)
    data["workload"]["arrival"]["rate_per_s"] = 180
    data["nodes"][0].update(replicas=3)
    data["events"] = [
        {"type": "rolling_update", "nodes": ["n"], "start_s": 20, "reload_s": 20, "pause_s": 0},
        {"type": "failure", "nodes": ["n-0"], "at_s": 20.0001, "duration_s": 5},  # while n-0 drains
        {"type": "random_failures", "nodes": ["n-2"], "mtbf_s": 60, "mttr_s": 3},
    ]
    result = run(scenario_from_dict(data))
    nodes = result.summary["nodes"]
    window_s = sum(result.replications[0]["fine_seconds"])
    for name in ("n-0", "n-1", "n-2"):
        down_s = (1 - nodes[name]["availability"]["estimate"]) * window_s
        assert down_s >= 20 - 1e-6, (name, down_s)  # every replica was reloaded, n-0 too, for its whole 20 s
    assert result.summary["classes"]["all"]["finished"] == 40000


# -- 9. priority lanes: bulk traffic must fit on the unreserved replicas --------------------------


def test_priority_lanes_stability_counts_bulk_against_unreserved_replicas():
    data = base_scenario(router={"policy": "priority_lanes", "urgent_priority": 0, "reserved_replicas": 1})
    data["workload"]["arrival"]["rate_per_s"] = 255  # 3 replicas of 100/s: 0.85 pooled, but bulk 0.9 × 255 on 2
    data["workload"]["classes"] = [
        {"name": "urgent", "share": 0.1, "priority": 0, "deadline_ms": 20, "kind": "firm"},
        {"name": "bulk", "share": 0.9, "priority": 1, "deadline_ms": 500, "kind": "soft", "target": 0.5},
    ]
    data["nodes"][0]["replicas"] = 3
    with pytest.raises(UnstableSystemError, match="offered load is 1.147"):
        run(scenario_from_dict(data))


# -- 10. time and work lost to failures are accounted --------------------------------------------


def test_work_lost_to_a_failure_is_in_utilization_and_the_time_in_lost_ms(tmp_path):
    data = base_scenario()
    data["run"].update(requests=3000, warmup_requests=0, replications=1)
    data["workload"]["arrival"] = {"process": "deterministic", "rate_per_s": 5}  # one every 200 ms
    data["nodes"][0]["service"] = {"distribution": "deterministic", "value_ms": 100}
    data["nodes"][0]["replicas"] = 2
    data["failure_handling"] = {"in_flight": "retry", "max_retries": 3}
    data["events"] = [{"type": "failure", "nodes": ["n-0"], "at_s": 100.05, "duration_s": 1}]  # 50 ms into a call
    records, summary = _records(tmp_path, data)
    retried = records[records["retries"] > 0]
    assert len(retried) == 1
    (lost,) = retried["lost_ms"]
    assert lost == pytest.approx(50.0)
    served = records[records["dropped"] == ""]
    parts = served["network_ms"] + served["wait_ms"] + served["service_ms"] + served["lost_ms"]
    assert np.allclose(served["latency_ms"], parts)
    t0, t1 = records["arrival_ms"].min(), records["arrival_ms"].max()
    busy_ms = summary["nodes"]["n-0"]["utilization"]["estimate"] * (t1 - t0)
    served_here = served[served["node"] == "n-0"]
    assert busy_ms == pytest.approx((np.minimum(served_here["end_ms"], t1) - served_here["start_ms"]).sum() + 50.0)


def test_a_load_cancelled_by_a_failure_is_not_counted():
    data = base_scenario()
    data["run"].update(requests=200, warmup_requests=0, replications=1)
    data["workload"]["arrival"] = {"process": "deterministic", "rate_per_s": 2}
    data["workload"]["classes"][0]["model"] = "m"
    data["models"] = {"m": {"size_mb": 10, "load": {"distribution": "deterministic", "value_ms": 400}}}
    data["nodes"][0]["model_cache"] = {"memory_mb": 20}
    data["nodes"][0]["replicas"] = 2
    data["router"] = {"policy": "round_robin"}
    # n-0 gets requests at 0.5 s, 1.5 s, …: its first load (0.5–0.9 s) is cut by a failure at 0.7 s
    data["events"] = [{"type": "failure", "nodes": ["n-0"], "at_s": 0.7, "duration_s": 0.2}]
    nodes = run(scenario_from_dict(data)).summary["nodes"]
    assert nodes["n-0"]["model_loads"] == 1 and nodes["n-1"]["model_loads"] == 1
